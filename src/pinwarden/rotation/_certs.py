"""Certificate authorities and keys made on the spot, for the drill and the demo on loopback.

Made with ``cryptography`` (a dependency of the client) so that ``pinwarden demo`` needs nothing a
test suite would (trustme). Short-lived, P-256, a SAN for the host: what a real client checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinwarden._pins import spki_pin

__all__ = ["IssuedCertificate", "LocalCA", "new_key"]

_LIFETIME = timedelta(days=2)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_of_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate and its key, as PEM, with the pin of the key."""

    chain_pem: bytes  # leaf, then the issuing CA
    key_pem: bytes
    pin: str


class LocalCA:
    """A root CA that issues leaf certificates for host names."""

    def __init__(self, name: str) -> None:
        self._key = new_key()
        now = datetime.now(timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), False)
            .sign(self._key, hashes.SHA256())
        )
        self.name = name
        self.cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.pin = spki_pin(self.certificate)

    def issue(self, host: str, key: ec.EllipticCurvePrivateKey | None = None) -> IssuedCertificate:
        """A leaf for ``host`` (a SAN DNS name), for ``key`` or a fresh one."""
        leaf_key = key or new_key()
        now = datetime.now(timezone.utc)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(self.certificate.subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = leaf.public_bytes(serialization.Encoding.PEM) + self.cert_pem
        return IssuedCertificate(chain, _pem_of_key(leaf_key), spki_pin(leaf))
