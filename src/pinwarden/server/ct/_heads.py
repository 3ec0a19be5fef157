"""Signed tree heads, as RFC 6962 ``get-sth`` and as static-ct-api checkpoints, verified with
the log's key before anything they say is believed.

The signed structure is RFC 6962 §3.5 ``TreeHeadSignature`` (version v1, signature type
tree_hash, timestamp, tree size, root hash), in a ``DigitallySigned`` (RFC 5246 §4.7: hash and
signature algorithm bytes, then the signature): ECDSA P-256 or RSA PKCS#1 v1.5, with SHA-256.
A checkpoint (c2sp.org/tlog-checkpoint) carries the same signature in a signed-note line
(c2sp.org/signed-note) whose key ID is the first four bytes of SHA-256(origin || 0x0A || 0x05 ||
log ID) (c2sp.org/static-ct-api, "Checkpoints").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pinwarden.server.ct._wire import MalformedEntry, Reader

__all__ = ["BadSignature", "BadTreeHead", "LogKey", "TreeHead", "parse_checkpoint"]

_SHA256, _RSA, _ECDSA = 4, 1, 3
_MAX_CHECKPOINT = 16_384


class BadTreeHead(ValueError):
    """A tree head that does not parse or whose signature does not verify."""


class BadSignature(BadTreeHead):
    """A well-formed tree head whose signature the log's key did not make: evidence against the
    log (or whoever answers for it), unlike a head that does not parse."""


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    timestamp: int  # milliseconds since the epoch


class LogKey:
    """A log's public key (DER SubjectPublicKeyInfo, as log lists carry it) and its log ID."""

    def __init__(self, spki_der: bytes) -> None:
        try:
            key = serialization.load_der_public_key(spki_der)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise ValueError(f"not a log key: {error}") from None
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            self._algorithm = _ECDSA
        elif isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
            self._algorithm = _RSA
        else:
            raise ValueError("a log key is ECDSA P-256 or RSA of 2048 bits or more")
        self._key = key
        self.log_id = hashlib.sha256(spki_der).digest()

    def verify_tree_head(self, head: TreeHead, digitally_signed: bytes) -> None:
        """Raise ``BadTreeHead`` unless ``digitally_signed`` signs ``head`` (RFC 6962 §3.5)."""
        try:
            reader = Reader(digitally_signed)
            hash_algorithm, signature_algorithm = reader.uint(1), reader.uint(1)
            signature = reader.vector(2)
        except MalformedEntry as error:
            raise BadTreeHead(f"malformed tree head signature: {error}") from None
        if reader.left or (hash_algorithm, signature_algorithm) != (_SHA256, self._algorithm):
            raise BadSignature("the tree head signature is not of the log key's algorithm")
        signed = struct.pack(">BBQQ", 0, 1, head.timestamp, head.size) + head.root
        try:
            if isinstance(self._key, ec.EllipticCurvePublicKey):
                self._key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
            else:
                assert isinstance(self._key, rsa.RSAPublicKey)
                self._key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise BadSignature(
                f"the tree head of size {head.size} is not signed by the log's key"
            ) from None


def tree_head(size: object, root: object, timestamp: object) -> TreeHead:
    """A tree head from untrusted fields, checked for type and range."""
    for name, value in (("tree_size", size), ("timestamp", timestamp)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise BadTreeHead(f"{name} is not an integer from 0 to 2^63")
    if not isinstance(root, bytes) or len(root) != 32:
        raise BadTreeHead("the root hash is not 32 bytes")
    assert isinstance(size, int) and isinstance(timestamp, int)
    return TreeHead(size, root, timestamp)


def b64(text: object, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > 100_000:
        raise BadTreeHead(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadTreeHead(f"{what} is not base64") from None


def parse_checkpoint(body: bytes, origin: str, key: LogKey) -> TreeHead:
    """The tree head of a checkpoint whose origin line is ``origin``, verified with ``key``.
    Signature lines of other keys (witnesses, other key types) are ignored, as the spec says."""
    if len(body) > _MAX_CHECKPOINT:
        raise BadTreeHead("the checkpoint is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadTreeHead("the checkpoint is not UTF-8") from None
    note, separator, signatures = text.partition("\n\n")
    lines = note.split("\n")
    if not separator or len(lines) != 3 or not signatures.endswith("\n"):
        raise BadTreeHead("the checkpoint is not an origin, a size and a root hash, signed")
    if lines[0] != origin:
        raise BadTreeHead(f"the checkpoint's origin {lines[0][:200]!r} is not {origin!r}")
    if not lines[1].isdigit() or len(lines[1]) > 19 or (lines[1] != "0" and lines[1][0] == "0"):
        raise BadTreeHead("the checkpoint's tree size is not a decimal number")
    size, root = int(lines[1]), b64(lines[2], "the checkpoint's root hash")
    key_id = hashlib.sha256(origin.encode() + b"\n\x05" + key.log_id).digest()[:4]
    for line in signatures[:-1].split("\n"):
        name, _, encoded = line.removeprefix("\u2014 ").partition(" ")
        if not line.startswith("\u2014 ") or name != origin:
            continue
        signature = b64(encoded, "a checkpoint signature")
        if signature[:4] != key_id or len(signature) < 12:
            continue
        head = tree_head(size, root, int.from_bytes(signature[4:12], "big"))
        key.verify_tree_head(head, signature[12:])
        return head
    raise BadTreeHead("the checkpoint carries no signature of the log's key")
