"""``pinwarden init``: a data directory with its database, server key directory and admin token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pinwarden.document import KeyDirectory, KeyStoreError, OnlineKeyDirectory
from pinwarden.server._audit import record
from pinwarden.server._config import DataDirectory
from pinwarden.server._database import make_engine, make_session_factory, upgrade_database
from pinwarden.server._errors import ConflictError
from pinwarden.server._models import utc_now
from pinwarden.server._signing import record_token_key, refuse_root_keys, sync_keyrings

if TYPE_CHECKING:
    from pinwarden.hsm import KeyReference
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


def _server_keys(
    data: DataDirectory, passphrase: bytes, keys_from: Path | None, online_key: str | None
) -> Path | None:
    """Fill ``DIR/keys`` with keyrings and online keys (files or token references) only; the
    development root-key directory when one was made here."""
    made = None
    if keys_from is not None:
        OnlineKeyDirectory(keys_from).export_online(data.key_dir)
    elif not OnlineKeyDirectory(data.key_dir).exists():
        offline = KeyDirectory(data.development_root_key_dir)
        if not offline.exists():
            offline.init(passphrase, online_key=_token_reference(online_key, passphrase))
        offline.export_online(data.key_dir)
        made = offline.path
    if online_key is not None:
        record_token_key(data.key_dir, online_key, passphrase)
    server_keys = OnlineKeyDirectory(data.key_dir)
    refuse_root_keys(server_keys)
    try:
        server_keys.online_signers(passphrase)  # the passphrase opens them: fail here, not at serve
    except KeyStoreError as error:
        raise KeyStoreError(
            f"{error}. The server's key files open with the server's passphrase, which "
            "pinwarden keys export-online --server-passphrase-file set (docs/keys.md)"
        ) from None
    return made


def _token_reference(uri: str | None, pin: bytes) -> KeyReference | None:
    if uri is None:
        return None
    from pinwarden.hsm import Pkcs11Uri, reference_to  # the pinwarden[hsm] extra, only here

    return reference_to(Pkcs11Uri.parse(uri), pin)


def initialize(
    data: DataDirectory,
    passphrase: bytes,
    *,
    database_url: str | None = None,
    keys_from: Path | None = None,
    online_key: str | None = None,
) -> InitResult:
    """Fill the server key directory, migrate, make an admin token.

    ``keys_from``: an export of the offline key directory (``pinwarden keys export-online``);
    only its keyrings and online keys are copied. Without it, and without a key directory already
    in ``DIR/keys``, root keys are made for development in ``DIR/offline-root-keys`` (the server
    never reads them; move them off the server) and the online keys exported from there.
    ``online_key``: a ``pkcs11:`` URI (RFC 7512); the online key is that key in a token, and
    ``passphrase`` is the token's PIN (docs/keys.md).
    Raises ``ConflictError`` or ``KeyStoreError``.
    """
    if data.is_initialized():
        raise ConflictError(f"{data.path} is already initialized")
    data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    development_root_keys = _server_keys(data, passphrase, keys_from, online_key)
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
