"""Token buckets every replica shares: in the database (table ``rate_buckets``, migration 0009)
or in Redis where configured (``ServerConfig.limits_redis_url``).

A replica's own buckets (``_ratelimit``) hold one process; N replicas behind a load balancer
would allow N times each rate. These hold across replicas: each take is one atomic statement
(an ``INSERT … ON CONFLICT DO UPDATE … WHERE`` upsert, or one Lua script in Redis), so two
replicas cannot both take the last token. A row is a bucket's level and when it was read; a
bucket that is full again is the same as no row, so rows past their ``full_at`` are pruned.

Client addresses are stored hashed: a key is fixed-size text whatever a client (or a trusted
proxy's ``X-Forwarded-For``) names itself.

Every call blocks (a database or Redis round trip): callers run it in a thread.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Float, String, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from pinwarden.server._models import Base

__all__ = [
    "Bucket",
    "DatabaseBuckets",
    "RateBucket",
    "RedisBuckets",
    "SharedBuckets",
    "bucket_key",
    "shared_buckets",
]

_PRUNE_EVERY = 30.0  # seconds between two prunes of full buckets by one replica


class RateBucket(Base):
    """One shared token bucket: ``tokens`` as of ``updated`` (Unix seconds); full again at
    ``full_at``, after which the row means nothing and is pruned."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
    full_at: Mapped[float] = mapped_column(Float, index=True)


@dataclass(frozen=True)
class Bucket:
    """``burst`` tokens at most, refilled at ``rate`` a second."""

    key: str
    burst: float
    rate: float


def bucket_key(scope: str, client: str) -> str:
    """``scope:`` and a SHA-256 of the client address (``*`` for a scope's shared bucket)."""
    if client == "*":
        return f"{scope}:*"
    digest = hashlib.sha256(client.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{scope}:{digest}"


class SharedBuckets(Protocol):
    """Where replicas keep their common buckets."""

    name: str
    errors: tuple[type[BaseException], ...]  # what a failing store raises

    def take(self, buckets: Sequence[Bucket]) -> bool:
        """One token from each bucket if every one has a token, else none: all or nothing."""

    def spend(self, bucket: Bucket) -> None:
        """One token from ``bucket``, down to zero at most (a failure counted, not refused)."""

    def level(self, bucket: Bucket) -> float:
        """The tokens ``bucket`` holds now."""


class DatabaseBuckets:
    """The buckets in ``rate_buckets`` of the server's database (PostgreSQL or SQLite)."""

    name = "database"
    errors: tuple[type[BaseException], ...] = (SQLAlchemyError,)

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._pruned = 0.0

    def take(self, buckets: Sequence[Bucket]) -> bool:
        now = time.time()
        with self._sessions.begin() as session:
            for bucket in buckets:
                if not self._upsert(session, bucket, now, refuse_empty=True):
                    session.rollback()  # the tokens taken from the buckets before: back
                    return False
            self._prune(session, now)
        return True

    def spend(self, bucket: Bucket) -> None:
        now = time.time()
        with self._sessions.begin() as session:
            self._upsert(session, bucket, now, refuse_empty=False)
            self._prune(session, now)

    def level(self, bucket: Bucket) -> float:
        now = time.time()
        with self._sessions() as session:
            least = _least(session)
            refilled = least(bucket.burst, RateBucket.tokens + _elapsed(session, now) * bucket.rate)
            found = session.scalar(select(refilled).where(RateBucket.key == bucket.key))
        return bucket.burst if found is None else float(found)

    @staticmethod
    def _upsert(session: Session, bucket: Bucket, now: float, *, refuse_empty: bool) -> bool:
        """Refill the row to ``now`` and take one token, in one statement; with
        ``refuse_empty``, leave an empty bucket as it is and say so."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        least, greatest = _least(session), _greatest(session)
        refilled = least(bucket.burst, RateBucket.tokens + _elapsed(session, now) * bucket.rate)
        left = greatest(0.0, refilled - 1.0)
        first = max(0.0, bucket.burst - 1.0)
        insert = dialect.insert(RateBucket).values(
            key=bucket.key,
            tokens=first,
            updated=now,
            full_at=now + (bucket.burst - first) / bucket.rate,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[RateBucket.key],
            set_={
                "tokens": left,
                "updated": now,
                "full_at": now + (bucket.burst - left) / bucket.rate,
            },
            where=(refilled >= 1.0) if refuse_empty else None,
        ).returning(RateBucket.key)
        return session.execute(upsert).first() is not None or not refuse_empty

    def _prune(self, session: Session, now: float) -> None:
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            session.execute(delete(RateBucket).where(RateBucket.full_at < now))


def _least(session: Session) -> Any:
    """Two-argument ``min``: ``LEAST`` on PostgreSQL, the scalar ``min`` on SQLite."""
    return func.least if session.get_bind().dialect.name == "postgresql" else func.min


def _greatest(session: Session) -> Any:
    return func.greatest if session.get_bind().dialect.name == "postgresql" else func.max


def _elapsed(session: Session, now: float) -> Any:
    """Seconds since the row was read, never negative (replicas' clocks differ a little)."""
    return _greatest(session)(0.0, now - RateBucket.updated)


# KEYS: the buckets; ARGV: mode ("take", "spend" or "level"), then burst and rate of each key.
# The time is Redis's own (TIME), so replicas' clocks do not matter. A float reply would be
# truncated to an integer by Redis: the level comes back as text.
_SCRIPT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local mode = ARGV[1]
local levels = {}
for i, key in ipairs(KEYS) do
  local burst, rate = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(state[1]) or burst
  local updated = tonumber(state[2]) or now
  levels[i] = math.min(burst, tokens + math.max(0, now - updated) * rate)
end
if mode == 'level' then return tostring(levels[1]) end
if mode == 'take' then
  for i = 1, #KEYS do
    if levels[i] < 1 then return 0 end
  end
end
for i, key in ipairs(KEYS) do
  local burst, rate = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local left = math.max(0, levels[i] - 1)
  redis.call('HSET', key, 'tokens', tostring(left), 'updated', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((burst - left) / rate * 1000) + 1000)
end
return 1
"""


class RedisBuckets:
    """The buckets in Redis (optional: ``pinwarden serve --limits-redis-url``), each key expiring
    when its bucket is full again. Short socket timeouts: a Redis that does not answer is an
    error at once, and the caller falls back to its own buckets."""

    name = "redis"

    def __init__(self, url: str, *, prefix: str = "pinwarden:limit:") -> None:
        import redis

        self.errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_SCRIPT)
        self._prefix = prefix

    def _run(self, mode: str, buckets: Sequence[Bucket]) -> Any:
        keys = [self._prefix + bucket.key for bucket in buckets]
        args: list[str] = [mode]
        for bucket in buckets:
            args += [repr(float(bucket.burst)), repr(float(bucket.rate))]
        return self._script(keys=keys, args=args)

    def take(self, buckets: Sequence[Bucket]) -> bool:
        return int(self._run("take", buckets)) == 1

    def spend(self, bucket: Bucket) -> None:
        self._run("spend", [bucket])

    def level(self, bucket: Bucket) -> float:
        return float(self._run("level", [bucket]))


def shared_buckets(sessions: sessionmaker[Session], redis_url: str | None) -> SharedBuckets:
    """Redis where configured, else the server's database."""
    return RedisBuckets(redis_url) if redis_url else DatabaseBuckets(sessions)
