"""What a logged certificate says about itself: names, key pin, TBS hash, validity.

Everything comes from the leaf (the certificate, or the precertificate's TBSCertificate) that the
tree hash covers. The TBS hash is SHA-256 of the TBSCertificate without the precertificate
poison (RFC 6962 §3.1, OID 1.3.6.1.4.1.11129.2.4.3) and without the embedded SCT list
(1.3.6.1.4.1.11129.2.4.2): a precertificate and the certificate issued from it have the same
one, so they are one sighting and one alert.

Names are read fail-safe for matching (``NameLabels``): a wildcard, a redacted ("?") or an
unreadable label stands for any label, and a certificate whose name extension cannot be read at
all matches every rule it could concern.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from pinwarden._pins import pin_from_digest
from pinwarden.server.ct._entries import LogEntry
from pinwarden.server.ct._wire import MalformedEntry, der_children, der_encode, der_read

__all__ = ["LoggedCertificate", "NameLabels", "leaf_tbs", "logged_certificate"]

# A name split into labels, leftmost first; None: any one label.
NameLabels = tuple[str | None, ...]

_POISON = bytes.fromhex("2b06010401d679020403")
_SCT_LIST = bytes.fromhex("2b06010401d679020402")
_SEQUENCE, _EXTENSIONS, _VERSION, _OID = 0x30, 0xA3, 0xA0, 0x06
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_EMPTY_SIGNATURE = b"\x03\x01\x00"  # BIT STRING, no unused bits, no bytes


@dataclass(frozen=True)
class LoggedCertificate:
    names: tuple[str, ...]  # as written (DNS names, IP addresses, subject common names)
    labels: tuple[NameLabels, ...]
    names_unreadable: bool  # True: treat as matching every candidate rule
    pin: str  # sha256/ of the leaf's SubjectPublicKeyInfo
    tbs_hash: bytes
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime


def leaf_tbs(entry: LogEntry) -> bytes:
    """The TBSCertificate of the entry: the precert's as logged, or the certificate's first
    element."""
    if entry.precert:
        return entry.der
    tag, start, end = der_read(entry.der, 0)
    if tag != _SEQUENCE or end != len(entry.der):
        raise MalformedEntry("the certificate is not one DER SEQUENCE")
    children = der_children(entry.der, start, end)
    if len(children) != 3:
        raise MalformedEntry("the certificate does not have three parts")
    _, tbs_start, tbs_end = children[0]
    return entry.der[tbs_start:tbs_end]


def _tbs_fields(tbs: bytes) -> list[tuple[int, int, int]]:
    tag, start, end = der_read(tbs, 0)
    if tag != _SEQUENCE or end != len(tbs):
        raise MalformedEntry("the TBSCertificate is not one DER SEQUENCE")
    fields = der_children(tbs, start, end)
    if len(fields) < 6:
        raise MalformedEntry("the TBSCertificate is too short")
    return fields


def _spki_and_signature_algorithm(tbs: bytes) -> tuple[bytes, bytes]:
    fields = _tbs_fields(tbs)
    first = 1 if fields[0][0] == _VERSION else 0
    if len(fields) < first + 6:
        raise MalformedEntry("the TBSCertificate is too short")
    _, algorithm_start, algorithm_end = fields[first + 1]
    _, spki_start, spki_end = fields[first + 5]
    return tbs[spki_start:spki_end], tbs[algorithm_start:algorithm_end]


def tbs_without_ct_extensions(tbs: bytes) -> bytes:
    """``tbs`` without the poison and SCT list extensions (unchanged if it has neither)."""
    fields = _tbs_fields(tbs)
    if fields[-1][0] != _EXTENSIONS:
        return tbs
    _, field_start, field_end = fields[-1]
    tag, list_start, list_end = der_read(tbs, der_read(tbs, field_start)[1])
    if tag != _SEQUENCE:
        raise MalformedEntry("the extensions are not a SEQUENCE")
    kept, dropped = [], False
    for _, start, end in der_children(tbs, list_start, list_end):
        oid_tag, oid_start, oid_end = der_read(tbs, der_read(tbs, start)[1])
        if oid_tag == _OID and tbs[oid_start:oid_end] in (_POISON, _SCT_LIST):
            dropped = True
        else:
            kept.append(tbs[start:end])
    if not dropped:
        return tbs
    extensions = der_encode(_EXTENSIONS, der_encode(_SEQUENCE, b"".join(kept)))
    content_start = der_read(tbs, 0)[1]
    return der_encode(_SEQUENCE, tbs[content_start:field_start] + extensions + tbs[field_end:])


def _labels(name: str) -> NameLabels:
    """A DNS name's labels, lower case; any label that is not a plain one stands for any."""
    labels = name.strip().lower().removesuffix(".").split(".")
    return tuple(label if _LABEL.fullmatch(label) else None for label in labels)


def _names(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[NameLabels, ...], bool]:
    names: list[str] = []
    labels: list[NameLabels] = []
    try:
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            dns, addresses = [], []
        else:
            dns = san.value.get_values_for_type(x509.DNSName)
            addresses = san.value.get_values_for_type(x509.IPAddress)
        common = [
            value
            for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if isinstance(value := attribute.value, str)
        ]
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        # a malformed, repeated or unknown extension or name: cannot rule any host out
        return (), (), True
    for name in dict.fromkeys([*dns, *common]):  # the common name repeats a DNS name, mostly
        names.append(name)
        try:
            labels.append(tuple(ipaddress.ip_address(name).compressed.split(".")))
        except ValueError:
            labels.append(_labels(name))
    for address in addresses:
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            names.append(address.compressed)
            labels.append(tuple(address.compressed.split(".")))
    return tuple(names), tuple(labels), False


def _loaded(entry: LogEntry, tbs: bytes, algorithm: bytes) -> x509.Certificate:
    """The certificate, or for a precert its TBS wrapped as a certificate with an empty
    signature: ``cryptography`` reads the fields and checks no signature on load."""
    der = (
        entry.der
        if not entry.precert
        else der_encode(_SEQUENCE, tbs + algorithm + _EMPTY_SIGNATURE)
    )
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise MalformedEntry(f"the certificate does not parse: {error}") from None


def logged_certificate(entry: LogEntry) -> LoggedCertificate:
    """The facts of ``entry``'s leaf; ``MalformedEntry`` when it cannot be read."""
    tbs = leaf_tbs(entry)
    spki, algorithm = _spki_and_signature_algorithm(tbs)
    certificate = _loaded(entry, tbs, algorithm)
    names, labels, unreadable = _names(certificate)
    try:
        subject, issuer = certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string()
    except ValueError:
        subject = issuer = "(unreadable)"
    return LoggedCertificate(
        names=names,
        labels=labels,
        names_unreadable=unreadable,
        pin=pin_from_digest(hashlib.sha256(spki).digest()),
        tbs_hash=hashlib.sha256(tbs_without_ct_extensions(tbs)).digest(),
        subject=subject,
        issuer=issuer,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )
