"""Input the database cannot hold is the sender's mistake: a 4xx naming the field, never a 5xx,
and never a false "database down" (issue 13, "Defects found").

Each test runs on SQLite and on PostgreSQL (``PINWARDEN_TEST_POSTGRES_URL``): SQLite's driver
fails on lone surrogates and integers of 2**63 or more, PostgreSQL on NUL characters and
integers past 32 bits, and the same request must get the same answer on both.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.server.server_harness import LiveServer, exposed_samples
from tests.support.pki import backup_pin

CHANNEL = "com.example.app/prod"
HOST = "api.example.test"
# Escapes as a client sends them: json.dumps keeps "\ud800" as six ASCII characters.
LONE_SURROGATE, NUL = "\ud800", "\x00"


def _raw_json(value: Any) -> bytes:
    return json.dumps(value).encode("ascii")


def _post(server: LiveServer, path: str, body: Any, token: str | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else _raw_json(body)
    with server.client(token) as client:
        return client.post(path, content=content, headers={"content-type": "application/json"})


def _with_rule(server: LiveServer) -> None:
    assert _post(server, "/v1/admin/channels", {"name": CHANNEL}).status_code == 201
    rule = {"pattern": HOST}
    assert _post(server, f"/v1/admin/channels/{CHANNEL}/rules", rule).status_code == 201


def _assert_database_still_up(server: LiveServer) -> None:
    health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert health["database"] == "ok"
    samples = exposed_samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
    assert samples[("pinwarden_database_up", ())] == 1


def _assert_refused_naming(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert field in response.text, response.text


# (route, body, the field the 422 names); the channel and its rule exist.
_ADMIN_BODIES = [
    ("/v1/admin/channels", {"name": "a/b", "description": "{}"}, "description"),
    (f"/v1/admin/channels/{CHANNEL}/rules/{HOST}/pins", {"pin": "{pin}", "label": "{}"}, "label"),
    ("/v1/admin/tokens", {"name": "{}", "scopes": ["read"]}, "name"),
    ("/v1/admin/observations", {"host": "{}", "pins": ["{pin}"]}, "host"),
    (f"/v1/admin/channels/{CHANNEL}/publish", {"reason": "{}"}, "reason"),
]


def _filled(body: dict[str, Any], bad: str, pin: str) -> dict[str, Any]:
    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(item) for item in value]
        if value == "{}":
            return f"x{bad}y"
        return pin if value == "{pin}" else value

    return {key: fill(value) for key, value in body.items()}


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize(("path", "body", "field"), _ADMIN_BODIES, ids=lambda v: str(v)[:30])
def test_unstorable_text_in_an_admin_body_is_a_422_naming_the_field(
    live_server: LiveServer, bad: str, path: str, body: dict[str, Any], field: str
) -> None:
    _with_rule(live_server)
    pin = backup_pin()
    _assert_refused_naming(_post(live_server, path, _filled(body, bad, pin)), field)
    _assert_database_still_up(live_server)
    # The twin: the same request with plain text is taken.
    accepted = _post(live_server, path, _filled(body, "-", pin))
    assert accepted.status_code in (200, 201, 409), accepted.text


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("PUT", "/v1/admin/monitor/probe-settings", "connect_to"),
        ("PUT", "/v1/admin/monitor/probe-settings", "ca_bundle_pem"),
        ("POST", "/v1/admin/monitor/run", "channel"),
        ("POST", "/v1/admin/suggestions/apply", "channel"),
    ],
)
def test_unstorable_text_in_an_operations_body_is_a_422_naming_the_field(
    live_server: LiveServer, bad: str, method: str, path: str, field: str
) -> None:
    """The operations routes (docs/operations.md) take the same field types; no twin here: the
    accepted requests would connect to the rule's host."""
    body = {"channel": CHANNEL, "pattern": HOST, field: f"x{bad}y"}
    if path.endswith(("/run", "/apply")):
        body = {field: f"x{bad}y"}
    with live_server.client() as client:
        response = client.request(
            method, path, content=_raw_json(body), headers={"content-type": "application/json"}
        )
    _assert_refused_naming(response, field)
    _assert_database_still_up(live_server)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/alerts/ack", {"id": 2**62}, "id"),
        (f"/v1/admin/channels/{CHANNEL}/rollback", {"to_version": 2**63}, "to_version"),
        (f"/v1/admin/channels/{CHANNEL}/rollback", {"to_version": 2**31}, "to_version"),
        ("/v1/admin/observations", {"host": HOST, "port": 2**63, "pins": []}, "port"),
        ("/v1/admin/observations", {"host": HOST, "port": 2**31, "pins": []}, "port"),
        ("/v1/admin/observations", {"host": HOST, "port": -1, "pins": []}, "port"),
        ("/v1/admin/observations", {"host": HOST, "port": 65536, "pins": []}, "port"),
        ("/v1/admin/channels", {"name": "a/b", "ttl_seconds": 2**70}, "ttl_seconds"),
        (
            f"/v1/admin/channels/{CHANNEL}/rules",
            {"pattern": "b.test", "probe_port": 2**40},
            "probe_port",
        ),
        ("/v1/admin/alerts/ack", {"id": 2**63}, "id"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_an_integer_past_its_column_is_a_422_naming_the_field(
    live_server: LiveServer, path: str, body: dict[str, Any], field: str
) -> None:
    _with_rule(live_server)
    _assert_refused_naming(_post(live_server, path, body), field)
    _assert_database_still_up(live_server)


def test_an_integer_of_5000_digits_is_a_4xx(live_server: LiveServer) -> None:
    """Past Python's 4300-digit limit for ``int(str)`` (CVE-2020-10735): FastAPI cannot parse
    the body at all (400)."""
    body = b'{"name": "a/b", "refresh_seconds": ' + b"9" * 5000 + b"}"
    response = _post(live_server, "/v1/admin/channels", body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("host", ["", "a..b", "-x.test", "x" * 300])
def test_an_observation_host_that_is_no_hostname_is_a_422(
    live_server: LiveServer, host: str
) -> None:
    """Found by tests/reliability/test_schemathesis.py: ``{"host": ""}`` was a 500."""
    body = {"host": host, "pins": [backup_pin()]}
    _assert_refused_naming(_post(live_server, "/v1/admin/observations", body), "host")


def test_an_observation_port_in_range_is_taken(live_server: LiveServer) -> None:
    """The twin of the port refusals: 1 and 65535 are ports."""
    for port in (1, 65535):
        body = {"host": HOST, "port": port, "pins": [backup_pin()]}
        assert _post(live_server, "/v1/admin/observations", body).status_code == 201


def test_a_nul_in_a_query_or_path_parameter_is_a_422_not_database_down(
    live_server: LiveServer,
) -> None:
    """``GET /v1/admin/audit?target=a%00b`` with a read token made PostgreSQL "unavailable"."""
    with live_server.client() as client:
        token = client.post("/v1/admin/tokens", json={"name": "r", "scopes": ["read"]}).json()
    with live_server.client(token["token"]) as client:
        _assert_refused_naming(client.get("/v1/admin/audit", params={"target": "a\x00b"}), "target")
        _assert_refused_naming(client.get("/v1/admin/channels/a%00b"), "channel")
        assert client.get("/v1/admin/audit", params={"target": "ab"}).status_code == 200  # twin
    _assert_database_still_up(live_server)


def _report(server: LiveServer, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/reports",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )


def test_a_deeply_nested_report_under_the_size_cap_is_a_4xx(live_server: LiveServer) -> None:
    depth = 16_000  # 32,000 bytes: under the 32 KiB cap, past the JSON parser's recursion limit
    response = _report(live_server, b"[" * depth + b"]" * depth)
    assert 400 <= response.status_code < 500, response.text
    nested = _report(live_server, _raw_json({"hostname": HOST, "known-pins": [[[["x"]]]]}))
    assert nested.status_code == 422
    assert _report(live_server, _raw_json({"hostname": HOST})).status_code == 202  # the twin


@pytest.mark.parametrize("bad", [LONE_SURROGATE, NUL], ids=["lone-surrogate", "nul"])
@pytest.mark.parametrize("member", ["hostname", "app-id", "known-pins"])
def test_unstorable_text_in_a_report_is_a_422_naming_the_member(
    live_server: LiveServer, bad: str, member: str
) -> None:
    value: Any = f"x{bad}" if member != "known-pins" else [f"sha256/{bad}"]
    report = {"hostname": HOST, member: value}
    _assert_refused_naming(_report(live_server, _raw_json(report)), member)
    _assert_database_still_up(live_server)


def test_the_cli_says_bad_input_not_server_failed(live_server: LiveServer) -> None:
    """Exit 2 (bad input), one line naming the field; it was 3 ("server failed") on PostgreSQL."""
    _with_rule(live_server)
    for args, field in [
        (("rollback", CHANNEL, "--to", str(2**31)), "to_version"),
        # Bytes that are no UTF-8 reach Python as lone surrogates (PEP 383).
        (("channel", "create", "a/b", "--description", b"x\xffy"), "description"),
    ]:
        result = live_server.run_cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert field in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    twin = live_server.run_cli("channel", "create", "a/b", "--description", "x y")
    assert twin.returncode == 0, twin.stderr
    _assert_database_still_up(live_server)
