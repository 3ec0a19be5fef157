"""Files that hold secrets: created with their final mode, never replacing another file."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_new_file"]


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from its first byte and write ``data``.

    The mode is set by ``open`` itself, so no other user can open the file in the meantime.
    ``FileExistsError`` if ``path`` exists, ``OSError`` if it cannot be created.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
