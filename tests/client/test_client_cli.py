"""``pinwarden check`` and ``pinwarden pin HOST`` against the live test servers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinwarden.cli import main
from tests.client._tls_harness import Servers
from tests.support.pki import PKI
from tests.support.tls_servers import assert_no_request_byte

pytestmark = pytest.mark.network


def _check(servers_port: int, pki: PKI, *options: str) -> int:
    return main(
        ["check", f"https://localhost:{servers_port}", "--ca-file", pki.ca_bundle, *options]
    )


@pytest.mark.parametrize(
    ("pinned", "depth"), [("leaf_pin", 0), ("intermediate_pin", 1), ("legit_root_pin", 2)]
)
def test_check_names_the_matched_pin_and_depth(
    pinned: str, depth: int, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    pin = getattr(pki, pinned)
    status = _check(servers.legit.port, pki, "--pin", pki.backup_pin, "--pin", pin)
    out = capsys.readouterr().out
    assert status == 0
    assert out == f"OK localhost:{servers.legit.port}: pin {pin} matched at depth {depth}\n"


def test_check_mismatch_prints_expected_and_seen_pins(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _check(servers.rogue.port, pki, "--pin", pki.intermediate_pin, "--pin", pki.backup_pin)
    out = capsys.readouterr().out
    assert status == 1
    assert out.startswith(f"FAIL localhost:{servers.rogue.port}: certificate pinning failed")
    chain_section, expected_section = out.split("  verified chain (leaf first):\n")[1].split(
        "  pins expected by rule localhost (static pins):\n"
    )
    chain_lines = chain_section.splitlines()
    assert [line.split()[:2] for line in chain_lines] == [
        ["leaf", pki.rogue_leaf_pin],
        ["root", pki.rogue_root_pin],
    ]
    assert expected_section.startswith(f"    {pki.intermediate_pin}\n    {pki.backup_pin}\n")
    assert "next step:" in expected_section
    assert out.count(pki.intermediate_pin) == 1  # each pin shown once
    assert_no_request_byte(servers.rogue)


def test_check_json_and_pins_file(
    tmp_path: Path, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    pins_file = tmp_path / "pins.txt"
    pins_file.write_text(
        f"# live and backup\n{pki.intermediate_pin}\n{pki.backup_pin}  # offline\n"
    )

    assert _check(servers.legit.port, pki, "--pins-file", str(pins_file), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["ok"], result["matched_pin"], result["depth"]) == (True, pki.intermediate_pin, 1)

    assert _check(servers.appended.port, pki, "--pins-file", str(pins_file), "--json") == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False
    assert result["expected"] == [pki.intermediate_pin, pki.backup_pin]
    assert result["seen"] == [pki.rogue_leaf_pin, pki.rogue_root_pin]


def test_check_untrusted_ca_is_a_tls_failure_not_a_pin_mismatch(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _check(
        servers.untrusted.port, pki, "--pin", pki.intermediate_pin, "--pin", pki.backup_pin
    )
    captured = capsys.readouterr()
    assert status == 3
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "certificate verify failed" in captured.err


def test_pin_host_lists_the_verified_chain_leaf_first(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["pin", f"localhost:{servers.legit.port}", "--ca-file", pki.ca_bundle])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert [line.split()[0] for line in lines] == [
        pki.leaf_pin,
        pki.intermediate_pin,
        pki.legit_root_pin,
    ]
    assert "pinwarden tests: legitimate root" in lines[2]


def test_pin_host_shows_the_verified_not_the_served_chain(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    """The appended intermediate is sent by the server but is no part of the verified chain."""
    status = main(
        ["pin", f"localhost:{servers.appended.port}", "--ca-file", pki.ca_bundle, "--json"]
    )
    entries = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [entry["pin"] for entry in entries] == [pki.rogue_leaf_pin, pki.rogue_root_pin]


def test_pin_host_with_untrusted_ca_fails(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["pin", f"localhost:{servers.untrusted.port}", "--ca-file", pki.ca_bundle])
    captured = capsys.readouterr()
    assert status == 3
    assert captured.out == ""
    assert "certificate verify failed" in captured.err


# --- pins files as the client reads them (issue 8, "pinwarden check --pins-file") -------------

API = "api.pinwarden.test"  # a name of the test leaves that no resolver knows: --connect-to


def _check_api(port: int, pki: PKI, *options: str, url: str | None = None) -> int:
    return main(
        [
            "check",
            url or f"https://{API}:{port}",
            "--connect-to",
            f"127.0.0.1:{port}",
            "--ca-file",
            pki.ca_bundle,
            *options,
        ]
    )


def _rules_file(tmp_path: Path, rules: object) -> str:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    return str(path)


@pytest.mark.parametrize("pattern", ["**.pinwarden.test", "*.pinwarden.test"])
def test_check_pins_file_with_a_wildcard_rule_matches_as_the_client_does(
    pattern: str, tmp_path: Path, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every wildcard rule failed with "an enforce rule needs pins"."""
    rules = _rules_file(tmp_path, {pattern: [pki.intermediate_pin, pki.backup_pin]})
    assert _check_api(servers.legit.port, pki, "--pins-file", rules, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["rule"], result["matched_pin"]) == (pattern, pki.intermediate_pin)
    # The twin: the same rule against the rogue chain is a mismatch.
    assert _check_api(servers.rogue.port, pki, "--pins-file", rules) == 1
    assert capsys.readouterr().out.startswith(f"FAIL {API}:{servers.rogue.port}")


def test_check_pins_file_most_specific_rule_decides(
    tmp_path: Path, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    good, wrong = [pki.intermediate_pin, pki.backup_pin], [pki.backup_pin, pki.rogue_root_pin]
    exact_good = _rules_file(tmp_path, {"**.pinwarden.test": wrong, API.upper(): good})
    assert _check_api(servers.legit.port, pki, "--pins-file", exact_good) == 0
    capsys.readouterr()
    exact_wrong = _rules_file(tmp_path, {"**.pinwarden.test": good, API: {"pins": wrong}})
    assert _check_api(servers.legit.port, pki, "--pins-file", exact_wrong) == 1
    disabled = _rules_file(tmp_path, {"**.pinwarden.test": wrong, API: {"mode": "disabled"}})
    assert _check_api(servers.legit.port, pki, "--pins-file", disabled) == 0
    assert "is disabled; no pin matched" in capsys.readouterr().out


def test_check_pins_file_that_matches_nothing_says_so(
    tmp_path: Path, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _rules_file(tmp_path, {"*.other.test": [pki.intermediate_pin, pki.backup_pin]})
    assert _check_api(servers.legit.port, pki, "--pins-file", rules) == 2
    assert f"no rule of the pins file matches {API}" in capsys.readouterr().err


def test_check_pin_adds_to_the_file_rule_of_the_host(
    tmp_path: Path, pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _rules_file(tmp_path, {API: [pki.backup_pin, pki.rogue_root_pin]})
    assert _check_api(servers.legit.port, pki, "--pins-file", rules) == 1
    capsys.readouterr()
    assert _check_api(servers.legit.port, pki, "--pins-file", rules, "--pin", pki.leaf_pin) == 0
    assert f"pin {pki.leaf_pin} matched at depth 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
        ('{"api.pinwarden.test": 5}', "expected a list of pins"),
        ('{"api.pinwarden.test": "sha256/x"}', "expected a list of pins"),
        ("[1, 2]", "expected a list of pins"),
        ('{"api.pinwarden.test": {"pins": 5}}', "rules.json"),
        ('{"api.pinwarden.test": {"pins": ["\\ud800"]}}', "rules.json"),
        ('{"api.pinwarden.test": {"mode": "loud", "pins": []}}', "unknown pin mode"),
        ('{"bad\\u0000host": ["sha256/x"]}', "rules.json"),
        ('{"a": [}', "invalid JSON at line 1"),
        ("# only a comment\n", "no pins in the file"),
        ("sha256/not-base64!\n", "rules.json:1"),
        (" " * (4 * 1024 * 1024 + 1), "larger than 4 MiB"),
    ],
    ids=[
        "deep",
        "int",
        "string",
        "ints",
        "pins-int",
        "surrogate",
        "mode",
        "nul-pattern",
        "syntax",
        "empty",
        "bad-pin-line",
        "huge",
    ],
)
def test_check_hostile_pins_files_are_one_line(
    content: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    # Refused before any connection: the port is closed.
    assert (
        main(["check", f"https://{API}:9", "--connect-to", "127.0.0.1:9", "--pins-file", str(path)])
        == 2
    )
    err = capsys.readouterr().err
    assert expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


# --- one pin (issue 8, "One pin": the CLI line) ------------------------------------------------


def test_check_warns_about_an_enforced_rule_with_a_single_pin(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check(servers.legit.port, pki, "--pin", pki.intermediate_pin) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("OK ")
    assert captured.err.startswith("pinwarden check: warning: rule localhost (static pins) ")
    assert "enforces a single pin" in captured.err and captured.err.count("\n") == 1


def test_check_is_quiet_about_a_rule_with_a_backup_pin(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _check(servers.legit.port, pki, "--pin", pki.intermediate_pin, "--pin", pki.backup_pin) == 0
    )
    assert capsys.readouterr().err == ""


# --- before DNS: URLs and --connect-to (issue 8, "pin and check before DNS") -------------------


def test_check_url_with_path_through_connect_to(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    port = servers.legit.port
    url = f"https://{API}:{port}/v1/health?probe=1"
    assert _check_api(port, pki, "--pin", pki.leaf_pin, "--pin", pki.backup_pin, url=url) == 0
    assert capsys.readouterr().out == (
        f"OK {API}:{port} (via 127.0.0.1:{port}): pin {pki.leaf_pin} matched at depth 0\n"
    )


def test_connect_to_keeps_the_hostname_check_of_the_named_host(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin: a name the certificate does not hold fails, wherever it was dialled."""
    port = servers.legit.port
    url = f"https://other.example.test:{port}/"
    assert _check_api(port, pki, "--pin", pki.leaf_pin, "--pin", pki.backup_pin, url=url) == 3
    err = capsys.readouterr().err
    assert "other.example.test" in err and "certificate verify failed" in err
    assert err.count("\n") == 1


def test_connect_to_with_a_wrong_pin_is_a_mismatch(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _check_api(servers.rogue.port, pki, "--pin", pki.leaf_pin, "--pin", pki.backup_pin) == 1
    assert "FAIL" in capsys.readouterr().out


def test_pin_of_a_url_through_connect_to(
    pki: PKI, servers: Servers, capsys: pytest.CaptureFixture[str]
) -> None:
    port = servers.legit.port
    args = ["pin", f"https://{API}/path", "--connect-to", f"127.0.0.1:{port}"]
    assert main([*args, "--ca-file", pki.ca_bundle]) == 0
    pins = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert pins == [pki.leaf_pin, pki.intermediate_pin, pki.legit_root_pin]
    assert main([*args, "--ca-file", pki.untrusted_root_file]) == 3  # twin: wrong CA
    assert "certificate verify failed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "connect_to", ["127.0.0.1:99999", "bad host:1", "http://127.0.0.1:1", "\udcff:1", ""]
)
def test_bad_connect_to_is_one_line(connect_to: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", f"https://{API}", "--connect-to", connect_to, "--pin", "x"]) == 2
    err = capsys.readouterr().err
    assert "--connect-to" in err and err.count("\n") == 1


def test_pin_connect_to_with_a_file_is_refused(
    tmp_path: Path, pki: PKI, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(Path(pki.ca_bundle).read_bytes())
    assert main(["pin", str(chain), "--connect-to", "127.0.0.1:1"]) == 2
    assert "--connect-to is for a host" in capsys.readouterr().err


# --- a plain-HTTP port (issue 8, "Messages with no next step") ---------------------------------


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A port that answers the TLS hello the way an HTTP server does."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                with contextlib.suppress(OSError):
                    connection.recv(4096)
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept(); close() alone does not
    listener.close()
    thread.join(10)


@pytest.mark.parametrize("command", ["pin", "check"])
def test_a_plain_http_port_says_so(
    command: str, plain_http_port: int, pki: PKI, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--pin", pki.leaf_pin, "--pin", pki.backup_pin] if command == "check" else []
    assert main([command, f"localhost:{plain_http_port}", *options]) == 3
    err = capsys.readouterr().err
    assert err == (
        f"pinwarden {command}: error: localhost:{plain_http_port} speaks plain HTTP, not TLS: "
        "is the port right? (443 is HTTPS)\n"
    )
