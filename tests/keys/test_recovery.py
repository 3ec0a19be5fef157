"""docs/keys.md, "The server is stolen", walked end to end with the commands the document gives."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pinwarden.document import (
    KeyDirectory,
    KeyStoreError,
    OnlineKeyDirectory,
    SignatureError,
    load_keyring,
    peek_document,
    sign_pinset,
    verify_pinset,
    walk_keyrings,
)
from tests.keys.keys_harness import (
    pin_server_services,
    pinwarden,
    publish_disabled_rule,
    resign,
    write_secret,
)

OFFLINE = "offline passphrase of the walk"
STOLEN = "server passphrase the thief now has"
NEW_SERVER = "new server passphrase after the theft"


def _forged(stolen_copy: Path, genuine: bytes, version: int, keyring_version: int = 1) -> bytes:
    """What the thief signs with the stolen online key: the genuine pin set at another version,
    naming keyring ``keyring_version``."""
    (stolen_key,) = OnlineKeyDirectory(stolen_copy).online_signers(STOLEN)
    genuine_pinset = verify_pinset(
        genuine, keyring=OnlineKeyDirectory(stolen_copy).current_keyring()
    )
    forged = replace(genuine_pinset, version=version, keyring_version=keyring_version)
    return sign_pinset(forged, [stolen_key])


def test_a_stolen_server_is_recovered_by_rotating_the_online_key_and_resigning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    offline, transfer, data = tmp_path / "offline", tmp_path / "transfer", tmp_path / "data"
    offline_file = write_secret(tmp_path / "offline-passphrase", OFFLINE)
    stolen_file = write_secret(tmp_path / "server-passphrase", STOLEN)
    new_file = write_secret(tmp_path / "new-server-passphrase", NEW_SERVER)
    # The deployment as docs/server.md and docs/keys.md set it up.
    KeyDirectory(offline).init(OFFLINE, root_keys=3, root_threshold=2)
    status, _, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(offline), "--to", str(transfer),
        "--passphrase-file", str(offline_file), "--server-passphrase-file", str(stolen_file),
    )  # fmt: skip
    assert status == 0, err
    status, _, err = pinwarden(capsys, "init", "--data", str(data), "--keys-from", str(transfer),
                               "--passphrase-file", str(stolen_file))  # fmt: skip
    assert status == 0, err
    with pin_server_services(data, STOLEN.encode()) as services:
        genuine_v1 = publish_disabled_rule(services, "app")
    shipped = load_keyring((offline / "keyrings" / "1.json").read_bytes())  # in every app

    # The theft: the server's disk and its passphrase.
    stolen_copy = tmp_path / "thief"
    shutil.copytree(data / "keys", stolen_copy)
    forged = _forged(stolen_copy, genuine_v1, version=50)
    assert verify_pinset(forged, keyring=shipped, min_version=1).version == 50  # what it costs
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyDirectory(offline).root_signers(STOLEN)  # the root key files do not open with it

    # 1. Offline: keyring N+1 with a new online key.
    status, _, err = pinwarden(capsys, "keys", "rotate-online", "--dir", str(offline),
                               "--passphrase-file", str(offline_file))  # fmt: skip
    assert status == 0, err
    # 2. Offline: exported under a new server passphrase.
    shutil.rmtree(transfer)
    status, _, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(offline), "--to", str(transfer),
        "--passphrase-file", str(offline_file), "--server-passphrase-file", str(new_file),
    )  # fmt: skip
    assert status == 0, err
    # 3. The rebuilt server: keys in place, the new passphrase, every channel re-signed.
    status, _, err = pinwarden(capsys, "keys", "export-online", "--dir", str(transfer),
                               "--to", str(data / "keys"))  # fmt: skip
    assert status == 0, err
    stolen_kid = shipped.online_keys[0].kid
    assert not (data / "keys" / "keys" / f"{stolen_kid}.pem").exists()
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        OnlineKeyDirectory(data / "keys").online_signers(STOLEN)
    with pin_server_services(data, NEW_SERVER.encode()) as services:
        genuine_v2 = resign(services, "app")

    # A client that shipped keyring v1 walks to v2 with the re-signed pin set ...
    def fetch_keyring(version: int) -> bytes:
        return (data / "keys" / "keyrings" / f"{version}.json").read_bytes()

    hint = peek_document(genuine_v2)
    walked = walk_keyrings(shipped, fetch_keyring, hint.keyring_version)
    assert walked.version == 2
    accepted = verify_pinset(genuine_v2, keyring=walked, min_version=1)
    assert accepted.keyring_version == 2
    # ... and from then on refuses whatever the stolen key signs, at any version.
    for version, keyring_version in ((accepted.version + 1, 2), (10_000, 1)):
        forged = _forged(stolen_copy, genuine_v1, version, keyring_version)
        with pytest.raises(SignatureError):
            verify_pinset(forged, keyring=walked, min_version=accepted.version)
