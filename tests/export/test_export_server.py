"""Chain roles in the pin server and ``pinwarden export`` against it: roles given, inferred
(``--from-key`` is a backup key; a key the server saw in the live chain has its position there),
carried by each published version, refused by name when missing; the migration's default for
the pins stored before roles; hostile answers from a server that is not pinwarden."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from alembic import command
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, text

from pinwarden._pins import spki_pin
from pinwarden.cli import main
from pinwarden.document import PinSet, PinSetRule
from pinwarden.server import make_engine, upgrade_database
from pinwarden.server._database import alembic_config, make_session_factory
from pinwarden.server._models import Pin
from tests.export.export_helpers import parse_ats_plist, parse_network_security_config
from tests.server.server_harness import LiveServer, TLSHost

CHANNEL = "com.example.app/prod"

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], live_server: LiveServer
) -> Cli:
    for name, value in live_server.cli_env().items():
        monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return status, captured.out, captured.err

    return run


def _backup_key(tmp_path: Path) -> tuple[Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "api.key.next"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, spki_pin(key.public_key())


def test_roles_are_given_inferred_published_and_exported(
    cli: Cli, tls_host: TLSHost, tmp_path: Path
) -> None:
    host = tls_host.name
    assert cli("channel", "create", CHANNEL)[0] == 0
    assert cli("rule", "add", CHANNEL, host, "--probe", tls_host.probe)[0] == 0
    # No role and no chain seen yet: unspecified, and shown as before roles existed.
    assert cli("pins", "add", CHANNEL, host, tls_host.leaf_pin) == (
        0, f"added {tls_host.leaf_pin}\n", ""
    )  # fmt: skip
    key_file, backup = _backup_key(tmp_path)
    assert cli("pins", "add", CHANNEL, host, "--from-key", str(key_file))[1] == (
        f"added {backup}  [backup]\n"
    )
    assert cli("publish", CHANNEL)[0] == 0  # connects to the host: the server saw the chain
    # The CA's key is in the chain the server saw, at the end: a root, without being told.
    added = cli("pins", "add", CHANNEL, host, tls_host.ca_pin)[1]
    assert added == f"added {tls_host.ca_pin}  [root]\n"
    assert cli("publish", CHANNEL)[0] == 0

    status, out, err = cli("export", "--format", "ios-plist", CHANNEL, "--ios-identities", "both")
    assert (status, out) == (1, "")
    assert (
        f"pin {tls_host.leaf_pin} has no chain role, which ATS needs: set it with `pinwarden "
        f"pins set-role {CHANNEL} {host} {tls_host.leaf_pin} --role ROLE`, then `pinwarden "
        f"publish {CHANNEL}`"
    ) in err

    assert cli("pins", "set-role", CHANNEL, host, tls_host.leaf_pin, "--role", "leaf")[1] == (
        f"set {tls_host.leaf_pin}  [leaf]\n"
    )
    assert f"{tls_host.leaf_pin}  [leaf]" in cli("channel", "show", CHANNEL)[1]
    # The export reads the published version, which the role reaches with the next publish.
    assert cli("export", "--format", "ios-plist", CHANNEL, "--ios-identities", "both")[0] == 1
    assert cli("publish", CHANNEL)[0] == 0
    status, out, err = cli("export", "--format", "ios-plist", CHANNEL, "--ios-identities", "both")
    assert status == 0, err
    assert "chain roles are the pin server's records, not part of the signed pin set" in err
    _, domains = parse_ats_plist(out)
    identities = domains[host]
    assert [i["SPKI-SHA256-BASE64"] for i in identities["NSPinnedLeafIdentities"]] == [
        tls_host.leaf_pin[7:],
        backup[7:],
    ]
    assert [i["SPKI-SHA256-BASE64"] for i in identities["NSPinnedCAIdentities"]] == [
        tls_host.ca_pin[7:]
    ]
    # An older version, by number: the first publish had the leaf and the backup key only.
    status, out, _ = cli("export", "--format", "android-nsc", CHANNEL, "--version", "1")
    (entry,) = parse_network_security_config(out, trustkit=False)
    assert status == 0 and entry.pins == frozenset({tls_host.leaf_pin, backup})
    status, _, err = cli("export", "--format", "json", CHANNEL, "--version", "99")
    assert status == 2 and "has no published version: v99" in err


_JSON = {"content-type": "application/json"}
_HOSTILE_ROLES: list[dict[str, object]] = [
    {"role": "boss"},
    {"role": 5},
    {"role": None, "label": []},
    {"role": "leaf\x00"},
    {"role": "\ud800"},
    {"role": "leaf" * 100},
    {"role": "leaf", "extra": 1},
    {"role": ["leaf"]},
]


def test_the_admin_api_refuses_a_role_it_does_not_know(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    with live_server.client() as client:
        assert client.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
        rules = f"/v1/admin/channels/{CHANNEL}/rules"
        assert client.post(rules, json={"pattern": tls_host.name}).status_code == 201
        pins = f"{rules}/{tls_host.name}/pins"
        assert client.post(pins, json={"pin": tls_host.ca_pin}).json()["role"] == "unspecified"
        for body in _HOSTILE_ROLES:
            # json.dumps escapes a lone surrogate as JSON allows; httpx would not encode it.
            content = json.dumps({"pin": tls_host.leaf_pin, **body})
            assert client.post(pins, content=content, headers=_JSON).status_code == 422, body
            changed = client.patch(
                pins, params={"pin": tls_host.ca_pin}, content=json.dumps(body), headers=_JSON
            )
            assert changed.status_code == 422, body
        assert client.patch(pins, params={"pin": tls_host.ca_pin}, json={}).status_code == 422
        unknown = {"pin": "sha256/" + "A" * 43 + "="}
        assert client.patch(pins, params=unknown, json={"role": "root"}).status_code == 404
        assert client.patch(pins, params={"pin": "x"}, json={"role": "root"}).status_code == 422
        assert client.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"][0]["pins"] == [
            {"pin": tls_host.ca_pin, "label": ""}
        ]


def test_pins_stored_before_roles_existed_are_unspecified(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(
            text(
                "INSERT INTO channels (id, name, description, refresh_seconds, ttl_seconds, "
                "created_at) VALUES (1, 'a/b', '', 60, 600, CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO rules (id, channel_id, pattern, mode, probe_port, created_at, "
                "updated_at) VALUES (1, 1, 'x.example', 'enforce', 443, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO pins (rule_id, pin, label, created_at) "
                "VALUES (1, 'sha256/x', 'old', CURRENT_TIMESTAMP)"
            )
        )
    upgrade_database(engine)
    with make_session_factory(engine)() as session:
        assert session.scalars(select(Pin.role)).all() == ["unspecified"]
    engine.dispose()


# ---- a server that is not pinwarden ---------------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    answers: dict[str, bytes] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body = next((value for key, value in self.answers.items() if path.endswith(key)), b"{}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[tuple[str, type[_Answers]]]:
    handler = type("Handler", (_Answers,), {"answers": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


_RECORD = {"version": 1, "rules": [{"pattern": "x.example", "pins": [{"pin": "p"}]}]}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _structurally_valid_envelope() -> dict[str, object]:
    """A pin set of CHANNEL v1 in a well-formed envelope (its signature is not checked without
    --keyring)."""
    issued = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rule = PinSetRule("x.example", ("sha256/" + "A" * 43 + "=",))
    payload = PinSet(CHANNEL, 1, issued, issued + timedelta(days=1), 60, None, (rule,), 1)
    protected = _b64(b'{"alg":"EdDSA","kid":"k"}')
    return {
        "payload": _b64(payload.to_payload()),
        "signatures": [{"protected": protected, "signature": _b64(b"x" * 64)}],
    }


_SIGNED_ELSEWHERE = _structurally_valid_envelope()


@pytest.mark.parametrize(
    ("history", "pinset", "status"),
    [
        ({"not": "a list"}, {}, 3),
        ([{"version": "1"}], {}, 3),
        ([{"version": True, "rules": []}], {}, 3),
        ([{"version": 1}], {"payload": 1}, 1),
        ([{"version": 1}], _SIGNED_ELSEWHERE, 3),
        ([{"version": 1, "rules": []}], _SIGNED_ELSEWHERE, 3),
        ([{"version": 1, "rules": [{"pattern": "x.example", "pins": [5]}]}], _SIGNED_ELSEWHERE, 3),
        ([_RECORD], {"payload": "e30", "signatures": [5]}, 1),
        ([_RECORD], [[[[]]]], 1),
        ([{"version": 1, "rules": [{"pattern": "\ud800"}]}], {}, 1),
    ],
)
def test_a_server_answering_other_json_is_a_one_line_error(
    fake_server: tuple[str, type[_Answers]],
    capsys: pytest.CaptureFixture[str],
    history: object,
    pinset: object,
    status: int,
) -> None:
    url, handler = fake_server
    handler.answers.update(
        {
            "/history": json.dumps(history).encode(),
            "/pinset/1": json.dumps(pinset).encode(),
        }
    )
    ran = main(["export", "--format", "json", CHANNEL, "--server", url, "--token", "pwt_x_y"])
    captured = capsys.readouterr()
    assert ran == status and captured.out == ""
    assert len(captured.err.splitlines()) == 1 and "Traceback" not in captured.err
