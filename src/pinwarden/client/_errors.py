"""Errors of pin enforcement.

::

    ssl.SSLError
    └── ssl.SSLCertVerificationError
        └── PinValidationError        the verified chain holds no pinned key, or cannot be pinned

Raising a subclass of ``ssl.SSLCertVerificationError`` means every HTTP stack reports a pin failure
the way it reports a bad certificate (requests ``SSLError``, httpx ``ConnectError``, aiohttp
``ClientConnectorCertificateError``), and code that already handles those keeps working.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

__all__ = ["PinValidationError"]


class PinValidationError(ssl.SSLCertVerificationError):
    """The connection to ``host`` was refused by its pin rule.

    ``expected`` holds the pins of the rule, ``seen`` the pins of the verified chain, leaf first
    (empty when no chain could be read).
    """

    def __init__(
        self, host: str, reason: str, *, expected: Sequence[str] = (), seen: Sequence[str] = ()
    ) -> None:
        self.host = host
        self.expected = tuple(expected)
        self.seen = tuple(seen)
        message = f"certificate pinning failed for {host}: {reason}"
        if self.expected:
            message += "; expected one of: " + ", ".join(self.expected)
        if self.seen:
            message += "; verified chain (leaf first): " + ", ".join(self.seen)
        super().__init__(message)
        self.message = message
        self.verify_message = message
        self.verify_code = 0

    def __str__(self) -> str:
        return self.message
