"""Where a server keeps its state, and the settings one ``pinwarden serve`` process runs with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pinwarden.server._database import sqlite_url

__all__ = ["DataDirectory", "ServerConfig"]


class DataDirectory:
    """``DIR/pinwarden.db`` (SQLite), ``DIR/keys/`` (the server key directory: keyrings and online
    keys, never a root key), ``DIR/server.json``.

    ``server.json`` records a database URL given to ``pinwarden init`` so ``serve`` needs only
    ``--data``. ``DIR/passphrase`` exists only where ``pinwarden quickstart`` (``make run``) made a
    development passphrase; production passes ``--passphrase-env`` or ``--passphrase-file``.
    ``DIR/offline-root-keys/`` exists only where ``init`` made the root keys for development; the
    server never reads it, and it belongs off the server.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def database_file(self) -> Path:
        return self.path / "pinwarden.db"

    @property
    def key_dir(self) -> Path:
        return self.path / "keys"

    @property
    def development_root_key_dir(self) -> Path:
        return self.path / "offline-root-keys"

    @property
    def settings_file(self) -> Path:
        return self.path / "server.json"

    @property
    def dev_passphrase_file(self) -> Path:
        return self.path / "passphrase"

    def is_initialized(self) -> bool:
        return self.settings_file.exists()

    def settings(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def write_settings(self, settings: dict[str, Any]) -> None:
        """Written 0600: a PostgreSQL URL may carry a password."""
        fd = os.open(self.settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(settings, handle, indent=2, sort_keys=True)
            handle.write("\n")

    def database_url(self, override: str | None = None) -> str:
        """``override``, else the URL recorded at init, else the SQLite file in the directory."""
        recorded = self.settings().get("database_url")
        return override or (
            recorded if isinstance(recorded, str) else sqlite_url(self.database_file)
        )


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server process.

    ``passphrase`` unlocks the online signing key; a replica without it serves and pushes but does
    not publish. ``ca_file`` adds trust anchors for the live-chain checks of safe publishing;
    ``observation_max_age`` bounds how old this server's own observation may be to stand in for a
    host it cannot reach. Reports: ``report_burst``/``report_per_minute`` per client address,
    ``report_total_*`` for all clients, and the rows kept (``report_max_rows`` newest, none older
    than ``report_max_age``). Event streams: ``sse_max_streams`` in all,
    ``sse_max_streams_per_client`` per client address.
    """

    database_url: str
    key_dir: Path
    passphrase: bytes | None = None
    public_url: str | None = None
    ca_file: str | None = None
    observation_max_age: timedelta = timedelta(hours=1)
    probe_timeout: float = 5.0
    heartbeat_seconds: float = 15.0
    poll_seconds: float = 2.0
    report_burst: int = 20
    report_per_minute: float = 20.0
    report_total_burst: int = 200
    report_total_per_minute: float = 600.0
    report_max_rows: int = 100_000
    report_max_age: timedelta = timedelta(days=90)
    sse_max_streams: int = 10_000
    sse_max_streams_per_client: int = 50
    migrate: bool = True

    @property
    def default_report_uri(self) -> str | None:
        return f"{self.public_url.rstrip('/')}/v1/reports" if self.public_url else None
