"""``pinwarden pin SOURCE``: the pins of a file's certificates and keys, or of a host's chain."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509

from pinwarden._pins import KeyMaterial, load_all_key_material, spki_pin
from pinwarden._tls import verified_chain_der
from pinwarden.cli._common import EXIT_OK, CommandError, print_json, read_input_file
from pinwarden.cli._tls import add_target_options, open_tls, target_from_args, tls_failure
from pinwarden.errors import UnsupportedKeyMaterial


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pin",
        help="print the SPKI pins of a PEM/DER file or of a host's verified chain",
        description="One line per certificate, leaf first: pin, subject, issuer, not-after. "
        "For host[:port] the chain is the verified one (what pins are checked against).",
    )
    parser.add_argument(
        "source",
        help="a PEM/DER file (certificate, chain, key, CSR), host[:port] or https://host[:port]/…",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(parser)
    parser.set_defaults(handler=_run)


def describe(material: KeyMaterial) -> dict[str, Any]:
    """Pin and, for certificates, subject, issuer and expiry of one object."""
    entry: dict[str, Any] = {"pin": spki_pin(material)}
    if isinstance(material, x509.Certificate):
        entry.update(
            kind="certificate",
            subject=material.subject.rfc4514_string(),
            issuer=material.issuer.rfc4514_string(),
            not_after=material.not_valid_after_utc.isoformat(),
        )
    elif isinstance(material, x509.CertificateSigningRequest):
        entry.update(kind="csr", subject=material.subject.rfc4514_string())
    else:
        entry["kind"] = "private key" if hasattr(material, "private_bytes") else "public key"
    return entry


def format_entry(entry: dict[str, Any]) -> str:
    if entry["kind"] == "certificate":
        return (
            f"{entry['pin']}  subject={entry['subject']}  issuer={entry['issuer']}  "
            f"not-after={entry['not_after']}"
        )
    subject = f"  subject={entry['subject']}" if "subject" in entry else ""
    return f"{entry['pin']}  ({entry['kind']}){subject}"


def chain_of_host(args: argparse.Namespace) -> list[x509.Certificate]:
    """The verified chain of a live host, leaf first, after normal CA and hostname validation."""
    target = target_from_args(args, args.source)
    try:
        context = ssl.create_default_context(cafile=args.ca_file)
    except (OSError, ssl.SSLError, ValueError) as error:
        raise CommandError(f"cannot load --ca-file {args.ca_file!r}: {error}") from None
    try:
        with open_tls(target, context) as tls:
            return [x509.load_der_x509_certificate(der) for der in verified_chain_der(tls)]
    except ssl.SSLError as error:
        raise tls_failure(target, error) from None


_FILE_SUFFIXES = (".pem", ".der", ".crt", ".cer", ".key", ".csr", ".pub")


def _looks_like_a_path(source: str) -> bool:
    """A path separator or a key-file suffix: the user meant a file, not a host."""
    return "/" in source or source.lower().endswith(_FILE_SUFFIXES)


def _objects_of_file(args: argparse.Namespace) -> list[KeyMaterial]:
    if args.connect_to is not None:
        raise CommandError("--connect-to is for a host; the source is a file")
    data = read_input_file(args.source, "file")
    try:
        return list(load_all_key_material(data))
    except UnsupportedKeyMaterial as error:
        raise CommandError(f"{args.source}: {error}") from None


def _run(args: argparse.Namespace) -> int:
    is_url = "://" in args.source
    objects: list[KeyMaterial]
    if not is_url and Path(args.source).exists():
        objects = _objects_of_file(args)
    elif not is_url and _looks_like_a_path(args.source):
        raise CommandError(f"no such file: {args.source!r}")
    else:
        objects = list(chain_of_host(args))
    entries = [describe(material) for material in objects]
    if args.json:
        print_json(entries)
    else:
        for entry in entries:
            print(format_entry(entry))
    return EXIT_OK
