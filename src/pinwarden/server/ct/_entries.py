"""Log entries as the two read APIs serve them, parsed into ``LogEntry``.

RFC 6962 §3.4: a leaf is a ``MerkleTreeLeaf`` (version 0, leaf type 0, a ``TimestampedEntry``);
its hash covers the certificate (``x509_entry``) or the precertificate's TBSCertificate with the
poison extension already removed by the log (``precert_entry``, with the issuer's key hash). The
``extra_data`` of ``get-entries`` (§4.6) and the chain fingerprints of a static-ct-api data tile
are outside the hash: a log, or anyone between, can put anything there, so names and keys are
never read from them (``chain`` only serves the optional issuer check, which verifies the leaf's
signature first).
"""

from __future__ import annotations

from dataclasses import dataclass

from pinwarden.server.ct._merkle import leaf_hash
from pinwarden.server.ct._wire import MalformedEntry, Reader

__all__ = ["LogEntry", "parse_extra_data", "parse_leaf", "parse_tile"]

_X509_ENTRY, _PRECERT_ENTRY = 0, 1
_MAX_CHAIN = 16


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry: ``der`` is the certificate, or for a precert the TBSCertificate the log
    signed (poison removed); ``issuer_key_hash`` (precert) is SHA-256 of the issuer's SPKI,
    covered by the tree hash. ``chain``: issuer certificates (RFC 6962 ``extra_data``),
    ``fingerprints``: their SHA-256 (static-ct-api), both unauthenticated."""

    index: int
    leaf_hash: bytes
    timestamp: int
    precert: bool
    der: bytes
    issuer_key_hash: bytes | None = None
    chain: tuple[bytes, ...] = ()
    fingerprints: tuple[bytes, ...] = ()


def _timestamped_entry(reader: Reader) -> tuple[int, bool, bytes, bytes | None]:
    timestamp = reader.uint(8)
    entry_type = reader.uint(2)
    if entry_type == _X509_ENTRY:
        der, issuer_key_hash = reader.vector(3), None
    elif entry_type == _PRECERT_ENTRY:
        issuer_key_hash = reader.take(32)
        der = reader.vector(3)
    else:
        raise MalformedEntry(f"unknown entry type {entry_type}")
    reader.vector(2)  # CtExtensions: hashed, otherwise unused here
    if not der:
        raise MalformedEntry("empty certificate")
    return timestamp, entry_type == _PRECERT_ENTRY, der, issuer_key_hash


def parse_leaf(index: int, leaf_input: bytes) -> LogEntry:
    """A ``MerkleTreeLeaf`` (RFC 6962 §3.4), as ``get-entries`` returns it in ``leaf_input``."""
    reader = Reader(leaf_input)
    if reader.uint(1) != 0 or reader.uint(1) != 0:
        raise MalformedEntry("not a v1 timestamped-entry leaf")
    timestamp, precert, der, issuer_key_hash = _timestamped_entry(reader)
    if reader.left:
        raise MalformedEntry("trailing bytes after the leaf")
    return LogEntry(index, leaf_hash(leaf_input), timestamp, precert, der, issuer_key_hash)


def parse_extra_data(entry: LogEntry, extra_data: bytes) -> LogEntry:
    """``entry`` with the issuer chain of its ``extra_data`` (§4.6): for an x509 entry a
    ``certificate_chain``, for a precert the ``pre_certificate`` and then its chain. Unreadable
    extra data leaves the chain empty: it is optional information, never a reason to fail."""
    try:
        reader = Reader(extra_data)
        if entry.precert:
            reader.vector(3)
        chain = Reader(reader.vector(3))
        certificates: list[bytes] = []
        while chain.left and len(certificates) < _MAX_CHAIN:
            certificates.append(chain.vector(3))
    except MalformedEntry:
        return entry
    return LogEntry(
        entry.index,
        entry.leaf_hash,
        entry.timestamp,
        entry.precert,
        entry.der,
        entry.issuer_key_hash,
        chain=tuple(certificates),
    )


def parse_tile(data: bytes, first_index: int, count: int) -> list[LogEntry]:
    """A static-ct-api data tile: ``count`` ``TileLeaf`` structures. The leaf hash is over the
    ``MerkleTreeLeaf`` made of the ``timestamped_entry`` alone; the precertificate and the
    chain fingerprints that follow it are outside the tree."""
    reader = Reader(data)
    entries = []
    for position in range(count):
        start = reader.offset
        timestamp, precert, der, issuer_key_hash = _timestamped_entry(reader)
        hashed = b"\x00\x00" + data[start : reader.offset]
        if precert:
            reader.vector(3)  # the submitted precertificate, poison and all: not used
        chain = Reader(reader.vector(2))
        if chain.left % 32:
            raise MalformedEntry("a chain fingerprint list of a length not a multiple of 32")
        fingerprints = tuple(chain.take(32) for _ in range(min(chain.left // 32, _MAX_CHAIN)))
        entries.append(
            LogEntry(
                first_index + position,
                leaf_hash(hashed),
                timestamp,
                precert,
                der,
                issuer_key_hash,
                fingerprints=fingerprints,
            )
        )
    if reader.left:
        raise MalformedEntry(f"trailing bytes after {count} tile entries")
    return entries
