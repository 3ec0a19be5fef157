"""The ``pinwarden`` command line: ``main(argv)`` returns the exit status; tests call it directly.

Exit status: 0 success; 1 the check the command exists for failed (a pin mismatch, an invalid
document); 2 bad input (usage, unreadable files, malformed pins); 3 the network or TLS failed for a
reason other than pins. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pinwarden.cli import _admin, _check, _documents, _keygen, _keys, _pin, _server
from pinwarden.cli._common import EXIT_INPUT, CommandError, report_error

__all__ = ["main", "run"]

# Each module adds its subcommands with register(subparsers).
_COMMAND_MODULES = (_pin, _keygen, _check, _keys, _documents, _server, _admin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinwarden", description="Dynamic certificate pinning: pins, checks, keys, server."
    )
    parser.add_argument("--version", action="version", version="pinwarden 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors and 0 on --help
        return int(exit_.code or 0)
    try:
        return int(args.handler(args))
    except CommandError as error:
        report_error(args.command, str(error))
        return error.exit_status
    except KeyboardInterrupt:
        report_error(args.command, "interrupted")
        return EXIT_INPUT


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
