"""Building pin sets and keyrings: what a server builds is what a client accepts (spec §3-4)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from pinwarden.client._rules import PinRule
from pinwarden.client._trust import TrustStore
from pinwarden.document import (
    FormatError,
    KeyringKey,
    KeyStoreError,
    PinSet,
    PinSetRule,
    SigningKey,
    check_report_uri,
    load_keyring,
    sign_keyring,
    sign_pinset,
    verify_pinset,
)
from pinwarden.document._envelope import sign_envelope
from pinwarden.errors import InvalidHostError
from tests.document.document_helpers import gen

LIVE, BACKUP = gen.pin("live"), gen.pin("backup")


def test_rule_normalises_pattern_and_pins() -> None:
    rule = PinSetRule("*.Example.COM.", (LIVE.replace("sha256/", ""), f'pin-sha256="{BACKUP[7:]}"'))
    assert rule.pattern == "*.example.com"
    assert rule.pins == (LIVE, BACKUP)
    assert PinSetRule("**.example.com", (LIVE, LIVE)).pins == (LIVE,)


@pytest.mark.parametrize(
    ("pattern", "pins", "mode"),
    [
        ("*.com", (LIVE,), "enforce"),  # a wildcard over one label (spec §3.1)
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


def _ed25519_jwk(encoded: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": gen.b64url_encode(encoded), "alg": "EdDSA"}


def test_ed25519_keys_must_be_of_prime_order() -> None:
    for signer in (gen.ONLINE, gen.STRANGER, SigningKey.generate()):
        assert KeyringKey.from_jwk("k", signer.public().to_jwk()).kid == "k"
    online = base64.urlsafe_b64decode(gen.ONLINE.public().to_jwk()["x"] + "=")
    mixed = gen._ed25519_encoding(
        gen._add(gen._ed25519_point(online), gen._ed25519_point(gen._ORDER_8_POINT))
    )
    refused = {
        "neutral element": b"\x01" + bytes(31),
        "order 2": (gen._ED25519_P - 1).to_bytes(32, "little"),
        "order 8": gen._ORDER_8_POINT,
        "mixed order": mixed,
        "y + p": (3 + gen._ED25519_P).to_bytes(32, "little"),
        "not on the curve": (2).to_bytes(32, "little"),
    }
    for what, encoded in refused.items():
        with pytest.raises(FormatError, match="Ed25519 key"):
            KeyringKey.from_jwk(what.replace(" ", "-"), _ed25519_jwk(encoded))


def _pinset_with(pattern: str) -> PinSet:
    pinset: PinSet = gen.pinset(rules=(PinSetRule(pattern, (LIVE, BACKUP)),))
    return pinset


@pytest.mark.parametrize("pattern", ["**.co.uk", "*.github.io", "xn--a-ecp.example.com"])
def test_the_signer_refuses_what_verifiers_do_not_re_judge(pattern: str) -> None:
    pinset = _pinset_with(pattern)  # the document model takes the grammar only (spec §3.2)
    with pytest.raises(FormatError, match="refusing to sign"):
        sign_pinset(pinset, [gen.ONLINE])
    raw = sign_envelope(pinset.to_payload(), [gen.ONLINE])  # as a signer with another snapshot
    keyring = load_keyring(gen.KEYRING_RAW)
    assert verify_pinset(raw, keyring=keyring, now=gen.NOW).rules[0].pattern == pattern
    # The client builds the signed rule without re-judging it ...
    store = TrustStore(
        keyring, None, channel=pinset.channel, max_keyring_steps=1, emit=lambda event: None
    )
    verified = store.verify(raw, None, gen.NOW, lambda version: b"")
    assert [str(rule.pattern) for rule, _ in verified.rules] == [pattern]
    # ... and still refuses the same pattern written by hand as a static rule.
    with pytest.raises(InvalidHostError):
        PinRule.create(pattern, [LIVE, BACKUP])


def test_a_signer_still_signs_what_its_policy_allows() -> None:
    raw = sign_pinset(_pinset_with("*.example.co.uk"), [gen.ONLINE])
    keyring = load_keyring(gen.KEYRING_RAW)
    assert verify_pinset(raw, keyring=keyring, now=gen.NOW).rules[0].pattern == "*.example.co.uk"


@pytest.mark.parametrize(
    "uri",
    [
        "https://pins.example.com/report",
        "http://127.0.0.1:8080/v1/reports",
        "http://[::1]:8080/v1/reports?channel=com.example.app%2Fprod",
        "https://xn--bcher-kva.example/r;v=1/a:b@c/~x?y=/?z",
        "https://localhost:65535",
        "https://[::1]",
    ],
)
def test_report_uris_of_the_grammar_are_accepted(uri: str) -> None:
    assert check_report_uri(uri) == uri


@pytest.mark.parametrize(
    "value",
    [
        7,
        b"https://pins.example.com/",
        ["https://pins.example.com/"],
        {"uri": "https://pins.example.com/"},
        "",
        "https://pins.example.com/\x00",
        "https://pins.example.com/\ud800",
        "https://pins.example.com/" + "a" * 1_000_000,
        "https://pins.example.com:" + "9" * 1000 + "/",
        "https://pins.example.com:99999/",
        "https://[::1/",
        "https://[::ffff:127.0.0.1]/",
        "https://::1/",
        "https://pins.example.com./",
        "https://*.example.com/",
        "https://pins.example.123/",
        "https://pins.example.com/%2",
        "https://pins.example.com/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_hostile_report_uris_are_one_format_error(value: object) -> None:
    with pytest.raises(FormatError) as refused:
        check_report_uri(value)
    assert "report_uri" in str(refused.value) and len(str(refused.value)) < 400
