"""Describe a chain for error messages: each certificate's role, subject, issuer and pin.

Reading the chains of a connection is ``pinwarden._tls``'s job (one place for every part and
Python version).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from pinwarden._pins import spki_pin_of_der
from pinwarden.client._errors import ChainCertificate

__all__ = ["describe_chain"]


def _role(depth: int, certificate: x509.Certificate, length: int) -> str:
    if depth == 0:
        return "leaf"
    if depth == length - 1 and certificate.subject == certificate.issuer:
        return "root"
    return "intermediate"


def _printable(name: x509.Name) -> str:
    """RFC 4514 text of a name, with control characters escaped.

    The server (an attacker, when pins do not match) chooses these names: a newline in one must not
    forge lines of an error message or a log.
    """
    text = name.rfc4514_string()
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def describe_chain(chain_der: Sequence[bytes]) -> tuple[ChainCertificate, ...]:
    """Subject, issuer, pin and role of each certificate of a chain, leaf first (for messages)."""
    described = []
    for depth, der in enumerate(chain_der):
        certificate = x509.load_der_x509_certificate(der)
        described.append(
            ChainCertificate(
                role=_role(depth, certificate, len(chain_der)),
                subject=_printable(certificate.subject),
                issuer=_printable(certificate.issuer),
                pin=spki_pin_of_der(der),
            )
        )
    return tuple(described)
