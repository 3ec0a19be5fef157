"""A short coverage-guided atheris run over the parser (fuzz_documents_atheris.py).

Skipped where atheris has no wheel (it is installed only on Linux x86_64, Python >= 3.11).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.document.document_helpers import load_vectors

pytest.importorskip("atheris")

HARNESS = Path(__file__).with_name("fuzz_documents_atheris.py")


def test_atheris_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, case in load_vectors().items():
        if case["expect"] == "SizeError":
            continue
        for index, raw in enumerate([case["document"], case["keyring"], *case.get("keyrings", [])]):
            (corpus / f"{name}-{index}").write_text(raw)
    result = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            str(corpus),
            "-runs=30000",
            "-max_len=8192",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            "-timeout=20",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DONE" in result.stderr
