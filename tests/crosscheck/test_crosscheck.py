"""The TypeScript verifier in js/ agrees with the Python one on documents signed in this run.

The vectors in tests/vectors/ are fixed; these documents are signed here with fresh keys by the
Python signing code (``sign_pinset``, and ``sign_keyring`` for keyring rotations), each valid
one with tampered twins, written as vector files (docs/spec.md §7) and judged by both verifiers:
Python in this process, TypeScript by ``js/dist/scripts/verdicts.js``. The TypeScript side needs
Node and a built js/ (``cd js && npm ci && npm run build``); without them the tests skip, saying
which is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pinwarden.document import PinSet, SigningKey, sign_keyring, sign_pinset
from pinwarden.document._encoding import MAX_SAFE_INTEGER, b64url_decode, b64url_encode
from pinwarden.document._envelope import sign_envelope
from tests.crosscheck.crosscheck_helpers import (
    KEYRING_EXPIRES,
    Vector,
    judge,
    keyring,
    pinset,
    require_node,
    rule,
    vector,
)

# Pin sets of several shapes: every pattern kind, IP literals, an A-label, every mode, rule
# expiry, an empty rule list, no report URI, a report URI with port and query.
SHAPES: dict[str, PinSet] = {
    "patterns": pinset(
        rules=(
            rule("api.example.com"),
            rule("*.cdn.example.com", "report-only"),
            rule("**.internal.example.com", pins=1),
            rule("192.0.2.10"),
            rule("2001:db8::1"),
            rule("xn--bcher-kva.example"),
            rule("_service.example.org", expires=datetime(2025, 1, 20, tzinfo=timezone.utc)),
            rule("legacy.example.com", "disabled", pins=0),
            rule("old.example.com", "disabled", pins=1),
        )
    ),
    "no-rules": pinset(rules=(), report_uri=None),
    "report-uri-port-query": pinset(
        report_uri="http://[2001:db8::2]:8443/r/v1?channel=app&x=%2F", version=MAX_SAFE_INTEGER
    ),
    "long-channel": pinset(channel="c" * 256, refresh_after=1),
}


def _tampered_payload(document: bytes) -> bytes:
    """The same signatures over a payload whose version is one higher."""
    envelope = json.loads(document)
    payload = json.loads(b64url_decode(envelope["payload"], "payload"))
    payload["version"] += 1 if payload["version"] < MAX_SAFE_INTEGER else -1
    envelope["payload"] = b64url_encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    )
    return json.dumps(envelope).encode()


def _flipped_signature(document: bytes) -> bytes:
    envelope = json.loads(document)
    signature = bytearray(b64url_decode(envelope["signatures"][0]["signature"], "signature"))
    signature[5] ^= 0x01
    envelope["signatures"][0]["signature"] = b64url_encode(bytes(signature))
    return json.dumps(envelope).encode()


def _non_canonical(pinset_: PinSet, signers: Sequence[SigningKey]) -> bytes:
    """Signed by the right keys, but the payload is JSON with spaces: not RFC 8785."""
    return sign_envelope(json.dumps(pinset_.to_json(), sort_keys=True).encode(), signers)


def twins(
    name: str, trusted: bytes, pinset_: PinSet, signers: Sequence[SigningKey], **extra: Any
) -> Iterator[tuple[str, Vector]]:
    """A valid pin set and its negative twins: tampered, forged, rolled back, expired, cut."""
    document = sign_pinset(pinset_, signers)
    stranger = SigningKey.generate(signers[0].algorithm)
    too_new = sign_pinset(replace(pinset_, keyring_version=pinset_.keyring_version + 1), signers)
    yield name, vector("valid", trusted, document, **extra)
    yield (
        f"{name}-floor-equal",
        vector("valid", trusted, document, **extra, min_version=pinset_.version),
    )
    yield (
        f"{name}-tampered-payload",
        vector("SignatureError", trusted, _tampered_payload(document), **extra),
    )
    yield (
        f"{name}-flipped-signature",
        vector("SignatureError", trusted, _flipped_signature(document), **extra),
    )
    yield (
        f"{name}-stranger",
        vector("SignatureError", trusted, sign_pinset(pinset_, [stranger]), **extra),
    )
    yield (
        f"{name}-non-canonical",
        vector("FormatError", trusted, _non_canonical(pinset_, signers), **extra),
    )
    yield f"{name}-cut", vector("FormatError", trusted, document[:-2], **extra)
    if "keyrings" not in extra:  # a walk would fetch the newer keyring, which does not exist
        yield f"{name}-keyring-too-new", vector("KeyringError", trusted, too_new, **extra)
    yield (
        f"{name}-expired",
        vector("ExpiredError", trusted, document, **{**extra, "now": pinset_.expires}),
    )
    if pinset_.version < MAX_SAFE_INTEGER:
        rollback = {**extra, "min_version": pinset_.version + 1}
        yield f"{name}-rollback", vector("RollbackError", trusted, document, **rollback)


def single_keyring_cases() -> Iterator[tuple[str, Vector]]:
    for algorithm in ("EdDSA", "ES256"):
        roots = [SigningKey.generate(algorithm) for _ in range(3)]
        onlines = [SigningKey.generate(algorithm) for _ in range(3)]
        trusted = sign_keyring(
            keyring(1, roots, onlines, root_threshold=2, online_threshold=2), roots[:2]
        )
        for shape, pinset_ in SHAPES.items():
            yield from twins(f"{algorithm}-{shape}", trusted, pinset_, onlines[:2])
        one_short = sign_pinset(SHAPES["patterns"], onlines[:1])
        yield f"{algorithm}-below-threshold", vector("SignatureError", trusted, one_short)
        below_own = sign_keyring(keyring(1, roots, onlines, root_threshold=2), roots[:1])
        document = sign_pinset(pinset(), onlines[:1])
        yield (
            f"{algorithm}-keyring-below-own-threshold",
            vector("SignatureError", below_own, document),
        )
    # Mixed algorithms: EdDSA roots, an ES256 and an EdDSA online key, both needed.
    roots = [SigningKey.generate("EdDSA")]
    onlines = [SigningKey.generate("ES256"), SigningKey.generate("EdDSA")]
    trusted = sign_keyring(keyring(1, roots, onlines, online_threshold=2), roots)
    yield from twins("mixed", trusted, pinset(), onlines)


def _generated(count: int, algorithm: str) -> list[SigningKey]:
    return [SigningKey.generate(algorithm) for _ in range(count)]


def rotation_cases() -> Iterator[tuple[str, Vector]]:
    """Rotations as ``KeyDirectory`` makes them: v2 replaces every root key (ES256 by EdDSA) and
    is signed by all old and all new roots; v3 replaces the online key, signed by the roots."""
    roots_v1, roots_v2 = _generated(3, "ES256"), _generated(3, "EdDSA")
    online_v1, online_v3 = _generated(1, "ES256"), _generated(1, "EdDSA")
    anchor = sign_keyring(keyring(1, roots_v1, online_v1, root_threshold=2), roots_v1)
    v2 = sign_keyring(keyring(2, roots_v2, online_v1, root_threshold=2), [*roots_v1, *roots_v2])
    v3 = sign_keyring(keyring(3, roots_v2, online_v3, root_threshold=2), roots_v2)
    walked = pinset(keyring_version=3)
    yield from twins("rotated", anchor, walked, online_v3, keyrings=[v2, v3])
    document = sign_pinset(walked, online_v3)
    refusals = {
        # v3 names a new online key: the v1 online key is a stranger now.
        "old-online-key": ("SignatureError", sign_pinset(walked, online_v1), [v2, v3]),
        # v3 in v2's place: the v1 roots did not sign it.
        "skipped-version": ("SignatureError", document, [v3]),
        "replayed-anchor": ("RollbackError", document, [anchor, v3]),
        # v2 signed by its own roots only: the trusted v1 roots never agreed to them.
        "only-new-roots": (
            "SignatureError",
            document,
            [sign_keyring(keyring(2, roots_v2, online_v1, root_threshold=2), roots_v2), v3],
        ),
    }
    for label, (expect, raw, later) in refusals.items():
        yield f"rotated-{label}", vector(expect, anchor, raw, keyrings=later)
    at_v2 = replace(walked, keyring_version=2)
    yield "rotated-to-v2", vector("valid", anchor, sign_pinset(at_v2, online_v1), keyrings=[v2])
    # The walk judges no expiry; the pin set's verification judges the final keyring's.
    after_keyrings = KEYRING_EXPIRES + timedelta(days=1)
    yield (
        "rotated-final-expired",
        vector("ExpiredError", anchor, document, now=after_keyrings, keyrings=[v2, v3]),
    )


@pytest.fixture(scope="module")
def cases() -> dict[str, Vector]:
    require_node()  # skip before signing anything when the TypeScript side cannot run
    built = dict(single_keyring_cases())
    built.update(rotation_cases())
    return built


def test_both_verifiers_give_each_signed_document_its_verdict(
    cases: dict[str, Vector], tmp_path: Path
) -> None:
    """Each valid document is accepted and each twin refused for the reason it was made for, by
    Python and by TypeScript: agreeing on a wrong answer fails too."""
    assert judge(cases, tmp_path) == {}, "name: (intended, python, typescript)"


def test_the_cases_reach_every_verdict(cases: dict[str, Vector]) -> None:
    assert {case["expect"] for case in cases.values()} == {
        "valid",
        "FormatError",
        "SignatureError",
        "RollbackError",
        "ExpiredError",
        "KeyringError",
    }
