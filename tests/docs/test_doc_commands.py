"""Every ``pinwarden …`` command line in README.md and docs/*.md parses with the real parser.

A renamed or removed option, a subcommand that no longer exists or a wrong number of arguments
in the documentation fails here, naming the document and line. A command in prose (an inline
code span) may leave out the arguments it requires; nothing else is excused. Placeholders a
reader replaces (``DIR``, ``"$LIVE"``, ``…``) parse as they are, except where the parser checks
a type; those are filled from ``_TYPED_PLACEHOLDERS``. A usage synopsis (``[--json]``,
``[A | B]``, ``open|resolved|all``, ``FILE...``) is parsed with every optional part given once
and the first of each set of alternatives.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex

import pytest

from pinwarden.cli import build_parser
from tests.docs.markdown_code import Command, commands

# Placeholder -> a value of the type the parser checks (the other placeholders parse as written).
_TYPED_PLACEHOLDERS = {"N": "4", "S": "5", "ID": "1"}
# Prose may name a command, or one of its options, without the arguments it requires
# (`pinwarden keys rotate-online`, `pinwarden serve --webhook NAME=URL`): only that is excused.
_MISSING_ARGUMENTS = "the following arguments are required"
_OPTIONAL_PART = re.compile(r"\[([^\[\]]*)\]")


def _argv(command: Command) -> list[str]:
    """The arguments after ``pinwarden``, with a synopsis's optional parts given (the first of
    ``[A | B]``) and its repetition marks (``[--host NAME]...``, ``FILE...``) dropped."""
    text = _OPTIONAL_PART.sub(lambda part: part.group(1).split(" | ")[0], command.text)
    words = shlex.split(text.replace("...", ""))[1:]
    return [_TYPED_PLACEHOLDERS.get(word, word.split("|")[0]) for word in words]


def _parse_error(argv: list[str]) -> str | None:
    """The parser's one-line error for ``argv``, or None when it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exit_:
        return stderr.getvalue().strip() or f"exit {exit_.code}"
    return None


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: child
        for action in parser._actions  # argparse has no public walk of its subparsers
        if isinstance(action, argparse._SubParsersAction)
        for name, child in action.choices.items()
    }


def _unknown_options(argv: list[str]) -> list[str]:
    """The ``--options`` of ``argv`` that its (sub)command does not have under that exact name.

    The parser's own check misses two cases: an abbreviation it accepts (``--pins`` for
    ``--pins-file``), and any option of a prose mention whose required arguments are missing.
    """
    parser: argparse.ArgumentParser = build_parser()
    known = set(parser._option_string_actions)
    for word in argv:
        child = _subcommands(parser).get(word)
        if child is None:
            break
        parser = child
        known |= set(parser._option_string_actions)
    return [word for word in argv if word.startswith("--") and word.split("=")[0] not in known]


def test_every_documented_command_parses() -> None:
    documented = commands()
    assert len(documented) > 40, "the extraction found too few commands: is it still working?"
    failures = []
    for command in documented:
        argv = _argv(command)
        error = _parse_error(argv)
        if error is not None and not (command.inline and _MISSING_ARGUMENTS in error):
            failures.append(f"{command.where}: `{command.text}`: {error}")
        unknown = _unknown_options(argv)
        if unknown:
            failures.append(f"{command.where}: `{command.text}`: no option {', '.join(unknown)}")
    assert not failures, "documented commands the parser refuses:\n" + "\n".join(failures)


@pytest.mark.parametrize(
    "text",
    [
        "pinwarden keygen --name api-backup --passphrase-file",  # an option without its value
        "pinwarden check https://api.example.com --pins sha256/x",  # a misspelt option
        "pinwarden channel make com.example.app/prod",  # a subcommand that does not exist
        "pinwarden monitor --once --concurrency many",  # a value of the wrong type
    ],
)
def test_a_wrong_command_is_caught(text: str) -> None:
    """Negative twin: the check really refuses what the parser refuses."""
    argv = _argv(Command("example", text, inline=False))
    assert _parse_error(argv) is not None or _unknown_options(argv)


def test_prose_may_leave_out_required_arguments_but_not_misspell_an_option() -> None:
    assert _MISSING_ARGUMENTS in (_parse_error(["keys", "rotate-online"]) or "")
    assert not _unknown_options(["serve", "--webhook", "a=b", "--debug"])
    assert _unknown_options(["serve", "--webhooks", "a=b"]) == ["--webhooks"]
