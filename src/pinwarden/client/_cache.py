"""The on-disk cache of the dynamic client: last pin set, followed keyrings, and the version floor.

Nothing here is trusted as stored: the client verifies every byte it loads again (signature,
expiry, floor) exactly as if it had just been fetched. What the cache must guarantee is only:

- an atomic write: a crash mid-write leaves the previous file whole (temporary file in the same
  directory, ``fsync``, ``os.replace``, ``fsync`` of the directory);
- a version floor kept apart from the document, so that deleting or replacing ``pinset.json``
  with an older signed document cannot roll the client back (TUF rollback attack);
- the floor only ever rises: ``raise_floor`` reads, compares and writes under a lock (a thread
  lock, and ``flock`` on ``.lock`` so that two processes sharing the directory cannot interleave;
  on Windows the thread lock alone). What the client does when ``floor.json`` is damaged or
  missing is ``TrustStore``'s business: it then does not trust the cached pin set.

Each channel has its own directory under the ``cache_dir`` the app gives (docs/spec.md §8: the
floor is per channel), so two channels sharing a ``cache_dir`` never read each other's pin set or
floor. Layout (directories created ``0700``, files ``0600``)::

    <cache_dir>/
      .lock                  the lock of moving a cache of the older layout (empty)
      channel-<name>/        one channel: its name percent-encoded (a SHA-256 if very long)
        pinset.json          {"etag": ..., "checked": time of the last answer, "document": base64}
        keyring-<N>.json     each keyring version the client followed past the one it shipped with
        floor.json           {"pinset_version": N, "keyring_version": M}
        .lock                the lock file of floor updates (empty)

A cache of the older layout (those files directly in ``cache_dir``, one channel per directory) is
moved into the directory of the channel its pin set names, by the first client of that channel
that starts; with no pin set to name one, by the first client that starts (``for_channel``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pinwarden.client._fetch import usable_etag
from pinwarden.errors import PinwardenError

if sys.platform != "win32":
    import fcntl

__all__ = ["CacheError", "CachedPinset", "PinCache", "VersionFloor", "channel_directory_name"]

_PINSET = "pinset.json"
_FLOOR = "floor.json"
_LOCK = ".lock"
_KEYRING = re.compile(r"^keyring-([1-9][0-9]{0,9})\.json$")
# A cache file far larger than any document it may hold is not read at all.
_MAX_CACHE_FILE = 1024 * 1024
# Percent-encoded channel names longer than this are hashed: a file name has at most 255 bytes.
_MAX_READABLE_NAME = 200


class CacheError(PinwardenError):
    """A cache file is missing a part, unreadable, or not in the cache's format."""


@dataclass(frozen=True)
class CachedPinset:
    """The signed pin-set bytes as stored, the ETag the server sent with them, and when the server
    last confirmed them (so a restarted app does not fetch again before the refresh hint)."""

    raw: bytes
    etag: str | None
    checked: datetime | None = None


@dataclass(frozen=True)
class VersionFloor:
    """The highest pin-set and keyring versions ever accepted: nothing lower is accepted again."""

    pinset_version: int = 0
    keyring_version: int = 0

    def raised_to(self, other: VersionFloor) -> VersionFloor:
        return VersionFloor(
            max(self.pinset_version, other.pinset_version),
            max(self.keyring_version, other.keyring_version),
        )


def _write_atomic(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# Floor updates of every cache directory in this process; ``flock`` orders them across processes.
# Re-entrant: moving an older cache raises the channel's floor while holding the top-level lock.
_FLOOR_LOCK = threading.RLock()


@contextlib.contextmanager
def _floor_locked(directory: Path) -> Iterator[None]:
    with _FLOOR_LOCK:
        descriptor = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if sys.platform != "win32":
                fcntl.flock(descriptor, fcntl.LOCK_EX)  # released when the descriptor closes
            yield
        finally:
            os.close(descriptor)


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CACHE_FILE + 1)
    except OSError as error:
        raise CacheError(f"{path.name}: {error.strerror or error}") from error
    if len(data) > _MAX_CACHE_FILE:
        raise CacheError(f"{path.name}: larger than any document it may hold")
    return data


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(_read(path))
    except (ValueError, UnicodeDecodeError) as error:
        raise CacheError(f"{path.name}: not JSON ({error})") from None
    if not isinstance(value, dict):
        raise CacheError(f"{path.name}: not a JSON object")
    return value


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode("utf-8")


def channel_directory_name(channel: str) -> str:
    """The name of a channel's directory: ``channel-`` and the percent-encoded channel name (so
    ``/``, ``.`` and ``..`` cannot leave ``cache_dir``), or its SHA-256 when that is too long."""
    # ``surrogatepass``: a channel= with a lone surrogate still names one directory of its own.
    encoded = quote(channel, safe="", errors="surrogatepass")
    if len(encoded) > _MAX_READABLE_NAME:
        encoded = "sha256-" + hashlib.sha256(channel.encode("utf-8", "surrogatepass")).hexdigest()
    return f"channel-{encoded}"


ClaimedChannel = Callable[[bytes], "str | None"]
"""The channel a cached pin set names, read without verifying it (only to place the file)."""


class PinCache:
    """One channel's cache directory (see the module docstring for the layout)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def for_channel(
        cls, cache_dir: str | os.PathLike[str], channel: str, claimed_channel: ClaimedChannel
    ) -> PinCache:
        """The cache of ``channel`` under ``cache_dir``, after moving a cache of the older layout
        into it if that cache is this channel's (see the module docstring)."""
        base = Path(cache_dir)
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        cache = cls(base / channel_directory_name(channel))
        _adopt_older_layout(base, cache, channel, claimed_channel)
        return cache

    def load_pinset(self) -> CachedPinset | None:
        """The stored pin set, ``None`` if there is none; ``CacheError`` if it is damaged.

        An ETag that could not be sent back as it is (``usable_etag``) is dropped: the document
        is verified again anyway, and the next fetch is then unconditional.
        """
        path = self.directory / _PINSET
        if not path.exists():
            return None
        stored = _read_json_object(path)
        etag, checked, document = stored.get("etag"), stored.get("checked"), stored.get("document")
        if not isinstance(document, str) or not all(
            value is None or isinstance(value, str) for value in (etag, checked)
        ):
            raise CacheError(f"{_PINSET}: not in the cache's format")
        try:
            raw = base64.b64decode(document, validate=True)
            when = None if checked is None else datetime.fromisoformat(checked)
        except (binascii.Error, ValueError):
            raise CacheError(f"{_PINSET}: not in the cache's format") from None
        if when is not None and when.utcoffset() is None:
            raise CacheError(f"{_PINSET}: the checked time has no time zone")
        return CachedPinset(raw, usable_etag(etag), when)

    def store_pinset(self, cached: CachedPinset) -> None:
        document = base64.b64encode(cached.raw).decode("ascii")
        checked = None if cached.checked is None else cached.checked.isoformat()
        stored = {"etag": cached.etag, "checked": checked, "document": document}
        _write_atomic(self.directory / _PINSET, _dump(stored))

    def has_pinset(self) -> bool:
        return (self.directory / _PINSET).exists()

    def discard_pinset(self) -> None:
        """Remove a stored pin set that failed verification (the floor stays)."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / _PINSET).unlink()

    def keyring_versions(self) -> list[int]:
        """The versions of the stored keyrings, lowest first."""
        found = (_KEYRING.match(path.name) for path in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in found if match)

    def load_keyring(self, version: int) -> bytes:
        return _read(self.directory / f"keyring-{version}.json")

    def store_keyring(self, version: int, raw: bytes) -> None:
        _write_atomic(self.directory / f"keyring-{version}.json", raw)

    def load_floor(self) -> VersionFloor | None:
        """The stored floor; ``None`` if there is none; ``CacheError`` if it is damaged."""
        path = self.directory / _FLOOR
        if not path.exists():
            return None
        stored = _read_json_object(path)
        pinset, keyring = stored.get("pinset_version"), stored.get("keyring_version")
        if not all(type(value) is int and value >= 0 for value in (pinset, keyring)):
            raise CacheError(f"{_FLOOR}: not in the cache's format")
        return VersionFloor(pinset, keyring)  # type: ignore[arg-type]

    def raise_floor(self, floor: VersionFloor) -> VersionFloor:
        """Store the higher of ``floor`` and the stored floor; the floor now stored.

        Read, compare and write happen under the floor lock, so a concurrent raise to a higher
        floor is never overwritten by a lower one. A damaged file is replaced by ``floor``: the
        caller vouches for it (``TrustStore`` raises a lost floor only with a pin set it accepted).
        """
        with _floor_locked(self.directory):
            try:
                stored = self.load_floor()
            except CacheError:
                stored = None
            merged = floor if stored is None else stored.raised_to(floor)
            if merged != stored:
                _write_atomic(
                    self.directory / _FLOOR,
                    _dump(
                        {
                            "pinset_version": merged.pinset_version,
                            "keyring_version": merged.keyring_version,
                        }
                    ),
                )
            return merged


def _adopt_older_layout(
    base: Path, cache: PinCache, channel: str, claimed_channel: ClaimedChannel
) -> None:
    """Move the files of a one-channel cache directory (the older layout) into ``cache``.

    They are ``channel``'s if their pin set names it, or if there is no readable pin set to name
    another. Nothing is trusted by moving it: the client verifies every file again on load, and a
    floor that does not move along with its pin set is then *lost* (``TrustStore``). A file the
    channel directory already has is not overwritten; the older floor is merged into it.
    """
    older = PinCache(base)
    with _floor_locked(base):
        pinset_path, floor_path = base / _PINSET, base / _FLOOR
        keyrings = older.keyring_versions()
        if not (pinset_path.exists() or floor_path.exists() or keyrings):
            return
        try:
            stored = older.load_pinset()
        except CacheError:
            stored = None  # damaged: moved all the same, and refused on load
        owner = claimed_channel(stored.raw) if stored is not None else None
        if owner is not None and owner != channel:
            return  # another channel's cache: its own client moves it
        try:
            floor = older.load_floor()
        except CacheError:
            floor = None
        if floor is not None:
            cache.raise_floor(floor)
        for name in [f"keyring-{version}.json" for version in keyrings] + [_PINSET]:
            source, target = base / name, cache.directory / name
            if source.exists() and not target.exists():
                os.replace(source, target)
            with contextlib.suppress(FileNotFoundError):
                source.unlink()
        with contextlib.suppress(FileNotFoundError):
            floor_path.unlink()
        _fsync_directory(cache.directory)
