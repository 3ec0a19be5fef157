"""The in-memory store of the read path, shared by the event loop and worker threads.

``StoreSync.load`` reads the store in a worker thread while the loop applies publishes, and the
synchronous admin routes (run in the thread pool) write to it: the store must stay consistent
under all of these at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pinwarden.server._database import make_engine, make_session_factory, upgrade_database
from pinwarden.server._store import PublishedStore, ServedDocument
from pinwarden.server._sync import StoreSync
from tests.server.server_harness import LiveServer

_ROUNDS = 100
_INSERTS = 5_000


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


@pytest.fixture
def fast_thread_switches() -> Iterator[None]:
    """Let the interpreter switch threads every few bytecodes, so a race shows up at once."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def _document(version: int) -> ServedDocument:
    return ServedDocument.build(version, b"{}", f'"v{version}"', 60)


def _hammer(store: PublishedStore, stop: threading.Event) -> None:
    """Add channels and keyrings until told to stop (or a bounded number)."""
    for number in range(_INSERTS):
        if stop.is_set():
            return
        store.put_pinset(f"channel-{number}", _document(1))
        store.put_keyring(number, b"{}")
        store.add_channel(f"created-{number}")


def _while_hammered(store: PublishedStore, read: Callable[[], object]) -> None:
    """Run ``read`` ``_ROUNDS`` times while another thread inserts; any exception fails."""
    for number in range(500):  # big enough that one iteration spans many thread switches
        store.put_pinset(f"seed-{number}", _document(1))
        store.put_keyring(-number - 1, b"{}")
    stop = threading.Event()
    writer = threading.Thread(target=_hammer, args=(store, stop))
    writer.start()
    try:
        for _ in range(_ROUNDS):
            read()
    finally:
        stop.set()
        writer.join(timeout=30)
    assert not writer.is_alive()


@pytest.mark.usefixtures("fast_thread_switches")
def test_reading_every_version_while_another_thread_publishes_is_safe() -> None:
    store = PublishedStore()

    def read() -> None:
        store.versions()
        store.keyring_versions()

    _while_hammered(store, read)


@pytest.mark.usefixtures("fast_thread_switches")
def test_a_reload_in_a_worker_thread_while_the_store_changes_is_safe(database_url: str) -> None:
    """The defect: ``StoreSync.load`` iterated the store in a worker thread while another thread
    inserted: "dictionary changed size during iteration"."""
    engine = make_engine(database_url)
    upgrade_database(engine)
    store = PublishedStore()
    sync = StoreSync(
        database_url,
        make_session_factory(engine),
        store,
        lambda channel, version: None,
        lambda up: None,
        poll_seconds=1.0,
    )
    try:
        _while_hammered(store, sync.load)
    finally:
        engine.dispose()


def test_a_lower_version_never_replaces_a_higher_one_whatever_the_order() -> None:
    store = PublishedStore()
    assert store.put_pinset("c", _document(2))
    assert not store.put_pinset("c", _document(1))
    assert not store.put_pinset("c", _document(2))
    assert store.pinset("c") is not None and store.pinset("c").version == 2  # type: ignore[union-attr]
    assert store.has_channel("c") and store.versions() == {"c": 2}


def _create_and_publish_twice(server: LiveServer, channel: str) -> list[int]:
    with server.client() as client:
        created = client.post("/v1/admin/channels", json={"name": channel})
        assert created.status_code == 201, created.text
        rule = {"pattern": "legacy.example.test", "mode": "disabled"}
        assert client.post(f"/v1/admin/channels/{channel}/rules", json=rule).status_code == 201
        answers = [client.post(f"/v1/admin/channels/{channel}/publish", json={}) for _ in "12"]
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    return [int(answer.json()["version"]) for answer in answers]


def test_concurrent_creates_publishes_and_reloads_leave_every_channel_served(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """Channel creates (thread pool), publishes (applied on the loop) and a reload every 50 ms
    (a worker thread reading the store), all at once."""
    server = live_server_factory(poll_seconds=0.05)
    names = [f"com.example.app/race{number}" for number in range(8)]
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            results[name] = _create_and_publish_twice(server, name)
        except BaseException as error:  # the assertion is made on the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(name,)) for name in names]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors and not any(worker.is_alive() for worker in workers)
    assert results == {name: [1, 2] for name in names}
    for name in names:
        answer = httpx.get(f"{server.url}/v1/channels/{name}/pinset")
        assert answer.status_code == 200 and answer.headers["x-pinwarden-version"] == "2"
    assert server.services.store.versions() == dict.fromkeys(names, 2)
    asyncio.run(server.services.sync.refresh())  # a reload after the fact changes nothing
    assert server.services.store.versions() == dict.fromkeys(names, 2)
