"""The monitor against local TLS hosts that rotate their certificates mid-test (injected clock)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import trustme
from sqlalchemy import select

from pinwarden._pins import spki_pin
from pinwarden.server._channels import add_pin, update_rule
from pinwarden.server._models import ViolationReport
from pinwarden.server.alerts import AlertBook, OutboxMessage, list_alerts
from pinwarden.server.monitor import (
    Monitor,
    MonitoredHost,
    MonitorPolicy,
    MonitorRound,
    ProbeSettings,
    ScanTarget,
    scan,
)
from tests.operations.operations_harness import START, OperationsServer, RotatingHost
from tests.support.clock import FakeClock
from tests.support.pki import backup_pin

HOST = "api.example.test"
CHANNEL = "app"


@pytest.fixture
def setup(
    operations_server: Callable[..., OperationsServer],
    rotating_hosts: Callable[[str], RotatingHost],
    clock: FakeClock,
    trust_ca: tuple[trustme.CA, str],
) -> tuple[OperationsServer, RotatingHost, Monitor]:
    server = operations_server()
    host = rotating_hosts(HOST)
    monitor = Monitor(
        server.services.sessions,
        AlertBook(["hooks"], clock=clock),
        cafile=trust_ca[1],
        policy=MonitorPolicy(timeout=5.0),
        clock=clock,
    )
    return server, host, monitor


def _channel(server: OperationsServer, host: RotatingHost, pins: list[str]) -> None:
    server.add_channel(CHANNEL, {HOST: pins}, probes={HOST: ("127.0.0.1", host.port)})


def _round(monitor: Monitor) -> MonitorRound:
    return asyncio.run(monitor.run_once())


def _kinds(server: OperationsServer, state: str = "open") -> list[str]:
    with server.session() as session:
        return sorted(alert.kind for alert in list_alerts(session, state=state))


def _add_pin(server: OperationsServer, pin: str, label: str = "new key") -> None:
    with server.session() as session:
        add_pin(session, CHANNEL, HOST, pin, "test", label=label)


def test_a_check_records_the_verified_chain_and_which_pin_matched(
    setup: tuple[OperationsServer, RotatingHost, Monitor], trust_ca: tuple[trustme.CA, str]
) -> None:
    server, host, monitor = setup
    ca_pin = spki_pin(trust_ca[0].cert_pem.bytes())
    _channel(server, host, [host.leaf_pin, ca_pin, backup_pin()])
    server.publish(CHANNEL)
    (report,) = _round(monitor).reports
    assert report.result.error is None
    leaf, root = report.result.chain
    assert (leaf.pin, root.pin) == (host.leaf_pin, ca_pin)
    assert leaf.issuer == root.subject and leaf.not_after > datetime.now(timezone.utc)
    assert [(m.pin, m.position) for m in report.matches] == [
        (host.leaf_pin, "leaf"),
        (ca_pin, "root"),
    ]
    assert len(report.backups) == 1 and report.conditions == ()
    assert _kinds(server, "all") == []
    with server.session() as session:
        row = session.scalars(select(MonitoredHost)).one()
        assert row.leaf_pin == host.leaf_pin and row.chain[0]["subject"] == leaf.subject


def test_a_host_under_another_ca_or_name_is_refused_not_recorded_as_matching(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
) -> None:
    """The negative twins: an untrusted CA, and a certificate for another name."""
    server, host, monitor = setup
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    host.serve(ca=trustme.CA())
    (report,) = _round(monitor).reports
    assert report.result.error is not None and "certificate refused" in report.result.error
    assert report.matches == ()
    host.ca, host.name = host.ca, "other.example.test"
    host.serve()
    (report,) = _round(monitor).reports
    assert report.result.error is not None and "refused" in report.result.error


def test_a_rotation_opens_each_alert_once_and_publishing_the_new_key_resolves_them(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
) -> None:
    server, host, monitor = setup
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    _round(monitor)
    assert _kinds(server, "all") == []
    new_key = host.serve()  # the host rotates to a key nobody published
    for _ in range(3):
        _round(monitor)
    assert _kinds(server) == ["key-changed", "no-pin-match"]
    _add_pin(server, new_key)
    server.publish(CHANNEL)  # safe publishing: the new key is live, the backup outside
    _round(monitor)
    assert _kinds(server) == []
    assert _kinds(server, "resolved") == ["key-changed", "no-pin-match"]
    with server.session() as session:
        events = [
            (m.event_type, m.payload["data"]["kind"])
            for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]
    assert sorted(events) == sorted(
        [
            (event, kind)
            for kind in ("key-changed", "no-pin-match")
            for event in ("alert.opened", "alert.resolved")
        ]
    )


def test_a_key_change_covered_by_a_ca_pin_closes_when_acknowledged(
    setup: tuple[OperationsServer, RotatingHost, Monitor], trust_ca: tuple[trustme.CA, str]
) -> None:
    server, host, monitor = setup
    _channel(server, host, [spki_pin(trust_ca[0].cert_pem.bytes()), backup_pin()])
    server.publish(CHANNEL)
    _round(monitor)
    host.serve()
    _round(monitor)
    _round(monitor)
    assert _kinds(server) == ["key-changed"]  # still matches the CA pin: no mismatch
    with server.session() as session:
        (alert,) = list_alerts(session)
        AlertBook(clock=FakeClock(START)).acknowledge(session, alert.id, "oncall")
    _round(monitor)
    assert _kinds(server) == []


def test_a_certificate_near_expiry_needs_a_successor_pin(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
    trust_ca: tuple[trustme.CA, str],
    clock: FakeClock,
) -> None:
    server, host, monitor = setup
    host.serve(not_after=clock.now + timedelta(days=10))
    _channel(server, host, [host.leaf_pin])
    server.publish(CHANNEL, force=True)  # one pin, no backup: refused unless forced
    _round(monitor)
    assert _kinds(server) == ["expiring-without-successor", "no-backup-pin"]
    _add_pin(server, spki_pin(trust_ca[0].cert_pem.bytes()), "CA root")
    server.publish(CHANNEL, force=True)
    _round(monitor)
    assert _kinds(server) == ["no-backup-pin"]  # the CA pin survives the leaf's renewal
    _add_pin(server, backup_pin(), "backup key")
    server.publish(CHANNEL)
    _round(monitor)
    assert _kinds(server) == []


def test_a_far_expiry_opens_nothing(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    """The twin of the test above: 60 days left is outside the 21-day warning."""
    server, host, monitor = setup
    host.serve(not_after=clock.now + timedelta(days=60))
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    _round(monitor)
    assert _kinds(server, "all") == []


def test_a_host_unreachable_three_checks_in_a_row_opens_one_alert(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
) -> None:
    server, host, monitor = setup
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    _round(monitor)
    host.stop()
    _round(monitor)
    _round(monitor)
    assert _kinds(server) == []
    for _ in range(3):
        _round(monitor)
    assert _kinds(server, "all") == ["host-unreachable"]
    with server.session() as session:
        (alert,) = list_alerts(session)
        assert alert.detail["failures"] == 5 and "refused" in alert.detail["error"]


def test_a_disabled_rule_is_not_checked_and_its_alerts_resolve(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
) -> None:
    server, host, monitor = setup
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    _round(monitor)
    host.serve()
    _round(monitor)
    assert _kinds(server) == ["key-changed", "no-pin-match"]
    with server.session() as session:
        update_rule(session, CHANNEL, HOST, "test", {"mode": "disabled"})
    assert _round(monitor).reports == []
    assert _kinds(server) == []


def test_a_surge_of_violation_reports_opens_once_and_resolves_when_it_passes(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    server, _, monitor = setup
    monitor.policy = MonitorPolicy(surge_reports=5, surge_window=timedelta(hours=1))
    with server.session() as session:
        for n in range(7):
            session.add(
                ViolationReport(
                    received_at=clock.now - timedelta(minutes=n),
                    client="127.0.0.1",
                    hostname=HOST,
                    payload={},
                )
            )
        session.add(
            ViolationReport(received_at=clock.now, client="x", hostname="b.test", payload={})
        )
    _round(monitor)
    _round(monitor)
    with server.session() as session:
        (alert,) = list_alerts(session, state="all")
    assert (alert.kind, alert.subject) == ("report-surge", HOST)
    clock.advance(hours=2)
    _round(monitor)
    assert _kinds(server, "resolved") == ["report-surge"]


def test_connect_to_and_a_ca_bundle_per_rule_reach_a_private_host(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
    rotating_hosts: Callable[[str], RotatingHost],
) -> None:
    server, _, monitor = setup
    private_ca = trustme.CA()
    private = rotating_hosts("api.private.test")
    private.ca = private_ca
    pin = private.serve()
    server.add_channel(CHANNEL, {"api.private.test": [pin, backup_pin()]})
    server.publish(CHANNEL, force=True)
    (report,) = _round(monitor).reports
    assert report.result.error is not None  # not in DNS, and not under the server's CA
    with server.session() as session:
        session.add(
            ProbeSettings(
                channel=CHANNEL,
                pattern="api.private.test",
                connect_to="127.0.0.1",
                ca_bundle_pem=private_ca.cert_pem.bytes().decode(),
            )
        )
        rule_port = private.port
        update_rule(session, CHANNEL, "api.private.test", "test", {"probe_port": rule_port})
    (report,) = _round(monitor).reports
    assert report.result.error is None
    assert report.result.chain[0].pin == pin and report.matches[0].position == "leaf"


# ---- the scanner's own hostile inputs ---------------------------------------------------------


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP and never speaks (a trickling or hung host)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        try:
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        except OSError:
            pass

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(timeout=5)


def test_a_hung_host_a_plain_http_port_and_a_bad_ca_bundle_are_one_line_errors(
    silent_listener: int, plain_http_port: int
) -> None:
    targets = [
        ScanTarget(HOST, "127.0.0.1", silent_listener),
        ScanTarget(HOST, "127.0.0.1", plain_http_port),
        ScanTarget(HOST, "127.0.0.1", 1, ca_bundle_pem="-----BEGIN CERTIFICATE-----\nAAAA\n"),
        ScanTarget(HOST, "127.0.0.1", 1, ca_bundle_pem="\x00\ud800"),
    ]
    results = asyncio.run(scan(targets, timeout=0.5))
    errors = [result.error for result in results]
    assert errors[0] == "no TLS handshake within 0.5s"
    assert all(error and "\n" not in error for error in errors), errors
    assert [result.chain for result in results] == [()] * 4


@pytest.mark.parametrize(
    "options", [{"concurrency": 0}, {"concurrency": 10**6}, {"timeout": 0}, {"timeout": -1}]
)
def test_scan_options_out_of_range_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        asyncio.run(scan([], **options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"expiry_warning": timedelta(0)},
        {"unreachable_after": 0},
        {"unreachable_after": 10**9},
        {"surge_reports": 0},
        {"surge_window": timedelta(seconds=-1)},
    ],
)
def test_monitor_policy_out_of_range_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MonitorPolicy(**options)  # type: ignore[arg-type]


def test_the_schedule_runs_on_one_replica_and_checks_each_channel_once_per_interval(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
    trust_ca: tuple[trustme.CA, str],
    clock: FakeClock,
) -> None:
    server, host, first = setup
    _channel(server, host, [host.leaf_pin, backup_pin()])
    server.publish(CHANNEL)
    second = Monitor(server.services.sessions, AlertBook(), cafile=trust_ca[1], clock=clock)
    rounds: list[tuple[str, str | None]] = []
    for name, monitor in (("a", first), ("b", second)):
        real_run_once = monitor.run_once

        async def counted(
            channel: str | None = None, name: str = name, real: Any = real_run_once
        ) -> MonitorRound:
            rounds.append((name, channel))
            return await real(channel)  # type: ignore[no-any-return]

        monitor.run_once = counted  # type: ignore[method-assign]

    async def run_a_while() -> None:
        tick = timedelta(seconds=0.02)
        tasks = [
            asyncio.create_task(m.run_forever(name, every=timedelta(hours=1), tick=tick))
            for name, m in (("a", first), ("b", second))
        ]
        for _ in range(500):  # until a round ran (at most 10 s), then a few more ticks
            await asyncio.sleep(0.02)
            if first.last_round or second.last_round:
                break
        await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run_a_while())
    # One replica, one round: the next is due in an hour of the (unmoving) clock.
    assert len(rounds) == 1 and rounds[0][1] == CHANNEL


def _target_view() -> dict[str, object]:
    return {
        "channel": CHANNEL,
        "pattern": HOST,
        "mode": "enforce",
        "published": [{"pin": "sha256/x", "label": "leaf"}],
        "server_name": HOST,
        "address": "127.0.0.1",
        "port": 443,
        "ca_bundle_pem": None,
    }


def test_a_target_survives_its_json_round_trip() -> None:
    from pinwarden.server.monitor import PublishedPin, RuleTarget

    target = RuleTarget.from_view(_target_view())
    assert RuleTarget.from_view(target.view()) == target
    assert RuleTarget.from_view({**_target_view(), "published": None}).published is None
    unlabelled = {**_target_view(), "published": [{"pin": "sha256/x", "label": ""}]}
    assert RuleTarget.from_view(unlabelled).published == (PublishedPin("sha256/x", ""),)


@pytest.mark.parametrize(
    "change",
    [
        {"port": "443"},
        {"port": True},
        {"port": 0},
        {"port": 10**30},
        {"channel": None},
        {"channel": 7},
        {"channel": "a\x00b"},
        {"server_name": "\ud800"},
        {"address": "x" * 100_000},
        {"published": {"pin": "x"}},
        {"published": [{"pin": "x"}] * 101},
        {"published": [["nested", ["deeper"]]]},
        {"published": [{"pin": None}]},
        {"ca_bundle_pem": "x" * (2 << 20)},
        {"ca_bundle_pem": 5},
    ],
)
def test_a_hostile_target_from_the_network_is_one_line_error(change: dict[str, object]) -> None:
    from pinwarden.server.monitor import RuleTarget

    with pytest.raises(ValueError) as raised:
        RuleTarget.from_view({**_target_view(), **change})
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 200


@pytest.mark.parametrize("data", [None, [], "text", 5, [{}]])
def test_a_target_that_is_not_an_object_is_refused(data: object) -> None:
    from pinwarden.server.monitor import RuleTarget

    with pytest.raises(ValueError, match="JSON object"):
        RuleTarget.from_view(data)


def test_each_channel_is_checked_on_its_own_schedule(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    server, host, monitor = setup
    for channel in ("hourly", "often"):
        server.add_channel(
            channel, {HOST: [host.leaf_pin, backup_pin()]}, probes={HOST: ("127.0.0.1", host.port)}
        )
    rounds: list[str | None] = []
    real_run_once = monitor.run_once

    async def counted(channel: str | None = None) -> MonitorRound:
        checked = await real_run_once(channel)
        rounds.append(channel)  # once done: the next due time is set from the clock after it
        return checked

    monitor.run_once = counted  # type: ignore[method-assign]

    async def run_a_while() -> None:
        task = asyncio.create_task(
            monitor.run_forever(
                "a",
                every=timedelta(hours=1),
                per_channel={"often": timedelta(minutes=10)},
                tick=timedelta(seconds=0.02),
            )
        )
        for _ in range(500):
            await asyncio.sleep(0.02)
            if len(rounds) >= 2:
                break
        clock.advance(minutes=15)  # "often" is due again, "hourly" is not
        for _ in range(500):
            await asyncio.sleep(0.02)
            if len(rounds) >= 3:
                break
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_a_while())
    assert sorted(rounds) == ["hourly", "often", "often"]
