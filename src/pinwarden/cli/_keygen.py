"""``pinwarden keygen``: a backup key pair and CSR, made offline, and its pin.

Every rule needs a backup pin outside the live chain (design brief, "Safe rotation"): the key that
will be deployed if the live one is lost or rotated. It is made now, kept offline, and pinned now.
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
from pinwarden._pins import spki_pin
from pinwarden.cli._common import EXIT_OK, CommandError, print_json
from pinwarden.cli._secrets import add_passphrase_options, read_new_passphrase

_ALGORITHMS = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="make a backup TLS key pair and CSR offline and print its pin",
        description="Writes NAME.key (PKCS#8, 0600, encrypted when a passphrase is given) and "
        "NAME.csr, then prints the pin to add to your rules as the backup pin.",
    )
    parser.add_argument("--name", default="backup", help="file name stem (default: backup)")
    parser.add_argument("--out-dir", default=".", help="directory for the files (default: .)")
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


def _run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    if not out_dir.is_dir():
        raise CommandError(f"--out-dir {args.out_dir!r} is not a directory")
    passphrase = read_new_passphrase(args)
    key = _new_key(args.algorithm)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.common_name or args.name)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if args.dns:
        names = [x509.DNSName(name) for name in args.dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    csr = builder.sign(key, hashes.SHA256())
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_path, csr_path = out_dir / f"{args.name}.key", out_dir / f"{args.name}.csr"
    if csr_path.exists():
        raise CommandError(f"{csr_path} exists; not overwriting")
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ),
    )
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
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
