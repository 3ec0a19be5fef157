"""The ``pinwarden`` command line: ``main(argv)`` returns the exit status; tests call it directly.

Exit status: 0 success; 1 the check the command exists for failed (a pin mismatch, an invalid
document) or its output was closed early (``pinwarden … | head``); 2 bad input (usage, unreadable
files, malformed pins); 3 the network or TLS failed for a reason other than pins; 70 a bug in
pinwarden. Errors are one line on stderr, never a traceback; ``--debug`` adds the traceback and
every exception behind the line.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from importlib import metadata

from pinwarden.cli import (
    _admin,
    _check,
    _ct,
    _demo,
    _documents,
    _export,
    _keygen,
    _keys,
    _monitor,
    _pin,
    _preflight,
    _rotate,
    _server,
)
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERNAL,
    CommandError,
    OneLineParser,
    printable,
    report_error,
)

__all__ = ["main", "run"]

# Each module adds its subcommands with register(subparsers).
_COMMAND_MODULES = (
    _pin, _keygen, _check, _keys, _documents, _server, _admin, _monitor, _preflight, _rotate, _demo,
    _export, _ct,
)


_DEBUG_HELP = "on an error, also show the traceback and the exceptions behind it"


def _version() -> str:
    try:
        return metadata.version("pinwarden")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pinwarden", description="Dynamic certificate pinning: pins, checks, keys, server."
    )
    parser.add_argument("--version", action="version", version=f"pinwarden {_version()}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    for command in command_parsers(parser):
        # Accepted after the subcommand too. SUPPRESS: a subcommand's default would otherwise
        # overwrite a --debug given before it (argparse copies subparser defaults over).
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command (the leaves of the subcommand tree)."""
    children = [
        child
        for action in parser._actions  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())  # aliases map to the same parser
    ]
    if not children:
        yield parser
    for child in children:
        yield from command_parsers(child)


def _show_causes(error: BaseException) -> None:
    """``--debug``: the traceback of ``error`` and of each exception behind it.

    The one-line errors are raised ``from None`` to keep the chain out of normal output, which
    only hides ``__context__``: it is walked here regardless.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if seen:
            print("caused by:", file=sys.stderr)
        seen.add(id(current))
        traceback.print_exception(
            type(current), current, current.__traceback__, chain=False, file=sys.stderr
        )
        current = current.__cause__ or current.__context__


def _unusable_argument(argv: Sequence[str]) -> str | None:
    """Why an argument could never have come from a command line, if it could not.

    A process's arguments are C strings (no NUL) decoded with ``surrogateescape`` (always
    encodable back). ``main(argv)`` refuses others as the operating system would, instead of
    letting each command meet them as an odd ``ValueError`` deep in a file-system call.
    """
    for number, argument in enumerate(argv, start=1):
        if "\0" in argument:
            return f"argument {number} holds a NUL character"
        try:
            os.fsencode(argument)
        except UnicodeEncodeError:
            return f"argument {number} holds a lone surrogate (not text, not a file name)"
    return None


def _os_error_line(error: OSError) -> str:
    """An operating-system failure no command turned into its own message."""
    where = f" {printable(os.fsdecode(error.filename), 120)!r}" if error.filename else ""
    return f"cannot use{where}: {error.strerror or error}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit status."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    unusable = _unusable_argument(arguments)
    if unusable is not None:
        report_error("", f"{unusable}; see pinwarden --help")
        return EXIT_INPUT
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:  # argparse exits 2 on usage errors and 0 on --help
        return int(exit_.code or 0)
    try:
        return int(args.handler(args))
    except CommandError as error:
        report_error(args.command, str(error))
        failure: BaseException = error
        status = error.exit_status
    except KeyboardInterrupt as error:
        report_error(args.command, "interrupted")
        failure, status = error, EXIT_INPUT
    except BrokenPipeError:
        raise  # run() handles it once, for the whole process
    except OSError as error:  # the environment, not a bug: a name too long, a full disk, …
        report_error(args.command, _os_error_line(error))
        failure, status = error, EXIT_INPUT
    except Exception as error:  # a bug: still one line, and the way to see more
        report_error(
            args.command,
            f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)",
        )
        failure, status = error, EXIT_INTERNAL
    if args.debug:
        _show_causes(failure)
    return status


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit does not fail again.

    The recipe of the Python docs, "Note on SIGPIPE" (the ``signal`` module's documentation).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    """Console-script entry point."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Text that is not valid Unicode (a server's "\ud800", a path of undecodable bytes) is
        # printed escaped rather than failing after the work is done.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        status = main()
        sys.stdout.flush()  # a closed pipe shows up here when the output was buffered
    except BrokenPipeError:  # the reader (``| head``) has all it wanted: exit quietly
        _discard_stdout()
        status = EXIT_FAILED
    sys.exit(status)
