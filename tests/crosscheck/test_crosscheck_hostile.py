"""Hostile values, judged the same way by the Python and the TypeScript verifier.

Each table holds values of one field, the ones a careless parser reads differently: host
patterns at every edge of the grammar (docs/spec.md §3), report URIs, channels, times, public
keys that are not the one encoding of a prime-order point (§4), `__proto__` as a key id, and
JSON that only a strict parser refuses (§2). Each value is put into an otherwise valid document,
signed here by the right key, and must get the verdict the spec gives it, from both verifiers.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from pinwarden.document import SigningKey, sign_keyring, sign_pinset
from pinwarden.document._encoding import b64url_decode, b64url_encode, canonical_json
from pinwarden.document._envelope import sign_envelope
from tests.crosscheck.crosscheck_helpers import Vector, judge, keyring, pinset, require_node, vector

VALID, REFUSED = "valid", "FormatError"
LONG_LABEL = "a" * 63
NAME_253 = ".".join([LONG_LABEL] * 3 + ["b" * 61])  # 63*3 + 61 + 3 dots = 253 characters

PATTERNS: dict[str, str] = {
    "api.example.com": VALID,
    "*.example.com": VALID,
    "**.example.com": VALID,
    "*.co.uk": VALID,  # a public suffix: signer policy, not re-judged by verifiers
    "localhost": VALID,
    "__proto__": VALID,
    "_srv._tcp.example.com": VALID,
    "ab--cd.example.com": VALID,
    "xn--bcher-kva.example": VALID,
    "xn--ls8h.example": VALID,  # an emoji: not IDNA 2008, but valid Punycode (signer policy)
    f"{LONG_LABEL}.example": VALID,
    NAME_253: VALID,
    f"*.{NAME_253}": VALID,  # the wildcard prefix does not count towards 253
    "192.0.2.1": VALID,
    "2001:db8::1": VALID,
    "::1": VALID,
    "API.example.com": REFUSED,
    "api.example.com.": REFUSED,
    ".example.com": REFUSED,
    "a..b.example": REFUSED,
    "": REFUSED,
    "*.": REFUSED,
    "**.": REFUSED,
    "*.com": REFUSED,
    "**.localhost": REFUSED,
    "*.*.example.com": REFUSED,
    "a*.example.com": REFUSED,
    "-a.example.com": REFUSED,
    "a-.example.com": REFUSED,
    "a b.example": REFUSED,
    "a\x00.example": REFUSED,
    "example.com\n": REFUSED,
    "bücher.example": REFUSED,
    "XN--bcher-kva.example": REFUSED,
    "xn--.example": REFUSED,
    "xn--bcher-kva0.example": REFUSED,  # not the one Punycode spelling of its U-label
    "xn---ls8h.example": REFUSED,  # decodes (to U+1F4A9), but its one spelling is xn--ls8h
    "xn--abc.example": VALID,  # U+0082 U+0081 U+0080: Punycode, though not IDNA 2008
    f"{LONG_LABEL}a.example": REFUSED,
    f"a{NAME_253}": REFUSED,
    "1.2.3": REFUSED,
    "example.123": REFUSED,
    "example.0x7f": REFUSED,
    "example.0x": REFUSED,
    "256.1.1.1": REFUSED,
    "01.2.3.4": REFUSED,
    "*.192.0.2.1": REFUSED,
    "2001:DB8::1": REFUSED,
    "2001:db8:0:0:0:0:0:1": REFUSED,
    "[2001:db8::1]": REFUSED,
    "::ffff:192.0.2.1": REFUSED,
    "::ffff:c000:201": REFUSED,
    "fe80::1%eth0": REFUSED,
}

REPORT_URIS: dict[str, str] = {
    "https://pins.example.com/report": VALID,
    "http://pins.example.com": VALID,
    "https://pins.example.com:65535/": VALID,
    "https://[2001:db8::1]/r": VALID,
    "https://192.0.2.1:8443/r?x=1&y=/?": VALID,
    "https://pins.example.com/%2F": VALID,
    "https://_srv.example.com/": VALID,
    "https://pins.example.com/" + "a" * (2048 - 25): VALID,
    "https://pins.example.com/" + "a" * (2049 - 25): REFUSED,
    "HTTPS://pins.example.com/": REFUSED,
    "https://PINS.example.com/": REFUSED,
    "https://pins.example.com./": REFUSED,
    "https://pins.example.com:0/": REFUSED,
    "https://pins.example.com:65536/": REFUSED,
    "https://pins.example.com:080/": REFUSED,
    "https://pins.example.com:/": REFUSED,
    "https://pins.example.com/#fragment": REFUSED,
    "https://user@pins.example.com/": REFUSED,
    "https://2001:db8::1/": REFUSED,
    "https://[2001:DB8::1]/": REFUSED,
    "https://[::ffff:192.0.2.1]/": REFUSED,
    "https://[192.0.2.1]/": REFUSED,
    "https://1.2.3/": REFUSED,
    "https://pins.example.com/%zz": REFUSED,
    "https://pins.example.com/a b": REFUSED,
    "https://pins.example.com/é": REFUSED,
    "https://pins.example.com/\n": REFUSED,
    "ftp://pins.example.com/": REFUSED,
    "https://": REFUSED,
    "https:///path": REFUSED,
    "https://*.example.com/": REFUSED,
}

CHANNELS: dict[str, str] = {
    "a": VALID,
    "c" * 256: VALID,
    "com.example.app/prod~!": VALID,
    "": REFUSED,
    "c" * 257: REFUSED,
    "a b": REFUSED,
    "a\n": REFUSED,
    "é": REFUSED,
    "\x7f": REFUSED,
}

ISSUED_TIMES: dict[str, str] = {
    "2024-02-29T00:00:00Z": VALID,
    "2000-02-29T12:34:56Z": VALID,
    "0001-01-01T00:00:00Z": VALID,
    "2023-02-29T00:00:00Z": REFUSED,
    "1900-02-29T00:00:00Z": REFUSED,
    "0000-01-01T00:00:00Z": REFUSED,
    "2024-13-01T00:00:00Z": REFUSED,
    "2024-04-31T00:00:00Z": REFUSED,
    "2024-01-01T24:00:00Z": REFUSED,
    "2024-01-01T23:60:00Z": REFUSED,
    "2024-12-31T23:59:60Z": REFUSED,
    "2024-01-01t00:00:00Z": REFUSED,
    "2024-01-01T00:00:00.0Z": REFUSED,
    "2024-01-01T00:00:00+00:00": REFUSED,
    "\uff12\uff10\uff12\uff14-01-01T00:00:00Z": REFUSED,  # fullwidth digits
    "2024-01-01T00:00:00Z\n": REFUSED,
    "2025-02-01T00:00:00Z": REFUSED,  # not before expires
}

# RFC 8032 §5.1: the field prime and the curve constant d of Ed25519.
ED_P = 2**255 - 19
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1


def _ed25519_bytes(y: int, sign: int = 0) -> bytes:
    return (y | sign << 255).to_bytes(32, "little")


def _ed25519_y_off_curve() -> int:
    """The smallest y with no x on the curve: (y^2 - 1) / (d y^2 + 1) is not a square."""
    y = 2
    while True:
        ratio = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
        if pow(ratio, (ED_P - 1) // 2, ED_P) == ED_P - 1:
            return y
        y += 1


def _ed25519_mixed_order(public: bytes) -> bytes:
    """P + (0, -1): a valid key plus the point of order 2, i.e. (-x, -y)."""
    number = int.from_bytes(public, "little")
    y, sign = number & ((1 << 255) - 1), number >> 255
    return _ed25519_bytes(ED_P - y, 1 - sign)


def ed25519_keys() -> dict[str, tuple[bytes, str]]:
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return {
        "prime-order": (public, VALID),
        "identity": (_ed25519_bytes(1), REFUSED),
        "order-2": (_ed25519_bytes(ED_P - 1), REFUSED),
        "order-4": (_ed25519_bytes(0), REFUSED),
        "y-not-canonical": (_ed25519_bytes(ED_P + 1), REFUSED),
        "x-zero-with-sign": (_ed25519_bytes(1, 1), REFUSED),
        "off-curve": (_ed25519_bytes(_ed25519_y_off_curve()), REFUSED),
        "mixed-order": (_ed25519_mixed_order(public), REFUSED),
        "31-bytes": (public[:31], REFUSED),
    }


def p256_keys() -> dict[str, tuple[dict[str, str], str]]:
    jwk = SigningKey.generate("ES256").public().to_jwk()
    x, y = (int.from_bytes(b64url_decode(jwk[name], name), "big") for name in ("x", "y"))

    def spelled(x_value: int, y_value: int, size: int = 32) -> dict[str, str]:
        return {
            **jwk,
            "x": b64url_encode(x_value.to_bytes(size, "big")),
            "y": b64url_encode(y_value.to_bytes(size, "big")),
        }

    return {
        "on-curve": (spelled(x, y), VALID),
        "off-curve": (spelled(x, (y + 1) % P256_P), REFUSED),
        "x-at-prime": (spelled(P256_P, y), REFUSED),
        "33-bytes": (spelled(x, y, 33), REFUSED),
    }


class Signers:
    """One root and one online key, and documents signed with them, changed on the way."""

    def __init__(self) -> None:
        self.root = SigningKey.generate("EdDSA")
        self.online = SigningKey.generate("EdDSA")
        self.keyring = sign_keyring(keyring(1, [self.root], [self.online]), [self.root])

    def pinset(self, change: Callable[[dict[str, Any]], object]) -> bytes:
        payload = pinset().to_json()
        change(payload)
        return sign_envelope(canonical_json(payload), [self.online])

    def keyring_with_online_jwk(self, jwk: dict[str, str]) -> bytes:
        payload = keyring(1, [self.root], [self.online]).to_json()
        payload["online"]["keys"]["hostile"] = jwk
        return sign_envelope(canonical_json(payload), [self.root])

    def case(self, expect: str, change: Callable[[dict[str, Any]], object]) -> Vector:
        return vector(expect, self.keyring, self.pinset(change))


def _set(**members: Any) -> Callable[[dict[str, Any]], None]:
    return lambda payload: payload.update(members)


def _set_first_rule(**members: Any) -> Callable[[dict[str, Any]], None]:
    return lambda payload: payload["rules"][0].update(members)


def field_cases(signers: Signers) -> Iterator[tuple[str, Vector]]:
    tables: list[tuple[str, dict[str, str], Callable[[str], Callable[[dict[str, Any]], None]]]] = [
        ("pattern", PATTERNS, lambda value: _set_first_rule(pattern=value)),
        ("report-uri", REPORT_URIS, lambda value: _set(report_uri=value)),
        ("channel", CHANNELS, lambda value: _set(channel=value)),
        ("issued", ISSUED_TIMES, lambda value: _set(issued=value)),
        ("rule-expires", ISSUED_TIMES, lambda value: _set_first_rule(expires=value)),
    ]
    for field, table, change in tables:
        for index, (value, expect) in enumerate(table.items()):
            # A rule may expire at or after the pin set does: only its own spelling counts.
            if field == "rule-expires" and value == "2025-02-01T00:00:00Z":
                expect = VALID
            slug = re.sub(r"[^A-Za-z0-9.:-]", "_", value)[:40]
            yield f"{field}-{index:02d}-{slug}", signers.case(expect, change(value))


def key_cases(signers: Signers) -> Iterator[tuple[str, Vector]]:
    document = sign_pinset(pinset(), [signers.online])
    for label, (raw, expect) in ed25519_keys().items():
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw), "alg": "EdDSA"}
        yield f"ed25519-{label}", vector(expect, signers.keyring_with_online_jwk(jwk), document)
    for label, (p256_jwk, expect) in p256_keys().items():
        trusted = signers.keyring_with_online_jwk(p256_jwk)
        yield f"p256-{label}", vector(expect, trusted, document)


def prototype_kid_cases() -> Iterator[tuple[str, Vector]]:
    """Key ids that name properties of every JavaScript object: data, nothing more."""
    root = SigningKey.from_private_key(ed25519.Ed25519PrivateKey.generate(), "__proto__")
    online = SigningKey.from_private_key(ed25519.Ed25519PrivateKey.generate(), "constructor")
    trusted = sign_keyring(keyring(1, [root], [online]), [root])
    stranger = SigningKey.from_private_key(ed25519.Ed25519PrivateKey.generate(), "toString")
    yield "kid-proto-valid", vector(VALID, trusted, sign_pinset(pinset(), [online]))
    # A kid named like an inherited property but in no keyring is ignored, not looked up.
    with_stranger = sign_pinset(pinset(), [online, stranger])
    yield "kid-tostring-ignored", vector(VALID, trusted, with_stranger)
    yield "kid-tostring-alone", vector("SignatureError", trusted, sign_pinset(pinset(), [stranger]))


def _alg_none_entry() -> dict[str, str]:
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    return {"protected": header, "signature": ""}


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# JSON text placed as the second signature entry, after an entry whose alg is refused: the first
# entry's SignatureError is the verdict unless the strict parser refuses the envelope first.
# The entry sits at depth 3 (envelope object, signatures array, entry).
SECOND_ENTRIES: dict[str, tuple[str, str]] = {
    "depth-16": (_nested(14), "SignatureError"),
    "depth-17": (_nested(15), REFUSED),
    "safe-integer": ("9007199254740991", "SignatureError"),
    "integer-beyond-2-53": ("9007199254740993", REFUSED),
    "integer-written-as-float": ("7.0", "SignatureError"),
    "fraction": ("1.5", REFUSED),
    "huge-exponent": ("1e400", REFUSED),
    "nan": ("NaN", REFUSED),
    "lone-surrogate": ('"\\ud800"', REFUSED),
    "surrogate-pair": ('"\\ud83d\\ude00"', "SignatureError"),
    "noncharacter": ('"\\ufdd0"', REFUSED),
    "noncharacter-plane-16": ('"\\udbff\\udfff"', REFUSED),
    "replacement-character": ('"\\ufffd"', "SignatureError"),
    "duplicate-member": ('{"a":1,"a":1}', REFUSED),
    "proto-member": ('{"__proto__":{"x":1}}', "SignatureError"),
    "control-character": ('"\x01"', REFUSED),
    "bad-escape": ('"\\x41"', REFUSED),
    "short-unicode-escape": ('"\\u41"', REFUSED),
    "single-quotes": ("'a'", REFUSED),
    "trailing-comma": ("[1,]", REFUSED),
}


def envelope_cases(signers: Signers) -> Iterator[tuple[str, Vector]]:
    document = json.loads(sign_pinset(pinset(), [signers.online]))
    first = json.dumps(_alg_none_entry())
    for label, (text, expect) in SECOND_ENTRIES.items():
        raw = (f'{{"payload":"{document["payload"]}","signatures":[{first},{text}]}}').encode()
        yield f"second-entry-{label}", vector(expect, signers.keyring, raw)


@pytest.fixture(scope="module")
def cases() -> dict[str, Vector]:
    require_node()
    signers = Signers()
    built = dict(field_cases(signers))
    built.update(key_cases(signers))
    built.update(prototype_kid_cases())
    built.update(envelope_cases(signers))
    return built


def test_both_verifiers_refuse_and_accept_the_same_hostile_values(
    cases: dict[str, Vector], tmp_path: Path
) -> None:
    assert judge(cases, tmp_path) == {}, "name: (intended, python, typescript)"
