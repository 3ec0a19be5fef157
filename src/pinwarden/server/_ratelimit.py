"""Rate limits: token buckets per client address (and for all clients) for violation reports,
and per client address for failed admin authentications.

The per-client bucket keeps one client from flooding; the shared bucket keeps many addresses
together (a botnet, a broken app release) from filling the database. Both live in this process's
memory, so N replicas allow N times the rates.
"""

from __future__ import annotations

import time
from collections import OrderedDict

__all__ = ["FailureBudget", "RateLimiter"]


def _refill(tokens: float, last: float, now: float, burst: float, rate: float) -> float:
    return min(burst, tokens + (now - last) * rate)


class RateLimiter:
    """``burst`` reports at once then ``per_minute`` per client address; ``total_burst`` then
    ``total_per_minute`` for all clients together.

    The table of clients is bounded: the least recently seen client is forgotten first.
    """

    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        total_burst: int,
        total_per_minute: float,
        max_clients: int = 10_000,
    ) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.total_burst, self.total_rate = float(total_burst), total_per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._total: tuple[float, float] | None = None

    def allow(self, client: str, now: float | None = None) -> bool:
        """Take a token from the client's bucket and from the shared one, if both have one."""
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self.burst, moment))
        tokens = _refill(tokens, last, moment, self.burst, self.rate)
        total_tokens, total_last = self._total or (self.total_burst, moment)
        total = _refill(total_tokens, total_last, moment, self.total_burst, self.total_rate)
        allowed = tokens >= 1.0 and total >= 1.0
        taken = 1.0 if allowed else 0.0
        self._buckets[client] = (tokens - taken, moment)
        self._total = (total - taken, moment)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        """Seconds until the slower of the two buckets gains a token."""
        rate = min(self.rate, self.total_rate)
        return max(1, round(1.0 / rate)) if rate > 0 else 60


class FailureBudget:
    """``burst`` failures at once then ``per_minute`` per client address; a client past it is
    ``exhausted`` until its bucket refills. Only failures spend: a client that never fails is
    never limited, and there is no shared bucket, so one guessing address cannot lock the others
    out. The table of clients is bounded like ``RateLimiter``'s."""

    def __init__(self, burst: int, per_minute: float, *, max_clients: int = 10_000) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (self.burst, now))
        return _refill(tokens, last, now, self.burst, self.rate)

    def exhausted(self, client: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        return self._tokens(client, moment) < 1.0

    def spend(self, client: str, now: float | None = None) -> None:
        """Count one failure of ``client``."""
        moment = time.monotonic() if now is None else now
        tokens = self._tokens(client, moment)
        self._buckets.pop(client, None)
        self._buckets[client] = (max(0.0, tokens - 1.0), moment)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def retry_after(self) -> int:
        """Seconds until an exhausted client may try again."""
        return max(1, round(1.0 / self.rate)) if self.rate > 0 else 60
