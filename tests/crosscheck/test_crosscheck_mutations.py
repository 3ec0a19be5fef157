"""Mutated documents, judged the same way by the Python and the TypeScript verifier.

A fixed-seed generator changes the canonical payload of a valid pin set (flips, deletions,
insertions of tokens that strict parsers and normal forms care about) and signs each result with
the right key, so that only the payload decides; it also changes the bytes of a signed envelope,
so that the envelope's parse and the order of its checks decide. Both verifiers must give every
mutant one verdict; no verdict is intended in advance, so the Python reference's is expected.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinwarden.document import SigningKey, sign_keyring
from pinwarden.document._envelope import sign_envelope
from tests.crosscheck.crosscheck_helpers import (
    Vector,
    judge,
    keyring,
    pinset,
    python_verdict,
    require_node,
    rule,
    vector,
)

SEED = 20251130
PAYLOAD_MUTANTS = 400
ENVELOPE_MUTANTS = 200
# Tokens that a lenient parser or a lax normal-form check reads differently.
TOKENS = [
    b"\\u0000",
    b"\\ud800",
    b"\\udfff",
    b"\\ufdd0",
    b"\\uffff",
    b"\\u0041",
    b"\\/",
    b"\xef\xbb\xbf",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xff",
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b" ",
    b"\n",
    b"7.0",
    b"1e400",
    b"-0",
    b"9007199254740993",
    b"true",
    b"null",
    b"xn--",
    b"*.",
    b"**.",
    b".",
    b"-",
    b"_",
    b"=",
    b"%",
    b"A",
    b"0",
]


def _mutate(payload: bytes, rng: random.Random) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            data[position] ^= 1 << rng.randrange(8)
        elif action == 1:
            del data[position : position + rng.randint(1, 4)]
        else:
            data[position:position] = rng.choice(TOKENS)
    return bytes(data)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def mutant_cases() -> Iterator[tuple[str, Vector]]:
    root, online = SigningKey.generate("EdDSA"), SigningKey.generate("ES256")
    trusted = sign_keyring(keyring(1, [root], [online]), [root])
    base = pinset(
        rules=(
            rule("api.example.com"),
            rule("*.cdn.example.com", "report-only"),
            rule("xn--bcher-kva.example"),
            rule("2001:db8::1", "disabled", pins=0),
        )
    ).to_payload()
    signed = sign_envelope(base, [online])
    rng = random.Random(SEED)
    documents = [sign_envelope(_mutate(base, rng), [online]) for _ in range(PAYLOAD_MUTANTS)]
    # A vector carries its document as a string: keep the envelope mutants that are UTF-8 (bytes
    # that are not are covered by the payload mutants, inside the base64).
    envelopes = (_mutate(signed, rng) for _ in range(10 * ENVELOPE_MUTANTS))
    documents += [raw for raw in envelopes if _is_utf8(raw)][:ENVELOPE_MUTANTS]
    for index, document in enumerate(documents):
        case = vector("valid", trusted, document)
        case["expect"] = python_verdict(case)
        yield f"mutant-{index:03d}", case


@pytest.fixture(scope="module")
def cases() -> dict[str, Vector]:
    require_node()
    return dict(mutant_cases())


def test_both_verifiers_give_each_mutant_one_verdict(
    cases: dict[str, Vector], tmp_path: Path
) -> None:
    assert judge(cases, tmp_path) == {}, "name: (python, python, typescript)"


def test_the_mutants_reach_several_verdicts(cases: dict[str, Vector]) -> None:
    """A generator whose every mutant dies in the JSON parser would test little else."""
    verdicts = {case["expect"] for case in cases.values()}
    assert verdicts >= {"valid", "FormatError", "SignatureError"}
