"""``pinwarden monitor --once``, ``alerts list|ack``, ``suggest [--apply]`` and ``serve
--webhook`` against a real server on 127.0.0.1 and hosts that rotate mid-test."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import trustme

from pinwarden.cli import main
from tests.operations.operations_harness import WEBHOOK_SECRET, RotatingHost
from tests.server.server_harness import LiveServer, live_server_factory  # noqa: F401
from tests.support.pki import backup_pin

HOST = "api.example.test"
CHANNEL = "app"


@pytest.fixture
def database_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/pinwarden.db"  # the CLI does not depend on the backend


@pytest.fixture
def setup(
    live_server_factory: Callable[..., LiveServer],  # noqa: F811
    rotating_hosts: Callable[[str], RotatingHost],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[LiveServer, RotatingHost]:
    server = live_server_factory(operations=False)
    host = rotating_hosts(HOST)
    monkeypatch.setenv("PINWARDEN_URL", server.url)
    monkeypatch.setenv("PINWARDEN_TOKEN", server.admin_token)
    with server.client() as client:
        for method, path, body in [
            ("POST", "/channels", {"name": CHANNEL}),
            (
                "POST",
                f"/channels/{CHANNEL}/rules",
                {"pattern": HOST, "probe_host": "127.0.0.1", "probe_port": host.port},
            ),
            ("POST", f"/channels/{CHANNEL}/rules/{HOST}/pins", {"pin": host.leaf_pin}),
            ("POST", f"/channels/{CHANNEL}/rules/{HOST}/pins", {"pin": backup_pin()}),
            ("POST", f"/channels/{CHANNEL}/publish", {}),
        ]:
            assert client.request(method, f"/v1/admin{path}", json=body).status_code < 300
    return server, host


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_monitor_once_says_ok_then_needs_attention_after_a_rotation(
    setup: tuple[LiveServer, RotatingHost],
    trust_ca: tuple[trustme.CA, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, host = setup
    status, out, _ = _run(capsys, "monitor", "--once", "--hosts-ca-file", trust_ca[1])
    assert status == 0 and "0 of 1 hosts need attention" in out and "leaf" in out
    host.serve()
    status, out, _ = _run(capsys, "monitor", "--once", "--hosts-ca-file", trust_ca[1])
    assert status == 1 and "no-pin-match" in out and "1 of 1 hosts need attention" in out
    status, out, _ = _run(
        capsys, "monitor", "--once", "--hosts-ca-file", trust_ca[1], "--json", "--channel", CHANNEL
    )
    found = json.loads(out)
    assert status == 1 and found["hosts"][0]["conditions"][0]["kind"] == "no-pin-match"


def test_monitor_once_without_the_hosts_ca_says_the_host_is_refused(
    setup: tuple[LiveServer, RotatingHost], capsys: pytest.CaptureFixture[str]
) -> None:
    """The negative twin: the table says why, the exit status says attention."""
    status, out, err = _run(capsys, "monitor", "--once")
    assert status == 1 and "unreachable: certificate refused" in out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["monitor"], "give --once"),
        (["monitor", "--once", "--concurrency", "0"], "--concurrency"),
        (["monitor", "--once", "--timeout", "nan"], "--timeout"),
        (["monitor", "--once", "--channel", "nope"], "nope"),
        (["monitor", "--once", "--channel", "a\x00b"], "a"),
        (["alerts", "ack", "x"], "invalid int value"),
        (["alerts", "ack", "0"], "id"),
        (["alerts", "list", "--state", "closed"], "invalid choice"),
        (["alerts", "list", "--state", "\ud800"], "lone surrogate"),
        (["suggest", "nope"], "nope"),
        (["suggest", CHANNEL, "--apply"], "nothing to apply"),
    ],
)
def test_operations_commands_refuse_bad_input_in_one_line(
    setup: tuple[LiveServer, RotatingHost],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    status, _, err = _run(capsys, *argv)
    assert status == 2, err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_alerts_list_and_ack_and_suggest_apply_from_the_command_line(
    setup: tuple[LiveServer, RotatingHost],
    trust_ca: tuple[trustme.CA, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, host = setup
    with server.client() as client:
        client.post("/v1/admin/monitor/run", json={})
        new = host.serve()
        assert client.post("/v1/admin/monitor/run", json={}).json()["needs_attention"]
    status, out, _ = _run(capsys, "alerts", "list")
    assert status == 0 and "key-changed" in out and "no-pin-match" in out
    status, out, _ = _run(capsys, "alerts", "list", "--json", "--kind", "key-changed")
    (alert,) = json.loads(out)
    status, out, _ = _run(capsys, "alerts", "ack", str(alert["id"]))
    assert status == 0 and "resolved" in out
    status, out, _ = _run(capsys, "suggest", CHANNEL)
    assert status == 0 and f"add    {HOST} {new}" in out
    status, out, _ = _run(capsys, "suggest", CHANNEL, "--apply")
    assert status == 0 and f"published {CHANNEL} v2" in out
    status, out, _ = _run(capsys, "monitor", "--once", "--hosts-ca-file", trust_ca[1])
    assert status == 0


@pytest.mark.parametrize(
    "option, environment, message",
    [
        ("hooks=https://example.test/h", {}, "PINWARDEN_WEBHOOK_HOOKS_SECRET"),
        ("hooks", {}, "is not NAME=URL"),
        ("../x=https://example.test/h", {}, "is not NAME=URL"),
        ("hooks=ftp://example.test/h", {"PINWARDEN_WEBHOOK_HOOKS_SECRET": WEBHOOK_SECRET}, "http"),
        ("hooks=https://example.test/h", {"PINWARDEN_WEBHOOK_HOOKS_SECRET": "short!"}, "secret"),
    ],
)
def test_serve_webhook_options_are_checked_in_one_line(
    setup: tuple[LiveServer, RotatingHost],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    environment: dict[str, str],
    message: str,
) -> None:
    server, _ = setup
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    data = str(server.initialized.data.path)
    status, _, err = _run(capsys, "serve", "--data", data, "--no-signing", "--webhook", option)
    assert status == 2 and message in err and err.count("\n") == 1
    assert "short!" not in err


@pytest.mark.parametrize(
    "value, message",
    [
        ("app", "is not CHANNEL=MINUTES"),
        ("app=often", "is not CHANNEL=MINUTES"),
        ("app=1e400", "is not CHANNEL=MINUTES"),
        ("=5", "is not CHANNEL=MINUTES"),
        ("app=0", "monitor interval of 'app'"),
        ("app=99999999", "monitor interval of 'app'"),
    ],
)
def test_serve_monitor_every_is_checked_in_one_line(
    setup: tuple[LiveServer, RotatingHost],
    capsys: pytest.CaptureFixture[str],
    value: str,
    message: str,
) -> None:
    server, _ = setup
    data = str(server.initialized.data.path)
    status, _, err = _run(capsys, "serve", "--data", data, "--no-signing", "--monitor-every", value)
    assert status == 2 and message in err and err.count("\n") == 1, err
