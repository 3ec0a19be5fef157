"""The errors pinwarden raises for bad input, under one base class.

::

    PinwardenError
    ├── InvalidPinError          a pin that is not a SHA-256 SPKI digest
    ├── InvalidHostError         a hostname or host pattern that cannot be normalised or is unsafe
    └── UnsupportedKeyMaterial   bytes or objects that hold no certificate, key or CSR

Each is also a ``ValueError``, so callers that only know the standard library still catch them.
Errors of the TLS layer (``pinwarden.client.PinValidationError``) and of signed documents
(``pinwarden.document.DocumentError``) live with their modules.
"""

from __future__ import annotations

__all__ = ["InvalidHostError", "InvalidPinError", "PinwardenError", "UnsupportedKeyMaterial"]


class PinwardenError(Exception):
    """Base of every error pinwarden raises for input it refuses."""


class InvalidPinError(PinwardenError, ValueError):
    """A pin is not ``sha256/<base64 of 32 bytes>`` (or one of its accepted spellings)."""


class InvalidHostError(PinwardenError, ValueError):
    """A hostname or host pattern is malformed, or a pattern would cover a public suffix."""


class UnsupportedKeyMaterial(PinwardenError, ValueError):
    """The input holds no certificate, public key, private key or CSR that pinwarden can read."""
