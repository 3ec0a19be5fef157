"""What the subcommands share: exit statuses, user-facing errors, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pinwarden.errors import PinwardenError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_NETWORK = 3


class CommandError(PinwardenError):
    """A failure to report to the user as one line, with the exit status it ends in."""

    def __init__(self, message: str, exit_status: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def report_error(command: str, message: str) -> None:
    print(f"pinwarden {command}: error: {message}", file=sys.stderr)


def read_input_file(path: str, what: str) -> bytes:
    """The bytes of ``path``, or a ``CommandError`` naming the file and the reason."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path!r}: {error.strerror or error}") from None


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))
