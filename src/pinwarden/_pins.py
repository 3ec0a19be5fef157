"""SPKI pins: ``sha256/<base64>`` of the DER SubjectPublicKeyInfo (RFC 7469 §2.4).

A pin names a public key, not a certificate, so it survives re-issuing a certificate for the
same key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from pinwarden.errors import InvalidPinError, UnsupportedKeyMaterial

__all__ = [
    "KeyMaterial",
    "load_all_key_material",
    "load_key_material",
    "parse_pin",
    "parse_pins",
    "pin_digest",
    "pin_from_digest",
    "spki_digest_of_der",
    "spki_pin",
    "spki_pin_of_der",
    "split_pem",
]

PIN_PREFIX = "sha256/"
_DIGEST_SIZE = hashlib.sha256().digest_size

PublicKey = PublicKeyTypes
PrivateKey = PrivateKeyTypes
KeyMaterial = (
    x509.Certificate | x509.CertificateSigningRequest | PublicKey | PrivateKey | bytes
)

# RFC 7469 §2.1.1 writes a pin as a directive: pin-sha256="<base64>".
_RFC7469_DIRECTIVE = re.compile(r'^pin-sha256\s*=\s*"([^"]*)"$', re.IGNORECASE)
_ALGORITHM_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)/(.*)$", re.DOTALL)
# A hex fingerprint: 20 or 32 bytes (SHA-1, SHA-256) as hex, bare or in colon-separated pairs, with
# an optional "sha256:", "SHA256=" or "sha256/" label, as openssl, browsers, urllib3's
# assert_fingerprint and aiohttp's Fingerprint write them. A base64 SHA-256 pin is 44 characters
# ending in "=", so it never matches.
_HEX_FINGERPRINT = re.compile(
    r"^(?:sha-?(?:1|256)\s*[:=/]\s*)?"
    r"((?:[0-9a-f]{2}:){19}[0-9a-f]{2}|(?:[0-9a-f]{2}:){31}[0-9a-f]{2}|[0-9a-f]{40}|[0-9a-f]{64})$",
    re.IGNORECASE,
)


def _is_bare_digest(value: str) -> bool:
    """Bare base64 may itself contain '/', so it is tried before an ``algo/`` prefix."""
    try:
        return len(base64.b64decode(value, validate=True)) == _DIGEST_SIZE
    except (binascii.Error, ValueError):
        return False


def pin_from_digest(digest: bytes) -> str:
    """Spell a 32-byte SHA-256 digest as a pin."""
    if len(digest) != _DIGEST_SIZE:
        raise InvalidPinError(f"a pin digest is {_DIGEST_SIZE} bytes, not {len(digest)}")
    return PIN_PREFIX + base64.b64encode(digest).decode("ascii")


def _shown(text: str) -> str:
    """``text`` as an error message quotes it: repr, cut to a readable length."""
    shown = repr(text)
    return shown if len(shown) <= 100 else f"{shown[:60]}…{shown[-20:]} ({len(text)} characters)"


def _refuse_hex_fingerprint(text: str, value: str) -> None:
    """Refuse a hex fingerprint, with how to get a pin: it is not a key's pin, usually."""
    fingerprint = _HEX_FINGERPRINT.match(value)
    if fingerprint is None:
        return
    digest = bytes.fromhex(fingerprint.group(1).replace(":", ""))
    message = (
        f"pin {_shown(text)} is a hex fingerprint, not an SPKI pin: fingerprints as urllib3 "
        "(assert_fingerprint), aiohttp (Fingerprint), openssl and browsers show them are hashes "
        "of the whole certificate, which change with every renewal; a pin is the base64 SHA-256 "
        "of the public key. Get it with `pinwarden pin HOST` or `pinwarden pin cert.pem`"
    )
    if len(digest) == _DIGEST_SIZE:
        message += (
            f" (if this is already the SHA-256 of the key, write it as {pin_from_digest(digest)})"
        )
    raise InvalidPinError(message)


def pin_digest(text: str) -> bytes:
    """The 32 digest bytes of a pin written as ``sha256/…``, ``pin-sha256="…"`` or bare base64.

    Raises ``InvalidPinError`` naming what is wrong: another hash algorithm, a hex certificate
    fingerprint, bad base64, or a digest that is not 32 bytes long.
    """
    if not isinstance(text, str):
        raise InvalidPinError(f"a pin is a string, not {type(text).__name__}")
    value = text.strip()
    _refuse_hex_fingerprint(text, value)
    directive = _RFC7469_DIRECTIVE.match(value)
    if directive:
        value = directive.group(1).strip()
    else:
        prefixed = _ALGORITHM_PREFIX.match(value)
        if prefixed and not _is_bare_digest(value):
            algorithm, value = prefixed.group(1), prefixed.group(2)
            if algorithm.lower() != "sha256":
                raise InvalidPinError(
                    f"pin {_shown(text)}: only sha256 pins are supported, not {algorithm!r}"
                )
    if not value:
        raise InvalidPinError(f"pin {_shown(text)} is empty")
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPinError(f"pin {_shown(text)} is not valid base64") from None
    if len(digest) != _DIGEST_SIZE:
        raise InvalidPinError(
            f"pin {_shown(text)} decodes to {len(digest)} bytes; "
            f"a SHA-256 pin is {_DIGEST_SIZE} bytes"
        )
    return digest


def parse_pin(text: str) -> str:
    """The canonical ``sha256/<base64>`` spelling of a pin in any accepted spelling."""
    return pin_from_digest(pin_digest(text))


def parse_pins(texts: Iterable[str]) -> tuple[str, ...]:
    """Canonical pins, in order, without duplicates."""
    return tuple(dict.fromkeys(parse_pin(text) for text in texts))


def _spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_key_of(material: KeyMaterial) -> PublicKey:
    if isinstance(material, bytes | bytearray | memoryview):
        return _public_key_of(load_key_material(bytes(material)))
    if isinstance(material, x509.Certificate | x509.CertificateSigningRequest):
        return material.public_key()
    if hasattr(material, "public_bytes") and not hasattr(material, "private_bytes"):
        return material
    if hasattr(material, "public_key") and hasattr(material, "private_bytes"):
        return material.public_key()
    raise UnsupportedKeyMaterial(
        f"cannot compute a pin of {type(material).__name__}: expected a certificate, CSR, "
        "public or private key, or their PEM/DER bytes"
    )


def spki_pin(material: KeyMaterial) -> str:
    """The ``sha256/<base64>`` pin of a certificate, CSR, public or private key.

    ``material`` is a ``cryptography`` object or its PEM/DER bytes. PEM bytes must hold exactly one
    object; use ``pinwarden.load_all_key_material`` for a chain.
    """
    digest = hashlib.sha256(_spki_der(_public_key_of(material))).digest()
    return pin_from_digest(digest)


@functools.lru_cache(maxsize=1024)
def spki_digest_of_der(certificate_der: bytes) -> bytes:
    """SHA-256 of the SPKI of a DER certificate, cached.

    Called on every pinned handshake with the same few certificates; parsing them again each time
    is most of the cost of pinning, so the result is kept per DER encoding.
    """
    certificate = x509.load_der_x509_certificate(certificate_der)
    return hashlib.sha256(_spki_der(certificate.public_key())).digest()


def spki_pin_of_der(certificate_der: bytes) -> str:
    """The pin of a DER certificate (cached, see ``spki_digest_of_der``)."""
    return pin_from_digest(spki_digest_of_der(certificate_der))


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def split_pem(data: bytes) -> list[tuple[str, bytes]]:
    """The PEM blocks of ``data`` as ``(label, block)`` pairs, in order."""
    return [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]


def _load_pem_block(label: str, block: bytes) -> KeyMaterial:
    if label in ("CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"):
        return x509.load_pem_x509_certificate(block)
    if label in ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"):
        return x509.load_pem_x509_csr(block)
    if label == "PUBLIC KEY" or label.endswith(" PUBLIC KEY"):
        return serialization.load_pem_public_key(block)
    if label == "ENCRYPTED PRIVATE KEY":
        raise UnsupportedKeyMaterial(
            "the private key is encrypted; pin its certificate or public key"
        )
    if label == "PRIVATE KEY" or label.endswith(" PRIVATE KEY"):
        return serialization.load_pem_private_key(block, password=None)
    raise UnsupportedKeyMaterial(f"PEM block {label!r} is not a certificate, key or CSR")


def _load_der(data: bytes) -> KeyMaterial:
    loaders = (
        x509.load_der_x509_certificate,
        x509.load_der_x509_csr,
        serialization.load_der_public_key,
        lambda raw: serialization.load_der_private_key(raw, password=None),
    )
    for loader in loaders:
        try:
            return loader(data)
        except (ValueError, TypeError):
            continue
    raise UnsupportedKeyMaterial(
        "the bytes are neither PEM nor DER of a certificate, public or private key, or CSR"
    )


def load_all_key_material(data: bytes) -> list[KeyMaterial]:
    """Every certificate, key or CSR in PEM (one or more blocks) or DER (one object) bytes."""
    blocks = split_pem(data)
    if not blocks:
        if data.lstrip().startswith(b"-----BEGIN"):
            raise UnsupportedKeyMaterial("the PEM data is truncated: no matching END line")
        return [_load_der(data)]
    try:
        return [_load_pem_block(label, block) for label, block in blocks]
    except ValueError as error:
        if isinstance(error, UnsupportedKeyMaterial):
            raise
        raise UnsupportedKeyMaterial(f"a PEM block could not be read: {error}") from None


def load_key_material(data: bytes) -> KeyMaterial:
    """The one certificate, key or CSR in PEM or DER bytes."""
    objects = load_all_key_material(data)
    if len(objects) != 1:
        raise UnsupportedKeyMaterial(
            f"the data holds {len(objects)} objects; spki_pin takes one "
            "(for a chain: load_all_key_material)"
        )
    return objects[0]
