"""The public read path's state: the latest signed pin set of each channel and every keyring,
as bytes in memory with their response headers precomputed.

Nothing on the read path touches the database, so it keeps serving the last published documents
while the database is down (issue: replicas).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["PINSET_MEDIA_TYPE", "PublishedStore", "ServedDocument", "etag_for"]

# RFC 7515 §9.2.1: a JWS in the JSON serialization.
PINSET_MEDIA_TYPE = b"application/jose+json"


def etag_for(version: int, body: bytes) -> str:
    """A strong ETag that changes with every version and every byte."""
    return f'"v{version}-{hashlib.sha256(body).hexdigest()[:32]}"'


@dataclass(frozen=True)
class ServedDocument:
    """A signed document and the raw ASGI headers of its 200 and 304 responses."""

    version: int
    body: bytes
    etag: str
    cache_control: str
    headers_ok: list[tuple[bytes, bytes]] = field(repr=False)
    headers_not_modified: list[tuple[bytes, bytes]] = field(repr=False)

    @classmethod
    def build(cls, version: int, body: bytes, etag: str, max_age: int) -> ServedDocument:
        cache_control = f"public, max-age={max_age}, no-transform"
        common = [
            (b"etag", etag.encode()),
            (b"cache-control", cache_control.encode()),
            (b"x-pinwarden-version", str(version).encode()),
        ]
        return cls(
            version,
            body,
            etag,
            cache_control,
            [
                (b"content-type", PINSET_MEDIA_TYPE),
                (b"content-length", str(len(body)).encode()),
                *common,
            ],
            common,
        )

    def matches(self, if_none_match: bytes) -> bool:
        """RFC 9110 §13.1.2: ``*`` or any listed tag equal under weak comparison."""
        own = self.etag.encode()
        for candidate in if_none_match.split(b","):
            tag = candidate.strip()
            if tag == b"*" or tag.removeprefix(b"W/") == own:
                return True
        return False


class PublishedStore:
    """Channel name to its newest served pin set; keyring version to its bytes.

    Thread rule: any thread may call any method. The event loop serves and applies publishes,
    ``StoreSync.load`` reads in a worker thread, and the synchronous admin routes run in the
    thread pool, so the store cannot have one owning thread. Instead its maps are copy-on-write:
    a writer holds ``_write_lock``, builds a new map and swaps the attribute in one assignment;
    a map, once assigned, is never changed. A reader takes no lock (the pin-set path stays one
    dictionary lookup) and iterates a map that cannot change under it; a writer never loses a
    concurrent writer's change. Writes are rare (a publish, a reload), reads are every request.
    """

    def __init__(self) -> None:
        self._write_lock = threading.Lock()
        self._pinsets: Mapping[str, ServedDocument] = {}
        self._keyrings: Mapping[int, bytes] = {}
        self._channels: frozenset[str] = frozenset()

    def pinset(self, channel: str) -> ServedDocument | None:
        return self._pinsets.get(channel)

    def put_pinset(self, channel: str, document: ServedDocument) -> bool:
        """Keep ``document`` if it is newer than the one held; say whether it was."""
        return bool(self.put_pinsets([(channel, document)]))

    def put_pinsets(self, documents: Iterable[tuple[str, ServedDocument]]) -> list[tuple[str, int]]:
        """Keep each document newer than the one held (one copy for the lot); the
        ``(channel, version)`` pairs kept."""
        with self._write_lock:
            pinsets = dict(self._pinsets)
            kept: list[tuple[str, int]] = []
            for channel, document in documents:
                held = pinsets.get(channel)
                if held is None or held.version < document.version:
                    pinsets[channel] = document
                    kept.append((channel, document.version))
            if kept:
                self._pinsets = pinsets
                self._channels = self._channels | {channel for channel, _ in kept}
        return kept

    def keyring(self, version: int) -> bytes | None:
        return self._keyrings.get(version)

    def put_keyrings(self, keyrings: Iterable[tuple[int, bytes]]) -> None:
        with self._write_lock:
            self._keyrings = {**self._keyrings, **dict(keyrings)}

    def put_keyring(self, version: int, body: bytes) -> None:
        self.put_keyrings([(version, body)])

    def keyring_versions(self) -> set[int]:
        return set(self._keyrings)

    def has_channel(self, channel: str) -> bool:
        return channel in self._channels

    def add_channel(self, channel: str) -> None:
        with self._write_lock:
            self._channels = self._channels | {channel}

    def set_channels(self, names: set[str]) -> None:
        """The channels the database has, and every channel a pin set is held for."""
        with self._write_lock:
            self._channels = frozenset(names) | self._pinsets.keys()

    def versions(self) -> dict[str, int]:
        return {channel: document.version for channel, document in self._pinsets.items()}
