"""What a certificate, chain or key file about to go live brings: its pins and the names it serves.

A chain file (certbot's ``fullchain.pem``) is read leaf first, as a TLS server sends it. A key
file (acme.sh's ``<key>.next``, a CSR) names no host: its hosts come from the caller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from pinwarden._hosts import normalize_host
from pinwarden._pins import load_all_key_material, spki_pin
from pinwarden.errors import InvalidHostError, PinwardenError, UnsupportedKeyMaterial

__all__ = ["Candidate", "MaterialError", "candidate_from_bytes"]

_MAX_OBJECTS = 16  # a chain longer than this is not a chain a server would send


class MaterialError(PinwardenError):
    """A file that is not a certificate, chain, key or CSR, or one that names no usable host."""


@dataclass(frozen=True)
class Candidate:
    """One file about to go live: the pins of its keys (leaf first) and the names it serves."""

    source: str
    kind: str  # "chain", "certificate", "key" or "csr"
    pins: tuple[str, ...]
    names: tuple[str, ...]  # normalised SAN DNS names and IP addresses; empty for a key

    @property
    def key_pin(self) -> str:
        """The pin of the key being deployed: the leaf's, or the key's itself."""
        return self.pins[0]


def _san_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The subjectAltName DNS names and IP addresses, normalised; the CN is never used (RFC 6125
    §6.4.4: a client with SANs to match ignores the CN, and Python's client matches SANs only)."""
    try:
        extension = certificate.extensions.get_extension_for_oid(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME
        )
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = []
    alt_names = extension.value
    assert isinstance(alt_names, x509.SubjectAlternativeName)
    for address in alt_names.get_values_for_type(x509.IPAddress):
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            names.append(str(address))
    for dns_name in alt_names.get_values_for_type(x509.DNSName):
        wildcard = dns_name.startswith("*.")
        try:
            base = normalize_host(dns_name[2:] if wildcard else dns_name)
        except InvalidHostError as error:
            raise MaterialError(f"subjectAltName {dns_name!r}: {error}") from None
        names.append(f"*.{base}" if wildcard else base)
    return tuple(dict.fromkeys(names))


def candidate_from_bytes(data: bytes, source: str) -> Candidate:
    """Read a PEM chain, a PEM or DER certificate, public or private key, or CSR."""
    try:
        objects = load_all_key_material(data)
    except (UnsupportedKeyMaterial, ValueError) as error:
        raise MaterialError(f"{source}: {error}") from None
    if len(objects) > _MAX_OBJECTS:
        raise MaterialError(f"{source}: {len(objects)} objects; a chain has at most {_MAX_OBJECTS}")
    first = objects[0]
    certificates = [item for item in objects if isinstance(item, x509.Certificate)]
    if isinstance(first, x509.Certificate):
        if len(certificates) != len(objects):
            raise MaterialError(f"{source}: a chain file holds certificates only, leaf first")
        kind = "chain" if len(objects) > 1 else "certificate"
        names = _san_names(first)
    else:
        if len(objects) != 1:
            raise MaterialError(f"{source}: one key or CSR a file, not {len(objects)} objects")
        kind = "csr" if isinstance(first, x509.CertificateSigningRequest) else "key"
        names = ()
    try:
        pins = tuple(spki_pin(item) for item in objects)
    except (UnsupportedKeyMaterial, ValueError) as error:
        raise MaterialError(f"{source}: {error}") from None
    return Candidate(source, kind, pins, names)
