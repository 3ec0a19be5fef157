"""``pinwarden export-static``: the served bytes as files, at the same paths, for nginx, a CDN or
object storage (docs/server.md, "Static export"). Clients verify signatures, so any host can
serve them.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden.server._models import Channel, KeyringRecord
from pinwarden.server._publish import latest_document

__all__ = ["export_static"]


def _write(path: Path, body: bytes) -> None:
    """Write through a temporary file and rename, so a web server never serves half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_bytes(body)
    os.replace(staging, path)


def export_static(session: Session, out_dir: Path) -> list[Path]:
    """Write ``v1/channels/<channel>/pinset`` and ``…/keyring/<N>`` under ``out_dir``."""
    written: list[Path] = []
    keyrings = list(session.scalars(select(KeyringRecord).order_by(KeyringRecord.version)))
    for channel in session.scalars(select(Channel).order_by(Channel.name)):
        document = latest_document(session, channel)
        if document is None:
            continue
        base = out_dir / "v1" / "channels" / channel.name
        _write(base / "pinset", document.body)
        written.append(base / "pinset")
        for keyring in keyrings:
            _write(base / "keyring" / str(keyring.version), keyring.body)
            written.append(base / "keyring" / str(keyring.version))
    return written
