"""Verification rules of docs/spec.md §5 beyond the vectors, each with its refusal twin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import pinwarden.document._verifier as verifier_module
from pinwarden.document import (
    MAX_KEYRING_BYTES,
    MAX_PINSET_BYTES,
    MAX_SIGNATURES,
    ExpiredError,
    FormatError,
    KeyringError,
    PinSet,
    RollbackError,
    SignatureError,
    SizeError,
    load_keyring,
    peek_document,
    sign_keyring,
    sign_pinset,
    update_keyring,
    verify_pinset,
    walk_keyrings,
)
from pinwarden.document._encoding import b64url_encode, canonical_json
from pinwarden.document._envelope import sign_envelope
from tests.document.document_helpers import gen

NOW = gen.NOW
KEYRING = load_keyring(gen.KEYRING_RAW)


def envelope(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def reencoded(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_valid_pinset_verifies_to_what_was_signed() -> None:
    assert verify_pinset(gen.PINSET_RAW, keyring=KEYRING, now=NOW) == gen.pinset()


def test_size_cap_comes_before_parsing() -> None:
    # Not even JSON: a verifier that parsed first would say FormatError.
    with pytest.raises(SizeError):
        verify_pinset(b"\xff" * (MAX_PINSET_BYTES + 1), keyring=KEYRING, now=NOW)
    with pytest.raises(FormatError):
        verify_pinset(b"\xff" * MAX_PINSET_BYTES, keyring=KEYRING, now=NOW)


def test_keyring_size_cap() -> None:
    with pytest.raises(SizeError):
        load_keyring(gen.KEYRING_RAW + b" " * (MAX_KEYRING_BYTES + 1 - len(gen.KEYRING_RAW)))
    assert load_keyring(gen.KEYRING_RAW + b" " * (MAX_KEYRING_BYTES - len(gen.KEYRING_RAW)))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda e: e.update(header={"x": 1}), id="unknown-top-level-member"),
        pytest.param(lambda e: e["signatures"][0].update(header={"kid": "x"}), id="unprotected"),
        pytest.param(lambda e: e.update(payload=e["payload"] + "="), id="padded-payload"),
        pytest.param(lambda e: e.update(payload=e["payload"] + "!"), id="non-alphabet"),
        pytest.param(lambda e: e.update(signatures=[]), id="no-signatures"),
        pytest.param(lambda e: e.update(signatures={}), id="signatures-not-list"),
        pytest.param(lambda e: e.update(e.pop("signatures")[0]), id="flattened-form"),
    ],
)
def test_envelope_structure_is_exact(change: Any) -> None:
    value = envelope(gen.PINSET_RAW)
    change(value)
    with pytest.raises(FormatError):
        verify_pinset(reencoded(value), keyring=KEYRING, now=NOW)
    # Twin: the same envelope re-encoded without the change verifies.
    assert verify_pinset(reencoded(envelope(gen.PINSET_RAW)), keyring=KEYRING, now=NOW)


def _with_header(header: dict[str, Any]) -> bytes:
    value = envelope(gen.PINSET_RAW)
    value["signatures"][0]["protected"] = b64url_encode(json.dumps(header).encode())
    return reencoded(value)


def test_protected_header_is_exactly_alg_and_kid() -> None:
    for header in (
        {"alg": "EdDSA", "kid": "online-1", "b64": False},
        {"alg": "EdDSA", "kid": "online-1", "crit": ["b64"]},
        {"alg": "EdDSA"},
        {"alg": "EdDSA", "kid": 1},
    ):
        with pytest.raises(FormatError):
            verify_pinset(_with_header(header), keyring=KEYRING, now=NOW)


def test_header_change_breaks_the_signature() -> None:
    # Same members, other bytes: the protected header is signed as sent.
    with pytest.raises(SignatureError):
        verify_pinset(_with_header({"kid": "online-1", "alg": "EdDSA"}), keyring=KEYRING, now=NOW)


def test_too_many_signatures() -> None:
    doc = sign_pinset(gen.pinset(), [gen.ONLINE])
    assert verify_pinset(gen.merge(*[doc] * MAX_SIGNATURES), keyring=KEYRING, now=NOW)
    with pytest.raises(FormatError):
        verify_pinset(gen.merge(*[doc] * (MAX_SIGNATURES + 1)), keyring=KEYRING, now=NOW)


def test_bad_signature_by_trusted_key_refuses_even_when_threshold_met() -> None:
    three = [gen.key("online-a"), gen.key("online-b"), gen.key("online-c")]
    ring = load_keyring(
        sign_keyring(gen.keyring(1, gen.ROOTS, three, online_threshold=2), gen.ROOTS)
    )
    good = sign_pinset(gen.pinset(), three)
    assert verify_pinset(good, keyring=ring, now=NOW)
    value = envelope(good)
    value["signatures"][2]["signature"] = value["signatures"][0]["signature"]
    with pytest.raises(SignatureError):
        verify_pinset(reencoded(value), keyring=ring, now=NOW)


def test_payload_must_be_canonical_json_of_a_normalised_pinset() -> None:
    payload = gen.pinset().to_json()
    payload["rules"][0]["pattern"] = "API.example.com"  # normalises to api.example.com
    with pytest.raises(FormatError, match="canonical"):
        verify_pinset(
            sign_envelope(canonical_json(payload), [gen.ONLINE]), keyring=KEYRING, now=NOW
        )
    payload["rules"][0]["pattern"] = "api.example.com"
    assert verify_pinset(
        sign_envelope(canonical_json(payload), [gen.ONLINE]), keyring=KEYRING, now=NOW
    )


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("version", True),
        ("version", 0),
        ("version", 2**53),
        ("version", 7.5),
        ("issued", "2025-01-01T00:00:00+00:00"),
        ("expires", "2025-01-01T00:00:00Z"),  # not after issued
        ("report_uri", "ftp://pins.example.com/"),
        ("report_uri", "https://pins.example].com/report"),  # found by atheris: urlsplit raised
        ("report_uri", "https://[::1/report"),
        ("channel", "has space"),
        ("rules", [{"pattern": "*.com", "pins": [], "mode": "disabled", "expires": None}]),
        ("rules", [{"pattern": "a.example.com", "pins": [], "mode": "enforce", "expires": None}]),
        ("extra", 1),
    ],
)
def test_pinset_schema_refusals(member: str, value: Any) -> None:
    payload = gen.pinset().to_json()
    payload[member] = value
    with pytest.raises(FormatError):
        verify_pinset(
            sign_envelope(canonical_json(payload), [gen.ONLINE]), keyring=KEYRING, now=NOW
        )


def test_rollback_floor() -> None:
    assert verify_pinset(gen.PINSET_RAW, keyring=KEYRING, min_version=7, now=NOW)
    with pytest.raises(RollbackError):
        verify_pinset(gen.PINSET_RAW, keyring=KEYRING, min_version=8, now=NOW)


def test_expiry_uses_one_clock_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no ``now``, the clock is read once; a second reading past expiry would change the
    verdict half way (the keyring judged at one instant, the pin set at another)."""
    readings = iter([gen.PINSET_EXPIRES - timedelta(seconds=1), gen.PINSET_EXPIRES])
    calls = []

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            calls.append(tz)
            return next(readings)

    monkeypatch.setattr(verifier_module, "datetime", Clock)
    assert isinstance(verify_pinset(gen.PINSET_RAW, keyring=KEYRING), PinSet)
    assert calls == [timezone.utc]
    with pytest.raises(ExpiredError):
        verify_pinset(gen.PINSET_RAW, keyring=KEYRING)


def test_now_must_be_aware() -> None:
    with pytest.raises(FormatError):
        verify_pinset(gen.PINSET_RAW, keyring=KEYRING, now=datetime(2025, 1, 15))


def test_min_version_is_a_callers_bug_not_a_document_error() -> None:
    with pytest.raises(ValueError, match="min_version") as caught:
        verify_pinset(gen.PINSET_RAW, keyring=KEYRING, min_version=-1, now=NOW)
    assert not isinstance(caught.value, FormatError)


def test_load_keyring_needs_its_own_root_threshold() -> None:
    assert load_keyring(sign_keyring(gen.KEYRING_V1, gen.ROOTS[:2])) == gen.KEYRING_V1
    with pytest.raises(SignatureError):
        load_keyring(sign_keyring(gen.KEYRING_V1, gen.ROOTS[:1]))
    with pytest.raises(SignatureError):
        load_keyring(sign_keyring(gen.KEYRING_V1, [gen.ONLINE, gen.STRANGER]))


def test_load_keyring_judges_expiry_only_when_asked() -> None:
    expired = sign_keyring(gen.keyring(1, gen.ROOTS, [gen.ONLINE], expires=NOW), gen.ROOTS)
    assert load_keyring(expired).version == 1
    with pytest.raises(ExpiredError):
        load_keyring(expired, now=NOW)
    assert load_keyring(expired, now=NOW - timedelta(seconds=1))


def test_update_keyring_judges_expiry_only_when_asked() -> None:
    v2 = sign_keyring(gen.keyring(2, gen.ROOTS, [gen.ONLINE], expires=NOW), gen.ROOTS)
    assert update_keyring(KEYRING, v2).version == 2
    with pytest.raises(ExpiredError):
        update_keyring(KEYRING, v2, now=NOW)


def test_walk_refuses_too_many_steps_before_fetching() -> None:
    fetched: list[int] = []

    def fetch(version: int) -> bytes:
        fetched.append(version)
        return sign_keyring(gen.keyring(version, gen.ROOTS, [gen.ONLINE]), gen.ROOTS)

    with pytest.raises(KeyringError):
        walk_keyrings(KEYRING, fetch, 5, max_steps=3)
    assert fetched == []
    assert walk_keyrings(KEYRING, fetch, 4, max_steps=3, now=NOW).version == 4
    assert fetched == [2, 3, 4]


def test_walk_to_current_or_older_version_fetches_nothing() -> None:
    def fetch(version: int) -> bytes:
        raise AssertionError(f"fetched {version}")

    assert walk_keyrings(KEYRING, fetch, 1) is KEYRING
    assert walk_keyrings(KEYRING, fetch, 0) is KEYRING


def test_walk_judges_only_the_final_keyring_expiry() -> None:
    chain = {
        2: sign_keyring(gen.keyring(2, gen.ROOTS, [gen.ONLINE], expires=NOW), gen.ROOTS),
        3: sign_keyring(gen.keyring(3, gen.ROOTS, [gen.ONLINE], expires=NOW), gen.ROOTS),
    }
    assert walk_keyrings(KEYRING, chain.__getitem__, 3).version == 3
    with pytest.raises(ExpiredError):
        walk_keyrings(KEYRING, chain.__getitem__, 3, now=NOW)


def test_peek_document_reads_unverified_claims() -> None:
    hint = peek_document(sign_pinset(gen.pinset(keyring_version=3), [gen.STRANGER]))
    assert (hint.type, hint.version, hint.keyring_version) == ("pinwarden.pinset", 7, 3)
    assert peek_document(gen.KEYRING_RAW).keyring_version is None
    payload = gen.pinset().to_json()
    payload["type"] = "pinwarden.other"
    with pytest.raises(FormatError):
        peek_document(sign_envelope(canonical_json(payload), [gen.ONLINE]))


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"null",
        b"[]",
        b'{"payload": "", "signatures": [{"protected": "", "signature": ""}]}',
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        b"[" * 30_000 + b"]" * 30_000,
        b'{"payload": NaN}',
        b'{"payload": ' + b"9" * 5000 + b"}",
        b'{"payload": ' + b"9" * 400 + b"}",  # an integer too large for a float
        b'{"payload": 1e400}',
        b'{"payload": "\xff"}',
        b'{"payload": "\\ud800"}',
        b'{"payload": "\xef\xbf\xbf"}',  # U+FFFF, a noncharacter
        b"[" * 17 + b"]" * 17,
    ],
)
def test_malformed_bytes_are_format_errors(text: bytes) -> None:
    with pytest.raises(FormatError):
        verify_pinset(text, keyring=KEYRING, now=NOW)
    with pytest.raises(FormatError):
        load_keyring(text)
