"""``pinwarden sign`` and ``pinwarden verify``: signed pin-set and keyring documents as files.

``verify`` exits 0 and prints the verified content, or exits 1 with the error type and reason
(``SignatureError: ...``); it never prints a traceback.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pinwarden.cli._common import EXIT_FAILED, EXIT_OK, CommandError, print_json, read_input_file
from pinwarden.cli._secrets import add_passphrase_options, read_passphrase
from pinwarden.document import (
    KEYRING_TYPE,
    DocumentError,
    KeyDirectory,
    Keyring,
    KeyStoreError,
    PinSet,
    SigningKey,
    load_keyring,
    peek_document,
    sign_keyring,
    sign_pinset,
    update_keyring,
    verify_pinset,
)
from pinwarden.document._encoding import load_json


def register(subparsers: Any) -> None:
    sign = subparsers.add_parser(
        "sign",
        help="sign a pin-set (or keyring) payload file",
        description="PAYLOAD is the JSON payload (any formatting; host patterns and pins are "
        "normalised). A pin set is signed with the online keys of --dir; any document with the "
        "PEM keys given by --key (all decrypted with one passphrase).",
    )
    sign.add_argument("payload", metavar="PAYLOAD", help="the payload JSON file")
    keys = sign.add_mutually_exclusive_group(required=True)
    keys.add_argument("--dir", metavar="DIR", help="a key directory (pinwarden keys init)")
    keys.add_argument("--key", action="append", metavar="PEM", help="a private key file; repeat")
    sign.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    add_passphrase_options(sign, required=True)
    sign.set_defaults(handler=_sign)

    verify = subparsers.add_parser(
        "verify",
        help="verify a signed pin set (or the next keyring) against a trusted keyring",
        description="Exit 0 and print the verified content, or exit 1 naming the error type.",
    )
    verify.add_argument("document", metavar="DOC", help="the signed document")
    verify.add_argument("--keyring", required=True, help="the trusted keyring (signed JSON)")
    verify.add_argument(
        "--next-keyring",
        action="append",
        default=[],
        metavar="FILE",
        help="a later keyring to walk to first (N+1, then N+2, ...); repeat",
    )
    verify.add_argument("--min-version", type=int, default=0, help="the version floor (0)")
    verify.add_argument("--now", help="judge expiry at this ISO-8601 time (default: the clock)")
    verify.set_defaults(handler=_verify)


def _signers(args: argparse.Namespace, document: PinSet | Keyring) -> list[SigningKey]:
    passphrase = read_passphrase(args)
    if passphrase is None:  # only with --no-passphrase, which `sign` does not offer
        raise CommandError("signing keys need a passphrase")
    if args.dir:
        if isinstance(document, Keyring):
            raise CommandError("keyrings are signed by `pinwarden keys rotate-*`, or with --key")
        directory = KeyDirectory(args.dir)
        current = directory.current_keyring()
        if document.keyring_version != current.version:
            raise CommandError(
                f"the payload names keyring_version {document.keyring_version}, but {args.dir} "
                f"is at v{current.version}"
            )
        return directory.online_signers(passphrase)
    return [SigningKey.from_pem(read_input_file(path, "key"), passphrase) for path in args.key]


def _sign(args: argparse.Namespace) -> int:
    text = read_input_file(args.payload, "payload")
    try:
        payload = load_json(text, args.payload)
        document: PinSet | Keyring
        if isinstance(payload, dict) and payload.get("type") == KEYRING_TYPE:
            document = Keyring.from_json(payload)
            signed = sign_keyring(document, _signers(args, document))
        else:
            document = PinSet.from_json(payload)
            signed = sign_pinset(document, _signers(args, document))
    except (DocumentError, KeyStoreError) as error:
        raise CommandError(f"{type(error).__name__}: {error}") from None
    if args.output:
        try:
            Path(args.output).write_bytes(signed)
        except OSError as error:
            raise CommandError(f"cannot write {args.output!r}: {error.strerror}") from None
    else:
        sys.stdout.write(signed.decode("ascii") + "\n")
    return EXIT_OK


def _parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        # fromisoformat takes "Z" only from Python 3.11.
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise CommandError(f"--now {text!r} is not an ISO-8601 time") from None
    if value.utcoffset() is None:
        raise CommandError(f"--now {text!r} needs a timezone (Z or +HH:MM)")
    return value.astimezone(timezone.utc)


def _verify(args: argparse.Namespace) -> int:
    if args.min_version < 0:
        raise CommandError("--min-version must be 0 or more")
    now = _parse_now(args.now) or datetime.now(timezone.utc)  # one reading for every check
    document = read_input_file(args.document, "document")
    trusted_raw = read_input_file(args.keyring, "keyring")
    chain = [read_input_file(path, "keyring") for path in args.next_keyring]
    try:
        trusted = load_keyring(trusted_raw)
        for raw_next in chain:
            trusted = update_keyring(trusted, raw_next)
        verified: PinSet | Keyring
        if peek_document(document).type != KEYRING_TYPE:
            verified = verify_pinset(
                document, keyring=trusted, min_version=args.min_version, now=now
            )
        elif document == trusted.raw:
            verified = load_keyring(document, now=now)
        else:
            verified = update_keyring(trusted, document, now=now)
    except DocumentError as error:
        raise CommandError(f"{type(error).__name__}: {error}", EXIT_FAILED) from None
    print_json(verified.to_json())
    return EXIT_OK
