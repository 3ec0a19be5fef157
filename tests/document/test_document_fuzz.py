"""Fuzzing the parser: every input ends in a DocumentError or a valid verdict, nothing else.

Three generators: byte-level mutations of the committed vectors; arbitrary JSON values; and
well-signed envelopes around arbitrary or mutated payloads, so the schema code behind the envelope
gets random input too. Bounded in count (``max_examples``, to keep the suite fast) and in time per
input (``deadline``): the slowest input measured takes about 5 ms, so 2 s leaves room for a loaded
2-core CI machine while still failing on a hang or a super-linear parse.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwarden.document import (
    DocumentError,
    Keyring,
    PinSet,
    load_keyring,
    peek_document,
    update_keyring,
    verify_pinset,
)
from pinwarden.document._encoding import canonical_json
from pinwarden.document._envelope import sign_envelope
from tests.document.document_helpers import gen, load_vectors

KEYRING = load_keyring(gen.KEYRING_RAW)
SEEDS = sorted(
    {
        raw.encode()
        for case in load_vectors().values()
        if case["expect"] != "SizeError"
        for raw in (case["document"], case["keyring"], *case.get("keyrings", []))
    }
)
FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def judge(raw: bytes) -> None:
    """Every entry point on ``raw``: a verdict or a DocumentError, never another exception."""
    for attempt in (
        lambda: verify_pinset(raw, keyring=KEYRING, now=gen.NOW),
        lambda: load_keyring(raw),
        lambda: update_keyring(KEYRING, raw),
        lambda: peek_document(raw),
    ):
        try:
            result = attempt()
        except DocumentError:
            continue
        assert isinstance(result, PinSet | Keyring) or result.type.startswith("pinwarden.")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        if action == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "version",
                    "payload",
                    "signatures",
                    "protected",
                    "signature",
                    "rules",
                    "pins",
                    "root",
                    "online",
                    "keys",
                    "threshold",
                    "alg",
                    "kid",
                    "x",
                    "expires",
                ]
            )
            | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@FUZZ
@given(mutated())
def test_mutated_vectors(raw: bytes) -> None:
    judge(raw)


@FUZZ
@given(json_values)
def test_random_json_documents(value: Any) -> None:
    judge(json.dumps(value).encode())


@st.composite
def signed_payloads(draw: st.DrawFn) -> bytes:
    """A correctly signed envelope whose payload is a valid document with members replaced."""
    base = draw(st.sampled_from([gen.pinset().to_json(), gen.KEYRING_V1.to_json()]))
    payload = json.loads(json.dumps(base))
    target = payload
    if draw(st.booleans()) and "rules" in payload:
        target = payload["rules"][draw(st.integers(0, len(payload["rules"]) - 1))]
    for _ in range(draw(st.integers(1, 3))):
        member = draw(st.sampled_from(sorted(target)))
        target[member] = draw(json_values)
    try:
        encoded = canonical_json(payload)
    except DocumentError:
        encoded = json.dumps(payload).encode()
    signers = [gen.ONLINE] if payload.get("type") != "pinwarden.keyring" else gen.ROOTS
    return sign_envelope(encoded, signers)


@FUZZ
@given(signed_payloads())
def test_signed_but_malformed_payloads(raw: bytes) -> None:
    judge(raw)


def test_judge_flags_any_other_exception(monkeypatch: Any) -> None:
    """The fuzz tests above can fail: an exception outside DocumentError escapes ``judge``."""
    from tests.document import test_document_fuzz as module

    def broken(*_: Any, **__: Any) -> PinSet:
        raise ValueError("not a DocumentError")

    monkeypatch.setattr(module, "verify_pinset", broken)
    try:
        judge(gen.PINSET_RAW)
    except ValueError:
        return
    raise AssertionError("judge let a ValueError through silently")
