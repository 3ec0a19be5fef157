"""Building pin sets and keyrings: what a server builds is what a client accepts (spec §3-4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from document_helpers import gen

from pinwarden.document import (
    FormatError,
    KeyringKey,
    KeyStoreError,
    PinSet,
    PinSetRule,
    SigningKey,
    load_keyring,
    sign_keyring,
    sign_pinset,
    verify_pinset,
)

LIVE, BACKUP = gen.pin("live"), gen.pin("backup")


def test_rule_normalises_pattern_and_pins() -> None:
    rule = PinSetRule("*.Example.COM.", [LIVE.replace("sha256/", ""), f'pin-sha256="{BACKUP[7:]}"'])
    assert rule.pattern == "*.example.com"
    assert rule.pins == (LIVE, BACKUP)
    assert PinSetRule("**.example.com", (LIVE, LIVE)).pins == (LIVE,)


@pytest.mark.parametrize(
    ("pattern", "pins", "mode"),
    [
        ("*.com", (LIVE,), "enforce"),  # covers a public suffix
        ("a.*.example.com", (LIVE,), "enforce"),
        ("api.example.com", (), "enforce"),  # fail closed: no pins
        ("api.example.com", (), "report-only"),
        ("api.example.com", ("sha1/AAAA",), "enforce"),
        ("api.example.com", (LIVE,), "off"),
        ("api.example.com", LIVE, "enforce"),  # a string, not a list of pins
    ],
)
def test_rule_refusals(pattern: str, pins: tuple[str, ...], mode: str) -> None:
    with pytest.raises(FormatError):
        PinSetRule(pattern, pins, mode)


def test_disabled_rule_may_have_no_pins() -> None:
    assert PinSetRule("legacy.example.com", (), "disabled").pins == ()


def test_pinset_times_are_whole_utc_seconds() -> None:
    issued = datetime(2025, 1, 1, 1, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=1)))
    pinset = gen.pinset(issued=issued)
    assert pinset.issued == datetime(2025, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(FormatError):
        gen.pinset(issued=datetime(2025, 1, 1))


def test_pinset_refuses_duplicate_patterns() -> None:
    rules = (PinSetRule("api.example.com", (LIVE,)), PinSetRule("API.example.com", (BACKUP,)))
    with pytest.raises(FormatError):
        gen.pinset(rules=rules)


def test_pinset_payload_round_trip_through_signing() -> None:
    rule = PinSetRule("api.example.com", (LIVE, BACKUP), expires=gen.NOW + timedelta(days=3))
    pinset = gen.pinset(rules=(rule,), report_uri=None)
    keyring = load_keyring(gen.KEYRING_RAW)
    signed = sign_pinset(pinset, [gen.ONLINE])
    assert verify_pinset(signed, keyring=keyring, now=gen.NOW) == pinset
    assert PinSet.from_payload(pinset.to_payload()) == pinset


def test_keyring_thresholds_count_distinct_keys() -> None:
    alias = gen.key("online-1", kid="online-1-alias")
    with pytest.raises(FormatError, match="distinct"):
        gen.keyring(1, gen.ROOTS, [gen.ONLINE, alias], online_threshold=2)
    assert gen.keyring(1, gen.ROOTS, [gen.ONLINE, alias], online_threshold=1)


@pytest.mark.parametrize(
    ("roots", "onlines"),
    [
        ([gen.ROOTS[0], gen.ROOTS[1]], [gen.key("root-1", kid="online-x")]),  # key in both roles
        ([gen.ROOTS[0], gen.ROOTS[1]], [gen.key("other", kid="root-1")]),  # kid in both roles
        ([], [gen.ONLINE]),
    ],
)
def test_keyring_role_refusals(roots: list[SigningKey], onlines: list[SigningKey]) -> None:
    with pytest.raises(FormatError):
        gen.keyring(1, roots, onlines, root_threshold=1)


def test_keyring_jwk_is_strict() -> None:
    jwk = gen.ONLINE.public().to_jwk()
    assert KeyringKey.from_jwk("k", jwk) == KeyringKey("k", "EdDSA", gen.ONLINE.public().public_key)
    private = dict(jwk, d=jwk["x"])  # a private member must never be in a keyring
    for bad in (
        private,
        dict(jwk, alg="ES256"),
        dict(jwk, crv="Ed448"),
        {k: v for k, v in jwk.items() if k != "alg"},
        dict(jwk, x=jwk["x"][:-2]),
        dict(jwk, x=jwk["x"] + "="),
    ):
        with pytest.raises(FormatError):
            KeyringKey.from_jwk("k", bad)


def test_p256_point_must_be_on_the_curve() -> None:
    jwk = gen.ES_ONLINE.public().to_jwk()
    assert KeyringKey.from_jwk("k", jwk).algorithm == "ES256"
    with pytest.raises(FormatError):
        KeyringKey.from_jwk("k", dict(jwk, y=jwk["x"]))


def test_keyring_round_trip() -> None:
    raw = sign_keyring(gen.KEYRING_V1, gen.ROOTS)
    loaded = load_keyring(raw)
    assert loaded == gen.KEYRING_V1
    assert loaded.raw == raw


def test_signing_key_pem_round_trip_is_encrypted() -> None:
    key = SigningKey.generate("ES256")
    pem = key.to_pem("correct horse")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert SigningKey.from_pem(pem, b"correct horse").public() == key.public()
    with pytest.raises(KeyStoreError):
        SigningKey.from_pem(pem, "wrong")
    with pytest.raises(KeyStoreError):
        key.to_pem("")
    assert "private_key" not in repr(key)


def test_default_kid_is_the_jwk_thumbprint() -> None:
    key = SigningKey.generate()
    assert key.kid == key.public().fingerprint
    assert len(key.kid) == 43
