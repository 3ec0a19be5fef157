"""The committed vectors give the verdicts they name; the generator remakes them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from document_helpers import VECTORS_DIR, gen, load_vectors, run_vector

import pinwarden.document as document
from pinwarden.document import DocumentError, PinSet

VECTORS = load_vectors()

# Every case of docs/spec.md, by the rule it shows; a vector set without one of them is incomplete,
# and a vector not listed here is one nobody decided to keep.
REQUIRED = {
    # accepted documents, and the boundaries just inside each cap
    "valid-eddsa",
    "valid-es256",
    "floor-equal",
    "at-size-cap",
    "keyring-at-size-cap",
    "signatures-at-cap",
    "keyring-role-at-key-cap",
    # §2 envelope, header, base64url and strict JSON
    "malformed-json",
    "flattened-jws",
    "compact-jws",
    "unprotected-header",
    "no-signatures",
    "too-many-signatures",
    "header-b64-false",
    "header-crit",
    "header-jwk",
    "header-typ",
    "header-kid-not-string",
    "padded-payload",
    "padded-protected",
    "padded-signature",
    "payload-standard-base64",
    "payload-line-break",
    "header-lone-surrogate",
    "signature-unused-bits",
    "envelope-utf8-bom",
    "payload-utf8-bom",
    "payload-nan",
    "duplicate-json-member",
    "duplicate-envelope-member",
    "duplicate-header-member",
    # §2, §4, §5.2 algorithms and signatures
    "alg-none",
    "alg-hs256",
    "alg-ed25519-name",
    "alg-mismatch",
    "alg-mismatch-es256-key",
    "es256-der-signature",
    "header-reencoded",
    "tampered-payload",
    "bad-signature-threshold-met",
    "unknown-key",
    "unknown-key-ignored",
    "root-key-signs-pinset",
    "threshold-2-of-3-met",
    "threshold-2-of-3-not-met",
    "duplicate-signature",
    "same-key-two-kids",
    # §3 pin set schema and canonical form
    "type-keyring-as-pinset",
    "type-pinset-as-keyring",
    "non-canonical-payload",
    "non-canonical-member-order",
    "non-canonical-whitespace",
    "non-canonical-escape",
    "pinset-unknown-member",
    "pinset-missing-member",
    "pinset-version-zero",
    "pinset-version-boolean",
    "pinset-version-float",
    "pinset-version-too-large",
    "pinset-keyring-version-zero",
    "pinset-refresh-after-zero",
    "pinset-time-offset",
    "pinset-time-fraction",
    "pinset-expires-not-after-issued",
    "pinset-channel-space",
    "pinset-channel-too-long",
    "pinset-report-uri-scheme",
    "pinset-report-uri-too-long",
    "duplicate-rule-pattern",
    "rule-unknown-member",
    "rule-missing-member",
    "rule-mode-unknown",
    "rule-enforce-without-pins",
    "rule-report-only-without-pins",
    "rule-duplicate-pins",
    "rule-pin-not-sha256",
    "rule-pin-not-canonical",
    "rule-pattern-not-normal",
    "rule-pattern-u-label",
    "rule-wildcard-public-suffix",
    "rule-expires-not-utc-time",
    # §4 keyring schema, §5.4 trust anchor
    "keyring-unknown-member",
    "keyring-role-empty",
    "keyring-role-too-many-keys",
    "keyring-threshold-zero",
    "keyring-threshold-above-keys",
    "keyring-threshold-above-distinct-keys",
    "keyring-kid-in-both-roles",
    "keyring-key-in-both-roles",
    "keyring-kid-invalid",
    "keyring-jwk-private-member",
    "keyring-jwk-without-alg",
    "keyring-jwk-alg-mismatch",
    "keyring-jwk-off-curve",
    "keyring-below-own-threshold",
    # §5.1.1 size caps
    "too-large",
    "keyring-too-large",
    # §5.3 floor and expiry
    "rollback",
    "expired",
    "expired-at-instant",
    "expired-keyring",
    "expired-keyring-at-instant",
    "pinset-needs-newer-keyring",
    # §5 the first failing step is the one reported
    "order-size-before-format",
    "order-signature-entries-in-array-order",
    "order-envelope-before-payload",
    "order-payload-before-keyring-version",
    "order-keyring-version-before-expiry",
    "order-keyring-expiry-before-signature",
    "order-signature-before-rollback",
    "order-rollback-before-expiry",
    # §5.4 keyring rotation and walks
    "rotation-root-valid",
    "rotation-online-valid",
    "rotation-old-online-key",
    "rotation-skipped-version",
    "rotation-replayed-keyring",
    "rotation-only-new-roots",
    "rotation-only-old-roots",
    "rotation-order-old-threshold-before-version",
    "rotation-order-version-before-new-threshold",
    "rotation-pinset-as-keyring",
    "rotation-keyring-too-large",
    "rotation-too-many-steps",
    "rotation-max-steps-exact",
    "rotation-expired-intermediate",
    "rotation-expired-final",
    "rotation-from-expired-anchor",
}


def test_every_required_case_is_committed() -> None:
    assert sorted(REQUIRED - set(VECTORS)) == [], "required vectors missing from tests/vectors"
    assert sorted(set(VECTORS) - REQUIRED) == [], "vectors not listed in REQUIRED"


def test_vectors_have_the_documented_shape() -> None:
    base = {"description", "keyring", "document", "now", "min_version", "expect"}
    for name, case in VECTORS.items():
        assert base <= set(case) <= base | {"keyrings", "max_steps"}, name
        assert case["expect"] == "valid" or issubclass(
            getattr(document, case["expect"]), DocumentError
        )


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
        header = json.loads(base64.urlsafe_b64decode(entry["protected"] + "=="))
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
