"""Signed pin-set documents: format, keyring rotation, verification (docs/spec.md).

A channel's *pin set* is signed by the *online* keys a *keyring* names; the keyring is signed by
its *root* keys, k of n, and rotates one version at a time, each version signed by the root
thresholds of the one before and of itself. The envelope is JWS JSON serialization (RFC 7515
§7.2.1) over an RFC 8785 canonical JSON payload; the algorithms are EdDSA (Ed25519) and ES256
(P-256), chosen by the trusted key, never by the header.

Client side::

    keyring = load_keyring(shipped_keyring_bytes)
    hint = peek_document(raw)                     # unverified: how far to walk the keyring
    keyring = walk_keyrings(keyring, fetch_keyring, hint.keyring_version, now=now)
    pinset = verify_pinset(raw, keyring=keyring, min_version=stored_floor, now=now)

Offline (root keys): ``KeyDirectory(path).init(passphrase)``, then ``export_online`` of the
keyrings and online keys to the server. Server side (never a root key):
``sign_pinset(pinset, OnlineKeyDirectory(path).online_signers(passphrase))``.
"""

from __future__ import annotations

from pinwarden._public_names import name_exceptions_after
from pinwarden.document._errors import (
    DocumentError,
    ExpiredError,
    FormatError,
    KeyringError,
    KeyStoreError,
    RollbackError,
    SignatureError,
    SizeError,
)
from pinwarden.document._keydir import DEFAULT_KEYRING_LIFETIME, KeyDirectory, OnlineKeyDirectory
from pinwarden.document._keys import ALGORITHMS, KeyringKey, SigningKey
from pinwarden.document._limits import (
    MAX_JSON_DEPTH,
    MAX_KEYRING_BYTES,
    MAX_KEYRING_STEPS,
    MAX_PINSET_BYTES,
    MAX_ROLE_KEYS,
    MAX_SIGNATURES,
)
from pinwarden.document._model import (
    KEYRING_TYPE,
    MODES,
    PINSET_TYPE,
    Keyring,
    PinSet,
    PinSetRule,
    check_report_uri,
)
from pinwarden.document._signing import sign_keyring, sign_pinset
from pinwarden.document._verifier import (
    DocumentHint,
    load_keyring,
    peek_document,
    update_keyring,
    verify_pinset,
    walk_keyrings,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_KEYRING_LIFETIME",
    "KEYRING_TYPE",
    "MAX_JSON_DEPTH",
    "MAX_KEYRING_BYTES",
    "MAX_KEYRING_STEPS",
    "MAX_PINSET_BYTES",
    "MAX_ROLE_KEYS",
    "MAX_SIGNATURES",
    "MODES",
    "PINSET_TYPE",
    "DocumentError",
    "DocumentHint",
    "ExpiredError",
    "FormatError",
    "KeyDirectory",
    "KeyStoreError",
    "Keyring",
    "KeyringError",
    "KeyringKey",
    "OnlineKeyDirectory",
    "PinSet",
    "PinSetRule",
    "RollbackError",
    "SignatureError",
    "SigningKey",
    "SizeError",
    "check_report_uri",
    "load_keyring",
    "peek_document",
    "sign_keyring",
    "sign_pinset",
    "update_keyring",
    "verify_pinset",
    "walk_keyrings",
]

name_exceptions_after(__name__, globals(), __all__)
