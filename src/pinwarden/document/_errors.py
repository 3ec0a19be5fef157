"""The verdicts a signed document can end in, under one base (docs/spec.md §6).

::

    DocumentError
    ├── FormatError      not a well-formed document of the expected type (also ValueError)
    ├── SizeError        larger than its size cap; refused before parsing
    ├── SignatureError   algorithm not allowed, header alg differs from the trusted key's,
    │                    a trusted key's signature does not verify, or threshold not met
    ├── RollbackError    version below the caller's floor, or a keyring that is not newer
    ├── ExpiredError     the document or the keyring it is judged with has expired
    └── KeyringError     a keyring walk that skips a version, needs too many steps, or a pin set
                         signed under a keyring newer than the one given

``KeyStoreError`` is not a verdict on a document: it reports a key directory or a PEM key file that
cannot be created, read or decrypted.
"""

from __future__ import annotations

from pinwarden.errors import PinwardenError

__all__ = [
    "DocumentError",
    "ExpiredError",
    "FormatError",
    "KeyStoreError",
    "KeyringError",
    "RollbackError",
    "SignatureError",
    "SizeError",
]


class DocumentError(PinwardenError):
    """A signed document (pin set or keyring) was refused; the subclass says why."""


class FormatError(DocumentError, ValueError):
    """The bytes are not a well-formed document of the expected type."""


class SizeError(DocumentError):
    """The document is larger than its size cap."""


class SignatureError(DocumentError):
    """The signatures do not meet the trusted threshold, or one of them is not acceptable."""


class RollbackError(DocumentError):
    """The document's version is lower than one already trusted."""


class ExpiredError(DocumentError):
    """The document, or the keyring it is verified with, has expired."""


class KeyringError(DocumentError):
    """The keyring cannot be brought to the version the document needs."""


class KeyStoreError(PinwardenError):
    """A key directory or key file cannot be created, read or decrypted."""
