"""Rate limits: token buckets per client address (and for all clients) for violation reports,
and per client address for failed admin authentications.

The per-client bucket keeps one client from flooding; the bucket for all clients keeps many
addresses together (a botnet, a broken app release) from filling the database. Each limiter
keeps its buckets in this process's memory, and, given ``SharedBuckets`` (``_shared_limits``:
the database, or Redis), the same buckets again where every replica takes from them, so N
replicas still allow each rate once, not N times (docs/reliability.md).

The process's own buckets are checked first, with no I/O: a flood is refused there, and only
what passes them makes a round trip to the shared ones (in a thread). When the shared store
fails (the database or Redis is down) the limiter counts it, logs it once a minute, and decides
by the process's own buckets alone: each replica still holds every limit by itself.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from pinwarden.server._shared_limits import Bucket, SharedBuckets, bucket_key

__all__ = ["FailureBudget", "RateLimiter", "SharedSide"]

logger = logging.getLogger("pinwarden.server")

_T = TypeVar("_T")
_LOG_EVERY = 60.0  # seconds between two log lines about a failing shared store


class SharedSide:
    """The shared buckets of one limiter: a call in a thread, its failures counted."""

    def __init__(self, store: SharedBuckets) -> None:
        self.store = store
        self.failures = 0
        self._logged = -_LOG_EVERY

    async def call(self, operation: Callable[..., _T], *args: object, fallback: _T) -> _T:
        """``operation(*args)`` in a thread; ``fallback`` when the store fails."""
        try:
            return await run_in_threadpool(operation, *args)
        except self.store.errors as error:
            self.failures += 1
            now = time.monotonic()
            if now - self._logged >= _LOG_EVERY:
                self._logged = now
                logger.warning(
                    "pinwarden: the shared rate limits (%s) failed; each replica limits by "
                    "itself meanwhile: %s",
                    self.store.name,
                    str(error).splitlines()[0][:300] if str(error) else type(error).__name__,
                )
            return fallback


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
        shared: SharedSide | None = None,
        scope: str = "report",
    ) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.total_burst, self.total_rate = float(total_burst), total_per_minute / 60.0
        self.max_clients = max_clients
        self.shared, self.scope = shared, scope
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

    async def acquire(self, client: str) -> bool:
        """``allow`` here, then, if it passed, the same two buckets shared by the replicas."""
        if not self.allow(client):
            return False
        if self.shared is None:
            return True
        buckets: Sequence[Bucket] = (
            Bucket(bucket_key(self.scope, client), self.burst, self.rate),
            Bucket(bucket_key(self.scope, "*"), self.total_burst, self.total_rate),
        )
        return await self.shared.call(self.shared.store.take, buckets, fallback=True)

    def retry_after(self) -> int:
        """Seconds until the slower of the two buckets gains a token."""
        rate = min(self.rate, self.total_rate)
        return max(1, round(1.0 / rate)) if rate > 0 else 60


class FailureBudget:
    """``burst`` failures at once then ``per_minute`` per client address; a client past it is
    ``exhausted`` until its bucket refills. Only failures spend: a client that never fails is
    never limited, and there is no bucket for all clients together, so one guessing address
    cannot lock the others out. The table of clients is bounded like ``RateLimiter``'s."""

    def __init__(
        self, burst: int, per_minute: float, *, max_clients: int = 10_000, scope: str = "auth"
    ) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.max_clients, self.scope = max_clients, scope
        self.shared: SharedSide | None = None
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def share(self, shared: SharedSide) -> None:
        """Count failures in the replicas' shared buckets too (``exhausted_anywhere``)."""
        self.shared = shared

    def _bucket(self, client: str) -> Bucket:
        return Bucket(bucket_key(self.scope, client), self.burst, self.rate)

    async def exhausted_anywhere(self, client: str) -> bool:
        """Exhausted here, or in the buckets shared by the replicas."""
        if self.exhausted(client) or self.shared is None:
            return self.exhausted(client)
        level = await self.shared.call(
            self.shared.store.level, self._bucket(client), fallback=self.burst
        )
        return level < 1.0

    async def spend_shared(self, client: str) -> None:
        """Count one failure of ``client`` in the shared buckets (``spend`` counts it here)."""
        if self.shared is not None:
            await self.shared.call(self.shared.store.spend, self._bucket(client), fallback=None)

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
