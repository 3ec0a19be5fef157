"""When the dynamic client fetches again, and the loops that make it happen.

``RefreshPolicy`` turns an outcome into a delay: the document's refresh hint (bounded, and never
later than half the time left before the document expires) after a success, exponential back-off
after a failure; jitter on both so that a fleet of clients does not fetch in step.

The loops run a blocking ``step`` (fetch, verify, apply; it returns the next delay) either in a
daemon thread or as an asyncio task that runs the step in a worker thread, so the event loop
never waits on the network. ``wake(delay)`` brings the next run forward (a push announcement, a
pin mismatch); ``FetchBudget`` decides how soon such an unscheduled fetch may run.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["AsyncRefresher", "FetchBudget", "RefreshPolicy", "Refresher", "ThreadRefresher"]

logger = logging.getLogger("pinwarden.client")

RefreshStep = Callable[[], float]


@dataclass(frozen=True)
class RefreshPolicy:
    """The timing of refreshes.

    ``default_interval`` applies when no document gives a hint (bootstrap pins);
    ``min_interval`` and ``max_interval`` bound the hint, so a document cannot make clients hammer
    the server or stop asking; failures wait ``backoff_base * 2**(n-1)`` up to ``backoff_cap``.
    ``jitter`` is the spread around a success delay (0.1 = ±10 %); a back-off delay is drawn from
    its upper half. ``burst`` is how many fetches that no schedule asked for (a push announcement,
    a pin mismatch) may run back to back before they are held to one per ``min_interval``.
    """

    default_interval: timedelta = timedelta(hours=1)
    min_interval: timedelta = timedelta(minutes=1)
    max_interval: timedelta = timedelta(hours=24)
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_cap: timedelta = timedelta(hours=1)
    jitter: float = 0.1
    burst: int = 3

    def __post_init__(self) -> None:
        if self.burst < 1:
            raise ValueError("burst is at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        if not timedelta(0) < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if not timedelta(0) < self.backoff_base <= self.backoff_cap:
            raise ValueError("need 0 < backoff_base <= backoff_cap")

    def after_success(
        self,
        hint: timedelta | None,
        until_expiry: timedelta | None,
        rng: random.Random,
    ) -> float:
        """Seconds until the next fetch after a fetch that worked (new document or not)."""
        spread: float = rng.uniform(1 - self.jitter, 1 + self.jitter)
        return self.interval(hint, until_expiry).total_seconds() * spread

    def interval(self, hint: timedelta | None, until_expiry: timedelta | None) -> timedelta:
        """The refresh interval before jitter: the hint (``default_interval`` without one),
        never later than half the time left before expiry, within the policy's bounds."""
        interval = hint if hint is not None else self.default_interval
        if until_expiry is not None:
            # Ask again well before the document runs out, whatever the hint says.
            interval = min(interval, until_expiry / 2)
        return min(max(interval, self.min_interval), self.max_interval)

    def after_failure(self, failures: int, rng: random.Random) -> float:
        """Seconds until the next attempt after ``failures`` failures in a row (1 or more)."""
        exponent = min(max(failures, 1) - 1, 32)
        delay = min(self.backoff_base * (1 << exponent), self.backoff_cap).total_seconds()
        spread: float = rng.uniform(0.5, 1.0)
        return delay * spread


class FetchBudget:
    """A token bucket for one kind of unscheduled fetch: ``burst`` at once, then one per
    ``min_interval``.

    The dynamic client keeps one for push announcements and one for pin mismatches, so that the
    fetches an event stream or a stream of mismatches can start stay within ``burst``, then at most
    two per ``min_interval`` each (a token, and the fetch a trigger without one brought forward to
    the instant it is back), however many arrive: a hostile stream cannot make the client
    hammer the server. Two buckets, because refused connections during an emergency rotation
    spend the mismatch tokens, and the announcement of the fix must still be followed at once
    (docs/rotation.md, "The fetch budget"). The bucket starts full, so the first announcement
    after a cold start is followed at once. Kept as the generic cell rate algorithm (one
    "theoretical arrival time" in exact ``datetime`` arithmetic, no float drift). Thread-safe;
    ``now`` is the client's clock.
    """

    def __init__(self, policy: RefreshPolicy, now: datetime) -> None:
        self._interval = policy.min_interval
        self._tolerance = policy.min_interval * (policy.burst - 1)
        self._arrival = now
        self._lock = threading.Lock()

    def claim(self, now: datetime) -> float:
        """Take a token if one is free (0.0: fetch at once), else the seconds until one is.

        Nothing is taken when the answer is a wait: a fetch woken for later takes no token, so a
        flood cannot reserve the bucket away from a later, legitimate trigger.
        """
        with self._lock:
            wait = (self._arrival - self._tolerance - now).total_seconds()
            if wait > 0:
                return wait
            self._arrival = max(self._arrival, now) + self._interval
            return 0.0


class Refresher(Protocol):
    def start(self) -> None: ...

    def wake(self, delay: float = 0.0) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


# A step that raised despite catching its own errors is retried after this long.
_AFTER_UNEXPECTED_ERROR = 60.0


def _run_step(step: RefreshStep) -> float:
    try:
        return step()
    except Exception:
        logger.exception("pinwarden: the pin refresh failed unexpectedly; retrying later")
        return _AFTER_UNEXPECTED_ERROR


class ThreadRefresher:
    """Runs ``step`` in a daemon thread: first after ``first_delay`` seconds, then as it says.

    ``wake(delay)`` brings the next run forward to at most ``delay`` seconds from now (never
    later than planned). A wake that arrives while the step runs counts from its own instant, so
    it cannot make the step run twice back to back unless it asked for that.
    """

    def __init__(self, step: RefreshStep, first_delay: float, name: str) -> None:
        self._step = step
        self._lock = threading.Lock()
        self._due = time.monotonic() + first_delay
        self._wakeup = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self, delay: float = 0.0) -> None:
        with self._lock:
            self._due = min(self._due, time.monotonic() + delay)
        self._wakeup.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop; wait at most ``timeout`` seconds for a step under way (it is abandoned,
        not interrupted: a fetch ends within its own time budget in this daemon thread)."""
        self._stopped = True
        self._wakeup.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stopped:
            self._wakeup.clear()
            with self._lock:
                left = self._due - time.monotonic()
                if left <= 0:
                    self._due = math.inf  # wakes during the step count from their own instant
            if left > 0:
                self._wakeup.wait(left)
                continue
            delay = _run_step(self._step)
            with self._lock:
                self._due = min(self._due, time.monotonic() + delay)


class AsyncRefresher:
    """Runs ``step`` from an asyncio task on the running loop; the step runs in a worker thread.

    ``wake(delay)`` as for ``ThreadRefresher``; callable from any thread.
    """

    def __init__(self, step: RefreshStep, first_delay: float) -> None:
        self._step = step
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + first_delay
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._run(), name="pinwarden-refresh")

    def wake(self, delay: float = 0.0) -> None:
        self._call_in_loop(lambda: self._bring_forward(delay))

    def _bring_forward(self, delay: float) -> None:
        self._due = min(self._due, self._loop.time() + delay)
        self._wakeup.set()

    def stop(self, timeout: float = 0.0) -> None:
        """Cancel the task; never waits (a step under way ends in its worker thread)."""
        if self._task is not None:
            self._call_in_loop(self._task.cancel)

    def _call_in_loop(self, function: Callable[[], object]) -> None:
        """Run ``function`` on the loop, from the loop's thread or any other."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            function()
            return
        try:
            self._loop.call_soon_threadsafe(function)
        except RuntimeError:
            pass  # the loop is closed: its task is gone with it

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            left = self._due - self._loop.time()
            if left > 0:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=left)
                except asyncio.TimeoutError:
                    pass
                continue
            self._due = math.inf  # wakes during the step count from their own instant
            delay = await asyncio.to_thread(_run_step, self._step)
            self._due = min(self._due, self._loop.time() + delay)
