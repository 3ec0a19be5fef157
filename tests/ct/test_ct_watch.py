"""The CT watch against test logs serving RFC 6962 and the static-ct-api on 127.0.0.1:
unpinned keys alert once, pinned never, wildcards match, restarts resume, lies alert."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pinwarden._pins import spki_pin
from pinwarden.server._channels import add_pin
from pinwarden.server.alerts import AlertKind, list_alerts
from pinwarden.server.ct import CtLogState, CtSighting, CtWatcher, WatchRound
from tests.ct.conftest import write_list
from tests.ct.ct_log import TestLog
from tests.operations.operations_harness import OperationsServer
from tests.support.pki import backup_pin

CHANNEL = "app"
HOST = "api.example.com"
APIS = [pytest.param(False, id="rfc6962"), pytest.param(True, id="static")]


class Setup:
    def __init__(self, server: OperationsServer, log: TestLog, sources: list[str]) -> None:
        self.server, self.log, self.sources = server, log, sources
        self.key = ec.generate_private_key(ec.SECP256R1())  # the key the rule pins

    def watcher(self, **options: Any) -> CtWatcher:
        return CtWatcher(
            self.server.services.sessions, self.server.services.alerts, self.sources, **options
        )

    def round(self, **options: Any) -> WatchRound:
        return self.watcher(**options).run_once()

    def alerts(self, kind: AlertKind, state: str = "open") -> list[Any]:
        with self.server.session() as session:
            return [a.view() for a in list_alerts(session, state=state, kind=kind.value)]

    def sightings(self) -> list[CtSighting]:
        with self.server.session() as session:
            return list(session.scalars(select(CtSighting).order_by(CtSighting.id)))


def _setup(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
    tiled: bool,
    rules: dict[str, int] | None = None,
    **log_options: Any,
) -> Setup:
    server = operations_server()
    log = test_logs(**log_options)
    setup = Setup(server, log, write_list(tmp_path, log.log_list(tiled=tiled)))
    pins = [spki_pin(setup.key), backup_pin()]
    server.add_channel(CHANNEL, {pattern: pins for pattern in (rules or {HOST: 0})})
    server.publish(CHANNEL, force=True)
    for index in range(3):
        log.add([f"before{index}.example.org"])
    log.publish()
    return setup


@pytest.fixture(params=APIS)
def setup(
    request: pytest.FixtureRequest,
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> Setup:
    return _setup(operations_server, test_logs, tmp_path, request.param)


def test_an_unpinned_key_alerts_exactly_once_and_a_pinned_one_never(setup: Setup) -> None:
    first = setup.round()  # a new log starts at its end
    assert [(log.start, log.end, log.error, log.misbehaved) for log in first.logs] == [
        (3, 3, None, None)
    ]
    setup.log.add([HOST], setup.key, final=True)  # pinned: precert and certificate
    setup.log.add([HOST, "www.example.com"], final=True)  # a new key: precert and certificate
    setup.log.add(["other.example.org"])
    setup.log.publish()
    second = setup.round()
    assert second.alerts_opened == 1
    assert sorted(s["pinned"] for s in second.sightings) == [False, True]
    assert [log.end for log in second.logs] == [8]
    alerts = setup.alerts(AlertKind.CT_UNPINNED_KEY)
    assert len(alerts) == 1 and HOST in alerts[0]["summary"]
    assert alerts[0]["detail"]["names"] == [HOST, "www.example.com"]

    setup.log.add([HOST], setup.key)  # another pinned certificate
    setup.log.publish()
    third = setup.round()
    assert third.alerts_opened == 0 and len(third.sightings) == 1
    assert len(setup.alerts(AlertKind.CT_UNPINNED_KEY)) == 1
    assert len(setup.sightings()) == 3


def test_a_log_seen_first_from_its_start_reports_what_it_already_holds(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, False)
    setup.log.add([HOST])
    setup.log.publish()
    found = setup.round(start_at_end=False)
    assert [(log.start, log.end) for log in found.logs] == [(0, 4)]
    assert found.alerts_opened == 1


def test_wildcard_redacted_and_deep_names_match_fail_safe(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(
        operations_server,
        test_logs,
        tmp_path,
        False,
        {HOST: 0, "*.svc.example.net": 0, "**.deep.example.io": 0},
    )
    setup.round()
    for names in (
        ["*.example.com"],  # covers api.example.com
        ["?.svc.example.net"],  # a redacted label
        ["a.b.c.deep.example.io"],
        ["deep.example.io"],  # ** covers the base itself
        ["example.com"],  # not the exact host: no
        ["x.y.svc.example.net"],  # two labels under *.: no
        ["api.example.com.evil.test"],  # the pinned name inside another: no
    ):
        setup.log.add(names)
    setup.log.publish()
    found = setup.round()
    matched = sorted((s["pattern"], s["names"][0]) for s in found.sightings)
    assert matched == [
        ("**.deep.example.io", "a.b.c.deep.example.io"),
        ("**.deep.example.io", "deep.example.io"),
        ("*.svc.example.net", "?.svc.example.net"),
        (HOST, "*.example.com"),
    ]
    assert found.alerts_opened == 4


def test_monitoring_resumes_where_it_stopped_after_a_restart(setup: Setup) -> None:
    setup.round()
    setup.log.add([HOST])
    setup.log.publish()
    assert setup.round().alerts_opened == 1
    setup.server.restart()  # a new process over the same database
    with setup.server.session() as session:
        assert session.scalar(select(CtLogState.tree_size)) == 4
    for index in range(5):
        setup.log.add([f"after{index}.example.org"])
    setup.log.add([HOST])
    setup.log.publish()
    setup.log.requests.clear()
    found = setup.round()
    assert [(log.start, log.end) for log in found.logs] == [(4, 10)]
    assert found.alerts_opened == 1
    assert not any("start=0&" in path or path.endswith("/000") for path in setup.log.requests)


def test_a_fork_is_an_alert_and_nothing_of_it_is_believed(setup: Setup) -> None:
    setup.round(start_at_end=False)
    setup.log.rewrite(1, ["forked.example.org"])  # history rewritten under the same key
    setup.log.add([HOST])
    setup.log.publish()
    found = setup.round()
    assert found.logs[0].misbehaved and "do not hash" in found.logs[0].misbehaved
    assert found.sightings == [] and found.alerts_opened == 0
    assert len(setup.alerts(AlertKind.CT_LOG_MISBEHAVING)) == 1
    with setup.server.session() as session:
        assert session.scalar(select(CtLogState.tree_size)) == 3  # not advanced
    setup.round()  # still forked: the same alert, refreshed
    assert len(setup.alerts(AlertKind.CT_LOG_MISBEHAVING, "all")) == 1


def test_a_bad_tree_head_signature_is_an_alert_until_the_log_signs_again(setup: Setup) -> None:
    setup.round()
    setup.log.add([HOST])
    setup.log.publish()
    setup.log.faults.add("bad-signature")
    found = setup.round()
    assert found.logs[0].misbehaved and "not signed by the log" in found.logs[0].misbehaved
    assert found.sightings == []
    assert len(setup.alerts(AlertKind.CT_LOG_MISBEHAVING)) == 1
    setup.log.faults.clear()
    found = setup.round()
    assert found.alerts_opened == 1
    assert setup.alerts(AlertKind.CT_LOG_MISBEHAVING) == []


def test_the_key_and_names_come_from_the_leaf_not_from_mismatched_extra_data(setup: Setup) -> None:
    setup.round()
    pinned_cert = setup.log.issuer.issue([HOST], setup.key)
    setup.log.add([HOST], claimed=pinned_cert)  # unpinned leaf, a pinned one in extra_data
    setup.log.add([HOST], precert=True, claimed=pinned_cert)
    setup.log.add([HOST], setup.key, claimed=setup.log.issuer.issue(["x.test"], setup.key))
    setup.log.publish()
    found = setup.round()
    assert sorted(s["pinned"] for s in found.sightings) == [False, False, True]
    assert found.alerts_opened == 2


def test_an_unparsable_entry_is_counted_and_the_log_still_verifies(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, False)
    setup.round()
    setup.log.add_raw(b"\x00" * 10 + b"\x00\x00\x0fapi.example.com" + b"\x00\x00")
    setup.log.add([HOST])
    setup.log.publish()
    watcher = setup.watcher()
    found = watcher.run_once()
    assert found.alerts_opened == 1 and watcher.entries["unparsable"] == 1


def test_short_batches_are_paged_through(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, False)
    setup.log.faults.add("short-batch")
    for index in range(20):
        setup.log.add([f"h{index}.example.org"])
    setup.log.add([HOST])
    setup.log.publish()
    found = setup.round(start_at_end=False, batch_size=100)
    assert found.logs[0].end == 24 and found.alerts_opened == 1
    assert sum("get-entries" in path for path in setup.log.requests) == 8  # 3 at a time


def test_gzip_data_tiles_are_read(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, True)
    setup.log.faults.add("gzip")
    setup.log.add([HOST])
    setup.log.publish()
    assert setup.round(start_at_end=False).alerts_opened == 1


def test_a_missing_partial_tile_is_read_from_the_full_tile_or_waited_for(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, True)
    setup.log.faults.add("missing-partial")
    setup.log.add([HOST])
    setup.log.publish()  # 4 entries: only a partial tile has them, and it is gone
    found = setup.round(start_at_end=False)
    assert found.logs[0].error and "404" in found.logs[0].error
    assert found.alerts_opened == 0 and found.logs[0].misbehaved is None
    for index in range(256):  # the log fills the tile; the checkpoint still says 4
        setup.log.add([f"fill{index}.example.org"])
    found = setup.round(start_at_end=False)
    assert (found.logs[0].end, found.alerts_opened) == (4, 1)


def test_an_alert_resolves_once_its_key_is_pinned(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
) -> None:
    setup = _setup(operations_server, test_logs, tmp_path, True)
    setup.round()
    key = ec.generate_private_key(ec.SECP256R1())
    setup.log.add([HOST], key)
    setup.log.publish()
    assert setup.round().alerts_opened == 1
    with setup.server.session() as session:
        add_pin(session, CHANNEL, HOST, spki_pin(key), "test", label="colleague's renewal")
    setup.server.publish(CHANNEL, force=True)
    setup.round()
    assert setup.alerts(AlertKind.CT_UNPINNED_KEY) == []
    assert len(setup.alerts(AlertKind.CT_UNPINNED_KEY, "resolved")) == 1


def test_a_log_over_https_is_read_with_the_ca_given_and_refused_without(
    operations_server: Callable[..., OperationsServer],
    test_logs: Callable[..., TestLog],
    tmp_path: Path,
    trust_ca: tuple[trustme.CA, str],
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trust_ca[0].issue_cert("127.0.0.1").configure_cert(context)
    setup = _setup(operations_server, test_logs, tmp_path, True, context=context)
    assert setup.log.url.startswith("https://")
    setup.log.add([HOST])
    setup.log.publish()
    refused = setup.round(start_at_end=False)
    assert refused.logs[0].error and "CERTIFICATE_VERIFY_FAILED" in refused.logs[0].error
    assert setup.round(start_at_end=False, cafile=trust_ca[1]).alerts_opened == 1


def test_garbage_answers_are_retried_errors_not_alerts(setup: Setup) -> None:
    setup.round()
    setup.log.faults.add("garbage")
    found = setup.round()
    assert found.logs[0].error and not found.logs[0].misbehaved
    assert setup.alerts(AlertKind.CT_LOG_MISBEHAVING) == []
    with setup.server.session() as session:
        state = session.scalar(select(CtLogState))
        assert state is not None and state.last_error and state.tree_size == 3
