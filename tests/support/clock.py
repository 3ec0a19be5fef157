"""An injectable clock: hours pass in a test without a sleep."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

START = datetime(2030, 1, 1, tzinfo=timezone.utc)


class FakeClock:
    """``clock()`` returns ``now``; ``advance()`` moves it forward."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
