"""The root keys stay offline (docs/server.md, "Production set-up"): the server's key directory
holds the keyrings and the online keys only, and the server process never decrypts a root key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from pinwarden.cli import main
from pinwarden.document import KeyDirectory, KeyStoreError, SigningKey, load_keyring
from pinwarden.document._keydir import OnlineKeyDirectory
from pinwarden.document._keys import Passphrase
from pinwarden.server import DataDirectory, ServerConfig, create_app, initialize
from pinwarden.server._signing import KeyDirectorySigner
from tests.server.server_harness import (
    PASSPHRASE,
    SERVER_PASSPHRASE,
    InitializedData,
    LiveServer,
)

CHANNEL = "com.example.app/prod"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"  # keys do not depend on the backend


def _root_kids(keyring_path: Path) -> set[str]:
    return {key.kid for key in load_keyring(keyring_path.read_bytes()).root_keys}


def _key_files(key_dir: Path) -> set[str]:
    return {path.stem for path in (key_dir / "keys").iterdir()}


def test_init_from_an_offline_directory_gives_the_server_no_root_key(
    initialized: InitializedData,
) -> None:
    key_dir = Path(initialized.data.key_dir)
    keyring = load_keyring(initialized.keyring_path.read_bytes())
    assert _key_files(key_dir) == {key.kid for key in keyring.online_keys}
    assert OnlineKeyDirectory(key_dir).root_key_files() == []
    assert not initialized.data.development_root_key_dir.exists()
    # The twin: the offline directory it came from does hold the root keys.
    assert len(OnlineKeyDirectory(initialized.offline_key_dir).root_key_files()) == 3


def test_init_without_keys_makes_development_root_keys_outside_the_server_key_dir(
    tmp_path: Path,
) -> None:
    data = DataDirectory(tmp_path / "data")
    result = initialize(data, PASSPHRASE, database_url=f"sqlite:///{tmp_path / 'dev.db'}")
    assert result.development_root_keys == data.development_root_key_dir
    roots = _root_kids(data.key_dir / "keyring.json")
    assert len(roots) == 3 and not roots & _key_files(data.key_dir)
    assert roots <= _key_files(data.development_root_key_dir)


def test_the_server_refuses_a_key_directory_holding_root_keys(
    tmp_path: Path, template_key_dir: Path
) -> None:
    full = tmp_path / "full"
    shutil.copytree(template_key_dir, full)
    with pytest.raises(KeyStoreError, match="root private keys"):
        KeyDirectorySigner(full, PASSPHRASE)
    config = ServerConfig(database_url="sqlite://", key_dir=full, passphrase=PASSPHRASE)
    with pytest.raises(KeyStoreError, match="export-online"):
        create_app(config)
    data = DataDirectory(tmp_path / "data")  # init does not take such a directory either
    shutil.copytree(template_key_dir, data.key_dir)
    with pytest.raises(KeyStoreError, match="root private keys"):
        initialize(data, PASSPHRASE, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    # The twin: the same keys exported without the root keys are taken.
    KeyDirectory(full).export_online(tmp_path / "server-keys")
    assert KeyDirectorySigner(tmp_path / "server-keys", PASSPHRASE).keyring.version == 1


def test_serve_refuses_a_data_directory_whose_keys_include_root_keys(
    initialized: InitializedData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data directory made before the root keys moved offline: serve says how to move them."""
    offline = KeyDirectory(initialized.offline_key_dir)
    root = offline.current_keyring().root_keys[0].kid
    shutil.copy(offline.path / "keys" / f"{root}.pem", initialized.data.key_dir / "keys")
    passphrase = tmp_path / "passphrase"
    passphrase.write_bytes(SERVER_PASSPHRASE)
    passphrase.chmod(0o600)
    data = str(initialized.data.path)
    status = main(["serve", "--data", data, "--passphrase-file", str(passphrase), "--port", "1"])
    err = capsys.readouterr().err
    assert status == 2 and "root private keys" in err and f"{root}.pem" in err


def test_the_server_key_directory_has_no_way_to_read_a_root_key(live_server: LiveServer) -> None:
    for name in ("root_signers", "rotate_online", "rotate_root", "init"):
        assert not hasattr(OnlineKeyDirectory, name) and hasattr(KeyDirectory, name)
    assert type(live_server.services.signer._directory) is OnlineKeyDirectory
    spec = httpx.get(f"{live_server.url}/v1/admin/openapi.json").json()
    assert not [path for path in spec["paths"] if "rotate" in path]


@pytest.fixture
def decrypted_kids(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every key id ``SigningKey.from_pem`` decrypts from now on, in this process."""
    seen: list[str | None] = []
    original = SigningKey.from_pem

    def spy(data: bytes, passphrase: Passphrase | None, kid: str | None = None) -> SigningKey:
        seen.append(kid)
        return original(data, passphrase, kid)

    monkeypatch.setattr(SigningKey, "from_pem", spy)
    return seen


def test_re_signing_after_an_offline_rotation_decrypts_online_keys_only(
    live_server: LiveServer, decrypted_kids: list[str | None]
) -> None:
    initialized = live_server.initialized
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL})
        rule = {"pattern": "legacy.example.test", "mode": "disabled"}
        client.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule)
        assert client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).status_code == 200
        assert initialized.rotate_online_offline() == 2  # offline: this decrypts root keys
        roots = _root_kids(initialized.keyring_path)
        assert roots <= set(decrypted_kids)  # the twin: the spy sees a root key decrypted
        decrypted_kids.clear()
        resigned = client.post("/v1/admin/resign", json={"reason": "rotated offline"})
    assert resigned.status_code == 200 and resigned.json()["keyring_version"] == 2
    onlines = {key.kid for key in load_keyring(initialized.keyring_path.read_bytes()).online_keys}
    assert decrypted_kids and set(decrypted_kids) == onlines


def test_a_running_server_refuses_to_sign_once_a_root_key_appears(
    live_server: LiveServer,
) -> None:
    initialized = live_server.initialized
    assert initialized.rotate_online_offline() == 2
    offline = KeyDirectory(initialized.offline_key_dir)
    root = offline.current_keyring().root_keys[0].kid
    shutil.copy(offline.path / "keys" / f"{root}.pem", initialized.data.key_dir / "keys")
    with live_server.client() as client:
        refused = client.post("/v1/admin/resign", json={})
        assert refused.status_code == 503 and "root private keys" in refused.json()["error"]
        (initialized.data.key_dir / "keys" / f"{root}.pem").unlink()
        accepted = client.post("/v1/admin/resign", json={})  # the twin
    assert accepted.status_code == 200 and accepted.json()["keyring_version"] == 2
