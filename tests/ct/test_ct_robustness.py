"""The CT watch against what a hostile or slow log and a second replica can do: unverified data
of unknown shape, a trickling answer, a concurrent round, the lease; and what it keeps over
time (pruning)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pinwarden.cli import main
from pinwarden.server._models import utc_now
from pinwarden.server.alerts import AlertKind
from pinwarden.server.ct import CtLogState, CtSighting, CtWatcher, Fetcher, LogFetchError
from pinwarden.server.freshness import Lease, take_lease
from tests.ct.conftest import write_list
from tests.ct.ct_log import TestLog
from tests.ct.test_ct_watch import HOST, Setup, _setup
from tests.operations.operations_harness import OperationsServer

_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # OID 1.2.840.10045.2.1
_UNKNOWN_KEY = bytes.fromhex("06072a8648ce3d0209")  # OID 1.2.840.10045.2.9: no such algorithm


@pytest.fixture
def rfc6962(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> Setup:
    return _setup(operations_server, test_logs, tmp_path, False)


def _x509_entry(log: TestLog, der: bytes) -> bytes:
    """A TimestampedEntry of an x509 entry (RFC 6962 §3.4) for ``add_raw``."""
    body = len(der).to_bytes(3, "big") + der
    return (log.timestamp + len(log.entries)).to_bytes(8, "big") + b"\x00\x00" + body + b"\x00\x00"


def test_an_issuer_with_a_key_of_unknown_algorithm_is_ignored_not_fatal(rfc6962: Setup) -> None:
    rfc6962.round()
    issuer = rfc6962.log.issuer.der
    assert issuer.count(_EC_PUBLIC_KEY) == 1
    rfc6962.log.add([HOST], claimed=issuer.replace(_EC_PUBLIC_KEY, _UNKNOWN_KEY))
    rfc6962.log.publish()
    found = rfc6962.round()
    assert [(log.end, log.error) for log in found.logs] == [(4, None)]
    assert [s["issuer_pin"] for s in found.sightings] == [None]
    assert found.alerts_opened == 1
    with rfc6962.server.session() as session:
        assert session.scalar(select(CtLogState.tree_size)) == 4


def test_a_leaf_with_a_repeated_name_extension_matches_fail_safe(rfc6962: Setup) -> None:
    rfc6962.round()
    issuer = rfc6962.log.issuer
    placeholder = x509.ObjectIdentifier("1.2.3.4")  # as long as the SAN OID, which replaces it
    der = (
        issuer._builder([HOST], ec.generate_private_key(ec.SECP256R1()), 7)
        .add_extension(x509.UnrecognizedExtension(placeholder, b"\x30\x00"), critical=False)
        .sign(issuer.key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
        .replace(bytes.fromhex("06032a0304"), bytes.fromhex("0603551d11"))
    )
    rfc6962.log.add_raw(_x509_entry(rfc6962.log, der))
    rfc6962.log.publish()
    found = rfc6962.round()
    assert [(log.end, log.error) for log in found.logs] == [(4, None)]
    assert [s["names"] for s in found.sightings] == [[]] and found.alerts_opened == 1


def test_a_log_that_fails_before_it_was_ever_read_is_noted(rfc6962: Setup) -> None:
    rfc6962.log.faults.add("garbage")
    found = rfc6962.round()
    assert found.logs[0].error
    assert any("has not been read yet" in note for note in found.notes)


def test_a_round_that_another_replica_overtook_keeps_nothing_of_the_log(rfc6962: Setup) -> None:
    rfc6962.round()
    rfc6962.log.add([HOST])
    rfc6962.log.publish()
    other = rfc6962.watcher()
    calls = 0

    def clock() -> datetime:
        """The first watcher's clock; its second reading (as the round records the log) is
        when the other replica's round runs and records the same entries."""
        nonlocal calls
        calls += 1
        if calls == 2:
            other.run_once()
        return utc_now()

    found = rfc6962.watcher(clock=clock).run_once()
    assert other.positions and found.logs[0].error and "another replica" in found.logs[0].error
    assert len(rfc6962.sightings()) == 1 and len(rfc6962.alerts(AlertKind.CT_UNPINNED_KEY)) == 1


def _hold_lease(setup: Setup, holder: str, minutes: int = 10) -> None:
    with setup.server.services.sessions.begin() as session:
        assert take_lease(
            session, "ct-watch", holder, now=utc_now(), duration=timedelta(minutes=minutes)
        )


def test_the_lease_is_renewed_during_a_round_and_released_when_asked(rfc6962: Setup) -> None:
    _hold_lease(rfc6962, "replica-2")
    assert rfc6962.watcher().run_leased("replica-1", timedelta(minutes=1)) is None
    with rfc6962.server.services.sessions.begin() as session:
        session.get_one(Lease, "ct-watch").expires_at = utc_now()  # replica-2 stopped
    start = utc_now()
    ticks = iter(range(1000))

    def clock() -> datetime:  # a minute passes at every reading: the lease is renewed in-round
        return start + timedelta(minutes=next(ticks))

    watcher = rfc6962.watcher(clock=clock)
    found = watcher.run_leased("replica-1", timedelta(minutes=3))
    assert found is not None and [log.error for log in found.logs] == [None]
    with rfc6962.server.session() as session:
        lease = session.get_one(Lease, "ct-watch")
        assert lease.holder == "replica-1" and lease.expires_at > start + timedelta(minutes=4)
    assert watcher.run_leased("replica-1", timedelta(minutes=3), release=True) is not None
    with rfc6962.server.session() as session:
        assert session.get_one(Lease, "ct-watch").expires_at <= clock()


def test_ct_watch_once_takes_the_lease_and_says_who_has_it(
    rfc6962: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(rfc6962.server.data.data.path)
    watch = ["ct", "watch", "--once", "--data", data, *(f"--log-list={s}" for s in rfc6962.sources)]
    assert main(watch) == 0
    _hold_lease(rfc6962, "replica-1")  # the CLI gave it back: the server's replica takes it
    assert main(watch) == 3
    err = capsys.readouterr().err.strip()
    assert "lease ct-watch" in err and "\n" not in err and "Traceback" not in err


def test_expired_sightings_and_unlisted_logs_are_pruned(
    rfc6962: Setup, test_logs: Callable[..., TestLog], tmp_path: Path
) -> None:
    rfc6962.round()
    rfc6962.log.add([HOST], rfc6962.key)  # pinned: no alert
    rfc6962.log.add([HOST])  # unpinned: its alert stays open
    rfc6962.log.publish()
    assert rfc6962.round().alerts_opened == 1
    listed = test_logs()
    (tmp_path / "later").mkdir()
    sources = write_list(tmp_path / "later", listed.log_list(tiled=False))
    later = utc_now() + timedelta(days=90 + 31)  # the test certificates expired 31 days ago
    watcher = CtWatcher(
        rfc6962.server.services.sessions,
        rfc6962.server.services.alerts,
        sources,
        clock=lambda: later,
    )
    found = watcher.run_once()
    assert "pruned 1 expired sighting(s), 1 unlisted log(s)" in found.notes
    assert [s.pinned for s in rfc6962.sightings()] == [False]
    with rfc6962.server.session() as session:
        assert session.scalars(select(CtLogState.description)).all() == [
            listed.log_entry(tiled=False)["description"]
        ]
        assert session.scalar(select(CtSighting.pinned)) is False


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that sends its headers, then one body byte every 0.2 s for
    up to 10 s: never idle for a whole read timeout, never done."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
            for _ in range(50):
                if stop.wait(0.2):
                    break
                try:
                    connection.sendall(b"[")
                except OSError:
                    break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/ct/v1/get-sth"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_a_trickling_log_hits_the_whole_request_deadline(trickling_server: str) -> None:
    started = time.monotonic()
    with Fetcher(timeout=1.0, deadline=1.0) as fetcher, pytest.raises(LogFetchError) as error:
        fetcher.get(trickling_server, limit=1000)
    assert "no full answer in 1 s" in str(error.value)
    assert time.monotonic() - started < 3
