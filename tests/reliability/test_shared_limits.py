"""Rate limits that hold across replicas (issue 13, "Abuse"): the report limits and the
failed-token budget taken from buckets every replica shares, in the database (SQLite and
PostgreSQL) or in Redis; each twin without the shared buckets allows each replica its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pinwarden.server import make_engine, upgrade_database
from pinwarden.server._database import make_session_factory
from pinwarden.server._ratelimit import FailureBudget, RateLimiter, SharedSide
from pinwarden.server._shared_limits import (
    Bucket,
    DatabaseBuckets,
    RateBucket,
    RedisBuckets,
    SharedBuckets,
    bucket_key,
)
from tests.server.server_harness import PinServer, pin_server_factory  # noqa: F401

REDIS_URL = "redis://127.0.0.1:6379/0"
SLOW = 0.001  # tokens a minute: no refill within a test


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def two_replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[SharedBuckets]]:
    """The shared buckets as two replicas see them: two engines on one database, or two Redis
    clients (keys under a prefix of this test's own)."""
    if request.param == "redis":
        _redis_or_skip()
        prefix = f"pinwarden-test:{uuid.uuid4().hex}:"
        yield [RedisBuckets(REDIS_URL, prefix=prefix) for _ in range(2)]
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        return
    url = (
        f"sqlite:///{tmp_path / 'limits.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    engines = [make_engine(url) for _ in range(2)]
    upgrade_database(engines[0])
    yield [DatabaseBuckets(make_session_factory(engine)) for engine in engines]
    for engine in engines:
        engine.dispose()


def _limiter(store: SharedBuckets | None) -> RateLimiter:
    shared = SharedSide(store) if store is not None else None
    return RateLimiter(3, SLOW, total_burst=5, total_per_minute=SLOW, shared=shared)


def _acquired(limiters: list[RateLimiter], clients: list[str]) -> list[bool]:
    """One report each, by turns through the replicas."""

    async def run() -> list[bool]:
        return [
            await limiters[index % len(limiters)].acquire(client)
            for index, client in enumerate(clients)
        ]

    return asyncio.run(run())


def test_two_replicas_share_each_clients_report_limit_and_the_total(
    two_replicas: list[SharedBuckets],
) -> None:
    replicas = [_limiter(store) for store in two_replicas]
    # Per client: 3 in all, whichever replica takes them.
    assert _acquired(replicas, ["a", "a", "a", "a"]) == [True, True, True, False]
    # For all clients: 5 in all; "a" took 3, "b" takes 2, and then nobody.
    assert _acquired(replicas, ["b", "b", "c"]) == [True, True, False]


def test_the_twin_without_shared_buckets_allows_each_replica_its_own() -> None:
    replicas = [_limiter(None), _limiter(None)]
    assert _acquired(replicas, ["a"] * 6) == [True] * 6
    assert _acquired(replicas, ["a"] * 2) == [False] * 2


def test_concurrent_takes_from_two_replicas_never_take_more_than_the_bucket_holds(
    two_replicas: list[SharedBuckets],
) -> None:
    """8 threads over two replicas, 25 takes each, on a bucket of 30: exactly 30 succeed (each
    take is one atomic statement or script)."""
    bucket = Bucket("test:race", 30, SLOW / 60)
    taken: list[bool] = []
    lock = threading.Lock()

    def hammer(store: SharedBuckets) -> None:
        for _ in range(25):
            result = store.take([bucket])
            with lock:
                taken.append(result)

    threads = [threading.Thread(target=hammer, args=(two_replicas[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(taken) == 200 and taken.count(True) == 30
    assert two_replicas[0].level(bucket) < 1.0


def test_a_take_from_two_buckets_is_all_or_nothing(two_replicas: list[SharedBuckets]) -> None:
    client, total = Bucket("test:client", 5, SLOW / 60), Bucket("test:total", 1, SLOW / 60)
    first, second = two_replicas
    assert first.take([client, total])
    assert not second.take([client, total])  # the total is empty: the client keeps its token
    assert round(second.level(client)) == 4 and second.level(total) < 1.0


def test_the_failed_token_budget_is_shared_by_two_replicas(
    two_replicas: list[SharedBuckets],
) -> None:
    budgets = [FailureBudget(3, SLOW), FailureBudget(3, SLOW)]
    for budget, store in zip(budgets, two_replicas, strict=True):
        budget.share(SharedSide(store))

    async def run() -> tuple[bool, bool]:
        for budget in (budgets[0], budgets[1], budgets[0]):
            budget.spend("guesser")
            await budget.spend_shared("guesser")
        return (
            await budgets[1].exhausted_anywhere("guesser"),
            await budgets[1].exhausted_anywhere("someone else"),
        )

    assert asyncio.run(run()) == (True, False)
    assert not budgets[1].exhausted("guesser")  # the twin: its own bucket alone would allow it


def test_a_failing_shared_store_leaves_each_replica_its_own_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis gone (a closed port): the limiter decides by its own buckets, counts the failures
    and says so once in the log."""
    shared = SharedSide(RedisBuckets("redis://127.0.0.1:1/0"))
    limiter = RateLimiter(2, SLOW, total_burst=10, total_per_minute=SLOW, shared=shared)
    assert _acquired([limiter], ["a"] * 3) == [True, True, False]
    assert shared.failures == 2
    warnings = [r.getMessage() for r in caplog.records if "shared rate limits" in r.message]
    assert len(warnings) == 1 and "redis" in warnings[0]


def test_full_buckets_are_pruned_from_the_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'prune.db'}")
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    store = DatabaseBuckets(sessions)
    assert store.take([Bucket("test:quick", 1, 1000.0)])  # full again within a millisecond
    assert store.take([Bucket("test:slow", 1, SLOW / 60)])
    store._pruned = 0.0  # the next write prunes
    time.sleep(0.01)
    store.spend(Bucket("test:other", 5, SLOW / 60))
    with sessions() as session:
        keys = {row.key for row in session.query(RateBucket)}
    assert keys == {"test:slow", "test:other"}
    engine.dispose()


# ---- through real `pinwarden serve` replicas ----------------------------------------------------


def _forget_in_redis(key: str) -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).delete(f"pinwarden:limit:{key}")


def _replicas(
    factory: Callable[..., PinServer], database_url: str | None, extra: list[str]
) -> tuple[PinServer, PinServer]:
    first = factory(database_url=database_url, extra_args=extra)
    second = factory(
        database_url=database_url,
        data_dir=first.data_dir,
        admin_token=first.admin_token,
        extra_args=extra,
    )
    return first, second


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def serve_backend(request: pytest.FixtureRequest) -> tuple[str | None, list[str]]:
    """(database URL, extra ``serve`` arguments): PostgreSQL's buckets, or Redis's (with SQLite
    as the database). SQLite's buckets are the same code as PostgreSQL's, tested above."""
    if request.param == "redis":
        _redis_or_skip()
        return None, ["--limits-redis-url", REDIS_URL]
    return str(request.getfixturevalue("postgres_url")), []


def test_token_guessing_through_two_replicas_spends_one_budget(
    pin_server_factory: Callable[..., PinServer],  # noqa: F811
    serve_backend: tuple[str | None, list[str]],
) -> None:
    """Bad tokens from one address, by turns through two replicas: refused with 429 after the
    one budget of 200 (and what refilled meanwhile, 30 a minute), not after 200 per replica;
    then both refuse that address even a valid token (no lookup answers a guesser)."""
    database_url, extra = serve_backend
    if extra:  # Redis keeps its keys past this test: start from a full budget
        _forget_in_redis(bucket_key("auth", "127.0.0.1"))
    first, second = _replicas(pin_server_factory, database_url, extra)
    bad = {"authorization": f"Bearer pwt_{uuid.uuid4().hex[:8]}_wrong"}
    refused_after = None
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        for index in range(400):  # what two budgets of one replica each would allow
            replica = (first, second)[index % 2]
            answer = client.get(f"{replica.url}/v1/admin/channels", headers=bad)
            if answer.status_code == 429:
                refused_after = index
                break
            assert answer.status_code == 401, (index, answer.text)
        refilled = (time.monotonic() - started) * 30 / 60
        assert refused_after is not None, "each replica kept a budget of its own"
        assert 200 <= refused_after <= 200 + refilled + 1
        good = {"authorization": f"Bearer {first.admin_token}"}
        for replica in (first, second):
            refused = client.get(f"{replica.url}/v1/admin/channels", headers=good)
            assert refused.status_code == 429 and refused.headers["retry-after"]


@pytest.mark.parametrize(
    "url",
    ["", "http://127.0.0.1:6379", "redis://h\0", "redis://\udc80", "redis://" + "h" * 5000, 5],
)
def test_a_redis_url_that_is_no_redis_url_is_a_one_line_config_error(
    url: object, tmp_path: Path
) -> None:
    from pinwarden.server import ConfigError, ServerConfig

    with pytest.raises(ConfigError, match="limits_redis_url") as raised:
        ServerConfig(database_url="sqlite://", key_dir=tmp_path, limits_redis_url=url)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)
    for good in (REDIS_URL, "rediss://cache.example:6380/1", "unix:///run/redis.sock"):
        assert ServerConfig(database_url="sqlite://", key_dir=tmp_path, limits_redis_url=good)
