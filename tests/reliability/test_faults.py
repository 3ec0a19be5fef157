"""Faults (issue 13): the database cut and restored under load, a replica killed (-9) in the
middle of publishing, the client's cache disk full or read-only, the client's clock a day off.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from pinwarden.client import DynamicPins, EventKind, PinEvent, StaticPins
from pinwarden.document import load_keyring, verify_pinset
from pinwarden.server import make_engine
from pinwarden.server._database import make_session_factory
from pinwarden.server._models import Channel, PublishedDocument
from tests.dynamic.dynamic_harness import PIN_A, PIN_B, PIN_C, PIN_D
from tests.dynamic.pin_server_simulator import PinServerSimulator
from tests.reliability.load_bench import load_server
from tests.server.server_harness import PinServer, TCPProxy, pin_server_factory  # noqa: F401
from tests.support.clock import FakeClock

HOST = "api.example.com"
BOOTSTRAP = StaticPins({HOST: [PIN_A, PIN_B]})


def _published_versions(database_url: str, channel: str) -> list[int]:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            query = (
                select(PublishedDocument.version)
                .join(Channel, Channel.id == PublishedDocument.channel_id)
                .where(Channel.name == channel)
                .order_by(PublishedDocument.version)
            )
            return list(session.scalars(query))
    finally:
        engine.dispose()


# ---- the database cut and restored under load -----------------------------------------------


@pytest.mark.postgres
def test_a_database_cut_under_load_keeps_serving_and_loses_no_publish(postgres_url: str) -> None:
    """40 clients for 10 s, a publish a second; PostgreSQL cut from the 3rd to the 6th second
    (a TCP proxy between the server and it). The clients see no failure, no torn and no
    out-of-order document; the publishes during the cut fail with a 503 that says the database
    is unavailable, the ones after it succeed; every version is stored once, none lost."""
    url = make_url(postgres_url)
    proxy = TCPProxy((url.host or "127.0.0.1", url.port or 5432))
    state = {"cut": False, "restored": False}

    def during(seconds: float) -> None:
        if 2.5 <= seconds and not state["cut"]:
            proxy.cut()
            state["cut"] = True
        elif 5.5 <= seconds and not state["restored"]:
            proxy.restore()
            state["restored"] = True

    args = load_server.arguments(
        ["--clients", "40", "--duration", "10", "--database-url", proxy.url_for(postgres_url)]
    )
    try:
        result = load_server.run(args, during)
    finally:
        proxy.cut()
    print(result)
    assert state == {"cut": True, "restored": True}
    assert (result["failed"], result["torn"], result["out_of_order"]) == (0, 0, 0)
    assert result["errors"] == {}
    errors = result["publish_errors"]
    assert result["publish_failures"] >= 2
    assert all(key.startswith("503 ") and "database is unavailable" in key for key in errors)
    versions = result["published_versions"]
    assert len(versions) >= 3  # before the cut and after it
    assert versions == list(range(2, 2 + len(versions)))  # a failed publish took no version
    assert result["served_version"] == versions[-1]
    assert _published_versions(postgres_url, load_server.CHANNEL) == [1, *versions]


# ---- a replica killed in the middle of publishing -----------------------------------------------


def _admin(server: PinServer) -> httpx.Client:
    headers = {"authorization": f"Bearer {server.admin_token}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


@pytest.mark.postgres
def test_a_replica_killed_mid_publish_leaves_exactly_the_old_or_the_new_version(
    pin_server_factory: Callable[..., PinServer],  # noqa: F811
    postgres_url: str,
) -> None:
    """Replica A publishes back to back; it is killed with SIGKILL after a second, in the middle
    of one publish. Afterwards the database holds versions 1..n without a gap or a torn row (the
    one in flight is either whole or absent), replica B serves version n verified, and the next
    publish through B is n + 1."""
    channel = "com.example.app/prod"
    survivor = pin_server_factory(database_url=postgres_url)
    with _admin(survivor) as admin:
        assert admin.post("/v1/admin/channels", json={"name": channel}).status_code == 201
        rule = {"pattern": "legacy.example.test", "mode": "disabled"}
        assert admin.post(f"/v1/admin/channels/{channel}/rules", json=rule).status_code == 201
    victim = pin_server_factory(
        database_url=postgres_url, data_dir=survivor.data_dir, admin_token=survivor.admin_token
    )
    acknowledged: list[int] = []
    stop = threading.Event()

    def publish_back_to_back() -> None:
        with _admin(victim) as admin:
            while not stop.is_set():
                try:
                    answer = admin.post(f"/v1/admin/channels/{channel}/publish", json={})
                except httpx.HTTPError:
                    return  # the replica is gone
                assert answer.status_code == 200, answer.text
                acknowledged.append(int(answer.json()["version"]))

    publisher = threading.Thread(target=publish_back_to_back, daemon=True)
    publisher.start()
    time.sleep(1.0)
    os.kill(victim.process.pid, signal.SIGKILL)
    stop.set()
    publisher.join(timeout=30)
    victim.process.wait(timeout=10)
    assert len(acknowledged) >= 2
    stored = _published_versions(postgres_url, channel)
    assert stored == list(range(1, len(stored) + 1))
    assert stored[-1] in (acknowledged[-1], acknowledged[-1] + 1)  # the one in flight: all or none
    keyring = load_keyring(survivor.keyring_path.read_bytes())

    def served() -> int:
        raw = httpx.get(f"{survivor.url}/v1/channels/{channel}/pinset").content
        return verify_pinset(raw, keyring=keyring).version

    deadline = time.monotonic() + 10
    while served() != stored[-1] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served() == stored[-1]
    with _admin(survivor) as admin:
        answer = admin.post(f"/v1/admin/channels/{channel}/publish", json={})
    assert answer.status_code == 200 and answer.json()["version"] == stored[-1] + 1


# ---- the client's cache disk full or read-only --------------------------------------------------


def _mount(*arguments: str) -> None:
    import subprocess

    completed = subprocess.run(["mount", *arguments], capture_output=True, timeout=30, check=False)
    if completed.returncode != 0:
        pytest.skip(f"cannot mount here: {completed.stderr.decode(errors='replace').strip()}")


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", str(path)], capture_output=True, timeout=30, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: room for the cache, then filled to the last byte by the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path = tmp_path / "small-disk"
    path.mkdir()
    _mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(path))
    yield path
    _umount(path)


@pytest.fixture
def read_only_view(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(a directory, a read-only bind mount of it): the client's cache turned read-only."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    source, view = tmp_path / "cache", tmp_path / "read-only-cache"
    source.mkdir()
    view.mkdir()
    _mount("--bind", str(source), str(view))
    try:
        _mount("-o", "remount,ro,bind", str(view))
        yield source, view
    finally:
        _umount(view)


def _fill(directory: Path) -> None:
    """Write until the disk refuses a byte."""
    with contextlib.suppress(OSError), open(directory / "filler", "wb", buffering=0) as filler:
        while True:
            filler.write(b"\0" * 4096)


def _events(client_events: list[PinEvent], kind: EventKind) -> list[PinEvent]:
    return [event for event in client_events if event.kind is kind]


def test_a_full_cache_disk_keeps_the_new_pins_in_memory_and_says_so(small_disk: Path) -> None:
    sim = PinServerSimulator(FakeClock())
    sim.publish({HOST: [PIN_A, PIN_B]})
    events: list[PinEvent] = []
    client = sim.client(BOOTSTRAP, cache_dir=small_disk, on_event=events.append)
    assert client.refresh().version == 1 and not _events(events, EventKind.CACHE_WRITE_FAILED)
    _fill(small_disk)
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert client.refresh().version == 2  # in force, from memory
    assert client.status.version == 2 and client.rule_for(HOST) is not None
    assert set(client.rule_for(HOST).pins) == {PIN_C, PIN_D}  # type: ignore[union-attr]
    (failed, *_) = _events(events, EventKind.CACHE_WRITE_FAILED)
    assert "No space left" in failed.message
    (small_disk / "filler").unlink()
    # The disk has room again: the next answer of the server is written, and a restarted app
    # starts from version 2.
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert client.refresh().version == 3
    assert sim.client(BOOTSTRAP, cache_dir=small_disk).version == 3


def test_a_read_only_cache_keeps_the_new_pins_in_memory_and_says_so(
    read_only_view: tuple[Path, Path],
) -> None:
    source, view = read_only_view
    sim = PinServerSimulator(FakeClock())
    sim.publish({HOST: [PIN_A, PIN_B]})
    assert sim.client(BOOTSTRAP, cache_dir=source).refresh().version == 1  # written, then RO
    events: list[PinEvent] = []
    client = sim.client(BOOTSTRAP, cache_dir=view, on_event=events.append)
    assert client.version == 1  # read from the read-only cache
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert client.refresh().version == 2 and client.status.version == 2
    failed = _events(events, EventKind.CACHE_WRITE_FAILED)
    assert failed and "Read-only file system" in failed[0].message
    # The twin: a writable cache takes version 2 without a word.
    writable: list[PinEvent] = []
    assert sim.client(BOOTSTRAP, cache_dir=source, on_event=writable.append).refresh().version == 2
    assert not _events(writable, EventKind.CACHE_WRITE_FAILED)


# ---- the client's clock a day off ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "ttl", "accepted"),
    [
        (timedelta(days=1), timedelta(days=14), True),
        (timedelta(days=-1), timedelta(days=14), True),
        (timedelta(days=1), timedelta(hours=12), False),  # the pin set expired on its clock
        (timedelta(days=-1), timedelta(hours=12), True),  # not yet: held up to a day too long
    ],
)
def test_a_skewed_client_clock_judges_expiry_by_its_own_time(
    skew: timedelta, ttl: timedelta, accepted: bool
) -> None:
    """The server signs with its time; the client judges ``expires`` against its own. A day's
    skew is harmless while the pin set has more than a day left (the default TTL is 14 days,
    re-signed with half of it left); past that, a fast clock sees it expired and falls back to
    the shipped pins (never to no pinning), a slow one keeps it up to a day longer."""
    server_clock = FakeClock()
    sim = PinServerSimulator(server_clock)
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=ttl)
    events: list[PinEvent] = []
    client = DynamicPins(
        sim.url,
        keyring=sim.shipped_keyring,
        bootstrap=BOOTSTRAP,
        clock=lambda: server_clock() + skew,
        transport=sim,
        background=False,
        on_event=events.append,
    )
    client.refresh()
    if accepted:
        assert client.version == 1 and client.status.version == 1
        assert set(client.rule_for(HOST).pins) == {PIN_C, PIN_D}  # type: ignore[union-attr]
    else:
        assert client.version is None and client.status.on_bootstrap
        assert set(client.rule_for(HOST).pins) == {PIN_A, PIN_B}  # type: ignore[union-attr]
        assert any(event.error_type == "ExpiredError" for event in events)
    client.close()
