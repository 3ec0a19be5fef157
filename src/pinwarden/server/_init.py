"""``pinwarden init``: a data directory with its database, key directory and first admin token."""

from __future__ import annotations

from dataclasses import dataclass

from pinwarden.document import KeyDirectory
from pinwarden.server._audit import record
from pinwarden.server._config import DataDirectory
from pinwarden.server._database import make_engine, make_session_factory, upgrade_database
from pinwarden.server._errors import ConflictError
from pinwarden.server._models import utc_now
from pinwarden.server._signing import sync_keyrings
from pinwarden.server._tokens import create_token

__all__ = ["InitResult", "initialize"]

_ACTOR = "pinwarden-init"


@dataclass(frozen=True)
class InitResult:
    admin_token: str  # shown once; only its hash is stored
    database_url: str
    keyring_version: int


def initialize(
    data: DataDirectory, passphrase: bytes, *, database_url: str | None = None
) -> InitResult:
    """Create the key directory (root and online keys, keyring v1), migrate, make an admin token."""
    if data.is_initialized():
        raise ConflictError(f"{data.path} is already initialized")
    data.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = KeyDirectory(data.key_dir)
    if not directory.exists():
        directory.init(passphrase)
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
    return InitResult(token, url, keyring.version)
