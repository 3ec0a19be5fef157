"""docs/spec.md leaves nothing untested: every MUST carries an id, every verifier id ([M-n]) a
vector, and for the checks that can be switched off one at a time, switching one off fails a
vector that lists its id (a verifier that skips the requirement is caught)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import pinwarden.document._encoding as encoding
import pinwarden.document._keys as keys
import pinwarden.document._model as model
from pinwarden import _hosts
from pinwarden._hosts import HostPattern
from pinwarden.document import DocumentError, load_keyring, verify_pinset, walk_keyrings
from pinwarden.document._encoding import parse_time
from tests.document.document_helpers import REPO, load_vectors, run_vector

SPEC = (REPO / "docs" / "spec.md").read_text(encoding="utf-8")
VECTORS = load_vectors()
_TAG = re.compile(r"\[([MSC])-(\d+)\]")


def _normative_text() -> str:
    """§2 up to the table after §8: where every MUST must carry an id."""
    return SPEC[SPEC.index("## 2. Envelope") : SPEC.index("## Rules, attacks, tests")]


def _tags(kind: str) -> list[int]:
    return [int(number) for tag, number in _TAG.findall(_normative_text()) if tag == kind]


def test_every_must_carries_its_own_id() -> None:
    for paragraph in re.split(r"\n\s*\n", _normative_text()):
        musts = [match.start() for match in re.finditer(r"\bMUST\b", paragraph)]
        for start, end in zip(musts, [*musts[1:], len(paragraph)], strict=False):
            assert _TAG.search(paragraph, start, end), (
                f"a MUST without an id before the next MUST: {paragraph[start : start + 120]!r}"
            )


@pytest.mark.parametrize("kind", ["M", "S", "C"])
def test_ids_are_numbered_once_in_order(kind: str) -> None:
    numbers = _tags(kind)
    assert numbers == list(range(1, len(numbers) + 1)), f"{kind} ids: {numbers}"


def test_every_verifier_requirement_has_a_vector_and_every_vector_a_requirement() -> None:
    in_spec = {f"M-{number}" for number in _tags("M")}
    in_vectors = {must for case in VECTORS.values() for must in case["must"]}
    assert sorted(in_spec - in_vectors) == [], "requirements without a vector"
    assert sorted(in_vectors - in_spec) == [], "vectors naming requirements the spec lacks"


@pytest.mark.parametrize("kind", ["S", "C"])
def test_signer_and_client_requirements_name_their_tests_in_the_table(kind: str) -> None:
    table = SPEC[SPEC.index("## Rules, attacks, tests") : SPEC.index("## 9.")]
    first_cells = " ".join(line.split("|")[1] for line in table.splitlines() if line.count("|") > 4)
    listed = {int(number) for number in re.findall(rf"\b{kind}-(\d+)\b", first_cells)}
    assert set(_tags(kind)) <= listed


def _verdict(case: dict[str, Any]) -> str:
    try:
        run_vector(case)
    except DocumentError as error:
        return type(error).__name__
    return "valid"


class _RejudgingPattern(HostPattern):
    """A verifier that applies the signer's policy to signed patterns (skips [M-29])."""

    @classmethod
    def parse(cls, pattern: str, *, grammar_only: bool = False) -> HostPattern:
        return HostPattern.parse(pattern)


# One check switched off at a time: (requirement id, module, name, stand-in).
_SKIPPED_CHECKS: dict[str, tuple[str, Any, str, object]] = {
    "duplicate members": ("M-13", encoding, "_refuse_duplicates", dict),
    "safe integers": ("M-15", encoding, "_is_safe_integer", lambda number: True),
    "lone surrogates": ("M-16", encoding, "_NOT_I_JSON", re.compile("[\ufdd0-\ufdef\uffff]")),
    "noncharacters": ("M-17", encoding, "_NOT_I_JSON", re.compile("[\ud800-\udfff]")),
    "nesting depth": ("M-18", encoding, "MAX_JSON_DEPTH", 10**6),
    "channel with a $ regex": ("M-20", model, "_CHANNEL", re.compile(r"[\x21-\x7e]+\n?")),
    "numeric last label": ("M-23", _hosts, "_NUMERIC_LABEL", re.compile("(?!)")),
    "Punycode": ("M-23", _hosts, "_check_a_label", lambda *args, **kwargs: None),
    "label with a $ regex": (
        "M-23",
        _hosts,
        "_LABEL",
        re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\n?"),
    ),
    "re-judging signer policy": ("M-29", model, "HostPattern", _RejudgingPattern),
    "report URI": ("M-30", model, "check_report_uri", lambda value: value),
    "kid with a $ regex": ("M-36", keys, "_KID", re.compile(r"[A-Za-z0-9._-]{1,64}\n?")),
    "Ed25519 prime order": ("M-41", keys, "ed25519_key_problem", lambda encoded: None),
}


@contextmanager
def _switched_off(module: Any, name: str, stand_in: object) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, stand_in)
        yield


@pytest.mark.parametrize("check", sorted(_SKIPPED_CHECKS))
def test_skipping_a_check_fails_a_vector(check: str) -> None:
    must, module, name, stand_in = _SKIPPED_CHECKS[check]
    shown_by = {name: case for name, case in VECTORS.items() if must in case["must"]}
    assert all(_verdict(case) == case["expect"] for case in shown_by.values())
    with _switched_off(module, name, stand_in):
        failed = [name for name, case in shown_by.items() if _verdict(case) != case["expect"]]
    assert failed, f"no vector of {must} notices a verifier without the {check} check"


def _run_judging_the_walk(case: dict[str, Any]) -> object:
    """Run a one-step walk vector judging the final keyring's expiry in the walk (skips [M-59])."""
    now = parse_time(case["now"], "now")
    (next_keyring,) = case["keyrings"]
    walked = walk_keyrings(
        load_keyring(case["keyring"].encode()),
        lambda version: next_keyring.encode(),
        2,
        now=now,
    )
    document = case["document"].encode()
    return verify_pinset(document, keyring=walked, min_version=case["min_version"], now=now)


def test_a_walk_that_judges_expiry_fails_a_vector() -> None:
    case = VECTORS["rotation-expired-final-after-payload"]
    assert "M-59" in case["must"] and _verdict(case) == "FormatError"
    with pytest.raises(DocumentError) as judged_early:
        _run_judging_the_walk(case)
    assert type(judged_early.value).__name__ != case["expect"]


def _named_tests() -> Iterator[tuple[str, str]]:
    """``(path, test name)`` of every ``file.py::test_name`` the spec names; a bare
    ``::test_name`` belongs to the file named before it in the same cell."""
    for cell in SPEC.split("|"):
        path = ""
        for named, test in re.findall(r"`((?:tests/[\w/]+/)?test_\w+\.py)?::(test_\w+)", cell):
            path = named or path
            yield (path if "/" in path else f"tests/document/{path}"), test


def test_the_tests_the_spec_names_exist() -> None:
    named = list(_named_tests())
    assert named
    for path, test in named:
        source = (REPO / path).read_text(encoding="utf-8")
        assert f"def {test}(" in source, f"docs/spec.md names {path}::{test}, which is not there"
