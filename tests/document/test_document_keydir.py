"""The key directory: layout, keys encrypted at rest, rotations that clients accept."""

from __future__ import annotations

import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pinwarden.document import (
    KeyDirectory,
    KeyStoreError,
    PinSet,
    SignatureError,
    load_keyring,
    sign_pinset,
    update_keyring,
    verify_pinset,
    walk_keyrings,
)
from pinwarden.document._keydir import OnlineKeyDirectory
from tests.document.document_helpers import gen

PASSPHRASE = "keydir test passphrase"


@pytest.fixture
def directory(tmp_path: Path) -> KeyDirectory:
    keys = KeyDirectory(tmp_path / "keys")
    keys.init(PASSPHRASE)
    return keys


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _current_pinset(keyring_version: int = 1) -> PinSet:
    return gen.pinset(
        issued=_now(), expires=_now() + timedelta(days=7), keyring_version=keyring_version
    )


def test_init_layout_and_permissions(directory: KeyDirectory) -> None:
    keyring = directory.current_keyring()
    assert (keyring.version, keyring.root_threshold, keyring.online_threshold) == (1, 2, 1)
    assert len(keyring.root_keys) == 3 and len(keyring.online_keys) == 1
    assert directory.keyring_bytes(1) == directory.keyring_path.read_bytes() == keyring.raw
    key_files = sorted((directory.path / "keys").iterdir())
    assert [p.stem for p in key_files] == sorted(
        k.kid for k in (*keyring.root_keys, *keyring.online_keys)
    )
    for path in key_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_bytes()
        assert b"ENCRYPTED PRIVATE KEY" in text and PASSPHRASE.encode() not in text
    assert stat.S_IMODE(directory.path.stat().st_mode) == 0o700


def test_init_refuses_an_existing_directory(directory: KeyDirectory) -> None:
    with pytest.raises(KeyStoreError):
        directory.init(PASSPHRASE)


def test_init_refuses_an_unreachable_threshold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threshold"):
        KeyDirectory(tmp_path / "k").init(PASSPHRASE, root_keys=2, root_threshold=3)
    assert not (tmp_path / "k").exists()


def test_es256_directory(tmp_path: Path) -> None:
    keys = KeyDirectory(tmp_path / "k")
    keyring = keys.init(PASSPHRASE, algorithm="ES256", root_keys=1, root_threshold=1)
    assert {k.algorithm for k in (*keyring.root_keys, *keyring.online_keys)} == {"ES256"}
    signed = sign_pinset(_current_pinset(), keys.online_signers(PASSPHRASE))
    assert verify_pinset(signed, keyring=keyring, now=_now())


def test_wrong_passphrase(directory: KeyDirectory) -> None:
    assert directory.online_signers(PASSPHRASE)
    with pytest.raises(KeyStoreError):
        directory.online_signers("not it")


def test_swapped_key_file_is_detected(directory: KeyDirectory) -> None:
    keyring = directory.current_keyring()
    online = directory.path / "keys" / f"{keyring.online_keys[0].kid}.pem"
    root = directory.path / "keys" / f"{keyring.root_keys[0].kid}.pem"
    online.write_bytes(root.read_bytes())
    with pytest.raises(KeyStoreError, match="does not hold"):
        directory.online_signers(PASSPHRASE)


def test_rotate_online(directory: KeyDirectory) -> None:
    v1 = directory.current_keyring()
    old_signers = directory.online_signers(PASSPHRASE)
    v2 = directory.rotate_online(PASSPHRASE)
    assert update_keyring(v1, directory.keyring_bytes(2)) == v2
    assert v2.root_keys == v1.root_keys and v2.online_keys != v1.online_keys
    assert not (directory.path / "keys" / f"{v1.online_keys[0].kid}.pem").exists()
    pinset = _current_pinset(2)
    new_doc = sign_pinset(pinset, directory.online_signers(PASSPHRASE))
    assert verify_pinset(new_doc, keyring=v2, now=_now())
    with pytest.raises(SignatureError):
        verify_pinset(sign_pinset(pinset, old_signers), keyring=v2, now=_now())


def test_rotate_root(directory: KeyDirectory) -> None:
    v1 = directory.current_keyring()
    v2 = directory.rotate_root(PASSPHRASE, root_keys=4, root_threshold=3)
    assert (len(v2.root_keys), v2.root_threshold) == (4, 3)
    assert not {k.kid for k in v1.root_keys} & {k.kid for k in v2.root_keys}
    assert v2.online_keys == v1.online_keys
    for old in v1.root_keys:
        assert not (directory.path / "keys" / f"{old.kid}.pem").exists()
    # A client still holding v1 walks to v2 and on to v3, signed by the new roots alone.
    directory.rotate_online(PASSPHRASE)
    shipped = load_keyring(directory.keyring_bytes(1))
    assert walk_keyrings(shipped, directory.keyring_bytes, 3, now=_now()).version == 3
    assert directory.current_keyring().version == 3


def test_concurrent_rotation_loser_leaves_no_keys(directory: KeyDirectory) -> None:
    # The loser of a race finds keyrings/2.json already there.
    (directory.path / "keyrings" / "2.json").write_bytes(b"{}")
    before = set((directory.path / "keys").iterdir())
    with pytest.raises(KeyStoreError):
        directory.rotate_online(PASSPHRASE)
    assert set((directory.path / "keys").iterdir()) == before
    assert directory.current_keyring().version == 1


def test_missing_directory() -> None:
    with pytest.raises(KeyStoreError):
        KeyDirectory("/nonexistent/pinwarden-keys").current_keyring()


def _files(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def test_export_online_copies_keyrings_and_online_keys_only(
    directory: KeyDirectory, tmp_path: Path
) -> None:
    keyring = directory.current_keyring()
    server = OnlineKeyDirectory(tmp_path / "server")
    assert directory.export_online(server.path) == keyring
    online = keyring.online_keys[0].kid
    assert _files(server.path) == {"keyring.json", "keyrings/1.json", f"keys/{online}.pem"}
    assert server.keyring_path.read_bytes() == directory.keyring_path.read_bytes()
    assert stat.S_IMODE((server.path / "keys" / f"{online}.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o700
    assert server.root_key_files() == []
    assert len(directory.root_key_files()) == 3  # the twin: the offline directory has them
    signed = sign_pinset(_current_pinset(), server.online_signers(PASSPHRASE))
    assert verify_pinset(signed, keyring=keyring, now=_now())


def test_the_online_directory_has_no_root_key_api() -> None:
    for name in ("root_signers", "rotate_online", "rotate_root", "init"):
        assert not hasattr(OnlineKeyDirectory, name) and hasattr(KeyDirectory, name)


def test_export_after_an_offline_rotation_updates_the_server_copy(
    directory: KeyDirectory, tmp_path: Path
) -> None:
    server = OnlineKeyDirectory(tmp_path / "server")
    v1 = directory.export_online(server.path)
    v2 = directory.rotate_online(PASSPHRASE)
    assert server.current_keyring() == v1  # nothing reaches the server until the export
    assert directory.export_online(server.path) == v2
    assert server.current_keyring() == v2
    assert _files(server.path) == {
        "keyring.json",
        "keyrings/1.json",
        "keyrings/2.json",
        f"keys/{v2.online_keys[0].kid}.pem",
    }
    assert walk_keyrings(v1, server.keyring_bytes, 2, now=_now()) == v2
    assert directory.export_online(server.path) == v2  # again: nothing changes


def test_export_refuses_targets_that_are_not_an_older_server_copy(
    directory: KeyDirectory, tmp_path: Path
) -> None:
    with pytest.raises(KeyStoreError, match="into itself"):
        directory.export_online(directory.path)
    other = KeyDirectory(tmp_path / "other")
    other.init(PASSPHRASE)
    foreign = tmp_path / "foreign"
    other.export_online(foreign)
    with pytest.raises(KeyStoreError, match="another deployment"):
        directory.export_online(foreign)
    newer = tmp_path / "newer"
    shutil.copytree(directory.path, tmp_path / "copy")
    KeyDirectory(tmp_path / "copy").rotate_online(PASSPHRASE)
    KeyDirectory(tmp_path / "copy").export_online(newer)
    with pytest.raises(KeyStoreError, match="newer"):
        directory.export_online(newer)
    full = tmp_path / "full"
    shutil.copytree(directory.path, full)
    with pytest.raises(KeyStoreError, match="root keys"):
        directory.export_online(full)
    assert directory.export_online(tmp_path / "fresh").version == 1  # the accepted twin


def test_export_refuses_a_history_that_does_not_walk(
    directory: KeyDirectory, tmp_path: Path
) -> None:
    directory.rotate_online(PASSPHRASE)
    other = KeyDirectory(tmp_path / "other")
    other.init(PASSPHRASE)
    other.rotate_online(PASSPHRASE)
    # v2 swapped for another deployment's v2: not signed by this v1's roots.
    (directory.path / "keyrings" / "2.json").write_bytes(other.keyring_bytes(2))
    (directory.path / "keyring.json").write_bytes(other.keyring_bytes(2))
    with pytest.raises(KeyStoreError, match="do not walk"):
        directory.export_online(tmp_path / "server")
    assert not (tmp_path / "server").exists()
