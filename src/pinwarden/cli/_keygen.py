"""``pinwarden keygen``: a backup key pair and CSR, made offline, and its pin.

Every rule needs a backup pin outside the live chain (docs/server.md, "Safe publishing"): the key
that will be deployed if the live one is lost or rotated. It is made now, kept offline, and pinned
now. ``--name`` is a plain file name and ``--out`` the directory the files go to, so nothing is
written anywhere else.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from pinwarden._files import write_new_file
from pinwarden._hosts import normalize_host
from pinwarden._pins import spki_pin
from pinwarden.cli._common import EXIT_OK, CommandError, print_json
from pinwarden.cli._secrets import add_passphrase_options, read_new_passphrase
from pinwarden.errors import PinwardenError

_ALGORITHMS = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
_MAX_NAME = 200  # leaves room for ".key" within the 255 bytes most file systems allow
_MAX_COMMON_NAME = 64  # RFC 5280 appendix A, ub-common-name


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="make a backup TLS key pair and CSR offline and print its pin",
        description="Writes OUT/NAME.key (PKCS#8, 0600, encrypted with the passphrase) and "
        "OUT/NAME.csr, then prints the pin to add to your rules as the backup pin. The "
        "passphrase comes from --passphrase-env or --passphrase-file (or a prompt on a "
        "terminal); --no-passphrase stores the key unencrypted.",
    )
    parser.add_argument(
        "--name", default="backup", help="file name stem, no directory (default: backup)"
    )
    parser.add_argument(
        "--out", "--out-dir", dest="out_dir", default=".", help="directory for the files (.)"
    )
    parser.add_argument("--algorithm", choices=_ALGORITHMS, default="ec-p256")
    parser.add_argument("--common-name", "--cn", help="CN of the CSR (default: the name)")
    parser.add_argument("--dns", action="append", default=[], help="a DNS name for the CSR's SAN")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_passphrase_options(parser, required=False)
    parser.set_defaults(handler=_run)


def _new_key(algorithm: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if algorithm.startswith("ec-"):
        curve = ec.SECP256R1() if algorithm == "ec-p256" else ec.SECP384R1()
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm.split("-")[1]))


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start; never overwrite an existing key."""
    try:
        write_new_file(path, data, 0o600)
    except FileExistsError:
        raise CommandError(f"{path} exists; not overwriting a key") from None
    except OSError as error:
        raise CommandError(f"cannot create {path}: {error.strerror or error}") from None


def _check_name(name: str) -> str:
    """``name`` if it is a plain file name: no directory part, nothing a shell or file system
    would read as something else."""
    problem = None
    if not name or name in (".", ".."):
        problem = "is empty or a directory name"
    elif "/" in name or "\\" in name:
        problem = "has a directory part; give the directory with --out"
    elif len(name) > _MAX_NAME:
        problem = f"is longer than {_MAX_NAME} characters"
    elif not name.isprintable() or not _is_utf8(name) or name.startswith("-"):
        problem = "has control characters, undecodable bytes or a leading '-'"
    if problem:
        raise CommandError(f"--name {name[:60]!r} {problem} (a plain file name like api-backup)")
    return name


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _subject(common_name: str) -> x509.Name:
    if not 1 <= len(common_name) <= _MAX_COMMON_NAME or not _is_utf8(common_name):
        raise CommandError(
            f"--common-name {common_name[:80]!r} (default: --name) must be 1 to "
            f"{_MAX_COMMON_NAME} characters of text"
        )
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _dns_name(text: str) -> x509.DNSName:
    """A SAN entry: a hostname, or ``*.`` and a hostname, in its A-label form."""
    wildcard = "*." if text.startswith("*.") else ""
    try:
        return x509.DNSName(wildcard + normalize_host(text[len(wildcard) :]))
    except PinwardenError as error:
        raise CommandError(f"--dns: {error}") from None


def _run(args: argparse.Namespace) -> int:
    name = _check_name(args.name)
    subject = _subject(args.common_name or name)
    names = [_dns_name(text) for text in args.dns]
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise CommandError(f"--out {args.out_dir!r} is not a directory")
    key_path, csr_path = out_dir / f"{name}.key", out_dir / f"{name}.csr"
    if csr_path.exists():
        raise CommandError(f"{csr_path} exists; not overwriting")
    passphrase = read_new_passphrase(args)
    key = _new_key(args.algorithm)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ),
    )
    try:
        write_new_file(csr_path, csr.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError as error:
        raise CommandError(f"cannot create {csr_path}: {error.strerror or error}") from None
    pin = spki_pin(key.public_key())
    result = {
        "pin": pin,
        "key": str(key_path),
        "csr": str(csr_path),
        "algorithm": args.algorithm,
        "encrypted": bool(passphrase),
    }
    if args.json:
        print_json(result)
    else:
        print(pin)
        print(f"key: {key_path} ({'encrypted' if passphrase else 'NOT encrypted'}, mode 0600)")
        print(f"csr: {csr_path}")
        print("Keep the key offline; publish the pin as the backup pin of your rules.")
    return EXIT_OK
