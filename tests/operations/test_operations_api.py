"""The admin API of the operations rooms: alerts, the monitor, probe settings, suggestions;
hostile input gets a 4xx, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import trustme
from starlette.testclient import TestClient

from pinwarden.server.alerts import AlertKind, Condition
from tests.operations.operations_harness import OperationsServer, RotatingHost
from tests.support.pki import backup_pin

HOST = "api.example.test"
CHANNEL = "app"


@pytest.fixture
def server(
    operations_server: Callable[..., OperationsServer],
    rotating_hosts: Callable[[str], RotatingHost],
) -> tuple[OperationsServer, RotatingHost]:
    server = operations_server()
    host = rotating_hosts(HOST)
    server.add_channel(
        CHANNEL, {HOST: [host.leaf_pin, backup_pin()]}, probes={HOST: ("127.0.0.1", host.port)}
    )
    server.publish(CHANNEL)
    return server, host


def _open_alert(server: OperationsServer, kind: AlertKind = AlertKind.NO_BACKUP_PIN) -> int:
    condition = Condition(kind, f"{CHANNEL} {HOST} 127.0.0.1:443", "test alert", channel=CHANNEL)
    with server.session() as session:
        server.services.alerts.observe(session, condition.kind, condition.subject, condition)
        return int(
            session.execute(__import__("sqlalchemy").text("SELECT max(id) FROM alerts")).scalar()
        )


def test_alerts_are_listed_filtered_and_acknowledged(
    server: tuple[OperationsServer, RotatingHost],
) -> None:
    app, _ = server
    assert app.admin("GET", "/alerts").json() == []
    alert_id = _open_alert(app)
    _open_alert(app, AlertKind.KEY_CHANGED)
    assert len(app.admin("GET", "/alerts").json()) == 2
    listed = app.admin("GET", "/alerts", params={"kind": "no-backup-pin"}).json()
    assert [a["id"] for a in listed] == [alert_id]
    acked = app.admin("POST", "/alerts/ack", json={"id": alert_id})
    assert acked.status_code == 200 and acked.json()["acked_by"]
    assert app.admin("GET", "/alerts", params={"state": "resolved"}).json() == []
    audit = app.admin("GET", "/audit", params={"target": f"alert:{alert_id}"}).json()
    assert [entry["action"] for entry in audit] == ["alert.ack"]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "\x00"},
        {"state": "closed"},
        {"kind": "nope"},
        {"limit": "0"},
        {"limit": "9" * 100},
        {"limit": "x"},
    ],
)
def test_a_hostile_alert_query_is_a_4xx(
    server: tuple[OperationsServer, RotatingHost], params: dict[str, str]
) -> None:
    assert app_status(server[0], "GET", "/alerts", params=params) == 422


def app_status(app: OperationsServer, method: str, path: str, **kwargs: object) -> int:
    return int(app.admin(method, path, **kwargs).status_code)


@pytest.mark.parametrize(
    "body, status",
    [
        ({"id": 999}, 404),
        ({"id": 0}, 422),
        ({"id": -1}, 422),
        ({"id": 2**70}, 422),
        ({"id": "one"}, 422),
        ({"id": None}, 422),
        ({"id": [[[[[[[[[[1]]]]]]]]]]}, 422),
        ({"id": 1, "extra": True}, 422),
        ({}, 422),
    ],
)
def test_a_hostile_ack_is_a_4xx(
    server: tuple[OperationsServer, RotatingHost], body: dict[str, object], status: int
) -> None:
    assert app_status(server[0], "POST", "/alerts/ack", json=body) == status


def test_ack_needs_a_token_with_the_write_scope(
    server: tuple[OperationsServer, RotatingHost],
) -> None:
    app, _ = server
    alert_id = _open_alert(app)
    assert app_status(app, "POST", "/alerts/ack", json={"id": alert_id}, token=None) == 401
    reader = app.admin("POST", "/tokens", json={"name": "r", "scopes": ["read"]}).json()["token"]
    assert app_status(app, "GET", "/alerts", token=reader) == 200
    assert app_status(app, "POST", "/alerts/ack", json={"id": alert_id}, token=reader) == 403


def test_a_monitor_run_through_the_api_records_and_opens_alerts(
    server: tuple[OperationsServer, RotatingHost],
) -> None:
    app, host = server
    targets = app.admin("GET", "/monitor/targets", params={"channel": CHANNEL}).json()
    assert [t["port"] for t in targets["targets"]] == [host.port]
    first = app.admin("POST", "/monitor/run", json={"channel": CHANNEL}).json()
    assert first["needs_attention"] is False
    host.serve()
    second = app.admin("POST", "/monitor/run", json={}).json()
    assert second["needs_attention"] is True
    kinds = sorted(a["kind"] for a in app.admin("GET", "/alerts").json())
    assert kinds == ["key-changed", "no-pin-match"]
    (row,) = app.admin("GET", "/monitor/hosts").json()
    assert row["chain"][0]["pin"] == host.leaf_pin


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("GET", "/monitor/targets", {"params": {"channel": "nope"}}, 404),
        ("GET", "/monitor/targets", {"params": {"channel": "a\x00b"}}, {404, 422}),
        ("GET", "/monitor/targets", {"params": {"channel": "x" * 300}}, 422),
        ("GET", "/monitor/hosts?channel=%ED%A0%80%00", {}, {404, 422}),
        ("GET", "/monitor/targets?channel=%FF%FE", {}, 404),
        ("POST", "/monitor/run", {"json": {"channel": "nope"}}, 404),
        ("POST", "/monitor/run", {"json": {"channel": 5}}, 422),
        ("POST", "/monitor/run", {"content": b"{" * 10_000}, 422),
        ("GET", "/suggestions", {}, 422),
        ("GET", "/suggestions", {"params": {"channel": "nope"}}, 404),
        ("POST", "/suggestions/apply", {"json": {"channel": CHANNEL}}, 422),
        ("POST", "/suggestions/apply", {"json": {"channel": ["x"]}}, 422),
    ],
)
def test_hostile_monitor_and_suggestion_requests_are_4xx(
    server: tuple[OperationsServer, RotatingHost],
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int | set[int],
) -> None:
    expected = status if isinstance(status, set) else {status}
    assert app_status(server[0], method, path, **kwargs) in expected


def test_probe_settings_are_validated_and_audited(
    server: tuple[OperationsServer, RotatingHost], trust_ca: tuple[trustme.CA, str]
) -> None:
    app, _ = server
    pem = trust_ca[0].cert_pem.bytes().decode()
    body = {"channel": CHANNEL, "pattern": HOST, "connect_to": "127.0.0.1", "ca_bundle_pem": pem}
    writer = app.admin("POST", "/tokens", json={"name": "w", "scopes": ["write"]}).json()["token"]
    answer = app.admin("PUT", "/monitor/probe-settings", json=body, token=writer)
    assert answer.status_code == 403  # a write token cannot point the monitor anywhere
    assert app_status(app, "PUT", "/monitor/probe-settings", json=body) == 200
    targets = app.admin("GET", "/monitor/targets").json()["targets"]
    assert targets[0]["ca_bundle_pem"] == pem
    for change, status in [
        ({"ca_bundle_pem": "not a pem"}, 422),
        ({"ca_bundle_pem": "\ud800"}, 422),
        ({"ca_bundle_pem": "x" * 50_000}, 422),
        ({"ca_bundle_pem": "x" * 70_000}, 413),
        ({"connect_to": "bad host!"}, 422),
        ({"connect_to": "a\x00b"}, 422),
        ({"pattern": "other.example.test"}, 404),
        ({"channel": "nope"}, 404),
        ({"unknown": 1}, 422),
    ]:
        raw = json.dumps({**body, **change})  # ASCII: a lone surrogate travels escaped
        headers = {"content-type": "application/json"}
        answer = app.admin("PUT", "/monitor/probe-settings", content=raw, headers=headers)
        assert answer.status_code == status, (change, answer.text)


def test_a_suggestion_is_shown_then_applied_through_safe_publishing(
    server: tuple[OperationsServer, RotatingHost],
) -> None:
    app, host = server
    app.admin("POST", "/monitor/run", json={})
    new = host.serve()
    app.admin("POST", "/monitor/run", json={})
    shown = app.admin("GET", "/suggestions", params={"channel": CHANNEL}).json()
    assert ("add", new) in [(c["change"], c["pin"]) for c in shown["changes"]]
    applied = app.admin("POST", "/suggestions/apply", json={"channel": CHANNEL})
    assert applied.status_code == 200, applied.text
    assert applied.json()["publish"]["version"] == 2
    assert app.http.get(f"/v1/channels/{CHANNEL}/pinset").headers["x-pinwarden-version"] == "2"


def test_metrics_show_the_operations_counters(
    server: tuple[OperationsServer, RotatingHost],
) -> None:
    app, _ = server
    app.admin("POST", "/monitor/run", json={})
    text = app.http.get("/metrics").text
    for name in (
        "pinwarden_alerts_open",
        "pinwarden_freshness_resigns_total",
        "pinwarden_freshness_failures_total",
        'pinwarden_monitor_checks_total{result="reached"} 1.0',
        'pinwarden_webhook_deliveries_total{outcome="delivered"} 0.0',
    ):
        assert name in text, name


@pytest.mark.parametrize(
    "path, body",
    [
        ("/alerts/ack", '{"id": "\\ud800"}'),
        ("/monitor/run", '{"channel": 5, "\\udcff": 1}'),
        ("/suggestions/apply", '{"channel": ["\\ud800"]}'),
        ("/channels/app/rollback", '{"to_version": "\\ud800"}'),
    ],
)
def test_a_lone_surrogate_in_a_refused_body_is_a_422_not_a_500(
    server: tuple[OperationsServer, RotatingHost], path: str, body: str
) -> None:
    """FastAPI's own 422 echoed the input and could not encode a lone surrogate: a 500."""
    app, _ = server
    client = TestClient(app.app, base_url="http://127.0.0.1", raise_server_exceptions=False)
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {app.data.admin_token}",
    }
    answer = client.post(f"/v1/admin{path}", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert "ud800" not in answer.text or "\\\\ud800" in answer.text  # escaped if named at all
    assert all("input" not in problem for problem in answer.json()["detail"])
