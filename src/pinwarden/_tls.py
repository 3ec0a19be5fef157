"""Reading a TLS connection's chains, for every part that looks at live hosts.

The client's enforcement, ``pinwarden pin``, the server's safe-publish check and its monitor all
read the chain here, so there is one place that knows how each Python version exposes it.

Pins are checked against the chain OpenSSL built to a trust anchor, never the list of certificates
the server sent (docs/security.md rule 1; OkHttp CVE-2016-2402). Python exposes that chain
publicly from 3.13 (``SSLSocket.get_verified_chain``, https://github.com/python/cpython/pull/109113)
and only on the private ``_sslobj`` from 3.10 (``_ssl._SSLSocket.get_verified_chain``, added by
https://github.com/python/cpython/pull/25467). An ``ssl.SSLObject`` (asyncio's TLS) has the same
private attribute as an ``ssl.SSLSocket``. Importing this module fails with a clear message where
that private method is missing (another Python implementation, a changed CPython);
tests/client/test_client_hooks.py checks it on every Python the client supports.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from pinwarden._pins import spki_pin_of_der

__all__ = [
    "CertificateFacts",
    "ChainKey",
    "certificate_facts",
    "served_chain_der",
    "verified_chain_der",
    "verified_chain_key",
]


ChainKey = tuple[Hashable, ...]


if sys.version_info >= (3, 13):

    def verified_chain_der(tls: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
        """DER certificates of the verified chain, leaf first; empty when there is none."""
        return list(tls.get_verified_chain())

    def verified_chain_key(tls: ssl.SSLSocket | ssl.SSLObject) -> ChainKey:
        """A hashable value equal for two connections exactly when their verified chains are."""
        return tuple(tls.get_verified_chain())

    def served_chain_der(tls: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
        """DER certificates as the server sent them: for reports only, never for the check."""
        return list(tls.get_unverified_chain())

else:
    import _ssl

    if not hasattr(_ssl._SSLSocket, "get_verified_chain"):  # type: ignore[attr-defined]
        raise ImportError(
            "pinwarden reads the verified chain with _ssl._SSLSocket.get_verified_chain "
            "(CPython 3.10 to 3.12), which this Python lacks; use CPython 3.10 or later"
        )

    def verified_chain_der(tls: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
        """DER certificates of the verified chain, leaf first; empty when there is none."""
        chain = tls._sslobj.get_verified_chain()  # type: ignore[union-attr]
        return [certificate.public_bytes(_ssl.ENCODING_DER) for certificate in chain or ()]

    def verified_chain_key(tls: ssl.SSLSocket | ssl.SSLObject) -> ChainKey:
        """A hashable value equal for two connections exactly when their verified chains are.

        The ``_ssl.Certificate`` objects themselves: they compare with OpenSSL's ``X509_cmp``
        (the certificates' digests and encodings), which spares encoding each one to DER.
        """
        return tuple(tls._sslobj.get_verified_chain() or ())  # type: ignore[union-attr]

    def served_chain_der(tls: ssl.SSLSocket | ssl.SSLObject) -> list[bytes]:
        """DER certificates as the server sent them: for reports only, never for the check."""
        chain = tls._sslobj.get_unverified_chain()  # type: ignore[union-attr]
        return [certificate.public_bytes(_ssl.ENCODING_DER) for certificate in chain or ()]


@dataclass(frozen=True)
class CertificateFacts:
    """What an operator needs to know about one certificate of a chain."""

    pin: str
    subject: str
    issuer: str
    not_after: datetime

    def view(self) -> dict[str, Any]:
        return {
            "pin": self.pin,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.not_after.isoformat(),
        }


def certificate_facts(der: bytes) -> CertificateFacts:
    """Pin, subject, issuer and expiry of a DER certificate (RFC 4514 names)."""
    certificate = x509.load_der_x509_certificate(der)
    return CertificateFacts(
        spki_pin_of_der(der),
        certificate.subject.rfc4514_string(),
        certificate.issuer.rfc4514_string(),
        certificate.not_valid_after_utc,
    )
