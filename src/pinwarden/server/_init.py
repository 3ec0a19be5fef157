"""``pinwarden init``: a data directory with its database, server key directory and admin token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pinwarden.document import KeyDirectory, OnlineKeyDirectory
from pinwarden.server._audit import record
from pinwarden.server._config import DataDirectory
from pinwarden.server._database import make_engine, make_session_factory, upgrade_database
from pinwarden.server._errors import ConflictError
from pinwarden.server._models import utc_now
from pinwarden.server._signing import refuse_root_keys, sync_keyrings
from pinwarden.server._tokens import create_token

__all__ = ["InitResult", "initialize"]

_ACTOR = "pinwarden-init"


@dataclass(frozen=True)
class InitResult:
    admin_token: str  # shown once; only its hash is stored
    database_url: str
    keyring_version: int
    # Set when init made the root keys itself (development): they must leave the server.
    development_root_keys: Path | None = None


def _server_keys(data: DataDirectory, passphrase: bytes, keys_from: Path | None) -> Path | None:
    """Fill ``DIR/keys`` with keyrings and online keys only; the development root-key directory
    when one was made here."""
    made = None
    if keys_from is not None:
        OnlineKeyDirectory(keys_from).export_online(data.key_dir)
    elif not OnlineKeyDirectory(data.key_dir).exists():
        offline = KeyDirectory(data.development_root_key_dir)
        if not offline.exists():
            offline.init(passphrase)
        offline.export_online(data.key_dir)
        made = offline.path
    server_keys = OnlineKeyDirectory(data.key_dir)
    refuse_root_keys(server_keys)
    server_keys.online_signers(passphrase)  # the passphrase opens them: fail here, not at serve
    return made


def initialize(
    data: DataDirectory,
    passphrase: bytes,
    *,
    database_url: str | None = None,
    keys_from: Path | None = None,
) -> InitResult:
    """Fill the server key directory, migrate, make an admin token.

    ``keys_from``: an offline key directory (``pinwarden keys init``), or an export of one; only
    its keyrings and online keys are copied. Without it, and without a key directory already in
    ``DIR/keys``, root keys are made for development in ``DIR/offline-root-keys`` (the server never
    reads them; move them off the server) and the online keys exported from there.
    Raises ``ConflictError`` or ``KeyStoreError``.
    """
    if data.is_initialized():
        raise ConflictError(f"{data.path} is already initialized")
    data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    development_root_keys = _server_keys(data, passphrase, keys_from)
    url = data.database_url(database_url)
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        with make_session_factory(engine).begin() as session:
            keyring = sync_keyrings(session, data.key_dir)
            _, token = create_token(session, "initial-admin", ["admin"], _ACTOR)
            record(session, _ACTOR, "server.init", f"data:{data.path.resolve()}", {})
    finally:
        engine.dispose()
    settings = {"created_at": utc_now().isoformat()}
    if database_url:
        settings["database_url"] = database_url
    data.write_settings(settings)
    return InitResult(token, url, keyring.version, development_root_keys)
