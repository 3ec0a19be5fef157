"""What the subcommands share: exit statuses, user-facing errors, output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pinwarden.errors import PinwardenError

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_NETWORK = 3
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: a bug in pinwarden

# Input files (pins files, payloads, keys) are small; a bigger one is a mistake, not data to load.
MAX_INPUT_FILE_BYTES = 4 * 1024 * 1024


class CommandError(PinwardenError):
    """A failure to report to the user as one line, with the exit status it ends in."""

    def __init__(self, message: str, exit_status: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line naming the mistake and where to look, not the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_INPUT, f"{self.prog}: error: {printable(message, 300)} (see {self.prog} --help)\n"
        )

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """As argparse's, without its ``except OSError: pass`` (CPython Lib/argparse.py,
        ``ArgumentParser._print_message``): ``--help | head`` must reach the one place that
        handles a closed output (``pinwarden.cli.run``), not exit 0 having printed nothing."""
        if message:
            (file or sys.stderr).write(message)


def report_error(command: str, message: str) -> None:
    prefix = f"pinwarden {command}" if command else "pinwarden"
    print(f"{prefix}: error: {printable(message)}", file=sys.stderr)


def printable(text: str, limit: int = 500) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters.

    For text from outside (a server's answer, a file): it must not move the cursor, clear the
    terminal or add lines that look like pinwarden's own output.
    """
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape", "backslashreplace").decode()
        for char in text[:limit]
    )
    return shown if len(text) <= limit else f"{shown}… ({len(text)} characters)"


def read_input_file(path: str, what: str) -> bytes:
    """The bytes of ``path``, or a ``CommandError`` naming the file and the reason."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_INPUT_FILE_BYTES + 1)
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        reason = getattr(error, "strerror", None) or error
        raise CommandError(f"cannot read {what} {path!r}: {reason}") from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise CommandError(
            f"{what} {path!r} is larger than {MAX_INPUT_FILE_BYTES // (1024 * 1024)} MiB"
        )
    return data


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))
