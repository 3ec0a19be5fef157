"""Document keys: the public keys a keyring names, and the private keys that sign.

A key carries its algorithm (docs/spec.md §4): the trusted key decides how a signature is checked,
never the signature's header. Ed25519 keys sign with ``EdDSA`` (RFC 8037), P-256 keys with
``ES256`` (RFC 7518 §3.4). A key id is by default the key's RFC 7638 JWK thumbprint.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from pinwarden.document._curves import ed25519_key_problem
from pinwarden.document._encoding import b64url_decode
from pinwarden.document._errors import FormatError, KeyStoreError
from pinwarden.document._keyfile import decrypt_key_file, encrypt_key_file, is_key_file

__all__ = [
    "ALGORITHMS",
    "KeyringKey",
    "Passphrase",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "needs_rewrap",
    "passphrase_bytes",
]

ALGORITHMS = ("EdDSA", "ES256")

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
Passphrase = bytes | str
JoseKey = OKPKey | ECKey

_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The public JWK members of each algorithm's key (RFC 8037 §2, RFC 7518 §6.2.1), plus "alg".
_JWK_MEMBERS = {
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "ES256": {"kty": "EC", "crv": "P-256"},
}
_COORDINATES = {"EdDSA": ("x",), "ES256": ("x", "y")}


def _algorithm_of(key: PublicKey) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise FormatError(f"unsupported key type {type(key).__name__}: use Ed25519 or P-256")


def _jose_key(key: PublicKey | PrivateKey) -> JoseKey:
    """joserfc's key for ``key``. A private key's JWK members are its public ones: joserfc signs
    with the private key object itself, and never exports it (which a key in a PKCS#11 token,
    ``pinwarden.hsm``, could not do)."""
    public_members = None
    if isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        public_members = _jose_key(key.public_key()).as_dict()
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return OKPKey(key, public_members) if public_members else OKPKey.import_key(key)
    return ECKey(key, public_members) if public_members else ECKey.import_key(key)


def _check_kid(kid: object) -> str:
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise FormatError(f"key id {kid!r} must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return kid


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of ``key``."""
    return _jose_key(key).thumbprint()


@dataclass(frozen=True)
class KeyringKey:
    """A public key named in a keyring, with the one algorithm it verifies."""

    kid: str
    algorithm: str
    public_key: PublicKey = field(repr=False)

    def __post_init__(self) -> None:
        _check_kid(self.kid)
        if self.algorithm not in ALGORITHMS:
            raise FormatError(f"key {self.kid}: algorithm {self.algorithm!r} is not allowed")
        actual = _algorithm_of(self.public_key)
        if actual != self.algorithm:
            raise FormatError(f"key {self.kid}: an {actual} key cannot verify {self.algorithm}")

    @functools.cached_property
    def fingerprint(self) -> str:
        """The key's identity (docs/spec.md §4.1): its RFC 7638 thumbprint. A keyring spells each
        key one way only, so two key ids with one fingerprint are one key (§5.2.3)."""
        return thumbprint(self.public_key)

    def jose_key(self) -> JoseKey:
        return _jose_key(self.public_key)

    def to_jwk(self) -> dict[str, str]:
        """The public JWK with its ``alg`` member, as a keyring spells it."""
        members = {name: str(value) for name, value in self.jose_key().as_dict().items()}
        return {**members, "alg": self.algorithm}

    @classmethod
    def from_jwk(cls, kid: str, jwk: object) -> KeyringKey:
        """Read a keyring's JWK strictly: exactly the public members, ``alg`` required."""
        if not isinstance(jwk, Mapping):
            raise FormatError(f"key {kid!r} is not a JSON object")
        algorithm = jwk.get("alg")
        if not isinstance(algorithm, str) or algorithm not in _JWK_MEMBERS:
            raise FormatError(f"key {kid!r}: alg {algorithm!r} is not one of {ALGORITHMS}")
        expected = {**_JWK_MEMBERS[algorithm], "alg": algorithm}
        coordinates = _COORDINATES[algorithm]
        if set(jwk) != set(expected) | set(coordinates):
            names = sorted(set(expected) | set(coordinates))
            raise FormatError(f"key {kid!r} must have exactly the members {names}")
        if any(jwk[name] != value for name, value in expected.items()):
            raise FormatError(f"key {kid!r}: {algorithm} needs kty/crv {_JWK_MEMBERS[algorithm]}")
        if not all(isinstance(jwk[name], str) for name in coordinates):
            raise FormatError(f"key {kid!r}: coordinates must be strings")
        if algorithm == "EdDSA":
            problem = ed25519_key_problem(b64url_decode(jwk["x"], f"key {kid!r}: x"))
            if problem is not None:
                raise FormatError(f"key {kid!r}: {problem}")
        public = cls._import(kid, {name: jwk[name] for name in ("kty", "crv", *coordinates)})
        key = cls(kid, algorithm, public)
        # One spelling per key (docs/spec.md §4.1): a P-256 coordinate of another length, or at
        # or above the field prime, is loaded reduced and so re-encodes differently.
        if key.to_jwk() != dict(jwk):
            raise FormatError(f"key {kid!r}: coordinates are not in canonical base64url")
        return key

    @staticmethod
    def _import(kid: str, members: dict[str, Any]) -> PublicKey:
        jose_type = OKPKey if members["kty"] == "OKP" else ECKey
        try:
            public = jose_type.import_key(members).public_key
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise FormatError(f"key {kid!r} is not a valid public key: {error}") from None
        if not isinstance(public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise FormatError(f"key {kid!r} is not an Ed25519 or P-256 public key")
        return public


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs documents: its key id, its algorithm, the key itself.

    The private key is never in ``repr``; write it only with ``to_pem`` and a passphrase.
    """

    kid: str
    algorithm: str
    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        KeyringKey(self.kid, self.algorithm, self.private_key.public_key())

    @classmethod
    def from_private_key(cls, private_key: PrivateKey, kid: str | None = None) -> SigningKey:
        public = private_key.public_key()
        return cls(kid or thumbprint(public), _algorithm_of(public), private_key)

    @classmethod
    def generate(cls, algorithm: str = "EdDSA") -> SigningKey:
        """A new key for ``algorithm`` ("EdDSA": Ed25519, "ES256": P-256), named by thumbprint."""
        if algorithm == "EdDSA":
            return cls.from_private_key(ed25519.Ed25519PrivateKey.generate())
        if algorithm == "ES256":
            return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()))
        raise FormatError(f"algorithm {algorithm!r} is not one of {ALGORITHMS}")

    @classmethod
    def from_pem(
        cls, data: bytes, passphrase: Passphrase | None, kid: str | None = None
    ) -> SigningKey:
        """Read a private key file, decrypting it with ``passphrase``: the scrypt key file
        ``to_pem`` writes, or a PKCS#8 PEM file of an earlier release (PBKDF2, see
        ``needs_rewrap``)."""
        password = passphrase_bytes(passphrase) if passphrase is not None else None
        try:
            if is_key_file(data):
                if password is None:
                    raise KeyStoreError("the private key file is encrypted: a passphrase is needed")
                key = serialization.load_der_private_key(
                    decrypt_key_file(data, password), password=None
                )
            else:
                key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise KeyStoreError(
                "cannot read the private key: wrong passphrase, or not a PEM private key"
            ) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"{type(key).__name__} cannot sign documents: use Ed25519 or P-256")
        try:
            return cls.from_private_key(key, kid)
        except FormatError as error:
            raise KeyStoreError(str(error)) from None

    def to_pem(self, passphrase: Passphrase) -> bytes:
        """The key file (PKCS#8 under scrypt and AES-256-GCM, ``_keyfile``) for ``passphrase``."""
        der = self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return encrypt_key_file(der, passphrase_bytes(passphrase))

    def public(self) -> KeyringKey:
        """The public half, as a keyring names it."""
        return KeyringKey(self.kid, self.algorithm, self.private_key.public_key())

    def jose_key(self) -> JoseKey:
        return _jose_key(self.private_key)


def passphrase_bytes(passphrase: Passphrase) -> bytes:
    """A passphrase (or PIN) as bytes; ``KeyStoreError`` if it is empty."""
    value = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
    if not value:
        raise KeyStoreError("an empty passphrase cannot protect a private key")
    return value


def needs_rewrap(data: bytes) -> bool:
    """Whether a key file is of the older PKCS#8 kind (PBKDF2): ``pinwarden keys rewrap``."""
    return not is_key_file(data)
