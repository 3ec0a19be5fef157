"""Coverage-guided fuzzing of the document parser with atheris (libFuzzer).

    python tests/document/fuzz_documents_atheris.py [CORPUS_DIR] -runs=20000

Every input must end in a verdict or a ``DocumentError``; any other exception is a crash that
libFuzzer reports (non-zero exit, the input saved as ``crash-*``). Seed the corpus with the
documents of tests/vectors/ (test_document_atheris.py does).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pinwarden.document"]):
    from pinwarden.document import (
        DocumentError,
        load_keyring,
        peek_document,
        update_keyring,
        verify_pinset,
    )

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "valid-eddsa.json"
KEYRING = load_keyring(json.loads(VECTOR.read_text())["keyring"].encode())
NOW = datetime(2025, 1, 15, tzinfo=timezone.utc)


def test_one_input(data: bytes) -> None:
    for attempt in (
        lambda: verify_pinset(data, keyring=KEYRING, now=NOW),
        lambda: load_keyring(data),
        lambda: update_keyring(KEYRING, data),
        lambda: peek_document(data),
    ):
        try:
            attempt()
        except DocumentError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
