"""The admin API's defects of issue 13 besides hostile text and numbers: refused requests leave a
trace and are rate-limited, tokens can expire, a dry run changes nothing, only a lost connection
is "database down", and an old version's signed bytes can be fetched.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import DataError, OperationalError

from pinwarden.document import load_keyring, verify_pinset
from pinwarden.server import _admin_api, _app
from pinwarden.server._database import is_connection_failure, make_engine
from pinwarden.server._models import Token, utc_now
from pinwarden.server._ratelimit import FailureBudget
from tests.server.server_harness import LiveServer, TLSHost, exposed_samples
from tests.support.pki import backup_pin

CHANNEL = "com.example.app/prod"


def _refused(server: LiveServer) -> dict[str, float]:
    samples = exposed_samples(httpx.get(f"{server.url}/metrics", timeout=10).text)
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "pinwarden_admin_refused_total"
    }


def _new_token(server: LiveServer, scopes: list[str], **extra: object) -> dict[str, object]:
    with server.client() as client:
        response = client.post("/v1/admin/tokens", json={"name": "t", "scopes": scopes, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"  # auth does not depend on the backend


# ---- refused requests: counted, logged, rate-limited ------------------------------------------


def test_every_refusal_is_counted_and_logged_without_the_token(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    reader = str(_new_token(live_server, ["read"])["token"])
    wrong = reader[:-4] + "AAAA"
    caplog.set_level(logging.WARNING, logger="pinwarden.server")
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        assert client.get("/v1/admin/channels").status_code == 401
        bad = {"authorization": f"Bearer {wrong}"}
        assert client.get("/v1/admin/channels", headers=bad).status_code == 401
        good = {"authorization": f"Bearer {reader}"}
        assert client.get("/v1/admin/tokens", headers=good).status_code == 403
        assert client.get("/v1/admin/channels", headers=good).status_code == 200  # the twin
    assert _refused(live_server) == {"missing": 1, "invalid": 1, "scope": 1}
    refusals = [r.getMessage() for r in caplog.records if "refused admin request" in r.message]
    assert len(refusals) == 3
    assert all(wrong not in line and reader not in line for line in refusals)
    assert "GET '/v1/admin/tokens'" in refusals[2] and "scope" in refusals[2]


def test_repeated_bad_tokens_from_one_address_are_429(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        # No token at all is no guess: it never spends the budget.
        for _ in range(250):
            assert client.get("/v1/admin/channels").status_code == 401
        bad = {"authorization": "Bearer pwt_0123456789abcdef_" + "A" * 43}
        for _ in range(200):  # the budget: 200 bad tokens at once
            assert client.get("/v1/admin/channels", headers=bad).status_code == 401
        limited = client.get("/v1/admin/channels", headers=bad)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # The address is limited, whatever token it shows: no lookup answers a guesser.
        admin = {"authorization": f"Bearer {live_server.admin_token}"}
        assert client.get("/v1/admin/channels", headers=admin).status_code == 429
    counted = _refused(live_server)
    assert counted["missing"] == 250 and counted["invalid"] == 200
    assert counted["rate_limited"] == 2


def test_the_failure_budget_refills_per_address() -> None:
    budget = FailureBudget(burst=2, per_minute=30)  # one failure back every 2 s
    budget.spend("a", now=0.0)
    assert not budget.exhausted("a", now=0.0)
    budget.spend("a", now=0.0)
    assert budget.exhausted("a", now=0.0) and not budget.exhausted("b", now=0.0)
    assert not budget.exhausted("a", now=2.0)  # refilled
    assert budget.retry_after() == 2


# ---- token expiry ----------------------------------------------------------------------------


def test_an_expired_token_is_refused_like_a_revoked_one(live_server: LiveServer) -> None:
    made = _new_token(live_server, ["read"], expires_in_seconds=3600)
    token, token_id = str(made["token"]), str(made["token_id"])
    assert made["expires_at"] is not None
    with live_server.client(token) as client:
        assert client.get("/v1/admin/channels").status_code == 200  # the twin: not yet
    with live_server.services.sessions.begin() as session:
        session.execute(
            update(Token)
            .where(Token.token_id == token_id)
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
    with live_server.client(token) as client:
        refused = client.get("/v1/admin/channels")
    assert refused.status_code == 401 and "expired" in refused.json()["error"]
    assert _refused(live_server)["expired"] == 1
    with live_server.client() as client:
        listed = {t["token_id"]: t for t in client.get("/v1/admin/tokens").json()}
    assert listed[token_id]["expires_at"] is not None
    assert listed[live_server.admin_token.split("_")[1]]["expires_at"] is None


@pytest.mark.parametrize("seconds", [0, -5, 11 * 366 * 24 * 3600, 2**63])
def test_an_expiry_out_of_range_is_a_422(live_server: LiveServer, seconds: int) -> None:
    with live_server.client() as client:
        response = client.post(
            "/v1/admin/tokens",
            json={"name": "t", "scopes": ["read"], "expires_in_seconds": seconds},
        )
    assert response.status_code == 422 and "expires_in_seconds" in response.text


def test_token_create_expires_in_and_token_list_shows_it(live_server: LiveServer) -> None:
    made = live_server.run_cli("token", "create", "ci", "--scope", "read", "--expires-in", "30d")
    assert made.returncode == 0, made.stderr
    assert "expires 20" in made.stdout.splitlines()[0]
    listed = live_server.run_cli("token", "list")
    assert listed.returncode == 0 and "expires 20" in listed.stdout
    forever = live_server.run_cli("token", "create", "ops", "--scope", "read")  # the twin
    assert forever.returncode == 0 and "expires" not in forever.stdout.splitlines()[0]
    for bad in ("30x", "d", "-1d", "0s", "9999999999999d"):
        refused = live_server.run_cli(
            "token", "create", "ci", "--scope", "read", "--expires-in", bad
        )
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert "--expires-in" in refused.stderr
    too_long = live_server.run_cli(
        "token", "create", "x", "--scope", "read", "--expires-in", "4000d"
    )
    assert too_long.returncode == 2 and "expires_in_seconds" in too_long.stderr


# ---- a dry run changes nothing ---------------------------------------------------------------


def _setup(server: LiveServer, host: TLSHost) -> None:
    with server.client() as client:
        assert client.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
        rule = {"pattern": host.name, "probe_host": "127.0.0.1", "probe_port": host.port}
        assert client.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).status_code == 201
        for pin in (host.leaf_pin, backup_pin()):
            added = client.post(
                f"/v1/admin/channels/{CHANNEL}/rules/{host.name}/pins", json={"pin": pin}
            )
            assert added.status_code == 201


def _records(server: LiveServer) -> tuple[int, int]:
    with server.client() as client:
        observations = client.get("/v1/admin/observations").json()
        audit = client.get("/v1/admin/audit", params={"limit": 1000}).json()
    return len(observations), len(audit)


def test_a_dry_run_records_nothing(live_server: LiveServer, tls_host: TLSHost) -> None:
    _setup(live_server, tls_host)
    before = _records(live_server)
    with live_server.client() as client:
        dry = client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={"dry_run": True})
    assert dry.status_code == 200 and dry.json()["safe"]
    assert dry.json()["checks"][0]["live_chain"]["source"] == "connection"
    assert _records(live_server) == before
    with live_server.client() as client:  # the twin: a publish records its look and itself
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
    observations, audit = _records(live_server)
    assert observations == before[0] + 1 and audit == before[1] + 2


# ---- only a lost connection is "database down" -----------------------------------------------


def _database_up(server: LiveServer) -> bool:
    return bool(httpx.get(f"{server.url}/healthz", timeout=10).json()["database"] == "ok")


def test_a_value_the_database_refuses_is_a_422_and_the_database_stays_up(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop behind the request models: a ``DataError`` from the driver."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise DataError("SELECT …", {}, ValueError("integer out of range"))

    monkeypatch.setattr(_admin_api, "list_audit", refuse)
    with live_server.client() as client:
        response = client.get("/v1/admin/audit")
    assert response.status_code == 422 and "refused a value" in response.json()["error"]
    assert _database_up(live_server)


def test_a_report_the_database_refuses_is_a_422(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise DataError("INSERT …", {}, ValueError("value too long"))

    monkeypatch.setattr(_app, "store_report", refuse)
    report = {"hostname": "api.example.test"}
    response = httpx.post(f"{live_server.url}/v1/reports", json=report, timeout=10)
    assert response.status_code == 422, response.text
    assert _database_up(live_server)


def test_a_lost_connection_is_503_and_database_down(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin: a connection failure is what "database down" means."""

    def lose(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT …", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(_admin_api, "list_audit", lose)
    with live_server.client() as client:
        response = client.get("/v1/admin/audit")
    assert response.status_code == 503
    assert not live_server.services.database_up


@pytest.mark.postgres
def test_postgresql_errors_are_told_apart(postgres_url: str) -> None:
    from sqlalchemy import text

    engine = make_engine(postgres_url)
    for value in ("a\x00b", 2**40):
        with pytest.raises(DataError) as refused, engine.connect() as connection:
            connection.execute(text("SELECT CAST(:v AS integer) IS NULL"), {"v": value})
        assert not is_connection_failure(refused.value)
    engine.dispose()
    closed = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(OperationalError) as lost, closed.connect():
        pass
    assert is_connection_failure(lost.value)


# ---- an old version's signed bytes -----------------------------------------------------------


def test_an_old_version_is_served_byte_for_byte(live_server: LiveServer, tls_host: TLSHost) -> None:
    _setup(live_server, tls_host)
    public = f"{live_server.url}/v1/channels/{CHANNEL}/pinset"
    with live_server.client() as client:
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
        first = httpx.get(public, timeout=10).content
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
        assert httpx.get(public, timeout=10).content != first
        old = client.get(f"/v1/admin/channels/{CHANNEL}/pinset/1")
        assert old.status_code == 200 and old.content == first
        assert old.headers["content-type"] == "application/jose+json"
        keyring = load_keyring(live_server.initialized.keyring_path.read_bytes())
        assert verify_pinset(old.content, keyring=keyring).version == 1
        for missing in ("3", "0", str(2**31), "x"):
            answer = client.get(f"/v1/admin/channels/{CHANNEL}/pinset/{missing}")
            assert answer.status_code in (404, 422), (missing, answer.text)
        assert client.get("/v1/admin/channels/nope/pinset/1").status_code == 404
    reader = str(_new_token(live_server, ["read"])["token"])
    with httpx.Client(base_url=live_server.url, timeout=10) as anonymous:
        assert anonymous.get(f"/v1/admin/channels/{CHANNEL}/pinset/1").status_code == 401
    with live_server.client(reader) as client:
        assert client.get(f"/v1/admin/channels/{CHANNEL}/pinset/1").content == first


# ---- export-static from a server URL ---------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_export_static_from_a_server_url_writes_what_the_database_export_writes(
    live_server: LiveServer, tls_host: TLSHost, tmp_path: Path
) -> None:
    from pinwarden.cli._admin import export_static_from_server
    from pinwarden.cli._admin_client import AdminClient
    from pinwarden.server._export import export_static

    _setup(live_server, tls_host)
    with live_server.client() as client:
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
        assert client.post("/v1/admin/channels", json={"name": "unpublished/x"}).status_code == 201
    reader = str(_new_token(live_server, ["read"])["token"])
    remote = export_static_from_server(AdminClient(live_server.url, reader), tmp_path / "remote")
    with live_server.services.sessions() as session:
        export_static(session, tmp_path / "local")
    assert len(remote) == 2  # the pin set and keyring 1 of the one published channel
    assert _files(tmp_path / "remote") == _files(tmp_path / "local")


class _HostileServer:
    base_url = "http://127.0.0.1:9"

    def __init__(self, name: object) -> None:
        self._name = name

    def call(self, method: str, path: str, **kwargs: object) -> object:
        return [{"name": self._name}]


@pytest.mark.parametrize("name", ["../../etc", "a/../../b", "/abs", "a\x00b", 7, ""])
def test_export_static_refuses_a_channel_name_that_is_no_channel(
    name: object, tmp_path: Path
) -> None:
    from pinwarden.cli._admin import export_static_from_server
    from pinwarden.cli._common import CommandError

    with pytest.raises(CommandError, match="named a channel"):
        export_static_from_server(_HostileServer(name), tmp_path)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def test_the_export_static_command_reads_a_server_url(
    live_server: LiveServer,
    tls_host: TLSHost,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pinwarden.cli import main

    monkeypatch.delenv("PINWARDEN_URL", raising=False)
    from pinwarden.server._export import export_static

    _setup(live_server, tls_host)
    with live_server.client() as client:
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
    reader = str(_new_token(live_server, ["read"])["token"])
    out = tmp_path / "remote"
    argv = ["export-static", str(out), "--server", live_server.url, "--token", reader]
    assert main(argv) == 0
    with live_server.services.sessions() as session:
        export_static(session, tmp_path / "local")
    assert _files(out) == _files(tmp_path / "local")
    # Its negative twin: neither a data directory nor a server is one line and exit 2.
    capsys.readouterr()
    assert main(["export-static", str(tmp_path / "none")]) == 2
    assert "give --data DIR" in capsys.readouterr().err


# ---- found by the stateful schemathesis run (test_schemathesis_stateful.py) --------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("", {"refresh_seconds": None}),
        ("", {"ttl_seconds": None}),
        ("", {"description": None}),
        ("/rules/api.example.com", {"probe_port": None}),
        ("/rules/api.example.com", {"mode": None}),
    ],
)
def test_a_null_for_a_field_that_always_has_a_value_is_a_422(
    live_server: LiveServer, path: str, body: dict[str, object]
) -> None:
    """Each was a TypeError in a range check (500), or a 409 for the description."""
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL}).raise_for_status()
        rule = {"pattern": "api.example.com", "mode": "disabled"}
        client.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).raise_for_status()
        response = client.patch(f"/v1/admin/channels/{CHANNEL}{path}", json=body)
        assert response.status_code == 422, response.text
        assert "cannot be null" in response.json()["error"]
        shown = client.get(f"/v1/admin/channels/{CHANNEL}").json()
    assert shown["refresh_seconds"] > 0 and shown["rules"][0]["mode"] == "disabled"
    assert _database_up(live_server)


def test_a_forced_publish_of_a_rule_that_cannot_be_signed_is_a_422(
    live_server: LiveServer,
) -> None:
    """An enforced rule with no pin: --force skips the safety checks, not the document's own
    rules; signing it raised FormatError (500)."""
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL}).raise_for_status()
        rule = {"pattern": "api.example.com", "mode": "enforce"}
        client.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).raise_for_status()
        response = client.post(
            f"/v1/admin/channels/{CHANNEL}/publish", json={"force": True, "reason": "test"}
        )
        assert response.status_code == 422, response.text
        assert "needs at least one pin" in response.json()["error"]
        assert client.get(f"/v1/admin/channels/{CHANNEL}/history").json() == []
