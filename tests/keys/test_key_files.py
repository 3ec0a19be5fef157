"""Key files that resist guessing (scrypt), older PBKDF2 files still open, ``keys rewrap``, and a
passphrase of the server's own (``keys export-online``): docs/keys.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pinwarden.document import KeyDirectory, KeyStoreError, OnlineKeyDirectory, SigningKey
from pinwarden.document._keyfile import ScryptCost, decrypt_key_file, encrypt_key_file, is_key_file
from pinwarden.document._keys import needs_rewrap
from tests.keys.keys_harness import pinwarden, write_secret

OFFLINE = "the offline passphrase"
SERVER = "the server's own passphrase"
CHEAP = ScryptCost(n=2**4, r=8, p=1)  # hostile-input tests: the format, not the cost


def _old_style_pem(key: SigningKey, passphrase: str) -> bytes:
    """A key file as earlier releases wrote it: PKCS#8 with PBKDF2 (BestAvailableEncryption)."""
    return key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_OFFLINE", OFFLINE)
    monkeypatch.setenv("PW_SERVER", SERVER)


def test_new_key_files_are_scrypt_with_their_parameters_written_in_them(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=2, root_threshold=1)
    files = sorted((directory.path / "keys").glob("*.pem"))
    assert len(files) == 3
    for path in files:
        data = path.read_bytes()
        assert is_key_file(data) and not needs_rewrap(data)
        assert re.search(rb"^KDF: scrypt; n=65536; r=8; p=1; salt=", data, re.MULTILINE)
        assert b"ENCRYPTED PRIVATE KEY-----\n" in data and b"BEGIN PRIVATE KEY" not in data
    assert len(directory.root_signers(OFFLINE)) == 2
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        directory.root_signers("not the passphrase")


def test_a_key_file_of_an_earlier_release_still_opens(tmp_path: Path) -> None:
    key = SigningKey.generate("ES256")
    old = _old_style_pem(key, OFFLINE)
    assert needs_rewrap(old)
    assert SigningKey.from_pem(old, OFFLINE).public() == key.public()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        SigningKey.from_pem(old, "not the passphrase")


def test_keys_rewrap_upgrades_old_files_and_keeps_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: None
) -> None:
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=2, root_threshold=1)
    keyring = directory.current_keyring()
    for key in (*keyring.root_keys, *keyring.online_keys):  # made the old way
        path = directory.path / "keys" / f"{key.kid}.pem"
        path.write_bytes(_old_style_pem(SigningKey.from_pem(path.read_bytes(), OFFLINE), OFFLINE))
    refused = pinwarden(capsys, "keys", "rewrap", "--dir", str(directory.path),
                        "--passphrase-env", "PW_SERVER")  # fmt: skip
    assert refused[0] != 0 and "wrong passphrase" in refused[2] and refused[2].count("\n") == 1
    assert all(needs_rewrap(path.read_bytes()) for path in (directory.path / "keys").iterdir())

    status, out, err = pinwarden(capsys, "keys", "rewrap", "--dir", str(directory.path),
                                 "--passphrase-env", "PW_OFFLINE")  # fmt: skip
    assert status == 0, err
    assert len(json.loads(out)["rewrapped"]) == 3
    for path in (directory.path / "keys").iterdir():
        assert not needs_rewrap(path.read_bytes())
        assert path.stat().st_mode & 0o777 == 0o600
    assert [key.public() for key in directory.root_signers(OFFLINE)] == list(keyring.root_keys)
    status, out, _ = pinwarden(capsys, "keys", "rewrap", "--dir", str(directory.path),
                               "--passphrase-env", "PW_OFFLINE")  # fmt: skip
    assert status == 0 and json.loads(out)["rewrapped"] == []  # nothing left to upgrade


def test_a_changed_parameter_fails_like_a_wrong_passphrase() -> None:
    data = encrypt_key_file(b"pkcs8 bytes", b"pw", CHEAP)
    assert decrypt_key_file(data, b"pw") == b"pkcs8 bytes"
    tampered = data.replace(b"r=8;", b"r=9;")
    with pytest.raises(KeyStoreError, match="wrong passphrase, or the key file was changed"):
        decrypt_key_file(tampered, b"pw")


_GOOD = encrypt_key_file(b"pkcs8 bytes", b"pw", CHEAP)


@pytest.mark.parametrize(
    "data, problem",
    [
        (_GOOD.replace(b"n=16;", b"n=1073741824;"), "n=2^20"),
        (_GOOD.replace(b"n=16;", b"n=12;"), "not a power of two"),
        (_GOOD.replace(b"r=8;", b"r=999;"), "n=2^20, r=32"),
        (_GOOD.replace(b"n=16;", b"n=1048576;").replace(b"r=8;", b"r=16;"), "1 GiB"),
        (_GOOD.replace(b"n=16;", b"n=1048576;").replace(b"p=1;", b"p=16;"), "minutes to open"),
        (_GOOD[:-40], "damaged or cut short"),
        (_GOOD.replace(b"KDF: scrypt", b"KDF: pbkdf2"), "damaged or cut short"),
        (_GOOD.replace(b"\n\n", b"\n\x00\n"), "damaged or cut short"),
        (_GOOD + b"x" * 20_000, "damaged or cut short"),
        (re.sub(rb"salt=[A-Za-z0-9_-]+", b"salt=AAAA", _GOOD), "salt or nonce has the wrong"),
        (b"", "damaged or cut short"),
    ],
)
def test_a_hostile_key_file_is_one_clear_error(data: bytes, problem: str) -> None:
    with pytest.raises(KeyStoreError, match=re.escape(problem)):
        decrypt_key_file(data, b"pw")


def test_a_hostile_key_file_in_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: None
) -> None:
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=1, root_threshold=1)
    root = directory.current_keyring().root_keys[0].kid
    path = directory.path / "keys" / f"{root}.pem"
    path.write_bytes(path.read_bytes().replace(b"n=65536;", b"n=1073741824;"))
    status, _, err = pinwarden(capsys, "keys", "rotate-online", "--dir", str(directory.path),
                               "--passphrase-env", "PW_OFFLINE")  # fmt: skip
    assert status != 0 and "refusing to read it" in err and err.count("\n") == 1


# ---- a passphrase of the server's own --------------------------------------------------------


def test_export_online_re_encrypts_under_the_server_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: None
) -> None:
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=1, root_threshold=1)
    target = tmp_path / "server-keys"
    status, out, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(directory.path), "--to", str(target),
        "--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_SERVER",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["version"] == 1
    server = OnlineKeyDirectory(target)
    (exported,) = server.online_key_files()
    assert exported.read_bytes() != (directory.path / "keys" / exported.name).read_bytes()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        server.online_signers(OFFLINE)  # the offline passphrase does not open it
    assert [key.public() for key in server.online_signers(SERVER)] == list(
        directory.current_keyring().online_keys
    )
    # Again: the key already there (under the server passphrase) is left as it is.
    before = exported.read_bytes()
    status, _, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(directory.path), "--to", str(target),
        "--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_SERVER",
    )  # fmt: skip
    assert status == 0, err
    assert exported.read_bytes() == before


@pytest.mark.parametrize(
    "options, problem",
    [
        ([], "a passphrase is needed"),
        (["--passphrase-env", "PW_OFFLINE"], "a server-passphrase is needed"),
        (
            ["--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_OFFLINE"],
            "must differ",
        ),
        (
            ["--passphrase-env", "PW_SERVER", "--server-passphrase-env", "PW_OFFLINE"],
            "wrong passph",
        ),
        (["--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_UNSET"], "not set"),
    ],
)
def test_export_online_never_hands_the_offline_passphrase_to_the_server(
    options: list[str],
    problem: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    secrets: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=1, root_threshold=1)
    target = tmp_path / "server-keys"
    status, _, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(directory.path), "--to", str(target), *options
    )
    assert status != 0 and problem in err and err.count("\n") == 1
    assert not list(target.glob("keys/*.pem"))


def test_init_refuses_the_offline_passphrase_and_takes_the_servers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secrets: None
) -> None:
    directory = KeyDirectory(tmp_path / "offline")
    directory.init(OFFLINE, root_keys=1, root_threshold=1)
    export = tmp_path / "export"
    directory.export_online(export, passphrase=OFFLINE, server_passphrase=SERVER)
    refused = str(tmp_path / "refused")
    status, _, err = pinwarden(capsys, "init", "--data", refused, "--keys-from", str(export),
                               "--passphrase-env", "PW_OFFLINE")  # fmt: skip
    assert status != 0 and "server's passphrase" in err and err.count("\n") == 1
    data = str(tmp_path / "data")
    status, _, err = pinwarden(capsys, "init", "--data", data, "--keys-from", str(export),
                               "--passphrase-env", "PW_SERVER")  # fmt: skip
    assert status == 0, err


@pytest.mark.parametrize("value", ["\udcff\udcfe", "x" * 100_000])
def test_a_hostile_passphrase_variable_is_one_line_or_works(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undecodable bytes in the environment arrive as lone surrogates (PEP 383)."""
    monkeypatch.setenv("PW_ODD", value)
    status, out, err = pinwarden(capsys, "keys", "init", "--dir", str(tmp_path / "k"),
                                 "--root-keys", "1", "--root-threshold", "1",
                                 "--passphrase-env", "PW_ODD")  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["version"] == 1
    assert "Traceback" not in err


def test_a_passphrase_file_readable_by_others_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = write_secret(tmp_path / "passphrase", OFFLINE)
    loose.chmod(0o644)
    status, _, err = pinwarden(capsys, "keys", "rewrap", "--dir", str(tmp_path),
                               "--passphrase-file", str(loose))  # fmt: skip
    assert status != 0 and "chmod 600" in err and err.count("\n") == 1
