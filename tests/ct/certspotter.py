"""Running Debian's certspotter (/usr/bin/certspotter) against a test log, for the interop test
and the benchmark: one pass over the log from its first entry, its findings parsed from
``-stdout``."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CERTSPOTTER = shutil.which("certspotter")


@dataclass(frozen=True)
class Finding:
    pubkey_sha256: str
    names: frozenset[str]
    entry: int


def parse_findings(output: str) -> list[Finding]:
    """The blocks certspotter writes with ``-stdout``: a hash line, then ``Key = value`` lines."""
    findings, names, pubkey, entry = [], set(), "", -1
    for line in [*output.splitlines(), ""]:
        key, _, value = line.strip().partition(" = ")
        if key == "DNS Name":
            names.add(value)
        elif key == "Pubkey":
            pubkey = value
        elif key == "Log Entry":
            entry = int(value.split(" @ ")[0])
        elif not line.strip() and pubkey:
            findings.append(Finding(pubkey, frozenset(names), entry))
            names, pubkey, entry = set(), "", -1
    return findings


def run_certspotter(
    log_list: Path, watchlist: list[str], state_dir: Path, *, timeout: float = 120.0
) -> tuple[list[Finding], float]:
    """Run until certspotter says it has downloaded every entry; its findings and the seconds
    from start to that line."""
    assert CERTSPOTTER is not None
    (state_dir.parent / "watchlist").write_text("".join(f"{name}\n" for name in watchlist))
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            CERTSPOTTER,
            "-logs", str(log_list),
            "-watchlist", str(state_dir.parent / "watchlist"),
            "-state_dir", str(state_dir),
            "-stdout", "-verbose", "-no_save",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    done = threading.Event()
    elapsed: list[float] = []
    errors: list[str] = []

    def watch_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)
            if "finished downloading entries" in line:
                elapsed.append(time.perf_counter() - started)
                done.set()

    found: list[str] = []

    def read_stdout() -> None:
        # Drained as it comes: with many findings a full pipe would stop certspotter mid-log.
        assert process.stdout is not None
        found.extend(process.stdout)

    readers = [
        threading.Thread(target=target, daemon=True) for target in (watch_stderr, read_stdout)
    ]
    for reader in readers:
        reader.start()
    finished = done.wait(timeout)
    time.sleep(0.5)  # it writes what it found after the download line
    process.terminate()
    process.wait(timeout=30)
    for reader in readers:
        reader.join(timeout=30)
    output = "".join(found)
    if not finished:
        raise AssertionError(f"certspotter did not finish: {''.join(errors)[-2000:]}")
    return parse_findings(output), elapsed[0]
