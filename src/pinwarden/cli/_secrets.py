"""Passphrases for private keys: from an environment variable, a 0600 file, or a prompt.

A passphrase is never taken on the command line (it would be in the shell history and ``ps``) and is
never printed or logged.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from pathlib import Path

from pinwarden.cli._common import CommandError


def add_passphrase_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--passphrase-env", metavar="VAR", help="read the passphrase from $VAR")
    group.add_argument(
        "--passphrase-file", metavar="FILE", help="read the passphrase from FILE (must be 0600)"
    )
    if not required:
        group.add_argument("--no-passphrase", action="store_true", help="store the key unencrypted")
    parser.set_defaults(passphrase_required=required)


def _from_file(path: str) -> bytes:
    try:
        mode = Path(path).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CommandError(f"--passphrase-file {path!r} is readable by others; chmod 600 it")
        value = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as error:
        raise CommandError(f"cannot read --passphrase-file {path!r}: {error.strerror}") from None
    if not value:
        raise CommandError(f"--passphrase-file {path!r} is empty")
    return value


def read_passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes | None:
    """The passphrase the options name; prompt on a terminal; ``None`` for ``--no-passphrase``."""
    if getattr(args, "no_passphrase", False):
        return None
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise CommandError(f"--passphrase-env: ${args.passphrase_env} is not set or empty")
        return value.encode()
    if args.passphrase_file:
        return _from_file(args.passphrase_file)
    if not sys.stdin.isatty():
        raise CommandError(
            "a passphrase is needed: give --passphrase-env VAR or --passphrase-file FILE"
            + ("" if args.passphrase_required else ", or --no-passphrase")
        )
    value = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != value:
        raise CommandError("the passphrases differ")
    if not value:
        raise CommandError("empty passphrase")
    return value.encode()


def read_new_passphrase(args: argparse.Namespace) -> bytes | None:
    """A passphrase for a key about to be written (confirmed when typed)."""
    return read_passphrase(args, confirm=True)
