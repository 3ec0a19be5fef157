"""Pin-set fetches counted by version: what the server served (200 and 304 alike), stored per
replica and minute on SQLite and PostgreSQL, read back over the admin API and ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.rotation._lab import CHANNEL, Lab
from pinwarden.server import make_engine, upgrade_database
from pinwarden.server._database import make_session_factory
from pinwarden.server._fetch_counts import (
    FETCH_RETENTION,
    FetchCounter,
    PendingFetches,
    fetch_summary,
    fetches_by_version,
    store_fetches,
)
from tests.server.server_harness import exposed_samples

MINUTE = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine: Engine = make_engine(database_url)
    upgrade_database(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _store(sessions: sessionmaker[Session], pending: PendingFetches, replica: str) -> None:
    with sessions.begin() as session:
        store_fetches(session, pending, replica)


def test_flushes_add_up_per_minute_and_over_replicas(sessions: sessionmaker[Session]) -> None:
    first = PendingFetches(MINUTE, {("c", 1): 5, ("c", 2): 1}, {("c", 1): 3, ("c", 2): 1})
    _store(sessions, first, "a")
    _store(sessions, PendingFetches(MINUTE, {("c", 1): 2}, {("c", 1): 4}), "a")  # same minute
    _store(sessions, PendingFetches(MINUTE, {("c", 1): 10}, {("c", 1): 2}), "b")
    _store(sessions, PendingFetches(MINUTE, {("other", 1): 99}, {("other", 1): 1}), "a")
    later = MINUTE + timedelta(minutes=5)
    _store(sessions, PendingFetches(later, {("c", 2): 7}, {("c", 2): 6}), "a")
    with sessions() as session:
        assert fetches_by_version(session, "c") == {1: 17, 2: 8}
        assert fetches_by_version(session, "c", since=later) == {2: 7}
        assert fetches_by_version(session, "nothing") == {}
        # Addresses: the largest set of the minute per replica (4, not 3 + 4), summed over
        # replicas (4 + 2), the busiest minute per version.
        assert fetch_summary(session, "c", since=MINUTE) == [
            {"version": 1, "fetches": 17, "addresses": 6},
            {"version": 2, "fetches": 8, "addresses": 6},
        ]


def test_rows_past_the_retention_are_deleted_hourly_with_or_without_traffic(
    sessions: sessionmaker[Session],
) -> None:
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    expired = now - FETCH_RETENTION - timedelta(minutes=5)
    _store(sessions, PendingFetches(expired, {("c", 1): 1}, {}), "a")
    _store(sessions, PendingFetches(now, {("c", 2): 1}, {}), "a")
    counter = FetchCounter()
    assert asyncio.run(counter.flush(sessions, "a"))  # nothing counted: it prunes all the same
    with sessions() as session:
        assert fetches_by_version(session, "c") == {2: 1}
    _store(sessions, PendingFetches(expired, {("c", 3): 1}, {}), "a")
    assert asyncio.run(counter.flush(sessions, "a"))  # within the hour: no second scan
    with sessions() as session:
        assert fetches_by_version(session, "c") == {2: 1, 3: 1}


def test_the_counter_keeps_counts_the_database_refused(tmp_path: Path) -> None:
    counter = FetchCounter()
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.1"):
        counter.count("c", 3, address)
    # A database that is not there: the flush fails and the counts wait for the next one.
    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    assert asyncio.run(counter.flush(broken, "a")) is False
    assert counter.failed_flushes == 1 and counter.totals() == {"c": 3}
    pending = counter.take()
    assert pending.fetches == {("c", 3): 3} and pending.addresses == {("c", 3): 2}
    assert counter.take().fetches == {} and counter.totals() == {"c": 3}


def test_the_flush_loop_stores_the_counts(sessions: sessionmaker[Session]) -> None:
    counter = FetchCounter()

    async def serve_and_flush() -> dict[int, int]:
        loop = asyncio.create_task(counter.flush_forever(sessions, "a", every=0.02))
        counter.count("c", 1, "10.0.0.1")
        counter.count("c", 2, "10.0.0.1")
        for _ in range(200):
            await asyncio.sleep(0.02)
            with sessions() as session:
                stored = fetches_by_version(session, "c")
            if stored:
                break
        loop.cancel()
        return stored

    assert asyncio.run(serve_and_flush()) == {1: 1, 2: 1}


def _get(url: str, etag: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"if-none-match": etag} if etag else {}
    return httpx.request(method, url, headers=headers, timeout=10)


def _fetches(lab: Lab) -> httpx.Response:
    return lab.admin.get(f"/channels/{CHANNEL}/fetches")


def test_a_200_and_a_304_count_for_the_version_the_client_holds(fresh_lab: Lab) -> None:
    lab = fresh_lab
    url = f"{lab.channel_url}/pinset"
    first = _get(url)
    old_etag, old_version = first.headers["etag"], int(first.headers["x-pinwarden-version"])
    assert _get(url, old_etag).status_code == 304
    assert _get(url, method="HEAD").status_code == 200  # not counted: nothing is held
    assert _get(f"{lab.server_url}/v1/channels/no-such/pinset").status_code == 404
    lab.add_pin(lab.new_certificate().pin, "next key")
    new_version = lab.publish()
    # The client's old ETag now gets the new version (a 200): it counts for the new one.
    assert _get(url, old_etag).status_code == 200
    report = _fetches(lab).json()
    counts = {row["version"]: row["fetches"] for row in report["versions"]}
    assert counts == {old_version: 2, new_version: 1}
    assert report["total"] == sum(counts.values())
    assert abs(sum(row["share"] for row in report["versions"]) - 1) < 1e-9
    assert all(row["addresses"] == 1 for row in report["versions"])  # all from 127.0.0.1
    samples = exposed_samples(httpx.get(f"{lab.server_url}/metrics", timeout=10).text)
    assert samples[("pinwarden_pinset_fetches_total", (("channel", CHANNEL),))] == report["total"]


def test_counts_not_yet_flushed_are_stored_when_the_server_stops(tmp_path: Path) -> None:
    """The lab's server runs without the operations loops, so no flush happens while it
    serves: what it counted reaches the database only through the flush at shutdown."""
    with Lab(tmp_path / "lab") as lab:
        url = f"{lab.channel_url}/pinset"
        version = int(_get(url).headers["x-pinwarden-version"])
        assert _get(url).status_code == _get(url).status_code == 200
        database_url = lab.app.services.config.database_url
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            assert fetches_by_version(session, CHANNEL) == {version: 3}
    finally:
        engine.dispose()


def test_the_fetch_report_needs_a_token_and_a_known_channel(lab: Lab) -> None:
    url = f"{lab.server_url}/v1/admin/channels/{CHANNEL}/fetches"
    assert httpx.get(url, timeout=10).status_code == 401
    assert lab.admin.get("/channels/no-such-channel/fetches").status_code == 404
    for hostile in ("a%00b", "%ED%B3%BF", "x" * 5000):  # NUL, a lone surrogate, too long
        answer = lab.admin.get(f"/channels/{hostile}/fetches")
        assert answer.status_code in (404, 422), (hostile, answer.status_code, answer.text)


@pytest.mark.parametrize(
    "window", ["0", "59", "1209601", "99999999999999999999", "abc", "1%00", "%ED%B3%BF", "-60"]
)
def test_a_bad_window_is_a_422(lab: Lab, window: str) -> None:
    """``window`` as sent on the wire: a NUL and a lone surrogate's bytes, percent-encoded."""
    answer = lab.admin.get(f"/channels/{CHANNEL}/fetches?window={window}")
    assert answer.status_code == 422, answer.text
    assert "window" in answer.text
