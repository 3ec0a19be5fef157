"""What the documents point a reader to exists: the tests they name as proof, the files they name.

docs/security.md and docs/dynamic.md name tests as ``file.py::test_name``, as ``::test_name`` (in
the file named last before it in the same document) and as a bare ``test_name`` (somewhere under
tests/). A test renamed or deleted, or moved to another file, fails here, naming the document and
the reference. README.md and docs/*.md name repository paths (``tests/vectors/``,
``bench/client_overhead.py``); each must exist.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.docs.markdown_code import REPOSITORY, documents

DOCUMENTS = ("docs/security.md", "docs/dynamic.md")
_PATH = re.compile(r"(?<![\w/.])((?:tests|bench|src|docs|js|scripts)/[\w./-]*[\w/])")
# Paths that stand for a family of files (docs/spec.md: "tests/vectors/NAME.json").
_PATH_PLACEHOLDERS = frozenset({"tests/vectors/NAME.json"})
_REFERENCE = re.compile(r"(?:([\w/]+\.py)::|::)?(test_\w+)\b(?!\.)|([\w/]*test_\w+\.py)")


@cache
def _test_files() -> dict[str, list[Path]]:
    """Test files under tests/, by file name."""
    files: dict[str, list[Path]] = {}
    for path in (REPOSITORY / "tests").rglob("test_*.py"):
        files.setdefault(path.name, []).append(path)
    return files


@cache
def _tests_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def _defined(test: str, file_name: str | None) -> bool:
    paths = (
        _test_files().get(file_name, [])
        if file_name
        else [path for paths in _test_files().values() for path in paths]
    )
    return any(test in _tests_in(path) for path in paths)


def unresolved_references(text: str) -> list[str]:
    """The test references of ``text`` that name no existing test (or test file)."""
    problems: list[str] = []
    current_file: str | None = None
    for match in _REFERENCE.finditer(text):
        file_path, test, lone_file = match.groups()
        if lone_file or file_path:
            current_file = Path(lone_file or file_path).name
            if current_file not in _test_files():
                problems.append(f"no test file {current_file}")
                continue
        if test is None:
            continue
        by_file = match.group(0).startswith("::") or file_path
        if not _defined(test, current_file if by_file else None):
            where = f" in {current_file}" if by_file else " under tests/"
            problems.append(f"no test {test}{where}")
    return problems


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_test_a_document_names_exists(document: str) -> None:
    text = (REPOSITORY / document).read_text(encoding="utf-8")
    assert len(_REFERENCE.findall(text)) > 20, "the reference pattern no longer finds the tests"
    assert unresolved_references(text) == [], document


def test_a_renamed_or_misplaced_test_is_caught() -> None:
    """Negative twin: references that resolve nowhere, or to another file, are reported."""
    assert unresolved_references("`test_client_attacks.py::test_no_such_test`") == [
        "no test test_no_such_test in test_client_attacks.py"
    ]
    assert unresolved_references(
        "`test_client_attacks.py::test_appended_pinned_intermediate_is_refused`, "
        "`::test_a_single_enforced_pin_warns`"  # a test of test_client_errors.py
    ) == ["no test test_a_single_enforced_pin_warns in test_client_attacks.py"]
    assert unresolved_references("`test_gone.py`") == ["no test file test_gone.py"]
    assert unresolved_references("`test_a_single_enforced_pin_warns`") == []


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_every_path_a_document_names_exists(document: Path) -> None:
    named = set(_PATH.findall(document.read_text(encoding="utf-8"))) - _PATH_PLACEHOLDERS
    assert sorted(path for path in named if not (REPOSITORY / path).exists()) == []


def test_a_path_that_does_not_exist_is_caught() -> None:
    """Negative twin: the pattern finds a path in prose, and a missing one is missing."""
    (path,) = _PATH.findall("see `bench/no_such_benchmark.py`, then")
    assert path == "bench/no_such_benchmark.py" and not (REPOSITORY / path).exists()
