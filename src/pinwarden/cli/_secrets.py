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


def add_passphrase_options(
    parser: argparse.ArgumentParser, *, required: bool, prefix: str = "", what: str = "passphrase"
) -> None:
    """``--{prefix}passphrase-env`` and ``--{prefix}passphrase-file`` (and ``--no-passphrase``
    where not ``required``); ``what`` names the secret in their help (e.g. the token's PIN)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        f"--{prefix}passphrase-env", metavar="VAR", help=f"read the {what} from $VAR"
    )
    group.add_argument(
        f"--{prefix}passphrase-file",
        metavar="FILE",
        help=f"read the {what} from FILE (must be 0600)",
    )
    if not required:
        group.add_argument("--no-passphrase", action="store_true", help="store the key unencrypted")
    parser.set_defaults(passphrase_required=required)


def _from_file(option: str, path: str) -> bytes:
    try:
        mode = Path(path).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CommandError(f"{option} {path!r} is readable by others; chmod 600 it")
        value = Path(path).read_bytes().rstrip(b"\r\n")
    except OSError as error:
        raise CommandError(f"cannot read {option} {path!r}: {error.strerror}") from None
    except ValueError:  # a NUL in the path
        raise CommandError(f"{option}: not a usable file name") from None
    if not value:
        raise CommandError(f"{option} {path!r} is empty")
    return value


def given_passphrase(args: argparse.Namespace, prefix: str = "") -> bytes | None:
    """The secret ``--{prefix}passphrase-env``/``-file`` names, ``None`` if neither was given."""
    dest = prefix.replace("-", "_")
    variable, path = getattr(args, f"{dest}passphrase_env"), getattr(args, f"{dest}passphrase_file")
    if variable:
        value = os.environ.get(variable)
        if not value:
            raise CommandError(f"--{prefix}passphrase-env: ${variable} is not set or empty")
        return value.encode("utf-8", "surrogateescape")
    if path:
        return _from_file(f"--{prefix}passphrase-file", path)
    return None


def read_passphrase(
    args: argparse.Namespace, *, confirm: bool = False, prefix: str = ""
) -> bytes | None:
    """The passphrase the options name; prompt on a terminal; ``None`` for ``--no-passphrase``."""
    if getattr(args, "no_passphrase", False):
        return None
    value = given_passphrase(args, prefix)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise CommandError(
            f"a {prefix}passphrase is needed: give --{prefix}passphrase-env VAR or "
            f"--{prefix}passphrase-file FILE"
            + ("" if args.passphrase_required else ", or --no-passphrase")
        )
    label = f"{prefix.replace('-', ' ').capitalize()}passphrase: " if prefix else "Passphrase: "
    typed = getpass.getpass(label)
    if confirm and getpass.getpass(label.replace(": ", " again: ")) != typed:
        raise CommandError("the passphrases differ")
    if not typed:
        raise CommandError("empty passphrase")
    return typed.encode()


def read_new_passphrase(args: argparse.Namespace, *, prefix: str = "") -> bytes | None:
    """A passphrase for a key about to be written (confirmed when typed)."""
    return read_passphrase(args, confirm=True, prefix=prefix)
