"""The online signing key in a PKCS#11 token (HSM, SoftHSM2): docs/keys.md.

A *key reference* names such a key: its ``pkcs11:`` URI (RFC 7512, no PIN) and its public key as
a keyring names it. ``pinwarden keys pkcs11-key`` writes one on the machine that holds the token;
the offline machine puts it into keyring N+1 (``keys rotate-online --online-key FILE``), and the key
directories keep it as ``keys/<kid>.pkcs11`` where a key file would be ``keys/<kid>.pem``.
``token_signer`` opens the token with the PIN and returns a ``SigningKey`` whose signatures are
made inside the token.

The client never imports this package (tests/core/test_imports.py); ``python-pkcs11`` is the
optional ``pinwarden[hsm]`` extra, imported only when a token is opened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pinwarden.document import DocumentError, KeyringKey, KeyStoreError, SigningKey
from pinwarden.hsm._token import TokenPrivateKey, generate_token_key, open_token_key
from pinwarden.hsm._uri import Pkcs11Uri

__all__ = [
    "KeyReference",
    "Pkcs11Uri",
    "TokenPrivateKey",
    "generate_token_key",
    "reference_to",
    "token_signer",
]

_MAX_REFERENCE_BYTES = 8192


@dataclass(frozen=True)
class KeyReference:
    """A key in a token: where it is (``uri``) and which public key it must have (``public``)."""

    uri: Pkcs11Uri
    public: KeyringKey

    def to_bytes(self) -> bytes:
        document = {"pkcs11": str(self.uri), "kid": self.public.kid, "jwk": self.public.to_jwk()}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> KeyReference:
        """Read a reference strictly; ``KeyStoreError`` naming ``where`` otherwise."""
        try:
            if len(data) > _MAX_REFERENCE_BYTES:
                raise ValueError(f"larger than {_MAX_REFERENCE_BYTES} bytes")
            document = json.loads(data)
            if not isinstance(document, dict) or set(document) != {"pkcs11", "kid", "jwk"}:
                raise ValueError('not a JSON object of exactly "pkcs11", "kid" and "jwk"')
            public = KeyringKey.from_jwk(document["kid"], document["jwk"])
        except (ValueError, RecursionError, DocumentError) as error:  # FormatError: a bad JWK
            raise KeyStoreError(f"{where} is not a pkcs11 key reference: {error}") from None
        return cls(Pkcs11Uri.parse(document["pkcs11"]), public)


def reference_to(uri: Pkcs11Uri, pin: bytes) -> KeyReference:
    """The reference to the key ``uri`` names (opened with ``pin`` to read its public key)."""
    return KeyReference(uri, token_signer(uri, pin).public())


def token_signer(uri: Pkcs11Uri, pin: bytes, kid: str | None = None) -> SigningKey:
    """The signing key ``uri`` names, opened with ``pin``: its signatures are made in the token.

    ``kid``: the key id a keyring gives it (default: its RFC 7638 thumbprint).
    """
    _, private_key = open_token_key(uri, pin)
    try:
        return SigningKey.from_private_key(private_key, kid)
    except DocumentError as error:  # FormatError: a kid a keyring could not hold
        raise KeyStoreError(f"{uri}: {error}") from None
