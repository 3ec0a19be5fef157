"""Read the verified chain of a TLS connection.

Pins are checked against the chain OpenSSL built to a trust anchor, never the list of certificates
the server sent (design brief, client rule 1; OkHttp CVE-2016-2402). Python exposes that chain
publicly from 3.13 (``SSLSocket.get_verified_chain``) and only on the private ``_sslobj`` from 3.10.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Hashable

__all__ = ["served_chain_der", "verified_chain_der", "verified_chain_key"]

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
