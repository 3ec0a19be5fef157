"""``pinwarden pin`` on files and ``pinwarden keygen`` (issue 2, CLI)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinwarden import spki_pin
from pinwarden.cli import main


def test_pin_of_a_chain_file_prints_one_line_per_certificate_leaf_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = trustme.CA()
    leaf = ca.create_child_ca().issue_cert("files.example")
    chain_file = tmp_path / "chain.pem"
    chain_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    assert main(["pin", str(chain_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        spki_pin(blob.bytes()) for blob in leaf.cert_chain_pems
    ]
    assert "subject=" in lines[0] and "issuer=" in lines[0] and "not-after=" in lines[0]

    assert main(["pin", str(chain_file), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["pin"] for e in entries] == [line.split()[0] for line in lines]
    assert entries[0]["kind"] == "certificate"


def test_pin_of_an_unreadable_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    assert main(["pin", str(junk)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pinwarden pin: error: ")
    assert "junk.pem" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("missing", ["missing.pem", "certs/missing", "./leaf.CRT"])
def test_pin_of_a_missing_file_says_so_rather_than_dialling_it(
    missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pin", str(tmp_path / missing) if "/" in missing else missing]) == 2
    assert "no such file" in capsys.readouterr().err


def test_pin_of_a_bad_host_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pin", "example.com:99999"]) == 2
    assert "not host[:port]" in capsys.readouterr().err


def test_keygen_writes_a_0600_key_and_csr_whose_pin_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "keygen",
                "--out-dir",
                str(tmp_path),
                "--no-passphrase",
                "--dns",
                "api.example.com",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    key_path = tmp_path / "backup.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert spki_pin(key_path.read_bytes()) == result["pin"]
    assert spki_pin((tmp_path / "backup.csr").read_bytes()) == result["pin"]
    # A second run must not overwrite the key.
    assert main(["keygen", "--out-dir", str(tmp_path), "--no-passphrase"]) == 2
    assert "not overwriting" in capsys.readouterr().err
    assert spki_pin(key_path.read_bytes()) == result["pin"]


def test_keygen_encrypts_the_key_with_a_passphrase_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BACKUP_PASSPHRASE", "correct horse")
    assert (
        main(
            [
                "keygen",
                "--out-dir",
                str(tmp_path),
                "--algorithm",
                "rsa-2048",
                "--passphrase-env",
                "BACKUP_PASSPHRASE",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "correct horse" not in out
    pem = (tmp_path / "backup.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    key = serialization.load_pem_private_key(pem, password=b"correct horse")
    assert out.splitlines()[0] == spki_pin(key)


def test_keygen_without_any_passphrase_option_and_no_terminal_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out-dir", str(tmp_path)]) == 2
    assert "--passphrase-env" in capsys.readouterr().err
    assert not (tmp_path / "backup.key").exists()


def test_passphrase_file_readable_by_others_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    assert main(["keygen", "--out-dir", str(tmp_path), "--passphrase-file", str(secret)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    secret.chmod(0o600)
    assert main(["keygen", "--out-dir", str(tmp_path), "--passphrase-file", str(secret)]) == 0


@pytest.mark.parametrize(
    "name",
    ["../../etc/x", "sub/x", "..", ".", "", "a\\b", "x" * 201, "-rf", "tab\there", "\udcff"],
    ids=[
        "traversal",
        "subdir",
        "dotdot",
        "dot",
        "empty",
        "backslash",
        "long",
        "dash",
        "tab",
        "byte",
    ],
)
def test_keygen_name_is_a_plain_file_name(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--name ../../etc/x`` wrote outside the working folder (as root, into /etc)."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["keygen", f"--name={name}", "--no-passphrase"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pinwarden keygen: error: --name ") and "plain file name" in err
    assert err.count("\n") == 1
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


def test_keygen_out_says_where_the_files_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin: a plain name with --out writes exactly OUT/NAME.key and OUT/NAME.csr."""
    out = tmp_path / "keys"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "--name", "api-backup", "--out", str(out), "--no-passphrase"]) == 0
    assert sorted(path.name for path in tmp_path.rglob("*") if path.is_file()) == [
        "api-backup.csr",
        "api-backup.key",
    ]
    assert (out / "api-backup.key").exists()
    assert "api-backup.key" in capsys.readouterr().out
    assert main(["keygen", "--out", str(tmp_path / "missing"), "--no-passphrase"]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--dns", "bad name", "--dns"),
        ("--dns", "x" * 300, "--dns"),
        ("--common-name", "x" * 65, "--common-name"),
    ],
)
def test_keygen_csr_fields_are_checked_before_anything_is_written(
    option: str, value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keygen", "--out", str(tmp_path), "--no-passphrase", option, value]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_keygen_csr_takes_hostnames_and_a_wildcard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["keygen", "--out", str(tmp_path), "--no-passphrase", "--json"]
    assert main([*args, "--dns", "API.Example.com.", "--dns", "*.cdn.example.com"]) == 0
    csr = x509.load_pem_x509_csr((tmp_path / "backup.csr").read_bytes())
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com", "*.cdn.example.com"]
