"""What ``make run`` prints is what docs/server.md shows, line for line.

``make run`` is ``pinwarden quickstart --data var/pinwarden --host 127.0.0.1 --port 8080`` from the
repository. The test runs that command in a fresh directory on a free port and compares its
output with the documented block once the parts that differ on every machine are put back as the
documentation writes them: the port, the admin token, and the absolute path of the keyring in the
client snippet.
"""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.docs.markdown_code import REPOSITORY, code_blocks
from tests.support.tls_servers import free_port

DATA = "var/pinwarden"
DOCUMENTED_PORT = 8080
DOCUMENTED_HOME = "/home/you/pinwarden"
_TOKEN = re.compile(r"pwt_[A-Za-z0-9_-]+")
_LAST_LINE = "pinwarden serve: "
_START_TIMEOUT = 60.0


def documented_output() -> list[str]:
    """The block of docs/server.md that shows the first run's standard output."""
    (block,) = [
        block
        for block in code_blocks(REPOSITORY / "docs" / "server.md")
        if block.language == "" and block.text.startswith("initialized ")
    ]
    return block.text.splitlines()


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))
    into.put(None)


def run_make_run(directory: Path) -> tuple[list[str], str]:
    """``make run``'s command in ``directory`` until it says it serves: its standard output as
    the documentation would show it, and its standard error."""
    pytest.importorskip("uvicorn", reason="make run needs the server extra")
    port = free_port()
    command = [sys.executable, "-m", "pinwarden", "quickstart", "--data", DATA]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + _START_TIMEOUT
    try:
        while not (printed and printed[-1].startswith(_LAST_LINE)):
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"quickstart ended: {process.communicate()[1]}"
            printed.append(line)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    as_documented = [
        _TOKEN.sub("TOKEN", line)
        .replace(f"127.0.0.1:{port}", f"127.0.0.1:{DOCUMENTED_PORT}")
        .replace(str(directory), DOCUMENTED_HOME)
        for line in printed
    ]
    return as_documented, stderr


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[tuple[tuple[list[str], str], tuple[list[str], str]]]:
    """The first ``make run`` in a fresh directory, then a second one on the same data."""
    yield run_make_run(tmp_path), run_make_run(tmp_path)


def test_make_run_prints_what_docs_server_md_shows(
    runs: tuple[tuple[list[str], str], tuple[list[str], str]],
) -> None:
    (first, first_errors), (later, later_errors) = runs
    documented = [_TOKEN.sub("TOKEN", line) for line in documented_output()]
    assert first == documented
    server_part = documented[[line.startswith("server:") for line in documented].index(True) :]
    assert later == server_part  # "later runs print that warning and the part from server: on"
    for errors in (first_errors, later_errors):
        assert errors.startswith("WARNING: DEVELOPMENT ONLY"), errors
