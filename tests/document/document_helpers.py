"""Shared pieces for the signed-document tests: the vector generator's fixed keys and builders,
and the one way to run a vector (docs/spec.md §7)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from pinwarden.document import (
    MAX_KEYRING_STEPS,
    DocumentError,
    PinSet,
    load_keyring,
    peek_document,
    verify_pinset,
    walk_keyrings,
)
from pinwarden.document._encoding import parse_time

REPO = Path(__file__).resolve().parents[2]
VECTORS_DIR = REPO / "tests" / "vectors"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_vectors", REPO / "scripts/make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_vectors"] = module
    spec.loader.exec_module(module)
    return module


# Fixed keys, times and builders (scripts/make_vectors.py), shared so tests and vectors agree.
gen = _load_generator()


def load_vectors(directory: Path = VECTORS_DIR) -> dict[str, dict[str, Any]]:
    """Every vector in ``directory`` by file stem."""
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def run_vector(case: dict[str, Any]) -> PinSet:
    """Run one vector as docs/spec.md §7 says; return the PinSet or raise the verifier's error."""
    now = parse_time(case["now"], "now")
    document = case["document"].encode()
    keyring = load_keyring(case["keyring"].encode())
    target = _claimed_keyring_version(document) if "keyrings" in case else None
    if target is not None:
        later = [raw.encode() for raw in case["keyrings"]]
        base = keyring.version
        # No ``now``: a walk judges no expiry (docs/spec.md §5.4); §5.3 step 10 does.
        keyring = walk_keyrings(
            keyring,
            lambda version: later[version - base - 1],
            target,
            max_steps=case.get("max_steps", MAX_KEYRING_STEPS),
        )
    return verify_pinset(document, keyring=keyring, min_version=case["min_version"], now=now)


def _claimed_keyring_version(document: bytes) -> int | None:
    """docs/spec.md §7 step 2: the unverified keyring_version to walk to, or None (no walk)."""
    try:
        return peek_document(document).keyring_version
    except DocumentError:
        return None  # the verification refuses the document
