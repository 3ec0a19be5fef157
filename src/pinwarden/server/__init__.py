"""The pin server: stores channels, rules, pins and keys; publishes signed pin sets safely; serves
them with ETag and push; takes violation reports. Needs ``pip install 'pinwarden[server]'``.

Embedding::

    from pinwarden.server import ServerConfig, create_app, initialize

    created = initialize(DataDirectory("var/pinwarden"), passphrase=b"…")
    app = create_app(ServerConfig(database_url=…, key_dir=…, passphrase=b"…"))

``pinwarden init`` / ``pinwarden serve`` do the same from the command line (docs/server.md).
"""

from __future__ import annotations

from pinwarden._public_names import name_exceptions_after
from pinwarden.server._app import Services, create_app
from pinwarden.server._config import DataDirectory, ServerConfig
from pinwarden.server._database import make_engine, upgrade_database
from pinwarden.server._errors import (
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    ScopeError,
    ServerError,
    UnsafePublishError,
    ValidationError,
)
from pinwarden.server._init import InitResult, initialize
from pinwarden.server._tokens import SCOPES

__all__ = [
    "SCOPES",
    "AuthError",
    "ConfigError",
    "ConflictError",
    "DataDirectory",
    "InitResult",
    "NotFoundError",
    "ScopeError",
    "ServerConfig",
    "ServerError",
    "Services",
    "UnsafePublishError",
    "ValidationError",
    "create_app",
    "initialize",
    "make_engine",
    "upgrade_database",
]

name_exceptions_after(__name__, globals(), __all__)
