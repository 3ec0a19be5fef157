"""Test PKIs made with trustme, and the few certificates trustme cannot make.

- ``make_pki``: the client suites' PKI. A legitimate root CA with an intermediate that issues the
  leaf; a rogue root CA that the client *also* trusts (as a user-installed CA would be) issuing
  its own leaf for the same names; an untrusted root that nobody trusts; a leaf for a wrong host;
  each chain written to a file a server loads.
- ``make_app_pki``: the dynamic suites' PKI. One CA the client trusts and two leaves for the app
  host, so that a pin set can move the host from one key to the other.
- ``issue_leaf``: a leaf with a chosen subjectAltName, or none (a CN-only certificate).
- ``backup_pin``: the pin of a key that no server holds (an offline backup key).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinwarden import spki_pin

# Every name the client PKI's leaves are valid for. Only "localhost" and "127.0.0.1" are ever
# resolved; the other names are used as server_hostname on a socket already connected to
# 127.0.0.1, or reach the servers through the CONNECT proxy, which sends every tunnel to 127.0.0.1.
SERVER_NAMES = (
    "localhost",
    "127.0.0.1",
    "xn--bcher-kva.example",  # bücher.example
    "pinwarden.test",
    "api.pinwarden.test",
    "deep.api.pinwarden.test",
)


def backup_pin() -> str:
    """The pin of a fresh key that no server uses (a backup key kept offline)."""
    return spki_pin(ec.generate_private_key(ec.SECP256R1()).public_key())


def leaf_pin(leaf: trustme.LeafCert) -> str:
    return spki_pin(leaf.cert_chain_pems[0].bytes())


def write_ca_file(ca: trustme.CA, path: Path) -> str:
    """Write ``ca``'s certificate to ``path`` (a ``cafile`` for a client); the path."""
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(certificate: trustme.LeafCert | str) -> ssl.SSLContext:
    """A TLS server context serving ``certificate``: a leaf, or a PEM file of key and chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if isinstance(certificate, str):
        context.load_cert_chain(certificate)
    else:
        certificate.configure_cert(context)
    return context


# -- the client suites' PKI ----------------------------------------------------------------------


@dataclass
class PKI:
    """The certificates, their pins and the files the servers and clients load."""

    directory: Path
    legit_root: trustme.CA
    intermediate: trustme.CA
    legit_leaf: trustme.LeafCert
    rogue_root: trustme.CA
    rogue_leaf: trustme.LeafCert
    untrusted_root: trustme.CA
    untrusted_leaf: trustme.LeafCert
    wrong_host_leaf: trustme.LeafCert

    @property
    def ca_bundle(self) -> str:
        """What the client trusts: the legitimate root and the rogue (user-installed) root."""
        return str(self.directory / "client-trust.pem")

    @property
    def untrusted_root_file(self) -> str:
        return str(self.directory / "untrusted-root.pem")

    @property
    def leaf_pin(self) -> str:
        return leaf_pin(self.legit_leaf)

    @property
    def intermediate_pin(self) -> str:
        return spki_pin(self.intermediate.cert_pem.bytes())

    @property
    def legit_root_pin(self) -> str:
        return spki_pin(self.legit_root.cert_pem.bytes())

    @property
    def rogue_leaf_pin(self) -> str:
        return leaf_pin(self.rogue_leaf)

    @property
    def rogue_root_pin(self) -> str:
        return spki_pin(self.rogue_root.cert_pem.bytes())

    @property
    def backup_pin(self) -> str:
        """The pin of a key that no server uses (a backup key kept offline)."""
        return spki_pin(self.untrusted_root.private_key_pem.bytes())

    def chain_file(self, name: str) -> str:
        return str(self.directory / f"{name}-chain.pem")


def make_pki(directory: Path) -> PKI:
    legit_root = trustme.CA(organization_name="pinwarden tests: legitimate root")
    intermediate = legit_root.create_child_ca()
    rogue_root = trustme.CA(organization_name="pinwarden tests: rogue root")
    untrusted_root = trustme.CA(organization_name="pinwarden tests: untrusted root")
    pki = PKI(
        directory=directory,
        legit_root=legit_root,
        intermediate=intermediate,
        legit_leaf=intermediate.issue_cert(*SERVER_NAMES),
        rogue_root=rogue_root,
        rogue_leaf=rogue_root.issue_cert(*SERVER_NAMES),
        untrusted_root=untrusted_root,
        untrusted_leaf=untrusted_root.issue_cert(*SERVER_NAMES),
        wrong_host_leaf=intermediate.issue_cert("wrong-host.pinwarden.test"),
    )
    (directory / "client-trust.pem").write_bytes(
        legit_root.cert_pem.bytes() + rogue_root.cert_pem.bytes()
    )
    write_ca_file(untrusted_root, Path(pki.untrusted_root_file))
    chains = {
        "legit": pki.legit_leaf.private_key_and_cert_chain_pem.bytes(),
        "rogue": pki.rogue_leaf.private_key_and_cert_chain_pem.bytes(),
        # CVE-2016-2402: the rogue chain with the legitimate, pinned intermediate appended.
        "appended": pki.rogue_leaf.private_key_and_cert_chain_pem.bytes()
        + intermediate.cert_pem.bytes(),
        "untrusted": pki.untrusted_leaf.private_key_and_cert_chain_pem.bytes(),
        "wrong-host": pki.wrong_host_leaf.private_key_and_cert_chain_pem.bytes(),
    }
    for name, pem in chains.items():
        Path(pki.chain_file(name)).write_bytes(pem)
    return pki


# -- the dynamic suites' PKI ---------------------------------------------------------------------


@dataclass
class AppPKI:
    """A CA the client trusts, two leaf keys for the app host, and their pins."""

    directory: Path
    ca: trustme.CA
    leaf_a: trustme.LeafCert
    leaf_b: trustme.LeafCert
    pin_a: str
    pin_b: str
    backup_pin: str  # a key that no server uses: every rule carries one

    @property
    def ca_file(self) -> str:
        path = self.directory / "ca.pem"
        if not path.exists():
            write_ca_file(self.ca, path)
        return str(path)

    def server_context(self, leaf: trustme.LeafCert) -> ssl.SSLContext:
        return server_context(leaf)


def make_app_pki(directory: Path) -> AppPKI:
    ca = trustme.CA()
    leaf_a = ca.issue_cert("localhost", "127.0.0.1")
    leaf_b = ca.issue_cert("localhost", "127.0.0.1")
    pins = (leaf_pin(leaf_a), leaf_pin(leaf_b), backup_pin())
    return AppPKI(directory, ca, leaf_a, leaf_b, *pins)


# -- what trustme cannot issue -------------------------------------------------------------------


def issue_leaf(
    issuer: trustme.CA, common_name: str, alt_names: Sequence[str] = ()
) -> trustme.LeafCert:
    """A server leaf of ``issuer`` naming ``common_name`` in its subject CN and ``alt_names``
    (DNS names) in subjectAltName; with no ``alt_names`` it has no subjectAltName at all, which
    trustme never issues. RFC 6125 §6.4.4: a client must not match such a CN-only leaf, and
    Python's default context still does (``hostname_checks_common_name``). The other extensions
    are the ones Python 3.13's ``VERIFY_X509_STRICT`` asks for. The chain runs up to, but not
    including, the root, as trustme's own leaves do."""
    issuer_key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), password=None)
    issuer_cert = x509.load_pem_x509_certificate(issuer.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in alt_names]),
            critical=False,
        )
    certificate = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain: list[bytes] = []
    ca = issuer
    while ca.parent_cert is not None:
        chain.append(ca.cert_pem.bytes())
        ca = ca.parent_cert
    return trustme.LeafCert(key_pem, certificate.public_bytes(serialization.Encoding.PEM), chain)
