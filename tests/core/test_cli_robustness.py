"""Every subcommand, given garbage or a closed output, ends in one line and a non-zero exit.

The subcommands are found by walking the argparse tree, so a command added later is covered
without editing this file. Garbage runs in this process (``main(argv)``); the closed-pipe runs
are real processes, since a broken pipe is a property of the process's file descriptors.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import trustme

from pinwarden.cli import _server, build_parser, command_parsers, main
from pinwarden.cli._common import CommandError

# A NUL, a lone surrogate (what undecodable argv bytes become), a huge value and a negative
# number (a wrong type for every count, port and limit).
GARBAGE = ("a\x00b", "\udcff\ud800", "9" * 100_000, "-1")
CLOSED_PORT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback here


def _command_path(parser: argparse.ArgumentParser) -> list[str]:
    return parser.prog.split()[1:]


def _takes_a_value(action: argparse.Action) -> bool:
    return action.nargs != 0 and not isinstance(
        action, (argparse._HelpAction, argparse._VersionAction)
    )


def _garbage_argvs(parser: argparse.ArgumentParser, value: str) -> Iterator[list[str]]:
    """The required arguments all set to ``value``; then each optional one set to it as well."""
    required: list[str] = []
    optional: list[str] = []
    for action in parser._actions:
        if not _takes_a_value(action):
            continue
        if not action.option_strings:
            required.append(value)
        elif action.required:
            required += [action.option_strings[0], value]
        else:
            optional.append(action.option_strings[0])
    command = _command_path(parser)
    yield [*command, *required]
    for option in optional:
        yield [*command, *required, option, value]


COMMANDS = sorted(
    (" ".join(_command_path(parser)), parser) for parser in command_parsers(build_parser())
)
# The commands that take a value somewhere; one made of flags only (``demo``) has nothing to
# garble: run bare, it is meant to succeed.
VALUE_COMMANDS = [
    (name, parser) for name, parser in COMMANDS if any(map(_takes_a_value, parser._actions))
]


def test_the_walk_finds_every_command() -> None:
    names = [name for name, _ in COMMANDS]
    assert {"pin", "check", "keygen", "keys init", "verify", "serve", "quickstart"} <= set(names)
    assert {"channel create", "rule add", "pins remove", "publish", "token revoke"} <= set(names)
    assert len(names) == len(set(names)) >= 30
    assert len(VALUE_COMMANDS) >= 30 and "pin" in dict(VALUE_COMMANDS)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory, an admin server that is not there, and no server start."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PINWARDEN_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("PINWARDEN_TOKEN", "pwt_garbage_test")

    def never_serve(*args: object) -> None:
        raise CommandError("the test stops here instead of serving")

    monkeypatch.setattr(_server, "_serve", never_serve)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "parser"), VALUE_COMMANDS, ids=[name for name, _ in VALUE_COMMANDS]
)
def test_garbage_arguments_give_one_line_and_a_non_zero_exit(
    name: str,
    parser: argparse.ArgumentParser,
    isolated: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for value in GARBAGE:
        for argv in _garbage_argvs(parser, value):
            status = main(argv)
            captured = capsys.readouterr()
            shown = [part[:40] for part in argv]
            assert status not in (0, 70), (shown, captured.err[:300])
            error_lines = [line for line in captured.err.splitlines() if "error:" in line]
            assert len(error_lines) == 1, (shown, captured.err[:600])
            assert "Traceback" not in captured.err, (shown, captured.err[:2000])
            assert len(error_lines[0]) < 1200, (shown, error_lines[0][:300])


def test_a_usage_error_is_one_line_with_the_next_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--root-keys", "many"]) == 2
    assert capsys.readouterr().err == (
        "pinwarden keys init: error: argument --root-keys: invalid int value: 'many' "
        "(see pinwarden keys init --help)\n"
    )


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"pinwarden {metadata.version('pinwarden')}\n"


def test_debug_shows_the_causes_behind_the_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.pem")
    assert main(["pin", missing]) == 2
    plain = capsys.readouterr().err
    assert plain.count("\n") == 1 and "Traceback" not in plain

    assert main(["--debug", "verify", missing, "--keyring", missing]) == 2
    debug = capsys.readouterr().err
    assert debug.startswith("pinwarden verify: error: cannot read document")
    assert "Traceback" in debug and "CommandError" in debug
    assert "caused by:" in debug and "FileNotFoundError" in debug

    assert main(["verify", missing, "--keyring", missing, "--debug"]) == 2  # after the command
    assert "FileNotFoundError" in capsys.readouterr().err


def test_a_bug_is_one_line_pointing_at_debug(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("pinwarden.cli._pin.load_all_key_material", broken)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(trustme.CA().cert_pem.bytes())
    assert main(["pin", str(chain)]) == 70
    assert capsys.readouterr().err == (
        "pinwarden pin: error: internal error: ZeroDivisionError: a bug "
        "(run with --debug for the traceback)\n"
    )
    assert main(["pin", str(chain), "--debug"]) == 70
    assert 'raise ZeroDivisionError("a bug")' in capsys.readouterr().err


def _run_with_closed_stdout(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``pinwarden ARGS`` writing into a pipe whose reader is already gone (``| head``, done)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pinwarden", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


def test_output_closed_early_ends_quietly_with_a_non_zero_exit(tmp_path: Path) -> None:
    chain = tmp_path / "chain.pem"
    leaf = trustme.CA().create_child_ca().issue_cert("pipe.example")
    chain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    runs = {
        "help": ("--help",),
        "version": ("--version",),
        "pin": ("pin", str(chain)),
        "pin --json": ("pin", str(chain), "--json"),
        "keygen": ("keygen", "--no-passphrase", "--out", str(tmp_path)),
        "subcommand help": ("channel", "create", "--help"),
    }
    if importlib.util.find_spec("sqlalchemy") is not None:  # the demo runs the pin server
        runs["demo"] = ("demo",)  # prints while its servers and threads run
    for name, args in runs.items():
        result = _run_with_closed_stdout(*args, cwd=tmp_path)
        assert result.returncode == 1, (name, result.stderr)
        assert result.stderr == "", (name, result.stderr)


def test_output_that_stays_open_still_succeeds(tmp_path: Path) -> None:
    """The twin: the same process with a reader prints and exits 0."""
    chain = tmp_path / "chain.pem"
    chain.write_bytes(trustme.CA().cert_pem.bytes())
    result = subprocess.run(
        [sys.executable, "-m", "pinwarden", "pin", str(chain)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("sha256/") and not result.stderr


def test_quickstart_with_a_bad_option_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sqlalchemy", reason="the server extra is not installed")
    data = tmp_path / "data"
    assert main(["quickstart", "--data", str(data), "--poll", "0"]) == 2
    err = capsys.readouterr().err
    assert "--poll" in err and err.count("\n") == 1
    assert not data.exists()


def test_an_undecodable_path_is_printed_escaped(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 in a file name reach stdout escaped, not as a UnicodeEncodeError
    after the key was written."""
    out = os.fsencode(tmp_path) + b"/\xff"
    os.mkdir(out)
    result = subprocess.run(
        [sys.executable, "-m", "pinwarden", "keygen", "--out", out, "--no-passphrase"],
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert b"\\udcff/backup.key" in result.stdout and result.stderr == b""
