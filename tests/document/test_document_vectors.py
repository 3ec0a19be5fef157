"""The committed vectors give the verdicts they name; the generator remakes them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import pinwarden.document as document
from pinwarden.document import DocumentError, PinSet
from tests.document.document_helpers import VECTORS_DIR, gen, load_vectors, run_vector

VECTORS = load_vectors()


def test_vectors_have_the_documented_shape() -> None:
    base = {"description", "keyring", "document", "now", "min_version", "expect", "must"}
    for name, case in VECTORS.items():
        assert base <= set(case) <= base | {"keyrings", "max_steps"}, name
        assert case["expect"] == "valid" or issubclass(
            getattr(document, case["expect"]), DocumentError
        )
        assert case["must"] and all(must.startswith("M-") for must in case["must"]), name


def test_every_vector_the_generator_lists_is_committed() -> None:
    # Which vectors must exist, and what each shows, is the generator's _SHOWS table (spec ids).
    listed = {name for names in gen._SHOWS.values() for name in names}
    assert sorted(listed - set(VECTORS)) == [], "vectors missing from tests/vectors"
    assert sorted(set(VECTORS) - listed) == [], "committed vectors the generator does not list"


def assert_verdict(case: dict[str, Any]) -> None:
    if case["expect"] == "valid":
        assert isinstance(run_vector(case), PinSet)
    else:
        with pytest.raises(DocumentError) as caught:
            run_vector(case)
        assert type(caught.value).__name__ == case["expect"], caught.value


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector(name: str) -> None:
    assert_verdict(VECTORS[name])


def _es256_masked(text: str) -> str:
    """``text`` with every ES256 signature value replaced: ECDSA signatures are randomised."""
    try:
        envelope = json.loads(text)
        entries = envelope["signatures"]
    except (ValueError, KeyError, TypeError):
        return text  # not an envelope (a malformed-document vector)
    for entry in entries:
        try:
            header = json.loads(base64.urlsafe_b64decode(entry["protected"] + "=="))
        except (ValueError, KeyError, TypeError):
            continue  # an entry or header a verifier refuses (strict JSON, §2.3)
        if header.get("alg") == "ES256":
            entry["signature"] = "<ES256>"
    return json.dumps(envelope, sort_keys=True)


def _masked(case: dict[str, Any]) -> dict[str, Any]:
    masked = dict(case, keyring=_es256_masked(case["keyring"]))
    masked["document"] = _es256_masked(case["document"])
    masked["keyrings"] = [_es256_masked(raw) for raw in case.get("keyrings", [])]
    return masked


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("vectors")
    gen.write_vectors(directory)
    return directory


def test_regenerating_gives_the_committed_vectors(regenerated: Path) -> None:
    fresh = load_vectors(regenerated)
    assert set(fresh) == set(VECTORS)
    for name, case in VECTORS.items():
        assert _masked(fresh[name]) == _masked(case), name
        if "<ES256>" not in json.dumps(_masked(case)):
            # No ES256 signature: EdDSA is deterministic, so the file is byte-identical.
            committed = (VECTORS_DIR / f"{name}.json").read_bytes()
            assert (regenerated / f"{name}.json").read_bytes() == committed, name


def test_regenerated_vectors_give_the_same_verdicts(regenerated: Path) -> None:
    for case in load_vectors(regenerated).values():
        assert_verdict(case)
