"""Private key files that resist guessing: PKCS#8 under scrypt and AES-256-GCM (docs/keys.md).

``cryptography``'s ``BestAvailableEncryption`` derives the key of an encrypted PKCS#8 file with
PBKDF2, which a GPU guesses at millions of passphrases a second. scrypt (RFC 7914) needs
``128 * n * r`` bytes of memory per guess, so guessing costs memory as well as time. The file keeps
the PEM armour, with its parameters in two header lines::

    -----BEGIN PINWARDEN ENCRYPTED PRIVATE KEY-----
    KDF: scrypt; n=65536; r=8; p=1; salt=<base64url>
    Cipher: AES-256-GCM; nonce=<base64url>

    <base64 of the AES-256-GCM ciphertext and tag of the PKCS#8 DER private key>
    -----END PINWARDEN ENCRYPTED PRIVATE KEY-----

The header lines are the GCM associated data, so a changed parameter fails like a wrong
passphrase. The parameters are read from the file (so a later release can raise them) within
bounds, so a hostile file cannot make a reader allocate gigabytes or spin for minutes.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from pinwarden.document._errors import KeyStoreError

__all__ = ["SCRYPT_COST", "ScryptCost", "decrypt_key_file", "encrypt_key_file", "is_key_file"]

_BEGIN = b"-----BEGIN PINWARDEN ENCRYPTED PRIVATE KEY-----\n"
_END = b"-----END PINWARDEN ENCRYPTED PRIVATE KEY-----\n"
_MAX_FILE_BYTES = 16_384  # an Ed25519 or P-256 PKCS#8 key is under 200 bytes
_B64URL = rb"[A-Za-z0-9_-]+"
_FILE = re.compile(
    re.escape(_BEGIN)
    + rb"(?P<header>KDF: scrypt; n=(?P<n>[1-9][0-9]{0,9}); r=(?P<r>[1-9][0-9]{0,2}); "
    + rb"p=(?P<p>[1-9][0-9]{0,2}); salt=(?P<salt>"
    + _B64URL
    + rb")\nCipher: AES-256-GCM; nonce=(?P<nonce>"
    + _B64URL
    + rb")\n)\n(?P<body>(?:[A-Za-z0-9+/=]{1,64}\n){1,200})"
    + re.escape(_END),
)


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's work factors (RFC 7914 §2): memory is ``128 * n * r`` bytes per guess."""

    n: int
    r: int
    p: int

    def problem(self) -> str | None:
        """Why a file's parameters are refused, or ``None``: within what a reader will spend."""
        if self.n < 2 or self.n & (self.n - 1):
            return f"scrypt n={self.n} is not a power of two above 1"
        if self.n > 2**20 or self.r > 32 or self.p > 16:
            return "scrypt parameters above n=2^20, r=32, p=16"
        if 128 * self.n * self.r > 1 << 30:
            return "scrypt parameters that need more than 1 GiB of memory"
        if self.n * self.r * self.p > 1 << 23:
            # Work grows with n * r * p: 16 times the default at most (a few seconds to open).
            return "scrypt parameters that would take minutes to open (n * r * p above 2^23)"
        return None


# 64 MiB and about 0.2 s per guess on one core (bench/key_guessing.py; docs/keys.md).
SCRYPT_COST = ScryptCost(n=2**16, r=8, p=1)
_SALT_BYTES = 16
_NONCE_BYTES = 12


def is_key_file(data: bytes) -> bool:
    """Whether ``data`` is in this format (else it may be an older PKCS#8 PEM file)."""
    return data.startswith(_BEGIN)


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _derive(passphrase: bytes, salt: bytes, cost: ScryptCost) -> bytes:
    return Scrypt(salt=salt, length=32, n=cost.n, r=cost.r, p=cost.p).derive(passphrase)


def encrypt_key_file(der: bytes, passphrase: bytes, cost: ScryptCost = SCRYPT_COST) -> bytes:
    """The key file of the PKCS#8 DER private key ``der`` under ``passphrase``."""
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    header = b"KDF: scrypt; n=%d; r=%d; p=%d; salt=%s\nCipher: AES-256-GCM; nonce=%s\n" % (
        cost.n,
        cost.r,
        cost.p,
        _b64url(salt),
        _b64url(nonce),
    )
    sealed = AESGCM(_derive(passphrase, salt, cost)).encrypt(nonce, der, header)
    body = base64.b64encode(sealed)
    lines = b"".join(body[i : i + 64] + b"\n" for i in range(0, len(body), 64))
    return _BEGIN + header + b"\n" + lines + _END


def _decode(value: bytes, what: str, *, urlsafe: bool) -> bytes:
    try:
        if urlsafe:
            return base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyStoreError(f"the key file's {what} is not valid base64") from None


def decrypt_key_file(data: bytes, passphrase: bytes) -> bytes:
    """The PKCS#8 DER private key in key file ``data``; ``KeyStoreError`` for a wrong
    passphrase, a changed file or parameters out of bounds."""
    match = _FILE.fullmatch(data) if len(data) <= _MAX_FILE_BYTES else None
    if match is None:
        raise KeyStoreError("not a readable pinwarden key file (damaged or cut short?)")
    cost = ScryptCost(int(match["n"]), int(match["r"]), int(match["p"]))
    problem = cost.problem()
    if problem is not None:
        raise KeyStoreError(f"the key file asks for {problem}; refusing to read it")
    salt = _decode(match["salt"], "salt", urlsafe=True)
    nonce = _decode(match["nonce"], "nonce", urlsafe=True)
    if not 8 <= len(salt) <= 64 or len(nonce) != _NONCE_BYTES:
        raise KeyStoreError("the key file's salt or nonce has the wrong length")
    sealed = _decode(match["body"].replace(b"\n", b""), "body", urlsafe=False)
    try:
        return AESGCM(_derive(passphrase, salt, cost)).decrypt(nonce, sealed, match["header"])
    except InvalidTag:
        raise KeyStoreError(
            "cannot read the private key: wrong passphrase, or the key file was changed"
        ) from None
