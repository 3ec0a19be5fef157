"""A Certificate Transparency log for the tests, on 127.0.0.1, serving both read APIs.

RFC 6962 §4 (``get-sth``, ``get-entries``, ``get-proof-by-hash``, ``get-sth-consistency``) and
c2sp.org/static-ct-api (checkpoint, hash and data tiles with partial tiles, issuers), over one
list of entries, with its own Merkle tree code (a plain recursive MTH, RFC 6962 §2.1: not the
monitor's collapsed tree, so the two check each other). Entries are certificates and
precertificates issued here with ``cryptography``. ``faults`` injects misbehaviour:

- ``bad-signature``: tree heads signed by another key;
- ``short-batch``: ``get-entries`` answers at most 3 entries;
- ``gzip``: data tiles sent with ``Content-Encoding: gzip``;
- ``missing-partial``: partial tiles answer 404;
- ``garbage``: every answer is 100,000 "[" (deeply nested JSON, an unreadable checkpoint);
- a fork: ``rewrite(index)`` replaces an entry already published (history rewritten);
- mismatched ``extra_data``: ``add(..., claimed=other)`` puts another certificate where the
  submitted chain or precertificate goes (outside the tree hash).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import ssl
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

POISON = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")
SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _vec(data: bytes, size: int) -> bytes:
    return _u(len(data), size) + data


def _spki(key: Any) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Issuer:
    """A CA that issues leaves, precertificates and their final certificates."""

    def __init__(self, name: str = "pinwarden CT test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=30))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.der = self.certificate.public_bytes(serialization.Encoding.DER)
        self.key_hash = hashlib.sha256(_spki(self.key)).digest()

    def _builder(self, names: Sequence[str], key: Any, serial: int) -> x509.CertificateBuilder:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=90))
        )
        return builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )

    def issue(self, names: Sequence[str], key: Any, *, serial: int | None = None) -> bytes:
        """A certificate (DER), with an embedded SCT list extension (as issued after CT)."""
        builder = self._builder(names, key, serial or x509.random_serial_number())
        builder = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, b"\x04\x02\x00\x00"), critical=False
        )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def precertificate(self, names: Sequence[str], key: Any, serial: int) -> tuple[bytes, bytes]:
        """(the precertificate with its poison, its TBSCertificate without it)."""
        builder = self._builder(names, key, serial)
        poisoned = builder.add_extension(
            x509.UnrecognizedExtension(POISON, b"\x05\x00"), critical=True
        ).sign(self.key, hashes.SHA256())
        plain = builder.sign(self.key, hashes.SHA256())
        return poisoned.public_bytes(serialization.Encoding.DER), plain.tbs_certificate_bytes


@dataclass
class Entry:
    timestamped: bytes  # the TimestampedEntry (hashed)
    extra_data: bytes  # RFC 6962 get-entries extra_data
    tile_leaf: bytes  # static-ct-api TileLeaf

    @property
    def leaf(self) -> bytes:
        return b"\x00\x00" + self.timestamped

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(b"\x00" + self.leaf).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class TestLog:
    """A log; ``publish()`` makes the current entries the signed tree head."""

    __test__ = False

    def __init__(self, *, issuer: Issuer | None = None) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.spki = _spki(self.key)
        self.log_id = hashlib.sha256(self.spki).digest()
        self.issuer = issuer or Issuer()
        self.entries: list[Entry] = []
        self.published = 0
        self.timestamp = int(NOW.timestamp() * 1000)
        self.faults: set[str] = set()
        self.requests: list[str] = []
        self._cache: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    # ---- entries -------------------------------------------------------------------------

    def _timestamped(self, precert: bool, body: bytes) -> bytes:
        index = len(self.entries)
        extensions = b"\x00" + _vec(_u(index, 5), 2)  # static-ct-api leaf_index
        kind = b"\x00\x01" if precert else b"\x00\x00"
        return _u(self.timestamp + index, 8) + kind + body + _vec(extensions, 2)

    def add(
        self,
        names: Sequence[str],
        key: Any | None = None,
        *,
        precert: bool = False,
        final: bool = False,
        claimed: bytes | None = None,
    ) -> bytes:
        """Log a certificate for ``names`` with ``key`` (a new key if None): its DER, or for a
        precert the TBS the log signs. ``final``: the precert and then its final certificate
        (two entries, one TBS). ``claimed``: a certificate put in the unhashed part instead
        of the real one (mismatched extra_data)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        chain = [self.issuer.der]
        fingerprints = b"".join(hashlib.sha256(der).digest() for der in chain)
        if precert or final:
            poisoned, tbs = self.issuer.precertificate(names, key, serial)
            shown = claimed or poisoned
            timestamped = self._timestamped(True, self.issuer.key_hash + _vec(tbs, 3))
            self._append(
                Entry(
                    timestamped,
                    _vec(shown, 3) + _vec(b"".join(_vec(c, 3) for c in chain), 3),
                    timestamped + _vec(shown, 3) + _vec(fingerprints, 2),
                )
            )
            if not final:
                return tbs
        der = self.issuer.issue(names, key, serial=serial)
        timestamped = self._timestamped(False, _vec(der, 3))
        shown_chain = [claimed] if claimed else chain
        claimed_prints = b"".join(hashlib.sha256(c).digest() for c in shown_chain)
        self._append(
            Entry(
                timestamped,
                _vec(b"".join(_vec(c, 3) for c in shown_chain), 3),
                timestamped + _vec(claimed_prints, 2),
            )
        )
        return der

    def add_raw(self, timestamped: bytes) -> None:
        """An entry whose certificate is garbage (it still hashes into the tree)."""
        self._append(Entry(timestamped, _vec(b"", 3), timestamped + _vec(b"", 2)))

    def _append(self, entry: Entry) -> None:
        with self._lock:
            self.entries.append(entry)

    def rewrite(self, index: int, names: Sequence[str]) -> None:
        """A fork: entry ``index`` becomes another certificate; the log re-signs its history."""
        saved = self.entries[index:]
        with self._lock:
            del self.entries[index:]
        self.add(names)
        with self._lock:
            self.entries += saved[1:]
            self._cache.clear()

    def publish(self) -> int:
        with self._lock:
            self.published = len(self.entries)
            self.timestamp += 1000
        return self.published

    # ---- the tree ------------------------------------------------------------------------

    def mth(self, lo: int, hi: int) -> bytes:
        """RFC 6962 §2.1 MTH(D[lo:hi]), perfect subtrees cached."""
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.entries[lo].hash
        cached = self._cache.get((lo, hi))
        if cached is not None:
            return cached
        k = _split(n)
        digest = _node(self.mth(lo, lo + k), self.mth(lo + k, hi))
        if n & (n - 1) == 0:
            self._cache[(lo, hi)] = digest
        return digest

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(m, D[lo:hi])."""
        n = hi - lo
        if n <= 1:
            return []
        k = _split(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        """RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], b)."""
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, whole), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def _signature(self, size: int, root: bytes) -> bytes:
        signed = struct.pack(">BBQQ", 0, 1, self.timestamp, size) + root
        key = (
            ec.generate_private_key(ec.SECP256R1()) if "bad-signature" in self.faults else self.key
        )
        signature = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return b"\x04\x03" + _vec(signature, 2)

    def sth(self) -> dict[str, Any]:
        root = self.mth(0, self.published)
        return {
            "tree_size": self.published,
            "timestamp": self.timestamp,
            "sha256_root_hash": base64.b64encode(root).decode(),
            "tree_head_signature": base64.b64encode(self._signature(self.published, root)).decode(),
        }

    @property
    def origin(self) -> str:
        return self.url.split("://", 1)[1].rstrip("/")

    def checkpoint(self) -> bytes:
        root = self.mth(0, self.published)
        key_id = hashlib.sha256(self.origin.encode() + b"\n\x05" + self.log_id).digest()[:4]
        note = f"{self.origin}\n{self.published}\n{base64.b64encode(root).decode()}\n"
        signature = key_id + _u(self.timestamp, 8) + self._signature(self.published, root)
        witness = base64.b64encode(secrets.token_bytes(68)).decode()
        return (
            f"{note}\n\u2014 witness.example {witness}\n"
            f"\u2014 {self.origin} {base64.b64encode(signature).decode()}\n"
        ).encode()

    # ---- serving -------------------------------------------------------------------------

    def log_entry(self, *, tiled: bool, state: str = "usable", **extra: Any) -> dict[str, Any]:
        """This log as a v3 log list entry."""
        entry: dict[str, Any] = {
            "description": f"pinwarden test log ({'tiled' if tiled else 'RFC 6962'})",
            "log_id": base64.b64encode(self.log_id).decode(),
            "key": base64.b64encode(self.spki).decode(),
            "mmd": 86400,
            "state": {state: {"timestamp": "2026-01-01T00:00:00Z"}},
            **extra,
        }
        if tiled:
            entry.update(submission_url=self.url, monitoring_url=self.url)
        else:
            entry["url"] = self.url
        return entry

    def log_list(self, *, tiled: bool, **extra: Any) -> dict[str, Any]:
        field = "tiled_logs" if tiled else "logs"
        return {
            "version": "test",
            "operators": [
                {"name": "test", "email": [], field: [self.log_entry(tiled=tiled, **extra)]}
            ],
        }

    def start(self, context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> str:
        log = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                log.requests.append(self.path)
                status, body, headers = log.answer(self.path)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://{host}:{server.server_address[1]}/"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, target: str) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        with self._lock:
            try:
                return self._route(parts.path, query)
            except (KeyError, ValueError, IndexError) as error:
                return 400, str(error).encode(), {}

    def _json(self, value: Any) -> tuple[int, bytes, dict[str, str]]:
        return 200, json.dumps(value).encode(), {"Content-Type": "application/json"}

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        if "garbage" in self.faults:
            return 200, b"[" * 100_000, {"Content-Type": "application/json"}
        if path == "/ct/v1/get-sth":
            return self._json(self.sth())
        if path == "/ct/v1/get-entries":
            start, end = int(query["start"]), int(query["end"])
            end = min(end, self.published - 1, start + (2 if "short-batch" in self.faults else 999))
            if not 0 <= start <= end:
                return 400, b"bad range", {}
            entries = [
                {
                    "leaf_input": base64.b64encode(entry.leaf).decode(),
                    "extra_data": base64.b64encode(entry.extra_data).decode(),
                }
                for entry in self.entries[start : end + 1]
            ]
            return self._json({"entries": entries})
        if path == "/ct/v1/get-proof-by-hash":
            size, wanted = int(query["tree_size"]), base64.b64decode(query["hash"])
            index = next(i for i in range(size) if self.entries[i].hash == wanted)
            proof = [base64.b64encode(h).decode() for h in self.path(index, 0, size)]
            return self._json({"leaf_index": index, "audit_path": proof})
        if path == "/ct/v1/get-sth-consistency":
            first, second = int(query["first"]), int(query["second"])
            nodes = self.subproof(first, 0, second, True) if 0 < first < second else []
            return self._json({"consistency": [base64.b64encode(h).decode() for h in nodes]})
        if path == "/checkpoint":
            return 200, self.checkpoint(), {"Content-Type": "text/plain; charset=utf-8"}
        if path.startswith("/issuer/"):
            if path[len("/issuer/") :] == hashlib.sha256(self.issuer.der).hexdigest():
                return 200, self.issuer.der, {"Content-Type": "application/pkix-cert"}
            return 404, b"", {}
        tile = re.fullmatch(r"/tile/(data|[0-5])/((?:x\d{3}/)*\d{3})(?:\.p/(\d+))?", path)
        if tile:
            return self._tile(
                tile.group(1), int(tile.group(2).replace("x", "").replace("/", "")), tile.group(3)
            )
        return 404, b"", {}

    def _tile(
        self, kind: str, index: int, partial: str | None
    ) -> tuple[int, bytes, dict[str, str]]:
        level = 0 if kind == "data" else int(kind)
        available = len(self.entries) >> (8 * level)  # full tiles exist once complete
        width = int(partial) if partial else 256
        if partial and ("missing-partial" in self.faults or not 0 < width < 256):
            return 404, b"", {}
        if index * 256 + width > (available if not partial else self.published >> (8 * level)):
            return 404, b"", {}
        first = index * 256
        if kind == "data":
            body = b"".join(self.entries[i].tile_leaf for i in range(first, first + width))
            if "gzip" in self.faults:
                return 200, gzip.compress(body), {"Content-Encoding": "gzip"}
            return 200, body, {}
        span = 256**level
        body = b"".join(self.mth((first + i) * span, (first + i + 1) * span) for i in range(width))
        return 200, body, {}
