"""``pinwarden export --pinset FILE``: a signed pin-set file, verified with ``--keyring`` when
given, roles from ``--role PIN=ROLE``; hostile files and arguments end in one line, never a
traceback."""

from __future__ import annotations

import json
import plistlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pinwarden.cli import main
from pinwarden.document import KeyDirectory, PinSet, PinSetRule, sign_pinset
from tests.export.export_helpers import parse_ats_plist, parse_network_security_config
from tests.export.test_export_formats import BACKUP, CA, LEAF, ROOT

PASSPHRASE = b"export test passphrase, not secret"
CHANNEL = "com.example.app/prod"


@dataclass(frozen=True)
class Signed:
    pinset: Path
    keyring: Path


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> KeyDirectory:
    directory = KeyDirectory(tmp_path_factory.mktemp("keys") / "keys")
    directory.init(PASSPHRASE)
    return directory


@pytest.fixture
def signed(tmp_path: Path, key_dir: KeyDirectory) -> Callable[..., Signed]:
    def make(*rules: PinSetRule, channel: str = CHANNEL) -> Signed:
        now = datetime.now(timezone.utc)
        keyring = key_dir.current_keyring()
        pinset = PinSet(channel, 3, now, now + timedelta(days=7), 3600,
                        "https://pins.example.com/r", rules, keyring.version)  # fmt: skip
        pinset_path, keyring_path = tmp_path / "pinset.json", tmp_path / "keyring.json"
        pinset_path.write_bytes(sign_pinset(pinset, key_dir.online_signers(PASSPHRASE)))
        keyring_path.write_bytes(keyring.raw)
        return Signed(pinset_path, keyring_path)

    return make


API = PinSetRule("api.example.com", (LEAF, BACKUP))
CDN = PinSetRule("**.cdn.example.com", (CA, ROOT))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["export", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_a_verified_pin_set_file_exports_without_warnings(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    files = signed(API, CDN)
    status, out, err = run(capsys, "--format", "android-nsc", CHANNEL, "--pinset",
                           str(files.pinset), "--keyring", str(files.keyring))  # fmt: skip
    assert (status, err) == (0, "")
    domains = {entry.domain for entry in parse_network_security_config(out, trustkit=False)}
    assert domains == {"api.example.com", "cdn.example.com"}


def test_without_a_keyring_the_export_says_the_signatures_were_not_verified(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    files = signed(API)
    out_file = tmp_path / "nsc.xml"
    status, out, err = run(capsys, "--format", "android-nsc", CHANNEL, "--pinset",
                           str(files.pinset), "--out", str(out_file))  # fmt: skip
    assert status == 0 and out == ""
    assert err == (
        "pinwarden export: warning: signatures not verified (give --keyring): the rules are "
        "exported as read\n"
    )
    assert parse_network_security_config(out_file.read_text(), trustkit=False)
    refused = tmp_path / "no.xml"
    status, _, err = run(capsys, "--format", "android-nsc", CHANNEL, "--pinset",
                         str(files.pinset), "--strict", "--out", str(refused))  # fmt: skip
    assert status == 1 and err.endswith("--strict: warnings above; nothing written\n")
    assert not refused.exists()


def test_ios_plist_takes_roles_from_role_options_and_names_the_option_when_one_is_missing(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    files = signed(API)
    base = ["--format", "ios-plist", CHANNEL, "--pinset", str(files.pinset),
            "--keyring", str(files.keyring)]  # fmt: skip
    status, out, err = run(capsys, *base, "--role", f"{LEAF}=leaf")
    assert (status, out) == (1, "")
    assert f"refused: api.example.com: pin {BACKUP} has no chain role" in err
    assert f"give it with --role {BACKUP}=ROLE" in err
    status, out, err = run(capsys, *base, "--role", f"{LEAF}=leaf", "--role", f"{BACKUP}=backup")
    assert status == 0 and "server's records" not in err  # the roles are the operator's own
    _, domains = parse_ats_plist(out)
    assert len(domains["api.example.com"]["NSPinnedLeafIdentities"]) == 2


def test_a_tampered_pin_set_is_refused_with_its_error_type(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    files = signed(API)
    envelope = json.loads(files.pinset.read_bytes())
    envelope["signatures"] = [envelope["signatures"][0] | {"signature": "AAAA"}]
    files.pinset.write_text(json.dumps(envelope))
    status, out, err = run(capsys, "--format", "json", CHANNEL, "--pinset", str(files.pinset),
                           "--keyring", str(files.keyring))  # fmt: skip
    assert (status, out) == (1, "") and err.startswith("pinwarden export: error: SignatureError")


def test_the_pin_set_must_be_of_the_channel_named(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    files = signed(API, channel="com.example.other/prod")
    status, _, err = run(capsys, "--format", "json", CHANNEL, "--pinset", str(files.pinset))
    assert status == 2 and "of channel 'com.example.other/prod'" in err


def test_json_output_carries_the_text_and_the_warnings(
    signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    files = signed(API, PinSetRule("beta.example.com", (LEAF,), "report-only"))
    roles = ["--role", f"{LEAF}=leaf", "--role", f"{BACKUP}=backup"]
    status, out, _ = run(capsys, "--format", "ios-plist", CHANNEL, "--pinset", str(files.pinset),
                         *roles, "--json")  # fmt: skip
    answer = json.loads(out)
    assert status == 0 and plistlib.loads(answer["text"].encode())
    assert any(w.startswith("beta.example.com: ATS has no report-only") for w in answer["warnings"])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "FormatError"),
        (b"\x00\xff garbage", "FormatError"),
        (b"[" * 100_000 + b"]" * 100_000, "Error"),
        (b'{"payload": "e30", "signatures": []}', "FormatError"),
        ('{"payload": "\ud800"}'.encode("utf-8", "surrogatepass"), "FormatError"),
        (b" " * (5 * 1024 * 1024), "larger than"),
    ],
)
def test_a_hostile_pin_set_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, reason: str
) -> None:
    path = tmp_path / "pinset.json"
    path.write_bytes(content)
    status, out, err = run(capsys, "--format", "json", CHANNEL, "--pinset", str(path))
    assert status in (1, 2) and out == "" and reason in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--role", "sha256/nope=leaf"], "--role"),
        (["--role", f"{LEAF}=boss"], "ROLE one of leaf"),
        (["--role", f"{CA}=root"], "pins the pin set does not have"),
        (["--lifetime-days", "0"], "--lifetime-days"),
        (["--lifetime-days", "9" * 30], "--lifetime-days"),
        (["--version", "2"], "--version is for the server"),
        (["--next-keyring", "k.json"], "--next-keyring walks from a trusted --keyring"),
        (["--out", "/nonexistent-dir/x.xml"], "cannot write"),
        (["--out", "bad\x00name"], "NUL character"),
        (["--role", "\udcff=leaf"], "--role"),
    ],
)
def test_hostile_arguments_are_one_line_errors(
    signed: Callable[..., Signed],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    files = signed(API)
    status, out, err = run(capsys, "--format", "json", CHANNEL, "--pinset", str(files.pinset),
                           *extra)  # fmt: skip
    assert status == 2 and out == "" and message in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1
