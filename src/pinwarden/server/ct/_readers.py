"""Reading a log through its API: RFC 6962 (``get-sth``, ``get-entries``,
``get-proof-by-hash``) or the static-ct-api (checkpoint, hash tiles, data tiles, issuers).

Both give the same three things: the verified tree head, the entries from a position in
batches, and the collapsed tree at the head's size (to start at the end of a new log; checked
against the head's root before it is used). A log that signs a head and then serves data that
does not add up to it is ``LogMisbehaved``; a log that cannot be reached or serves garbage is
``LogFetchError`` or ``MalformedEntry``, retried next round.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any, Protocol

from pinwarden.server.ct._entries import LogEntry, parse_extra_data, parse_leaf, parse_tile
from pinwarden.server.ct._fetch import Fetcher, LogFetchError, LogNotFound
from pinwarden.server.ct._heads import (
    BadSignature,
    BadTreeHead,
    TreeHead,
    b64,
    parse_checkpoint,
    tree_head,
)
from pinwarden.server.ct._loglist import CtLog
from pinwarden.server.ct._merkle import CollapsedTree, leaf_hash, node_hash
from pinwarden.server.ct._wire import MalformedEntry

__all__ = ["Batch", "LogMisbehaved", "LogReader", "reader_for", "tile_path"]

_MAX_JSON = 64 * 1024 * 1024
_MAX_TILE = 8 * 1024 * 1024  # a data tile of 256 entries; hash tiles are 8 KiB
_TILE = 256

# A batch of (leaf hash, parsed entry or None when the leaf did not parse).
Batch = list[tuple[bytes, LogEntry | None]]


class LogMisbehaved(Exception):
    """The log signed something its data contradicts, or a head that does not verify."""


class LogReader(Protocol):
    def head(self) -> TreeHead: ...

    def batches(self, start: int, end: int) -> Iterator[Batch]: ...

    def right_edge(self, head: TreeHead) -> CollapsedTree: ...

    def issuer(self, entry: LogEntry) -> bytes | None: ...


def reader_for(log: CtLog, fetcher: Fetcher, batch_size: int) -> LogReader:
    if log.api == "static":
        return StaticReader(log, fetcher)
    return Rfc6962Reader(log, fetcher, batch_size)


def _json(fetcher: Fetcher, url: str) -> dict[str, Any]:
    body = fetcher.get(url, limit=_MAX_JSON)
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedEntry(f"{url}: not JSON") from None
    if not isinstance(answer, dict):
        raise MalformedEntry(f"{url}: not a JSON object")
    return answer


class Rfc6962Reader:
    """RFC 6962 §4. ``get-entries`` may answer fewer entries than asked (a short batch, §4.6
    allows it): the next request starts after the last one received."""

    def __init__(self, log: CtLog, fetcher: Fetcher, batch_size: int) -> None:
        self._log, self._fetcher, self._batch = log, fetcher, batch_size

    def _url(self, endpoint: str, **query: object) -> str:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self._log.url}ct/v1/{endpoint}{suffix}"

    def head(self) -> TreeHead:
        answer = _json(self._fetcher, self._url("get-sth"))
        try:
            head = tree_head(
                answer.get("tree_size"),
                b64(answer.get("sha256_root_hash"), "sha256_root_hash"),
                answer.get("timestamp"),
            )
            self._log.key.verify_tree_head(
                head, b64(answer.get("tree_head_signature"), "tree_head_signature")
            )
        except BadSignature as error:
            raise LogMisbehaved(str(error)) from None
        except BadTreeHead as error:
            raise MalformedEntry(f"get-sth: {error}") from None
        return head

    def _entries(self, start: int, last: int) -> list[dict[str, Any]]:
        answer = _json(self._fetcher, self._url("get-entries", start=start, end=last))
        entries = answer.get("entries")
        if not isinstance(entries, list) or not entries or len(entries) > last - start + 1:
            raise MalformedEntry(f"get-entries from {start}: no entries, or more than asked")
        if not all(isinstance(entry, dict) for entry in entries):
            raise MalformedEntry(f"get-entries from {start}: an entry is not an object")
        return entries

    def batches(self, start: int, end: int) -> Iterator[Batch]:
        position = start
        while position < end:
            last = min(end, position + self._batch) - 1
            batch: Batch = []
            for entry in self._entries(position, last):
                try:
                    leaf = b64(entry.get("leaf_input"), "leaf_input")
                except BadTreeHead as error:
                    raise MalformedEntry(f"entry {position}: {error}") from None
                try:
                    parsed: LogEntry | None = parse_leaf(position, leaf)
                except MalformedEntry:
                    parsed = None
                if parsed is not None:
                    parsed = _with_extra_data(parsed, entry.get("extra_data"))
                batch.append((parsed.leaf_hash if parsed else leaf_hash(leaf), parsed))
                position += 1
            yield batch

    def right_edge(self, head: TreeHead) -> CollapsedTree:
        if head.size == 0:
            return CollapsedTree()
        last_hash, _ = next(self.batches(head.size - 1, head.size))[0]
        answer = _json(
            self._fetcher,
            self._url(
                "get-proof-by-hash", hash=base64.b64encode(last_hash).decode(), tree_size=head.size
            ),
        )
        path = answer.get("audit_path")
        if answer.get("leaf_index") != head.size - 1 or not isinstance(path, list):
            raise LogMisbehaved("get-proof-by-hash does not prove the last entry")
        try:
            hashes = [b64(node, "audit_path") for node in path]
            tree = CollapsedTree.from_right_edge(head.size, last_hash, hashes)
        except (BadTreeHead, ValueError) as error:
            raise LogMisbehaved(f"get-proof-by-hash: {error}") from None
        _check_root(tree, head)
        return tree

    def issuer(self, entry: LogEntry) -> bytes | None:
        return entry.chain[0] if entry.chain else None


def _with_extra_data(entry: LogEntry, extra: object) -> LogEntry:
    """The entry with the issuers of its ``extra_data``; unreadable extra data is ignored."""
    try:
        return parse_extra_data(entry, b64(extra, "extra_data"))
    except BadTreeHead:
        return entry


def _check_root(tree: CollapsedTree, head: TreeHead) -> None:
    if tree.root() != head.root:
        raise LogMisbehaved(
            f"the entries up to {head.size} do not hash to the signed root: the log forked or "
            "serves other entries than it signed"
        )


def tile_path(index: int) -> str:
    """c2sp.org/tlog-tiles: 3-digit path elements, all but the last prefixed with "x"."""
    digits = f"{index:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{group}" for group in groups[:-1]), groups[-1]])


class StaticReader:
    """c2sp.org/static-ct-api and c2sp.org/tlog-tiles. A partial tile that is gone (the log has
    since filled it) is read from the full tile instead, as the spec advises."""

    def __init__(self, log: CtLog, fetcher: Fetcher) -> None:
        self._log, self._fetcher = log, fetcher
        self._issuers: dict[bytes, bytes] = {}

    def head(self) -> TreeHead:
        body = self._fetcher.get(f"{self._log.url}checkpoint", limit=16_384)
        try:
            return parse_checkpoint(body, self._log.origin, self._log.key)
        except BadSignature as error:
            raise LogMisbehaved(str(error)) from None
        except BadTreeHead as error:
            raise MalformedEntry(f"checkpoint: {error}") from None

    def _tile(self, kind: str, index: int, width: int) -> tuple[bytes, int]:
        """A tile's bytes and how many entries of it they hold (``width``, or 256 when the full
        tile stood in for a missing partial one)."""
        base = f"{self._log.url}tile/{kind}/{tile_path(index)}"
        if width < _TILE:
            try:
                return self._fetcher.get(f"{base}.p/{width}", limit=_MAX_TILE), width
            except LogNotFound:
                pass
        return self._fetcher.get(base, limit=_MAX_TILE), _TILE

    def batches(self, start: int, end: int) -> Iterator[Batch]:
        for index in range(start // _TILE, (end - 1) // _TILE + 1 if end > start else 0):
            first = index * _TILE
            data, count = self._tile("data", index, min(_TILE, end - first))
            entries = parse_tile(data, first, count)
            yield [(entry.leaf_hash, entry) for entry in entries if start <= entry.index < end]

    def _hashes(self, level: int, index: int, size: int) -> list[bytes]:
        """The hashes of tile ``index`` at ``level`` for a tree of ``size`` leaves."""
        width = min(_TILE, (size >> (8 * level)) - index * _TILE)
        data, _ = self._tile(str(level), index, width)
        if len(data) < 32 * width:
            raise MalformedEntry(f"tile {level}/{index} is shorter than {width} hashes")
        return [data[i : i + 32] for i in range(0, 32 * width, 32)]

    def right_edge(self, head: TreeHead) -> CollapsedTree:
        """Each complete subtree's root from the tile holding its hashes at the nearest tile
        level below it, hashed up the levels between (the spec: "the levels between can be
        reconstructed by hashing the leaves")."""
        nodes = []
        for height in reversed(range(head.size.bit_length())):
            if not head.size >> height & 1:
                continue
            first_leaf = head.size >> (height + 1) << (height + 1)
            level, rest = divmod(height, 8)
            first = first_leaf >> (8 * level)
            hashes = self._hashes(level, first // _TILE, head.size)
            layer = hashes[first % _TILE : first % _TILE + (1 << rest)]
            if len(layer) != 1 << rest:
                raise LogMisbehaved(f"tile {level}/{first // _TILE} is too narrow for the tree")
            while len(layer) > 1:
                layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
            nodes.append(layer[0])
        try:
            tree = CollapsedTree(head.size, nodes)
        except ValueError as error:
            raise LogMisbehaved(
                f"the tiles do not make a tree of size {head.size}: {error}"
            ) from None
        _check_root(tree, head)
        return tree

    def issuer(self, entry: LogEntry) -> bytes | None:
        if not entry.fingerprints:
            return None
        fingerprint = entry.fingerprints[0]
        if fingerprint not in self._issuers:
            try:
                der = self._fetcher.get(f"{self._log.url}issuer/{fingerprint.hex()}", limit=65_536)
            except LogFetchError:
                return None
            if hashlib.sha256(der).digest() != fingerprint:
                return None
            self._issuers[fingerprint] = der
        return self._issuers[fingerprint]
