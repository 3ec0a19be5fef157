"""Shared pieces of the cross-check between the Python and the TypeScript verifier: run a vector
both ways (docs/spec.md §7) and the builders of the documents the tests sign.

The TypeScript side is ``js/dist/scripts/verdicts.js``; it needs Node and a built js/
(``cd js && npm ci && npm run build``). Without them a test skips, saying which is missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pinwarden.document import (
    DocumentError,
    Keyring,
    PinSet,
    PinSetRule,
    SigningKey,
)
from pinwarden.document._encoding import format_time
from tests.document.document_helpers import run_vector

REPO = Path(__file__).resolve().parents[2]
VERDICTS_SCRIPT = REPO / "js" / "dist" / "scripts" / "verdicts.js"
NODE_TIMEOUT = 120

NOW = datetime(2025, 1, 15, tzinfo=timezone.utc)
ISSUED = datetime(2025, 1, 1, tzinfo=timezone.utc)
EXPIRES = datetime(2025, 2, 1, tzinfo=timezone.utc)
KEYRING_EXPIRES = datetime(2030, 1, 1, tzinfo=timezone.utc)

Vector = dict[str, Any]


def require_node() -> str:
    """The node executable; skips the test when node or the built js/ is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the TypeScript verifier in js/ cannot run")
    if not VERDICTS_SCRIPT.is_file():
        pytest.skip("js/ is not built: run `cd js && npm ci && npm run build`")
    return node


def typescript_verdicts(directory: Path) -> dict[str, str]:
    """The TypeScript verifier's verdict on every vector file in ``directory``."""
    result = subprocess.run(
        [require_node(), str(VERDICTS_SCRIPT), str(directory)],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verdicts: dict[str, str] = json.loads(result.stdout)
    return verdicts


def python_verdict(case: Vector) -> str:
    """Run a vector as docs/spec.md §7 says; "valid" or the name of the error raised."""
    try:
        run_vector(case)
    except DocumentError as error:
        return type(error).__name__
    return "valid"


def vector(
    expect: str,
    keyring: bytes,
    document: bytes,
    *,
    now: datetime = NOW,
    min_version: int = 0,
    keyrings: Sequence[bytes] = (),
) -> Vector:
    """A vector file's content (docs/spec.md §7), with the verdict both verifiers must give."""
    case: Vector = {
        "keyring": keyring.decode(),
        "document": document.decode(),
        "now": format_time(now),
        "min_version": min_version,
        "expect": expect,
    }
    if keyrings:
        case["keyrings"] = [raw.decode() for raw in keyrings]
    return case


def pin(label: str) -> str:
    return "sha256/" + base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()


def rule(pattern: str, mode: str = "enforce", *, pins: int = 2, **changes: Any) -> PinSetRule:
    return PinSetRule(pattern, tuple(pin(f"{pattern} {n}") for n in range(pins)), mode, **changes)


def pinset(**changes: Any) -> PinSet:
    base = PinSet(
        channel="com.example.app/prod",
        version=7,
        issued=ISSUED,
        expires=EXPIRES,
        refresh_after=3600,
        report_uri="https://pins.example.com/report",
        rules=(rule("api.example.com"),),
        keyring_version=1,
    )
    return replace(base, **changes)


def keyring(
    version: int,
    roots: Sequence[SigningKey],
    onlines: Sequence[SigningKey],
    *,
    root_threshold: int = 1,
    online_threshold: int = 1,
) -> Keyring:
    return Keyring(
        version,
        KEYRING_EXPIRES,
        tuple(key.public() for key in roots),
        root_threshold,
        tuple(key.public() for key in onlines),
        online_threshold,
    )


def judge(cases: dict[str, Vector], directory: Path) -> dict[str, tuple[str, str, str]]:
    """Write ``cases`` as vector files to ``directory`` and judge them both ways; return the
    cases where Python, TypeScript and the intended verdict are not all the same, as
    ``name: (intended, python, typescript)``."""
    for name, case in cases.items():
        (directory / f"{name}.json").write_text(json.dumps(case), encoding="utf-8")
    typescript = typescript_verdicts(directory)
    assert set(typescript) == set(cases)
    verdicts = {
        name: (case["expect"], python_verdict(case), typescript[name])
        for name, case in cases.items()
    }
    return {name: three for name, three in verdicts.items() if len(set(three)) > 1}
