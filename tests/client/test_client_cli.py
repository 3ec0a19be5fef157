"""``pinwarden check`` and ``pinwarden pin HOST`` against the live test servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _tls_harness import PKI, Servers, assert_no_request_byte

from pinwarden.cli import main

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
    expected_section = out.split("expected one of:\n")[1].split("verified chain (leaf first):\n")
    assert expected_section[0] == f"  {pki.intermediate_pin}\n  {pki.backup_pin}\n"
    assert expected_section[1] == f"  0: {pki.rogue_leaf_pin}\n  1: {pki.rogue_root_pin}\n"
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
    status = _check(servers.untrusted.port, pki, "--pin", pki.intermediate_pin)
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
