"""The server and admin commands, end to end: real ``pinwarden`` processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pinwarden.cli import main
from pinwarden.document import load_keyring, verify_pinset, walk_keyrings
from pinwarden.document._keydir import OnlineKeyDirectory
from tests.server.server_harness import (
    PASSPHRASE,
    SERVER_PASSPHRASE,
    PinServer,
    SSEListener,
    TLSHost,
    start_serve_process,
    stop_process,
)
from tests.support.pki import backup_pin
from tests.support.tls_servers import free_port
from tests.support.waiting import wait_until

CHANNEL = "com.example.app/prod"


def _pinwarden(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinwarden", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _passphrase_file(
    directory: Path, secret: bytes = PASSPHRASE, name: str = "passphrase.txt"
) -> Path:
    """A 0600 file holding ``secret`` (the offline key directory's passphrase by default)."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return path


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``pinwarden`` in this process against a server: ``cli(server, *args)``."""

    def run(server: PinServer | None, *args: str) -> tuple[int, str, str]:
        if server is not None:
            monkeypatch.setenv("PINWARDEN_URL", server.url)
            monkeypatch.setenv("PINWARDEN_TOKEN", server.admin_token)
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture
def served_host(
    pin_server_factory: Callable[..., PinServer], tls_host: TLSHost
) -> Iterator[tuple[PinServer, TLSHost]]:
    yield pin_server_factory(ca_file=tls_host.ca_file), tls_host


def _add_rule(cli: Callable[..., tuple[int, str, str]], server: PinServer, host: TLSHost) -> None:
    assert cli(server, "channel", "create", CHANNEL, "--refresh", "300")[0] == 0
    status, out, _ = cli(server, "rule", "add", CHANNEL, host.name, "--probe", host.probe)
    assert status == 0 and host.name in out


def test_init_serve_publish_and_push_through_the_cli(
    tmp_path: Path, tls_host: TLSHost, cli: Callable[..., tuple[int, str, str]]
) -> None:
    """The vertical slice: init, serve, channel/rule/pins, safe publish, ETag/304, push."""
    data = tmp_path / "data"
    # The server's passphrase: start_serve_process opens the keys with it.
    passphrase = _passphrase_file(tmp_path, SERVER_PASSPHRASE, "server-passphrase.txt")
    init = _pinwarden("init", "--data", str(data), "--passphrase-file", str(passphrase), "--json")
    assert init.returncode == 0, init.stderr
    token = json.loads(init.stdout)["admin_token"]
    # No --keys-from: development root keys, beside the server's key directory, loudly.
    assert json.loads(init.stdout)["development_root_keys"] == str(data / "offline-root-keys")
    assert "DEVELOPMENT ONLY" in init.stderr and "move this directory off the server" in init.stderr
    assert OnlineKeyDirectory(data / "keys").root_key_files() == []
    assert token.startswith("pwt_") and token not in (data / "pinwarden.db").read_bytes().decode(
        "latin-1"
    )
    url, process = start_serve_process(
        data, ca_file=tls_host.ca_file, log_path=tmp_path / "serve.log"
    )
    server = PinServer(
        url, token, data, data / "keys" / "keyring.json", "", process, tmp_path / "serve.log"
    )
    try:
        _add_rule(cli, server, tls_host)
        backup = backup_pin()
        assert (
            cli(
                server,
                "pins",
                "add",
                CHANNEL,
                tls_host.name,
                tls_host.leaf_pin,
                "--label",
                "leaf key",
            )[0]
            == 0
        )
        assert (
            cli(server, "pins", "add", CHANNEL, tls_host.name, backup, "--label", "backup key")[0]
            == 0
        )
        status, out, _ = cli(server, "publish", CHANNEL, "--dry-run")
        assert status == 0 and f"dry run of {CHANNEL}: safe" in out and f"+ {backup}" in out
        # The verdict of each check without --json (issue 8): what it was judged against.
        assert (
            f"  check    {tls_host.name}: safe (live chain of {tls_host.name}:"
            f"{tls_host.port} seen by connection)"
        ) in out.splitlines()
        listener = SSEListener(f"{url}/v1/channels/{CHANNEL}/events")
        try:
            status, out, err = cli(server, "publish", CHANNEL)
            assert status == 0, err
            assert f"published {CHANNEL} v1" in out
            assert listener.next_event().data == '{"version": 1}'
        finally:
            listener.close()
        response = httpx.get(f"{url}/v1/channels/{CHANNEL}/pinset")
        keyring = load_keyring((data / "keys" / "keyring.json").read_bytes())
        pinset = verify_pinset(response.content, keyring=keyring)
        assert pinset.version == 1 and set(pinset.rules[0].pins) == {tls_host.leaf_pin, backup}
        assert pinset.refresh_after == 300
        assert response.headers["cache-control"] == "public, max-age=300, no-transform"
        cached = httpx.get(
            f"{url}/v1/channels/{CHANNEL}/pinset",
            headers={"if-none-match": response.headers["etag"]},
        )
        assert cached.status_code == 304
        status, out, _ = cli(server, "history", CHANNEL, "--json")
        assert status == 0 and [doc["version"] for doc in json.loads(out)] == [1]
    finally:
        stop_process(process)


def test_init_takes_only_the_online_keys_from_an_offline_directory(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    """The production flow: keys made offline, then ``init --keys-from``."""
    offline, data = tmp_path / "offline", tmp_path / "data"
    passphrase = str(_passphrase_file(tmp_path))
    assert cli(None, "keys", "init", "--dir", str(offline), "--passphrase-file", passphrase)[0] == 0
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not the passphrase")
    wrong.chmod(0o600)
    init = ["init", "--data", str(data), "--keys-from", str(offline), "--json"]
    status, _, err = cli(None, *init, "--passphrase-file", str(wrong))
    assert status == 2 and "passphrase" in err  # the online keys must open with it
    status, out, err = cli(None, *init, "--passphrase-file", passphrase)
    assert status == 0, err
    assert json.loads(out)["development_root_keys"] is None and "DEVELOPMENT" not in err
    keyring = load_keyring((data / "keys" / "keyring.json").read_bytes())
    assert {path.stem for path in (data / "keys" / "keys").iterdir()} == {
        key.kid for key in keyring.online_keys
    }
    assert not (data / "offline-root-keys").exists()


def test_an_unsafe_publish_exits_1_and_force_needs_a_reason(
    served_host: tuple[PinServer, TLSHost], cli: Callable[..., tuple[int, str, str]]
) -> None:
    server, host = served_host
    _add_rule(cli, server, host)
    cli(server, "pins", "add", CHANNEL, host.name, host.leaf_pin)
    status, out, _ = cli(server, "publish", CHANNEL, "--dry-run")
    assert status == 1 and "UNSAFE" in out and "at least 2" in out
    verdict = f"  check    {host.name}: UNSAFE (live chain of {host.name}:{host.port} seen by "
    assert any(line.startswith(verdict) for line in out.splitlines()), out
    status, _, err = cli(server, "publish", CHANNEL)
    assert status == 1 and "unsafe" in err
    status, _, err = cli(server, "publish", CHANNEL, "--force")
    assert status == 2 and "--reason" in err
    status, out, _ = cli(server, "publish", CHANNEL, "--force", "--reason", "INC-7 hotfix")
    assert status == 0 and "FORCED" in out
    status, out, _ = cli(server, "audit", "--target", f"channel:{CHANNEL}", "--limit", "1")
    assert status == 0 and "publish" in out and "INC-7 hotfix" in out


def test_rollback_through_the_cli(
    served_host: tuple[PinServer, TLSHost], cli: Callable[..., tuple[int, str, str]]
) -> None:
    server, host = served_host
    _add_rule(cli, server, host)
    first, second = backup_pin(), backup_pin()
    for pin in (host.leaf_pin, first):
        cli(server, "pins", "add", CHANNEL, host.name, pin)
    assert cli(server, "publish", CHANNEL)[0] == 0
    cli(server, "pins", "remove", CHANNEL, host.name, first)
    cli(server, "pins", "add", CHANNEL, host.name, second)
    assert cli(server, "publish", CHANNEL)[0] == 0
    status, out, _ = cli(server, "rollback", CHANNEL, "--to", "1", "--json")
    outcome = json.loads(out)
    assert status == 0 and outcome["version"] == 3 and outcome["republished_from"] == 1
    status, out, _ = cli(server, "history", CHANNEL)
    assert out.splitlines()[0].startswith("v3") and "rollback to v1" in out
    # FastAPI's validation error reads as the field and the reason, not raw JSON (issue 8).
    status, out, err = cli(server, "history", CHANNEL, "--limit", "0")
    assert (status, out) == (2, "")
    assert err == (
        "pinwarden history: error: HTTP 422: field limit: Input should be greater than or "
        "equal to 1\n"
    )
    status, out, _ = cli(server, "channel", "show", CHANNEL, "--json")
    assert [pin["pin"] for pin in json.loads(out)["rules"][0]["pins"]] == [host.leaf_pin, first]


def test_tokens_through_the_cli(
    pin_server: PinServer,
    cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    status, out, _ = cli(pin_server, "token", "create", "ci", "--scope", "read", "--json")
    created = json.loads(out)
    assert status == 0 and created["scopes"] == ["read"]
    status, out, _ = cli(pin_server, "token", "list")
    assert created["token_id"] in out and created["token"] not in out
    monkeypatch.setenv("PINWARDEN_TOKEN", created["token"])
    assert main(["channel", "list"]) == 0
    assert main(["channel", "create", "x"]) == 2  # 403: a read token cannot write
    assert cli(pin_server, "token", "revoke", created["token_id"], "--reason", "leaked")[0] == 0
    monkeypatch.setenv("PINWARDEN_TOKEN", created["token"])
    status = main(["channel", "list"])
    assert status == 2


def test_cli_connection_errors(
    cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PINWARDEN_URL", raising=False)
    monkeypatch.delenv("PINWARDEN_TOKEN", raising=False)
    status, _, err = cli(None, "channel", "list")
    assert status == 2 and "PINWARDEN_URL" in err
    status, _, err = cli(None, "channel", "list", "--server", "http://127.0.0.1:1")
    assert status == 2 and "PINWARDEN_TOKEN" in err
    port = free_port()
    status, _, err = cli(
        None, "channel", "list", "--server", f"http://127.0.0.1:{port}", "--token", "t"
    )
    assert status == 3 and "cannot reach" in err
    assert "Traceback" not in err


def test_export_static_writes_the_served_bytes(
    served_host: tuple[PinServer, TLSHost], cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    server, host = served_host
    _add_rule(cli, server, host)
    for pin in (host.leaf_pin, backup_pin()):
        cli(server, "pins", "add", CHANNEL, host.name, pin)
    assert cli(server, "publish", CHANNEL)[0] == 0
    out_dir = tmp_path / "static"
    status, _, _ = cli(None, "export-static", str(out_dir), "--data", str(server.data_dir))
    assert status == 0
    served = httpx.get(f"{server.url}/v1/channels/{CHANNEL}/pinset").content
    assert (out_dir / "v1" / "channels" / CHANNEL / "pinset").read_bytes() == served
    keyring = httpx.get(f"{server.url}/v1/channels/{CHANNEL}/keyring/1").content
    assert (out_dir / "v1" / "channels" / CHANNEL / "keyring" / "1").read_bytes() == keyring


def test_server_commands_refuse_bad_setups(
    tmp_path: Path, pin_server: PinServer, cli: Callable[..., tuple[int, str, str]]
) -> None:
    passphrase = _passphrase_file(tmp_path)
    status, _, err = cli(
        None, "serve", "--data", str(tmp_path / "none"), "--passphrase-file", str(passphrase)
    )
    assert status == 2 and "pinwarden init" in err
    status, _, err = cli(
        None, "init", "--data", str(pin_server.data_dir), "--passphrase-file", str(passphrase)
    )
    assert status == 2 and "already initialized" in err
    wrong = tmp_path / "wrong.txt"
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not the passphrase")
    os.close(fd)
    status, _, err = cli(
        None,
        "serve",
        "--data",
        str(pin_server.data_dir),
        "--passphrase-file",
        str(wrong),
        "--port",
        str(free_port()),
    )
    assert status == 2 and "cannot unlock the signing key" in err
    status, out, _ = cli(None, "recover-token", "--data", str(pin_server.data_dir), "--json")
    token = json.loads(out)["token"]
    with httpx.Client(
        base_url=pin_server.url, headers={"authorization": f"Bearer {token}"}
    ) as client:
        assert client.get("/v1/admin/tokens").status_code == 200


_BLOCK_SERVER_PACKAGES = """
import sys
for name in ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "granian", "psycopg"):
    sys.modules[name] = None  # as if not installed: importing raises ImportError
from pinwarden.cli import main
from pinwarden.document._keydir import OnlineKeyDirectory
loaded = [n for n in ("sqlalchemy", "fastapi", "uvicorn") if sys.modules.get(n) is not None]
assert not loaded, loaded
status = main(sys.argv[1:])
sys.exit(status)
"""


def test_the_client_install_runs_without_the_server_packages(tmp_path: Path, trust_ca) -> None:  # type: ignore[no-untyped-def]
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _BLOCK_SERVER_PACKAGES, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    pinned = run("pin", trust_ca[1])
    assert pinned.returncode == 0 and pinned.stdout.startswith("sha256/"), pinned.stderr
    serve = run("serve", "--data", str(tmp_path), "--no-signing")
    assert serve.returncode == 2 and "install pinwarden[server]" in serve.stderr
    assert "Traceback" not in serve.stderr
    listing = run("channel", "list", "--server", f"http://127.0.0.1:{free_port()}", "--token", "t")
    assert listing.returncode == 3  # the admin commands need no server packages


def test_quickstart_prints_a_client_snippet_that_works(tmp_path: Path) -> None:
    """What `make run` runs: init with a development passphrase, a demo channel, serve."""
    port = free_port()
    log = tmp_path / "quickstart.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pinwarden",
                "quickstart",
                "--data",
                str(tmp_path / "data"),
                "--port",
                str(port),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "pinwarden serve:" in log.read_text() or process.poll() is not None,
            60,
            "quickstart",
        )
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30, "the server")
        output = log.read_text()
        assert (tmp_path / "data" / "passphrase").stat().st_mode & 0o777 == 0o600
        assert "DEVELOPMENT ONLY" in output and "offline-root-keys" in output
        assert OnlineKeyDirectory(tmp_path / "data" / "keys").root_key_files() == []
        assert f"http://127.0.0.1:{port}/v1/channels/demo/pinset" in output
        token = re.search(r"pwt_[A-Za-z0-9_-]+", output)
        assert token is not None
        snippet = textwrap.dedent(
            output.split("verified against the keyring your app ships):")[1]
            .split("\n\n", 1)[1]
            .split("\nadmin CLI")[0]
        )
        ran = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode == 0, ran.stderr
        assert "fetched: pin set v1 in force" in ran.stdout
        assert "pin set in force: 1" in ran.stdout
    finally:
        stop_process(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_serve_over_https_under_each_server(
    server: str,
    pin_server_factory: Callable[..., PinServer],
    trust_ca,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    ca, ca_file = trust_ca
    trusted = ssl.create_default_context(cafile=ca_file)
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    pins = pin_server_factory(
        extra_args=["--server", server, "--tls-cert", str(cert), "--tls-key", str(key)],
        verify=trusted,
    )
    assert pins.url.startswith("https://")
    status, _, err = cli(pins, "channel", "create", CHANNEL, "--ca-file", ca_file)
    assert status == 0, err
    cli(
        pins,
        "rule",
        "add",
        CHANNEL,
        "legacy.example.test",
        "--mode",
        "disabled",
        "--ca-file",
        ca_file,
    )
    assert cli(pins, "channel", "list")[0] == 3  # without the CA, the server's certificate fails
    listener = SSEListener(f"{pins.url}/v1/channels/{CHANNEL}/events", verify=trusted)
    try:
        assert cli(pins, "publish", CHANNEL, "--ca-file", ca_file)[0] == 0
        assert listener.next_event().id == "1"
    finally:
        listener.close()
    first = httpx.get(f"{pins.url}/v1/channels/{CHANNEL}/pinset", verify=trusted)
    again = httpx.get(
        f"{pins.url}/v1/channels/{CHANNEL}/pinset",
        headers={"if-none-match": first.headers["etag"]},
        verify=trusted,
    )
    assert (first.status_code, again.status_code) == (200, 304)
    keyring = load_keyring(pins.keyring_path.read_bytes())
    assert verify_pinset(first.content, keyring=keyring).version == 1


def test_an_offline_rotation_is_exported_and_re_signed_through_the_cli(
    pin_server: PinServer, cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    cli(pin_server, "channel", "create", CHANNEL)
    cli(pin_server, "rule", "add", CHANNEL, "legacy.example.test", "--mode", "disabled")
    assert cli(pin_server, "publish", CHANNEL)[0] == 0
    offline = str(pin_server.offline_key_dir)
    passphrase = str(_passphrase_file(tmp_path))
    rotate = ["keys", "rotate-online", "--dir", offline, "--passphrase-file", passphrase]
    assert cli(None, *rotate)[0] == 0
    # The server keeps signing under v1 until the export reaches its key directory.
    status, out, _ = cli(pin_server, "resign", "--reason", "drill")
    assert status == 0 and out.splitlines()[0] == "keyring v1"
    server = str(_passphrase_file(tmp_path, SERVER_PASSPHRASE, "server-passphrase.txt"))
    export = ["keys", "export-online", "--dir", offline, "--to", str(pin_server.data_dir / "keys")]
    status, _, err = cli(
        None, *export, "--passphrase-file", passphrase, "--server-passphrase-file", passphrase
    )
    assert status == 2 and "must differ" in err  # the offline passphrase never reaches a server
    status, out, _ = cli(
        None, *export, "--passphrase-file", passphrase, "--server-passphrase-file", server
    )
    assert status == 0 and json.loads(out)["version"] == 2
    status, out, _ = cli(pin_server, "resign", "--reason", "drill")
    assert status == 0 and out.splitlines() == ["keyring v2", f"  re-signed {CHANNEL} as v3"]
    shipped = load_keyring((pin_server.offline_key_dir / "keyrings" / "1.json").read_bytes())
    channel = pin_server.channel_url(CHANNEL)
    raw = httpx.get(f"{channel}/pinset").content
    walked = walk_keyrings(shipped, lambda v: httpx.get(f"{channel}/keyring/{v}").content, 2)
    assert verify_pinset(raw, keyring=walked, min_version=2).keyring_version == 2


_BAD_DATABASE_URLS = [
    ("bogus://x", "--database-url: unsupported database"),
    ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot use the database: connection failed"),
    ("sqlite:////nonexistent/dir/pins.db", "cannot use the database: unable to open"),
]


@pytest.mark.parametrize("url, message", _BAD_DATABASE_URLS)
def test_init_and_serve_report_a_bad_database_in_one_line(
    url: str, message: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PW_PASSPHRASE": "correct horse battery"}
    init = _pinwarden(
        "init",
        "--data",
        str(tmp_path / "a"),
        "--database-url",
        url,
        "--passphrase-env",
        "PW_PASSPHRASE",
        env=env,
    )
    assert init.returncode == 2 and message in init.stderr, init.stderr
    assert "Traceback" not in init.stderr

    good = _pinwarden(
        "init", "--data", str(tmp_path / "b"), "--passphrase-env", "PW_PASSPHRASE", env=env
    )
    assert good.returncode == 0, good.stderr
    serve = _pinwarden(
        "serve",
        "--data",
        str(tmp_path / "b"),
        "--database-url",
        url,
        "--passphrase-env",
        "PW_PASSPHRASE",
        "--port",
        "1",
        env=env,
    )
    assert serve.returncode == 2 and message in serve.stderr, serve.stderr
    assert "Traceback" not in serve.stderr and "pinwarden serve: http" not in serve.stdout


def test_serve_reports_unreadable_tls_files_in_one_line(tmp_path: Path) -> None:
    env = {"PW_PASSPHRASE": "correct horse battery"}
    assert (
        _pinwarden(
            "init", "--data", str(tmp_path), "--passphrase-env", "PW_PASSPHRASE", env=env
        ).returncode
        == 0
    )
    serve = _pinwarden(
        "serve",
        "--data",
        str(tmp_path),
        "--passphrase-env",
        "PW_PASSPHRASE",
        "--tls-cert",
        str(tmp_path / "missing.pem"),
        "--tls-key",
        str(tmp_path / "missing.key"),
        env=env,
    )
    assert serve.returncode == 2, serve.stderr
    assert "--tls-cert/--tls-key cannot be loaded" in serve.stderr
    assert "Traceback" not in serve.stderr


def test_list_output_says_when_there_is_nothing_and_ends_no_line_in_spaces(
    served_host: tuple[PinServer, TLSHost], cli: Callable[..., tuple[int, str, str]]
) -> None:
    """``reports`` with no report says so (an empty answer looked like a failure); a pin added
    without ``--label`` leaves no trailing spaces."""
    server, host = served_host
    status, out, _ = cli(server, "reports")
    assert (status, out) == (0, "no violation reports\n")
    status, out, _ = cli(server, "reports", "--json")
    assert status == 0 and json.loads(out) == []
    _add_rule(cli, server, host)
    status, out, _ = cli(server, "pins", "add", CHANNEL, host.name, host.leaf_pin)
    assert (status, out) == (0, f"added {host.leaf_pin}\n")
    status, out, _ = cli(server, "channel", "show", CHANNEL)
    assert status == 0 and not [line for line in out.splitlines() if line != line.rstrip()]
