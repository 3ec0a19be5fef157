"""Generate the signed-document test vectors in tests/vectors/ (docs/spec.md §7).

    python scripts/make_vectors.py [OUT_DIR]        # default: tests/vectors

Every key is derived from a fixed seed and every time is fixed, so EdDSA vectors come out byte for
byte the same on every run; ES256 signatures are randomised (ECDSA), so those bytes differ while
the verdicts do not. One JSON file per case::

    {"description", "keyring", "document", "now", "min_version", "expect", "must"
     [, "keyrings": [...]] [, "max_steps": N]}

``keyring`` (the trusted keyring) and ``document`` (a pin set) are the exact bytes as strings;
``expect`` is "valid" or the name of the error the verifier must raise. ``must`` lists the ids of
the requirements of docs/spec.md the vector shows (``"M-23"`` for "[M-23]"; ``_SHOWS`` below):
a verifier that skips one of them fails at least one vector listing it. It is an addition; a
runner may ignore it. How to run a vector is in docs/spec.md §7 and
tests/document/document_helpers.py (run_vector).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pinwarden._pins import pin_from_digest
from pinwarden.document import (
    MAX_JSON_DEPTH,
    MAX_KEYRING_BYTES,
    MAX_PINSET_BYTES,
    MAX_ROLE_KEYS,
    MAX_SIGNATURES,
    Keyring,
    PinSet,
    PinSetRule,
    SigningKey,
    sign_keyring,
    sign_pinset,
)
from pinwarden.document._curves import _P as _ED25519_P
from pinwarden.document._curves import _add, _decode_x
from pinwarden.document._encoding import b64url_encode, canonical_json, format_time
from pinwarden.document._envelope import sign_envelope

NOW = datetime(2025, 1, 15, tzinfo=timezone.utc)
ISSUED = datetime(2025, 1, 1, tzinfo=timezone.utc)
PINSET_EXPIRES = datetime(2025, 2, 1, tzinfo=timezone.utc)
KEYRING_EXPIRES = datetime(2030, 1, 1, tzinfo=timezone.utc)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"pinwarden test vectors/{label}".encode()).digest()


def key(label: str, algorithm: str = "EdDSA", kid: str | None = None) -> SigningKey:
    """A fixed key: the same label gives the same key on every run."""
    if algorithm == "EdDSA":
        private: Any = ed25519.Ed25519PrivateKey.from_private_bytes(_seed(label))
    else:
        scalar = int.from_bytes(_seed(label), "big") % (_P256_ORDER - 1) + 1
        private = ec.derive_private_key(scalar, ec.SECP256R1())
    return SigningKey.from_private_key(private, kid or label)


def pin(label: str) -> str:
    return pin_from_digest(hashlib.sha256(label.encode()).digest())


def keyring(
    version: int,
    roots: Sequence[SigningKey],
    onlines: Sequence[SigningKey],
    *,
    root_threshold: int = 2,
    online_threshold: int = 1,
    expires: datetime = KEYRING_EXPIRES,
) -> Keyring:
    return Keyring(
        version,
        expires,
        tuple(k.public() for k in roots),
        root_threshold,
        tuple(k.public() for k in onlines),
        online_threshold,
    )


def pinset(*, version: int = 7, keyring_version: int = 1, **changes: Any) -> PinSet:
    base = PinSet(
        channel="com.example.app/prod",
        version=version,
        issued=ISSUED,
        expires=PINSET_EXPIRES,
        refresh_after=3600,
        report_uri="https://pins.example.com/report",
        rules=(
            PinSetRule("api.example.com", (pin("api live"), pin("api backup"))),
            PinSetRule("*.cdn.example.com", (pin("cdn live"), pin("cdn backup")), "report-only"),
            PinSetRule("legacy.example.com", (), "disabled"),
        ),
        keyring_version=keyring_version,
    )
    return replace(base, **changes)


def _envelope(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


def merge(*documents: bytes) -> bytes:
    """One envelope carrying the signatures of several envelopes over the same payload."""
    envelopes = [_envelope(raw) for raw in documents]
    assert len({envelope["payload"] for envelope in envelopes}) == 1
    signatures = [entry for envelope in envelopes for entry in envelope["signatures"]]
    return canonical_json({"payload": envelopes[0]["payload"], "signatures": signatures})


Signer = Callable[[bytes], bytes]


def raw_signer(signing_key: SigningKey, *, der: bool = False) -> Signer:
    """The bare signature function of a key: Ed25519, or ES256 as the JWS R||S (DER if ``der``)."""
    private = signing_key.private_key
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return private.sign

    def sign_es256(data: bytes) -> bytes:
        signature = private.sign(data, ec.ECDSA(hashes.SHA256()))
        if der:
            return signature
        r, s = decode_dss_signature(signature)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign_es256


def header_segment(header: Mapping[str, Any] | bytes) -> str:
    """A protected header segment: canonical JSON of ``header``, or these exact JSON bytes."""
    return b64url_encode(header if isinstance(header, bytes) else canonical_json(header))


def entry(protected: str, payload_segment: str, sign: Signer) -> dict[str, str]:
    """A signature entry over the two segments exactly as given (RFC 7515 §5.2)."""
    signature = b64url_encode(sign(f"{protected}.{payload_segment}".encode()))
    return {"protected": protected, "signature": signature}


def envelope(payload_segment: str, entries: Sequence[Mapping[str, Any]]) -> bytes:
    return canonical_json({"payload": payload_segment, "signatures": list(entries)})


def forged(payload: bytes, header: Mapping[str, Any] | bytes, sign: Signer) -> bytes:
    """An envelope with a hand-made header and signature, for what the signing code never makes."""
    payload_segment = b64url_encode(payload)
    return envelope(payload_segment, [entry(header_segment(header), payload_segment, sign)])


def padded(data: bytes) -> str:
    """Base64url *with* the ``=`` padding the format forbids (RFC 7515 §2)."""
    segment = base64.urlsafe_b64encode(data).decode("ascii")
    assert segment.endswith("="), "these bytes need no padding: pick others"
    return segment


def unused_bits_set(signature_entry: dict[str, str]) -> dict[str, str]:
    """The entry with the unused low bits of its signature's last character set: the same bytes
    to a lax decoder, another spelling to a strict one."""
    signature = signature_entry["signature"]
    assert len(signature) % 4 in (2, 3), "this length has no unused bits"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(signature[-1]) | 1]
    assert last != signature[-1]
    return {**signature_entry, "signature": signature[:-1] + last}


def padded_to(raw: bytes, size: int) -> bytes:
    """``raw`` followed by spaces (still the same JSON) up to ``size`` bytes."""
    return raw + b" " * (size - len(raw))


def signed_json(
    base: Mapping[str, Any],
    change: Callable[[dict[str, Any]], object],
    signers: Sequence[SigningKey],
) -> bytes:
    """``base`` (a document's JSON) changed by ``change``, as canonical JSON signed by ``signers``:
    the envelope and signatures are right, only the changed member is wrong."""
    payload = json.loads(json.dumps(base))
    change(payload)
    return sign_envelope(canonical_json(payload), signers)


def pinset_changed(change: Callable[[dict[str, Any]], object]) -> bytes:
    """The standard pin set with its JSON changed, signed by the online key."""
    return signed_json(pinset().to_json(), change, [ONLINE])


def keyring_changed(change: Callable[[dict[str, Any]], object]) -> bytes:
    """Keyring v1 with its JSON changed, signed by every root key."""
    return signed_json(KEYRING_V1.to_json(), change, ROOTS)


def pinset_text_changed(old: bytes, new: bytes) -> bytes:
    """The standard pin set with ``old`` replaced by ``new`` in its payload bytes, signed by the
    online key: for what canonical JSON cannot spell."""
    payload = pinset().to_payload()
    assert payload.count(old) == 1, old
    return sign_envelope(payload.replace(old, new), [ONLINE])


def members(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """A ``change``: set top-level members."""
    return lambda payload: payload.update(changes)


def first_rule(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """A ``change``: set members of the first rule (``api.example.com``, enforce, two pins)."""
    return lambda payload: payload["rules"][0].update(changes)


def online_role(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """A ``change``: set members of the keyring's online role."""
    return lambda payload: payload["online"].update(changes)


def jwks(*signing_keys: SigningKey) -> dict[str, dict[str, str]]:
    return {k.kid: k.public().to_jwk() for k in signing_keys}


ROOTS = [key(f"root-{n}") for n in (1, 2, 3)]
NEW_ROOTS = [key(f"new-root-{n}") for n in (1, 2, 3)]
ONLINE = key("online-1")
NEW_ONLINE = key("online-2")
STRANGER = key("stranger")
ES_ROOTS = [key(f"es-root-{n}", "ES256") for n in (1, 2, 3)]
ES_ONLINE = key("es-online-1", "ES256")

KEYRING_V1 = keyring(1, ROOTS, [ONLINE])
KEYRING_RAW = sign_keyring(KEYRING_V1, ROOTS)
ES_KEYRING_RAW = sign_keyring(keyring(1, ES_ROOTS, [ES_ONLINE]), ES_ROOTS)
PINSET_RAW = sign_pinset(pinset(), [ONLINE])


def vector(
    description: str,
    expect: str,
    *,
    document: bytes = PINSET_RAW,
    trusted: bytes = KEYRING_RAW,
    now: datetime = NOW,
    min_version: int = 0,
    keyrings: Sequence[bytes] | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    case: dict[str, Any] = {
        "description": description,
        "keyring": trusted.decode(),
        "document": document.decode(),
        "now": format_time(now),
        "min_version": min_version,
        "expect": expect,
    }
    if keyrings is not None:
        case["keyrings"] = [raw.decode() for raw in keyrings]
    if max_steps is not None:
        case["max_steps"] = max_steps
    return case


def _signature_cases() -> dict[str, dict[str, Any]]:
    payload = pinset().to_payload()
    three_online = [key("online-a"), key("online-b"), key("online-c")]
    ring_2of3 = sign_keyring(keyring(1, ROOTS, three_online, online_threshold=2), ROOTS)
    alias = key("online-a", kid="online-a-alias")
    ring_alias = sign_keyring(
        keyring(1, ROOTS, [three_online[0], alias, three_online[1]], online_threshold=2), ROOTS
    )
    tampered = _envelope(PINSET_RAW)
    tampered["payload"] = b64url_encode(pinset(version=8).to_payload())
    spliced = _envelope(sign_pinset(pinset(), three_online))
    spliced["signatures"][2]["signature"] = spliced["signatures"][0]["signature"]
    strangers = [key(f"stranger-{n}") for n in range(1, MAX_SIGNATURES + 1)]
    crowd = [sign_pinset(pinset(), [signer]) for signer in (ONLINE, *strangers)]
    online_public = ONLINE.public().to_jwk()["x"].encode()
    return {
        "threshold-2-of-3-met": vector(
            "2-of-3 online keys; two distinct keys signed",
            "valid",
            trusted=ring_2of3,
            document=sign_pinset(pinset(), three_online[:2]),
        ),
        "threshold-2-of-3-not-met": vector(
            "2-of-3 online keys; only one signed",
            "SignatureError",
            trusted=ring_2of3,
            document=sign_pinset(pinset(), three_online[:1]),
        ),
        "duplicate-signature": vector(
            "2-of-3 online keys; one key's signature sent twice counts once",
            "SignatureError",
            trusted=ring_2of3,
            document=merge(*[sign_pinset(pinset(), three_online[:1])] * 2),
        ),
        "same-key-two-kids": vector(
            "the keyring lists one online key under two key ids; signatures by both ids count "
            "once toward the threshold of 2",
            "SignatureError",
            trusted=ring_alias,
            document=sign_pinset(pinset(), [three_online[0], alias]),
        ),
        "unknown-key": vector(
            "signed only by a key the keyring does not name",
            "SignatureError",
            document=sign_pinset(pinset(), [STRANGER]),
        ),
        "unknown-key-ignored": vector(
            "a valid online signature plus one by an unknown key: the unknown one is ignored",
            "valid",
            document=sign_pinset(pinset(), [ONLINE, STRANGER]),
        ),
        "root-key-signs-pinset": vector(
            "signed by the root threshold but no online key: roles are separate",
            "SignatureError",
            document=sign_pinset(pinset(), ROOTS),
        ),
        "tampered-payload": vector(
            "the payload was changed after signing (version 7 -> 8)",
            "SignatureError",
            document=canonical_json(tampered),
        ),
        "alg-none": vector(
            'header alg "none" with an empty signature',
            "SignatureError",
            document=forged(payload, {"alg": "none", "kid": "online-1"}, lambda _: b""),
        ),
        "alg-hs256": vector(
            "header alg HS256, keyed with the online public key (algorithm confusion)",
            "SignatureError",
            document=forged(
                payload,
                {"alg": "HS256", "kid": "online-1"},
                lambda data: hmac.new(online_public, data, hashlib.sha256).digest(),
            ),
        ),
        "alg-mismatch": vector(
            "kid names the EdDSA online key but the header says ES256 (signed by a P-256 key)",
            "SignatureError",
            document=sign_pinset(pinset(), [key("impostor", "ES256", kid="online-1")]),
        ),
        "alg-mismatch-es256-key": vector(
            "kid names the ES256 online key but the header says EdDSA (signed by an Ed25519 key)",
            "SignatureError",
            trusted=ES_KEYRING_RAW,
            document=sign_pinset(pinset(), [key("impostor-ed", kid=ES_ONLINE.kid)]),
        ),
        "alg-ed25519-name": vector(
            'header alg "Ed25519" (the RFC 9864 name) with a valid Ed25519 signature by the '
            'online key: version 1 allows only "EdDSA" and "ES256"',
            "SignatureError",
            document=forged(payload, {"alg": "Ed25519", "kid": ONLINE.kid}, raw_signer(ONLINE)),
        ),
        "es256-der-signature": vector(
            "an ES256 signature by the trusted key in ASN.1 DER instead of the 64-byte R||S",
            "SignatureError",
            trusted=ES_KEYRING_RAW,
            document=forged(
                payload, {"alg": "ES256", "kid": ES_ONLINE.kid}, raw_signer(ES_ONLINE, der=True)
            ),
        ),
        "bad-signature-threshold-met": vector(
            "2-of-3 online keys; a and b sign correctly, c's entry carries a's signature: a "
            "trusted key's signature that does not verify refuses the document",
            "SignatureError",
            trusted=ring_2of3,
            document=canonical_json(spliced),
        ),
        "no-signatures": vector(
            "an empty signatures array",
            "FormatError",
            document=envelope(b64url_encode(payload), []),
        ),
        "signatures-at-cap": vector(
            f"MAX_SIGNATURES ({MAX_SIGNATURES}) entries: the online key and "
            f"{MAX_SIGNATURES - 1} unknown keys",
            "valid",
            document=merge(*crowd[:MAX_SIGNATURES]),
        ),
        "too-many-signatures": vector(
            f"MAX_SIGNATURES + 1 ({MAX_SIGNATURES + 1}) entries, each by a distinct key, the "
            "online key first",
            "FormatError",
            document=merge(*crowd),
        ),
    }


def _format_cases() -> dict[str, dict[str, Any]]:
    padded = PINSET_RAW + b" " * (MAX_PINSET_BYTES + 1 - len(PINSET_RAW))
    loose_payload = json.dumps(pinset().to_json(), indent=1).encode()
    duplicate_member = pinset().to_payload().replace(b'"version":7', b'"version":1,"version":7')
    unsorted_payload = json.dumps(pinset().to_json(), separators=(",", ":")).encode()
    spaced_payload = json.dumps(pinset().to_json(), sort_keys=True).encode()
    unsigned_segment = b64url_encode(pinset(version=8).to_payload()).encode()
    return {
        "too-large": vector(
            f"a valid document padded with spaces to MAX_PINSET_BYTES + 1 ({MAX_PINSET_BYTES + 1})"
            " bytes: refused before parsing",
            "SizeError",
            document=padded,
        ),
        "malformed-json": vector(
            "the document is cut short",
            "FormatError",
            document=PINSET_RAW[:-10],
        ),
        "non-canonical-payload": vector(
            "a signed payload that is not RFC 8785 canonical JSON",
            "FormatError",
            document=sign_envelope(loose_payload, [ONLINE]),
        ),
        "duplicate-json-member": vector(
            'a signed payload with the member "version" twice',
            "FormatError",
            document=sign_envelope(duplicate_member, [ONLINE]),
        ),
        "type-keyring-as-pinset": vector(
            "a keyring given where a pin set is expected",
            "FormatError",
            document=KEYRING_RAW,
        ),
        "type-pinset-as-keyring": vector(
            "a pin set given as the trusted keyring",
            "FormatError",
            trusted=PINSET_RAW,
        ),
        "at-size-cap": vector(
            f"a valid document padded with spaces to exactly MAX_PINSET_BYTES ({MAX_PINSET_BYTES})"
            " bytes",
            "valid",
            document=padded_to(PINSET_RAW, MAX_PINSET_BYTES),
        ),
        "non-canonical-member-order": vector(
            "a signed payload without whitespace whose members are not in RFC 8785 order",
            "FormatError",
            document=sign_envelope(unsorted_payload, [ONLINE]),
        ),
        "non-canonical-whitespace": vector(
            "a signed payload in RFC 8785 member order with a space after each separator",
            "FormatError",
            document=sign_envelope(spaced_payload, [ONLINE]),
        ),
        "non-canonical-escape": vector(
            'a signed payload spelling the channel\'s "/" as the JSON escape "\\/" (same string)',
            "FormatError",
            document=pinset_text_changed(b"app/prod", b"app\\/prod"),
        ),
        "payload-nan": vector(
            "a signed payload with refresh_after NaN",
            "FormatError",
            document=pinset_text_changed(b'"refresh_after":3600', b'"refresh_after":NaN'),
        ),
        "payload-utf8-bom": vector(
            "a signed payload that starts with a UTF-8 byte order mark",
            "FormatError",
            document=sign_envelope(b"\xef\xbb\xbf" + pinset().to_payload(), [ONLINE]),
        ),
        "envelope-utf8-bom": vector(
            "a valid document preceded by a UTF-8 byte order mark",
            "FormatError",
            document=b"\xef\xbb\xbf" + PINSET_RAW,
        ),
        "duplicate-envelope-member": vector(
            'the envelope has "payload" twice: an unsigned version 8, then the signed version 7',
            "FormatError",
            document=b'{"payload":"' + unsigned_segment + b'",' + PINSET_RAW[1:],
        ),
        "duplicate-header-member": vector(
            'a protected header with "kid" twice ("stranger", then "online-1"), signed by the '
            "online key",
            "FormatError",
            document=forged(
                pinset().to_payload(),
                b'{"alg":"EdDSA","kid":"stranger","kid":"online-1"}',
                raw_signer(ONLINE),
            ),
        ),
    }


def _time_cases() -> dict[str, dict[str, Any]]:
    expired_ring = sign_keyring(keyring(1, ROOTS, [ONLINE], expires=NOW - timedelta(days=1)), ROOTS)
    return {
        "valid-eddsa": vector("EdDSA keyring (root 2 of 3, online 1 of 1) and pin set", "valid"),
        "valid-es256": vector(
            "ES256 (P-256) keyring and pin set",
            "valid",
            trusted=ES_KEYRING_RAW,
            document=sign_pinset(pinset(), [ES_ONLINE]),
        ),
        "rollback": vector(
            "version 7 below the stored floor 8",
            "RollbackError",
            min_version=8,
        ),
        "floor-equal": vector(
            "version 7 at the stored floor 7: the same document again is accepted",
            "valid",
            min_version=7,
        ),
        "expired": vector(
            "the pin set expired a day ago",
            "ExpiredError",
            now=PINSET_EXPIRES + timedelta(days=1),
        ),
        "expired-at-instant": vector(
            "now equals expires: expired",
            "ExpiredError",
            now=PINSET_EXPIRES,
        ),
        "expired-keyring": vector(
            "the trusted keyring expired yesterday; the pin set itself is current",
            "ExpiredError",
            trusted=expired_ring,
        ),
        "expired-keyring-at-instant": vector(
            "now equals the trusted keyring's expires: expired",
            "ExpiredError",
            trusted=sign_keyring(keyring(1, ROOTS, [ONLINE], expires=NOW), ROOTS),
        ),
    }


def _rotation_cases() -> dict[str, dict[str, Any]]:
    v2 = keyring(2, NEW_ROOTS, [NEW_ONLINE])
    v2_both = sign_keyring(v2, [*ROOTS[:2], *NEW_ROOTS[:2]])
    v3_from_v1 = sign_keyring(keyring(3, ROOTS, [NEW_ONLINE]), ROOTS)
    v3_new_roots = keyring(3, NEW_ROOTS, [NEW_ONLINE])
    online_v2 = sign_keyring(keyring(2, ROOTS, [NEW_ONLINE]), ROOTS)
    chain = [online_v2]
    for version in (3, 4):
        chain.append(sign_keyring(keyring(version, ROOTS, [NEW_ONLINE]), ROOTS))
    expired_v2 = sign_keyring(
        keyring(2, ROOTS, [NEW_ONLINE], expires=NOW - timedelta(days=30)), ROOTS
    )
    new_pinset = sign_pinset(pinset(keyring_version=2), [NEW_ONLINE])
    return {
        "rotation-root-valid": vector(
            "keyring v2 replaces every root key, signed by 2 of the old and 2 of the new roots",
            "valid",
            keyrings=[v2_both],
            document=new_pinset,
        ),
        "rotation-online-valid": vector(
            "keyring v2 replaces the online key; the pin set is signed by the new one",
            "valid",
            keyrings=[online_v2],
            document=new_pinset,
        ),
        "rotation-old-online-key": vector(
            "after v2 replaced the online key, a pin set signed by the old online key",
            "SignatureError",
            keyrings=[online_v2],
            document=sign_pinset(pinset(keyring_version=2), [ONLINE]),
        ),
        "rotation-skipped-version": vector(
            "the keyring after v1 is v3",
            "KeyringError",
            keyrings=[v3_from_v1],
            document=sign_pinset(pinset(keyring_version=3), [NEW_ONLINE]),
        ),
        "rotation-replayed-keyring": vector(
            "asked for v2, the server returns v1 again",
            "RollbackError",
            keyrings=[KEYRING_RAW],
            document=new_pinset,
        ),
        "rotation-only-new-roots": vector(
            "keyring v2 signed only by its own (new) root threshold",
            "SignatureError",
            keyrings=[sign_keyring(v2, NEW_ROOTS[:2])],
            document=new_pinset,
        ),
        "rotation-only-old-roots": vector(
            "keyring v2 signed only by the old root threshold",
            "SignatureError",
            keyrings=[sign_keyring(v2, ROOTS[:2])],
            document=new_pinset,
        ),
        "rotation-too-many-steps": vector(
            "the pin set needs keyring v4: 3 steps from v1, with max_steps 2",
            "KeyringError",
            keyrings=chain,
            max_steps=2,
            document=sign_pinset(pinset(keyring_version=4), [NEW_ONLINE]),
        ),
        "rotation-expired-intermediate": vector(
            "an expired intermediate keyring v2 on the way to a current v3 is fine",
            "valid",
            keyrings=[expired_v2, chain[1]],
            document=sign_pinset(pinset(keyring_version=3), [NEW_ONLINE]),
        ),
        "pinset-needs-newer-keyring": vector(
            "the pin set names keyring v2 and no keyring walk is offered",
            "KeyringError",
            document=new_pinset,
        ),
        "rotation-expired-final": vector(
            "the walk ends at keyring v2, which has expired",
            "ExpiredError",
            keyrings=[expired_v2],
            document=new_pinset,
        ),
        "rotation-from-expired-anchor": vector(
            "the trusted (shipped) keyring v1 has expired; it still walks to a current v2",
            "valid",
            trusted=sign_keyring(
                keyring(1, ROOTS, [ONLINE], expires=NOW - timedelta(days=1)), ROOTS
            ),
            keyrings=[online_v2],
            document=new_pinset,
        ),
        "rotation-keyring-too-large": vector(
            f"keyring v2 padded with spaces to MAX_KEYRING_BYTES + 1 ({MAX_KEYRING_BYTES + 1}) "
            "bytes",
            "SizeError",
            keyrings=[padded_to(online_v2, MAX_KEYRING_BYTES + 1)],
            document=new_pinset,
        ),
        "rotation-max-steps-exact": vector(
            "the pin set needs keyring v4: 3 steps from v1, with max_steps 3",
            "valid",
            keyrings=chain,
            max_steps=3,
            document=sign_pinset(pinset(keyring_version=4), [NEW_ONLINE]),
        ),
        "rotation-pinset-as-keyring": vector(
            "asked for keyring v2, the server returns a pin set",
            "FormatError",
            keyrings=[PINSET_RAW],
            document=new_pinset,
        ),
        "rotation-order-old-threshold-before-version": vector(
            "the keyring after v1 is v3, signed only by its own new roots: the trusted root "
            "threshold fails before the version is looked at",
            "SignatureError",
            keyrings=[sign_keyring(v3_new_roots, NEW_ROOTS[:2])],
            document=sign_pinset(pinset(keyring_version=3), [NEW_ONLINE]),
        ),
        "rotation-order-version-before-new-threshold": vector(
            "the keyring after v1 is v3 with new roots, signed only by the old roots: the "
            "version fails before the new root threshold is looked at",
            "KeyringError",
            keyrings=[sign_keyring(v3_new_roots, ROOTS[:2])],
            document=sign_pinset(pinset(keyring_version=3), [NEW_ONLINE]),
        ),
    }


def _envelope_cases() -> dict[str, dict[str, Any]]:
    """The envelope and header shapes §2 refuses; each signature verifies over what is sent."""
    payload = pinset().to_payload()
    segment = b64url_encode(payload)
    valid = _envelope(PINSET_RAW)
    first = valid["signatures"][0]
    sign = raw_signer(ONLINE)
    header = {"alg": ONLINE.algorithm, "kid": ONLINE.kid}
    padded_payload = pinset(version=17).to_payload()  # 676 bytes: base64 needs "=="
    # ASCII text needs a "~", ">" or "?" at the right offset to make "+" or "/" in base64.
    tilde_payload = pinset(report_uri="https://pins.example.com/~~~/report").to_payload()
    standard = base64.b64encode(tilde_payload).decode("ascii").rstrip("=")
    assert standard != b64url_encode(tilde_payload)
    broken = f"{segment[:76]}\n{segment[76:]}"
    protected = header_segment(header)
    return {
        "flattened-jws": vector(
            "the flattened JWS JSON serialization (payload, protected, signature at top level)",
            "FormatError",
            document=canonical_json({"payload": valid["payload"], **first}),
        ),
        "compact-jws": vector(
            "the JWS compact serialization protected.payload.signature",
            "FormatError",
            document=f"{first['protected']}.{valid['payload']}.{first['signature']}".encode(),
        ),
        "unprotected-header": vector(
            'a signature entry with an unprotected "header" member',
            "FormatError",
            document=envelope(segment, [{**first, "header": {"kid": ONLINE.kid}}]),
        ),
        "header-b64-false": vector(
            'RFC 7797 "b64": false, "crit": ["b64"] in the protected header (signature valid '
            "over the segments as sent)",
            "FormatError",
            document=forged(payload, {**header, "b64": False, "crit": ["b64"]}, sign),
        ),
        "header-crit": vector(
            'a "crit" extension ("exp") in the protected header',
            "FormatError",
            document=forged(payload, {**header, "crit": ["exp"], "exp": 1767225600}, sign),
        ),
        "header-jwk": vector(
            'the header carries a "jwk" (a stranger\'s key, which made the signature) and the '
            "online key's kid",
            "FormatError",
            document=forged(
                payload,
                {**header, "jwk": STRANGER.public().to_jwk()},
                raw_signer(STRANGER),
            ),
        ),
        "header-typ": vector(
            'a "typ" member in the protected header',
            "FormatError",
            document=forged(payload, {**header, "typ": "JOSE+JSON"}, sign),
        ),
        "header-kid-not-string": vector(
            "a protected header whose kid is a number",
            "FormatError",
            document=forged(payload, {**header, "kid": 1}, sign),
        ),
        "header-reencoded": vector(
            "the protected header re-encoded with its members in another order; the signature "
            "is over the original segment (the signing input is the segments as sent)",
            "SignatureError",
            document=envelope(
                segment,
                [{**first, "protected": header_segment(b'{"kid":"online-1","alg":"EdDSA"}')}],
            ),
        ),
        "padded-payload": vector(
            'the payload segment has base64 "=" padding (signature valid over it)',
            "FormatError",
            document=envelope(
                padded(padded_payload), [entry(protected, padded(padded_payload), sign)]
            ),
        ),
        "padded-protected": vector(
            'the protected header segment has base64 "=" padding (signature valid over it)',
            "FormatError",
            document=envelope(segment, [entry(padded(canonical_json(header)), segment, sign)]),
        ),
        "padded-signature": vector(
            'the signature segment has base64 "=" padding',
            "FormatError",
            document=envelope(segment, [{**first, "signature": first["signature"] + "=="}]),
        ),
        "payload-standard-base64": vector(
            'the payload segment in the standard base64 alphabet ("+", "/"), signature valid '
            "over it",
            "FormatError",
            document=envelope(standard, [entry(protected, standard, sign)]),
        ),
        "header-lone-surrogate": vector(
            "beside the valid signature, an entry whose header kid is a lone surrogate "
            "(I-JSON, RFC 7493 §2.1)",
            "FormatError",
            document=envelope(
                segment,
                [
                    first,
                    entry(
                        header_segment(b'{"alg":"EdDSA","kid":"\\ud800"}'),
                        segment,
                        raw_signer(STRANGER),
                    ),
                ],
            ),
        ),
        "signature-unused-bits": vector(
            "beside the valid signature, a stranger's signature whose last base64url character "
            "has its unused bits set (RFC 4648 §3.5)",
            "FormatError",
            document=envelope(
                segment,
                [
                    first,
                    unused_bits_set(
                        entry(
                            header_segment({"alg": STRANGER.algorithm, "kid": STRANGER.kid}),
                            segment,
                            raw_signer(STRANGER),
                        )
                    ),
                ],
            ),
        ),
        "payload-line-break": vector(
            "a line break inside the payload segment (signature valid over it): refused, not "
            "skipped",
            "FormatError",
            document=envelope(broken, [entry(protected, broken, sign)]),
        ),
    }


def _pinset_schema_cases() -> dict[str, dict[str, Any]]:
    """§3 refusals: a canonical, correctly signed payload with one member wrong."""
    cases: dict[str, tuple[str, Callable[[dict[str, Any]], object]]] = {
        "pinset-unknown-member": ("an unknown top-level member", members(comment="x")),
        "pinset-missing-member": (
            "no report_uri member (null must be written)",
            lambda payload: payload.pop("report_uri"),
        ),
        "pinset-version-zero": ("version 0", members(version=0)),
        "pinset-version-boolean": ("version true", members(version=True)),
        "pinset-keyring-version-zero": ("keyring_version 0", members(keyring_version=0)),
        "pinset-refresh-after-zero": ("refresh_after 0", members(refresh_after=0)),
        "pinset-time-offset": (
            "issued written with +00:00 instead of Z",
            members(issued="2025-01-01T00:00:00+00:00"),
        ),
        "pinset-time-fraction": (
            "expires written with fractional seconds",
            members(expires="2025-02-01T00:00:00.000Z"),
        ),
        "pinset-expires-not-after-issued": (
            "expires equal to issued",
            members(expires=format_time(ISSUED)),
        ),
        "pinset-channel-space": ("a channel with a space", members(channel="com.example app")),
        "pinset-channel-too-long": ("a channel of 257 characters", members(channel="c" * 257)),
        "duplicate-rule-pattern": (
            "two rules for api.example.com with different pins",
            lambda payload: payload["rules"].append(
                {**payload["rules"][0], "pins": [pin("other")]}
            ),
        ),
        "rule-unknown-member": ("a rule with an unknown member", first_rule(note="x")),
        "rule-missing-member": (
            "a rule without expires (null must be written)",
            lambda payload: payload["rules"][0].pop("expires"),
        ),
        "rule-mode-unknown": ('a rule with mode "off"', first_rule(mode="off")),
        "rule-enforce-without-pins": ("an enforce rule with no pins", first_rule(pins=[])),
        "rule-report-only-without-pins": (
            "a report-only rule with no pins",
            lambda payload: payload["rules"][1].update(pins=[]),
        ),
        "rule-duplicate-pins": (
            "a rule with the same pin twice",
            first_rule(pins=[pin("api live"), pin("api live")]),
        ),
        "rule-pin-not-sha256": (
            "a sha1 pin",
            first_rule(pins=["sha1/" + base64.b64encode(bytes(20)).decode()]),
        ),
        "rule-pin-not-canonical": (
            'a pin spelled as bare base64, without "sha256/"',
            first_rule(pins=[pin("api live").removeprefix("sha256/"), pin("api backup")]),
        ),
        "rule-pattern-not-normal": (
            "a pattern with upper-case letters",
            first_rule(pattern="API.example.com"),
        ),
        "rule-pattern-u-label": (
            "a pattern with an IDNA U-label (bücher) instead of its A-label (xn--bcher-kva)",
            first_rule(pattern="bücher.example.com"),
        ),
        "rule-expires-not-utc-time": (
            "a rule whose expires is a date, not a UTC time",
            first_rule(expires="2025-03-01"),
        ),
    }
    built = {
        name: vector(
            f"a signed pin set with {text}", "FormatError", document=pinset_changed(change)
        )
        for name, (text, change) in cases.items()
    }
    number_spellings = {
        "pinset-version-float": ("version written 7.0", b'"version":7.0'),
        "pinset-version-too-large": (
            "version 2^53 (beyond I-JSON's 2^53 - 1)",
            b'"version":9007199254740992',
        ),
    }
    for name, (text, spelling) in number_spellings.items():
        built[name] = vector(
            f"a signed pin set with {text}",
            "FormatError",
            document=pinset_text_changed(b'"version":7', spelling),
        )
    return built


def _keyring_cases() -> dict[str, dict[str, Any]]:
    """§4 and §5.4 refusals of the trusted keyring (``load_keyring``)."""
    online_jwk = ONLINE.public().to_jwk()
    es_jwk = ES_ONLINE.public().to_jwk()
    many = [ONLINE, *(key(f"online-extra-{n}") for n in range(1, MAX_ROLE_KEYS + 1))]
    alias = key(ONLINE.kid, kid="online-1-alias")
    cases: dict[str, tuple[str, Callable[[dict[str, Any]], object]]] = {
        "keyring-unknown-member": ("an unknown top-level member", members(comment="x")),
        "keyring-role-empty": ("no online keys", online_role(keys={})),
        "keyring-role-too-many-keys": (
            f"MAX_ROLE_KEYS + 1 ({MAX_ROLE_KEYS + 1}) online keys",
            online_role(keys=jwks(*many)),
        ),
        "keyring-threshold-zero": ("online threshold 0", online_role(threshold=0)),
        "keyring-threshold-above-keys": (
            "root threshold 4 with 3 root keys",
            lambda payload: payload["root"].update(threshold=4),
        ),
        "keyring-threshold-above-distinct-keys": (
            "online threshold 2 over one public key listed under two kids",
            online_role(keys=jwks(ONLINE, alias), threshold=2),
        ),
        "keyring-kid-in-both-roles": (
            'the kid "root-1" in both roles (naming another key in the online role)',
            online_role(keys={**jwks(ONLINE), ROOTS[0].kid: NEW_ONLINE.public().to_jwk()}),
        ),
        "keyring-key-in-both-roles": (
            "root-1's public key also in the online role under another kid",
            online_role(keys={**jwks(ONLINE), "root-1-online": ROOTS[0].public().to_jwk()}),
        ),
        "keyring-kid-invalid": (
            'an online kid with a "/"',
            online_role(keys={"online/1": online_jwk}),
        ),
        "keyring-jwk-private-member": (
            'an online JWK with a private member "d"',
            online_role(keys={ONLINE.kid: {**online_jwk, "d": online_jwk["x"]}}),
        ),
        "keyring-jwk-without-alg": (
            'an online JWK without "alg"',
            online_role(keys={ONLINE.kid: {k: v for k, v in online_jwk.items() if k != "alg"}}),
        ),
        "keyring-jwk-alg-mismatch": (
            'an Ed25519 (OKP) online JWK with "alg": "ES256"',
            online_role(keys={ONLINE.kid: {**online_jwk, "alg": "ES256"}}),
        ),
        "keyring-jwk-off-curve": (
            "a P-256 online JWK whose point is not on the curve (y replaced by x)",
            online_role(keys={ES_ONLINE.kid: {**es_jwk, "y": es_jwk["x"]}}),
        ),
    }
    built = {
        name: vector(
            f"the trusted keyring has {text}", "FormatError", trusted=keyring_changed(change)
        )
        for name, (text, change) in cases.items()
    }
    return {
        **built,
        "keyring-role-at-key-cap": vector(
            f"the trusted keyring has MAX_ROLE_KEYS ({MAX_ROLE_KEYS}) online keys",
            "valid",
            trusted=keyring_changed(online_role(keys=jwks(*many[:MAX_ROLE_KEYS]))),
        ),
        "keyring-too-large": vector(
            f"the trusted keyring padded with spaces to MAX_KEYRING_BYTES + 1 "
            f"({MAX_KEYRING_BYTES + 1}) bytes",
            "SizeError",
            trusted=padded_to(KEYRING_RAW, MAX_KEYRING_BYTES + 1),
        ),
        "keyring-at-size-cap": vector(
            f"the trusted keyring padded with spaces to exactly MAX_KEYRING_BYTES "
            f"({MAX_KEYRING_BYTES}) bytes",
            "valid",
            trusted=padded_to(KEYRING_RAW, MAX_KEYRING_BYTES),
        ),
        "keyring-below-own-threshold": vector(
            "the trusted keyring (root threshold 2) is signed by one root key",
            "SignatureError",
            trusted=sign_keyring(KEYRING_V1, ROOTS[:1]),
        ),
    }


def _order_cases() -> dict[str, dict[str, Any]]:
    """Two faults in one document: the error of the earlier step of §5 is the one reported."""
    expired_ring = sign_keyring(keyring(1, ROOTS, [ONLINE], expires=NOW - timedelta(days=1)), ROOTS)
    payload = pinset().to_payload()
    return {
        "order-size-before-format": vector(
            f"MAX_PINSET_BYTES + 1 ({MAX_PINSET_BYTES + 1}) bytes that are not JSON",
            "SizeError",
            document=b"{" * (MAX_PINSET_BYTES + 1),
        ),
        "order-signature-entries-in-array-order": vector(
            'entry 1 has alg "none", entry 2 a "typ" header member: entry 1 fails first',
            "SignatureError",
            document=envelope(
                b64url_encode(payload),
                [
                    entry(
                        header_segment({"alg": "none", "kid": ONLINE.kid}),
                        b64url_encode(payload),
                        lambda _: b"",
                    ),
                    entry(
                        header_segment({"alg": "EdDSA", "kid": ONLINE.kid, "typ": "JOSE"}),
                        b64url_encode(payload),
                        raw_signer(ONLINE),
                    ),
                ],
            ),
        ),
        "order-envelope-before-payload": vector(
            'alg "none" around a keyring payload: the envelope (§5.1.2) fails before the type '
            "(§5.1.3)",
            "SignatureError",
            document=forged(KEYRING_V1.to_payload(), {"alg": "none", "kid": "x"}, lambda _: b""),
        ),
        "order-payload-before-keyring-version": vector(
            "an unknown member in a pin set that also names keyring v2",
            "FormatError",
            document=signed_json(
                pinset(keyring_version=2).to_json(), members(comment="x"), [ONLINE]
            ),
        ),
        "order-keyring-version-before-expiry": vector(
            "the pin set names keyring v2 and the trusted v1 has expired",
            "KeyringError",
            trusted=expired_ring,
            document=sign_pinset(pinset(keyring_version=2), [NEW_ONLINE]),
        ),
        "order-keyring-expiry-before-signature": vector(
            "the trusted keyring has expired and a stranger signed the pin set",
            "ExpiredError",
            trusted=expired_ring,
            document=sign_pinset(pinset(), [STRANGER]),
        ),
        "order-signature-before-rollback": vector(
            "a stranger signed the pin set and its version 7 is below the floor 8",
            "SignatureError",
            document=sign_pinset(pinset(), [STRANGER]),
            min_version=8,
        ),
        "order-rollback-before-expiry": vector(
            "version 7 below the floor 8, and the pin set has expired",
            "RollbackError",
            min_version=8,
            now=PINSET_EXPIRES,
        ),
    }


def _host_pattern_cases() -> dict[str, dict[str, Any]]:
    """§3.1 (the grammar) and §3.2 (what a verifier must not re-judge), one edge each."""
    name_253 = ("a" * 62 + ".") * 3 + "a" * 56 + ".example"
    assert len(name_253) == 253
    surrogate_label = "xn--" + "\ud800".encode("punycode").decode("ascii")
    refused = {
        "rule-pattern-name-254": ("a 254-character name", "b" + name_253),
        "rule-pattern-label-64": ("a 64-character label", "a" * 64 + ".example.com"),
        "rule-pattern-trailing-dot": ("a trailing dot", "api.example.com."),
        "rule-pattern-trailing-newline": ('a trailing "\\n"', "api.example.com\n"),
        "rule-pattern-hyphen-last": ("a label ending in a hyphen", "api-.example.com"),
        "rule-pattern-punycode-overflow": (
            "an A-label whose Punycode overflows (RFC 3492 §6.4)",
            "xn--99999999999999a.example.com",
        ),
        "rule-pattern-punycode-incomplete": (
            "an A-label whose Punycode ends inside a number",
            "xn--0.example.com",
        ),
        "rule-pattern-punycode-surrogate": (
            "an A-label that decodes to the surrogate code point U+D800",
            f"{surrogate_label}.example.com",
        ),
        "rule-pattern-numeric-last-label": (
            "a name ending in a numeric label (read as IPv4 by URL parsers)",
            "api.example.123",
        ),
        "rule-pattern-hex-last-label": ('a name ending in "0x7f"', "api.example.0x7f"),
        "rule-pattern-ip-wildcard": ("a wildcard on an IPv4 address", "*.192.0.2.1"),
        "rule-pattern-ipv4-leading-zero": ("an IPv4 address with a leading zero", "192.0.2.01"),
        "rule-pattern-ipv6-not-compressed": (
            "an IPv6 address not in RFC 5952 form",
            "2001:db8:0:0:0:0:0:1",
        ),
        "rule-pattern-ipv6-brackets": ("an IPv6 address in brackets", "[2001:db8::1]"),
        "rule-pattern-ipv6-zone": ("an IPv6 address with a zone index", "fe80::1%eth0"),
        "rule-pattern-ipv4-mapped": (
            "an IPv4-mapped IPv6 address (written as its IPv4 address)",
            "::ffff:c000:201",
        ),
        "rule-wildcard-public-suffix": (
            "the wildcard *.com (a base of one label)",
            "*.com",
        ),
    }
    accepted = {
        "rule-pattern-underscore": ('"_" first in a label', "_api.example.com"),
        "rule-pattern-double-hyphen": (
            '"--" in the third and fourth characters',
            "ab--cd.example.com",
        ),
        "rule-pattern-name-253": ("a name of exactly 253 characters", name_253),
        "rule-pattern-wildcard-256": ('"**." before a 253-character name', "**." + name_253),
        "rule-pattern-ipv4": ("an IPv4 address", "192.0.2.1"),
        "rule-pattern-ipv6": ("an IPv6 address in RFC 5952 form", "2001:db8::1"),
        "rule-pattern-a-label-not-idna2008": (
            "an A-label that is Punycode but not IDNA 2008 (xn--a-ecp is a⒈): signer policy, "
            "not re-judged",
            "xn--a-ecp.example.com",
        ),
        "rule-wildcard-over-public-suffix-accepted": (
            "**.co.uk, a wildcard over a public suffix: signer policy, not re-judged",
            "**.co.uk",
        ),
    }
    cases = {
        name: vector(
            f"a rule whose pattern has {text}: {pattern!r}",
            "FormatError",
            document=pinset_changed(first_rule(pattern=pattern)),
        )
        for name, (text, pattern) in refused.items()
    }
    cases.update(
        {
            name: vector(
                f"a rule whose pattern has {text}: {pattern!r}",
                "valid",
                document=pinset_changed(first_rule(pattern=pattern)),
            )
            for name, (text, pattern) in accepted.items()
        }
    )
    return cases


def _report_uri_cases() -> dict[str, dict[str, Any]]:
    """§3.3, one edge each."""
    refused = {
        "pinset-report-uri-scheme": "ftp://pins.example.com/report",
        "pinset-report-uri-scheme-upper-case": "HTTPS://pins.example.com/report",
        "pinset-report-uri-host-upper-case": "https://Pins.example.com/report",
        "pinset-report-uri-userinfo": "https://user@pins.example.com/report",
        "pinset-report-uri-fragment": "https://pins.example.com/report#now",
        "pinset-report-uri-port-zero": "https://pins.example.com:0/report",
        "pinset-report-uri-port-leading-zero": "https://pins.example.com:0443/report",
        "pinset-report-uri-port-too-large": "https://pins.example.com:65536/report",
        "pinset-report-uri-port-empty": "https://pins.example.com:/report",
        "pinset-report-uri-bad-percent": "https://pins.example.com/re%zzport",
        "pinset-report-uri-space": "https://pins.example.com/re port",
        "pinset-report-uri-no-host": "https:///report",
        "pinset-report-uri-ipv6-not-normal": "https://[2001:db8:0::1]/report",
        "pinset-report-uri-trailing-newline": "https://pins.example.com/report\n",
        "pinset-report-uri-too-long": "https://pins.example.com/" + "r" * (2049 - 25),
    }
    accepted = {
        "pinset-report-uri-port-max": "https://pins.example.com:65535/report",
        "pinset-report-uri-ipv6-query": "http://[2001:db8::1]:8080/v1/reports?app=a%2Fb&x=/?",
        "pinset-report-uri-null": None,
    }
    cases = {
        name: vector(
            f"a signed pin set with the report_uri {uri!r}",
            "FormatError",
            document=pinset_changed(members(report_uri=uri)),
        )
        for name, uri in refused.items()
    }
    cases.update(
        {
            name: vector(
                f"a signed pin set with the report_uri {uri!r}",
                "valid",
                document=pinset_changed(members(report_uri=uri)),
            )
            for name, uri in accepted.items()
        }
    )
    return cases


def _time_spelling_cases() -> dict[str, dict[str, Any]]:
    """§3.4: times that are spelled right but name no instant, and one that does."""
    refused = {
        "pinset-time-calendar-invalid": ("issued on 2024-02-30", "2024-02-30T00:00:00Z"),
        "pinset-time-not-leap-year": ("issued on 2023-02-29", "2023-02-29T00:00:00Z"),
        "pinset-time-leap-second": ("issued at 23:59:60", "2024-12-31T23:59:60Z"),
        "pinset-time-hour-24": ("issued at 24:00:00", "2024-12-31T24:00:00Z"),
        "pinset-time-lower-case": ("issued with lower-case t and z", "2025-01-01t00:00:00z"),
    }
    cases = {
        name: vector(
            f"a signed pin set {text}", "FormatError", document=pinset_changed(members(issued=at))
        )
        for name, (text, at) in refused.items()
    }
    cases["rule-expires-leap-day"] = vector(
        "a rule that expires on the leap day 2028-02-29",
        "valid",
        document=pinset_changed(first_rule(expires="2028-02-29T00:00:00Z")),
    )
    return cases


def _after_alg_none(extra: bytes) -> bytes:
    """An envelope whose first entry has alg "none" and whose second entry is the JSON text
    ``extra``: the whole envelope is parsed (§5.1 step 2) before the first entry's alg is looked
    at (step 4f), so a parser that skips a §2.3 rule reports the alg instead."""
    segment = b64url_encode(pinset().to_payload())
    none = entry(header_segment({"alg": "none", "kid": ONLINE.kid}), segment, lambda _: b"")
    head = b'{"payload":"' + segment.encode() + b'","signatures":['
    return head + canonical_json(none) + b"," + extra + b"]}"


def _beside_valid(header: bytes) -> bytes:
    """The valid signature, and beside it a stranger's entry with the protected header ``header``
    (exact bytes): an entry a lax verifier would ignore (unknown kid), a strict one refuses."""
    segment = b64url_encode(pinset().to_payload())
    first = _envelope(PINSET_RAW)["signatures"][0]
    return envelope(segment, [first, entry(header_segment(header), segment, raw_signer(STRANGER))])


def _strict_json_cases() -> dict[str, dict[str, Any]]:
    """§2.3, each where only that rule can refuse the document."""
    segment = b64url_encode(pinset().to_payload())
    first = _envelope(PINSET_RAW)["signatures"][0]
    stranger_kid = STRANGER.kid.encode()
    depth_outside_extra = 2  # the envelope object and the signatures array
    too_deep = MAX_JSON_DEPTH + 1 - depth_outside_extra
    at_limit = MAX_JSON_DEPTH - depth_outside_extra
    return {
        "header-invalid-utf8": vector(
            "beside the valid signature, a stranger's header whose kid holds the byte 0xFF",
            "FormatError",
            document=_beside_valid(b'{"alg":"EdDSA","kid":"' + stranger_kid + b'\xff"}'),
        ),
        "header-encoded-surrogate": vector(
            "beside the valid signature, a stranger's header whose kid holds U+D800 encoded in "
            "three bytes (not UTF-8)",
            "FormatError",
            document=_beside_valid(b'{"alg":"EdDSA","kid":"' + stranger_kid + b'\xed\xa0\x80"}'),
        ),
        "header-utf8-bom": vector(
            "beside the valid signature, a stranger's header that starts with a UTF-8 BOM",
            "FormatError",
            document=_beside_valid(b'\xef\xbb\xbf{"alg":"EdDSA","kid":"' + stranger_kid + b'"}'),
        ),
        "header-noncharacter": vector(
            "beside the valid signature, a stranger's header whose kid holds U+FDD0",
            "FormatError",
            document=_beside_valid(
                b'{"alg":"EdDSA","kid":"' + stranger_kid + "\ufdd0".encode() + b'"}'
            ),
        ),
        "header-noncharacter-escaped": vector(
            "beside the valid signature, a stranger's header whose kid holds the escape \\uffff",
            "FormatError",
            document=_beside_valid(b'{"alg":"EdDSA","kid":"' + stranger_kid + b'\\uffff"}'),
        ),
        "entry-duplicate-member": vector(
            'a signature entry with "signature" twice: a wrong one, then the valid one',
            "FormatError",
            document=(
                b'{"payload":"'
                + segment.encode()
                + b'","signatures":[{"protected":"'
                + first["protected"].encode()
                + b'","signature":"AAAA","signature":"'
                + first["signature"].encode()
                + b'"}]}'
            ),
        ),
        "envelope-nan": vector(
            'entry 1 has alg "none"; entry 2 is NaN: the envelope\'s JSON fails first',
            "FormatError",
            document=_after_alg_none(b"NaN"),
        ),
        "envelope-integer-too-large": vector(
            'entry 1 has alg "none"; entry 2 is 9007199254740992 (2^53): the envelope\'s JSON '
            "fails first",
            "FormatError",
            document=_after_alg_none(b"9007199254740992"),
        ),
        "envelope-number-overflow": vector(
            'entry 1 has alg "none"; entry 2 is 1e400: the envelope\'s JSON fails first',
            "FormatError",
            document=_after_alg_none(b"1e400"),
        ),
        "envelope-nesting-too-deep": vector(
            f'entry 1 has alg "none"; entry 2 nests arrays to depth {MAX_JSON_DEPTH + 1}: the '
            "envelope's JSON fails first",
            "FormatError",
            document=_after_alg_none(b"[" * too_deep + b"]" * too_deep),
        ),
        "envelope-nesting-at-limit": vector(
            f'entry 1 has alg "none"; entry 2 nests arrays to depth {MAX_JSON_DEPTH} exactly: '
            "the JSON is fine and entry 1's alg fails",
            "SignatureError",
            document=_after_alg_none(b"[" * at_limit + b"]" * at_limit),
        ),
        "payload-invalid-utf8": vector(
            "a signed payload whose channel holds the byte 0xFF",
            "FormatError",
            document=pinset_text_changed(b"app/prod", b"app/prod\xff"),
        ),
        "pinset-channel-trailing-newline": vector(
            'a signed pin set whose channel ends in "\\n"',
            "FormatError",
            document=pinset_changed(members(channel="com.example.app/prod\n")),
        ),
        "rule-pin-unused-bits": vector(
            "a pin whose last base64 data character has its unused bits set (same 32 bytes to a "
            "lax decoder)",
            "FormatError",
            document=pinset_changed(first_rule(pins=[_unused_bits_pin(pin("api live"))])),
        ),
    }


def _unused_bits_pin(canonical: str) -> str:
    """``sha256/<base64>=`` with the unused low bits of the last data character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = canonical.removesuffix("=")
    last = alphabet[alphabet.index(body[-1]) | 1]
    assert last != body[-1], "pick a pin whose last data character is even"
    return body[:-1] + last + "="


def _ed25519_point(encoded: bytes) -> tuple[int, int, int, int]:
    number = int.from_bytes(encoded, "little")
    y = number & ((1 << 255) - 1)
    x = _decode_x(y, number >> 255)
    assert x is not None
    return (x, y, 1, x * y % _ED25519_P)


def _ed25519_encoding(point: tuple[int, int, int, int]) -> bytes:
    inverse = pow(point[2], _ED25519_P - 2, _ED25519_P)
    x, y = point[0] * inverse % _ED25519_P, point[1] * inverse % _ED25519_P
    return (y | (x & 1) << 255).to_bytes(32, "little")


_ORDER_8_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")


def _p256_unreduced_jwk() -> dict[str, str]:
    """A P-256 point with a small x, its x written as x + p (still 32 bytes, same point)."""
    prime = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    x = next(x for x in range(1, 100) if _is_square(x**3 - 3 * x + b, prime))
    y = pow((x**3 - 3 * x + b) % prime, (prime + 1) // 4, prime)
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode((x + prime).to_bytes(32, "big")),
        "y": b64url_encode(y.to_bytes(32, "big")),
        "alg": "ES256",
    }


def _is_square(value: int, prime: int) -> bool:
    return pow(value % prime, (prime - 1) // 2, prime) == 1


def _key_encoding_cases() -> dict[str, dict[str, Any]]:
    """§4.1: an extra online key, beside the one that signed, with one encoding fault each; a
    verifier that skips the check accepts the document."""
    online_x = base64.urlsafe_b64decode(ONLINE.public().to_jwk()["x"] + "=")
    es_jwk = ES_ONLINE.public().to_jwk()
    es_x = base64.urlsafe_b64decode(es_jwk["x"] + "=")
    mixed = _ed25519_encoding(_add(_ed25519_point(online_x), _ed25519_point(_ORDER_8_POINT)))
    non_canonical = (3 + _ED25519_P).to_bytes(32, "little")

    def ed25519(raw: bytes) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw), "alg": "EdDSA"}

    extra = {
        "keyring-jwk-ed25519-x-short": ("an Ed25519 x of 31 bytes", ed25519(online_x[:31])),
        "keyring-jwk-p256-x-long": (
            "a P-256 x of 33 bytes (a leading zero byte)",
            {**es_jwk, "x": b64url_encode(b"\0" + es_x)},
        ),
        "keyring-jwk-ed25519-neutral": (
            "the Ed25519 neutral element (0, 1) as a key",
            ed25519(b"\x01" + bytes(31)),
        ),
        "keyring-jwk-ed25519-small-order": (
            "an Ed25519 point of order 8 as a key",
            ed25519(_ORDER_8_POINT),
        ),
        "keyring-jwk-ed25519-mixed-order": (
            "the online key plus a point of order 8 (mixed order) as a key",
            ed25519(mixed),
        ),
        "keyring-jwk-ed25519-non-canonical": (
            "an Ed25519 key whose y is written as y + p",
            ed25519(non_canonical),
        ),
        "keyring-jwk-p256-unreduced": (
            "a P-256 key whose x is written as x + p (the same point)",
            _p256_unreduced_jwk(),
        ),
    }
    cases = {
        name: vector(
            f"the trusted keyring names, beside the online key that signed, {text}",
            "FormatError",
            trusted=keyring_changed(online_role(keys={**jwks(ONLINE), "extra": jwk})),
        )
        for name, (text, jwk) in extra.items()
    }
    proto = key(ONLINE.kid, kid="__proto__")
    cases["keyring-kid-proto"] = vector(
        'the online key\'s kid is "__proto__" (a valid kid; a JavaScript object would take it '
        "for its prototype)",
        "valid",
        trusted=sign_keyring(keyring(1, ROOTS, [proto]), ROOTS),
        document=sign_pinset(pinset(), [proto]),
    )
    cases["unknown-kid-constructor"] = vector(
        'signed only by a stranger under the kid "constructor", which the keyring does not name '
        "(a JavaScript object lookup finds Object.prototype.constructor)",
        "SignatureError",
        document=sign_pinset(pinset(), [key(STRANGER.kid, kid="constructor")]),
    )
    cases["keyring-role-unknown-member"] = vector(
        'the trusted keyring\'s online role has a member "comment" beside threshold and keys',
        "FormatError",
        trusted=keyring_changed(online_role(comment="x")),
    )
    cases["keyring-kid-trailing-newline"] = vector(
        'the trusted keyring names its online key "online-1\\n"',
        "FormatError",
        trusted=keyring_changed(online_role(keys={"online-1\n": ONLINE.public().to_jwk()})),
    )
    return cases


def _one_pass_order_cases() -> dict[str, dict[str, Any]]:
    """§5.1 steps 3-5: where the payload's checks fall beside each entry's, one vector each."""
    payload = pinset().to_payload()
    segment = b64url_encode(payload)
    none_header = header_segment({"alg": "none", "kid": ONLINE.kid})
    padded_payload = pinset(version=17).to_payload()
    not_json = b"not JSON, never parsed before the entries"
    return {
        "order-payload-base64-before-entries": vector(
            'the payload segment has "=" padding and the only entry has alg "none": the payload '
            "segment is decoded (step 3) before any entry (step 4)",
            "FormatError",
            document=envelope(
                padded(padded_payload), [entry(none_header, padded(padded_payload), lambda _: b"")]
            ),
        ),
        "order-alg-before-payload-json": vector(
            'the payload is not JSON and the only entry has alg "none": every entry (step 4) '
            "comes before the payload's JSON (step 5)",
            "SignatureError",
            document=forged(not_json, {"alg": "none", "kid": ONLINE.kid}, lambda _: b""),
        ),
        "order-one-pass-format-first": vector(
            'entry 1 has a "typ" header member, entry 2 alg "none": one pass, entry 1 fails '
            "first (a verifier checking every alg before any structure says SignatureError)",
            "FormatError",
            document=envelope(
                segment,
                [
                    entry(
                        header_segment({"alg": "EdDSA", "kid": ONLINE.kid, "typ": "JOSE"}),
                        segment,
                        raw_signer(ONLINE),
                    ),
                    entry(none_header, segment, lambda _: b""),
                ],
            ),
        ),
        "order-signature-segment-before-alg": vector(
            'one entry with alg "none" and a padded signature segment: within an entry the '
            "signature segment (step 4b) comes before the alg (step 4f)",
            "FormatError",
            document=envelope(segment, [{"protected": none_header, "signature": "AAAA=="}]),
        ),
    }


def _walk_expiry_cases() -> dict[str, dict[str, Any]]:
    """§5.4: a walk judges no expiry; the keyring it ends at is judged in §5.3 step 10."""
    expired_v2 = sign_keyring(
        keyring(2, ROOTS, [NEW_ONLINE], expires=NOW - timedelta(days=30)), ROOTS
    )
    malformed = signed_json(pinset(keyring_version=2).to_json(), members(comment="x"), [NEW_ONLINE])
    return {
        "rotation-expired-final-after-payload": vector(
            "the walk ends at keyring v2, which has expired, and the pin set has an unknown "
            "member: the payload (§5.1) is judged before the keyring's expiry (§5.3 step 10)",
            "FormatError",
            keyrings=[expired_v2],
            document=malformed,
        ),
    }


# The requirement ids (docs/spec.md, "[M-n]") each vector shows, written into its "must" member.
# A verifier that skips M-n fails at least one vector listing it; test_document_spec.py checks
# that every id of the spec is here and every id here is in the spec.
_SHOWS: dict[str, tuple[str, ...]] = {
    "M-1": ("flattened-jws", "compact-jws", "malformed-json"),
    "M-2": ("no-signatures", "too-many-signatures", "signatures-at-cap"),
    "M-3": ("unprotected-header",),
    "M-4": ("header-b64-false", "header-crit", "header-jwk", "header-typ", "header-kid-not-string"),
    "M-5": ("alg-none", "alg-hs256", "alg-ed25519-name"),
    "M-6": ("es256-der-signature", "valid-es256"),
    "M-7": ("header-reencoded", "tampered-payload"),
    "M-8": (
        "non-canonical-payload",
        "non-canonical-member-order",
        "non-canonical-whitespace",
        "non-canonical-escape",
        "pinset-version-float",
    ),
    "M-9": (
        "padded-payload",
        "padded-protected",
        "padded-signature",
        "payload-standard-base64",
        "payload-line-break",
    ),
    "M-10": ("signature-unused-bits",),
    "M-11": ("header-invalid-utf8", "header-encoded-surrogate", "payload-invalid-utf8"),
    "M-12": ("envelope-utf8-bom", "payload-utf8-bom", "header-utf8-bom"),
    "M-13": (
        "duplicate-json-member",
        "duplicate-envelope-member",
        "duplicate-header-member",
        "entry-duplicate-member",
    ),
    "M-14": ("payload-nan", "envelope-nan"),
    "M-15": ("pinset-version-too-large", "envelope-integer-too-large", "envelope-number-overflow"),
    "M-16": ("header-lone-surrogate",),
    "M-17": ("header-noncharacter", "header-noncharacter-escaped"),
    "M-18": ("envelope-nesting-too-deep", "envelope-nesting-at-limit"),
    "M-19": ("pinset-unknown-member", "pinset-missing-member"),
    "M-20": (
        "type-keyring-as-pinset",
        "pinset-version-zero",
        "pinset-version-boolean",
        "pinset-version-too-large",
        "pinset-keyring-version-zero",
        "pinset-refresh-after-zero",
        "pinset-expires-not-after-issued",
        "pinset-channel-space",
        "pinset-channel-too-long",
        "pinset-channel-trailing-newline",
    ),
    "M-21": ("duplicate-rule-pattern",),
    "M-22": ("rule-unknown-member", "rule-missing-member"),
    "M-23": (
        "rule-pattern-not-normal",
        "rule-pattern-u-label",
        "rule-wildcard-public-suffix",
        "rule-pattern-name-254",
        "rule-pattern-label-64",
        "rule-pattern-trailing-dot",
        "rule-pattern-trailing-newline",
        "rule-pattern-hyphen-last",
        "rule-pattern-punycode-overflow",
        "rule-pattern-punycode-incomplete",
        "rule-pattern-punycode-surrogate",
        "rule-pattern-numeric-last-label",
        "rule-pattern-hex-last-label",
        "rule-pattern-ip-wildcard",
        "rule-pattern-ipv4-leading-zero",
        "rule-pattern-ipv6-not-compressed",
        "rule-pattern-ipv6-brackets",
        "rule-pattern-ipv6-zone",
        "rule-pattern-ipv4-mapped",
        "rule-pattern-underscore",
        "rule-pattern-double-hyphen",
        "rule-pattern-name-253",
        "rule-pattern-wildcard-256",
        "rule-pattern-ipv4",
        "rule-pattern-ipv6",
    ),
    "M-24": ("rule-pin-not-canonical", "rule-pin-not-sha256", "rule-pin-unused-bits"),
    "M-25": ("rule-duplicate-pins",),
    "M-26": ("rule-mode-unknown",),
    "M-27": ("rule-enforce-without-pins", "rule-report-only-without-pins", "valid-eddsa"),
    "M-28": ("rule-expires-not-utc-time", "rule-expires-leap-day"),
    "M-29": ("rule-pattern-a-label-not-idna2008", "rule-wildcard-over-public-suffix-accepted"),
    "M-30": (
        "pinset-report-uri-scheme",
        "pinset-report-uri-scheme-upper-case",
        "pinset-report-uri-host-upper-case",
        "pinset-report-uri-userinfo",
        "pinset-report-uri-fragment",
        "pinset-report-uri-port-zero",
        "pinset-report-uri-port-leading-zero",
        "pinset-report-uri-port-too-large",
        "pinset-report-uri-port-empty",
        "pinset-report-uri-bad-percent",
        "pinset-report-uri-space",
        "pinset-report-uri-no-host",
        "pinset-report-uri-ipv6-not-normal",
        "pinset-report-uri-trailing-newline",
        "pinset-report-uri-too-long",
        "pinset-report-uri-port-max",
        "pinset-report-uri-ipv6-query",
        "pinset-report-uri-null",
    ),
    "M-31": (
        "pinset-time-offset",
        "pinset-time-fraction",
        "pinset-time-calendar-invalid",
        "pinset-time-not-leap-year",
        "pinset-time-leap-second",
        "pinset-time-hour-24",
        "pinset-time-lower-case",
        "rule-expires-leap-day",
    ),
    "M-32": ("keyring-unknown-member", "type-pinset-as-keyring", "rotation-pinset-as-keyring"),
    "M-33": ("keyring-role-unknown-member",),
    "M-34": ("keyring-role-empty", "keyring-role-too-many-keys", "keyring-role-at-key-cap"),
    "M-35": (
        "keyring-threshold-zero",
        "keyring-threshold-above-keys",
        "keyring-threshold-above-distinct-keys",
    ),
    "M-36": ("keyring-kid-invalid", "keyring-kid-trailing-newline", "keyring-kid-proto"),
    "M-37": ("keyring-kid-in-both-roles",),
    "M-38": ("keyring-key-in-both-roles",),
    "M-39": ("keyring-jwk-private-member", "keyring-jwk-without-alg", "keyring-jwk-alg-mismatch"),
    "M-40": ("keyring-jwk-ed25519-x-short", "keyring-jwk-p256-x-long"),
    "M-41": (
        "keyring-jwk-ed25519-neutral",
        "keyring-jwk-ed25519-small-order",
        "keyring-jwk-ed25519-mixed-order",
        "keyring-jwk-ed25519-non-canonical",
    ),
    "M-42": ("keyring-jwk-off-curve", "keyring-jwk-p256-unreduced"),
    "M-43": (
        "order-size-before-format",
        "order-signature-entries-in-array-order",
        "order-envelope-before-payload",
        "order-payload-before-keyring-version",
        "order-keyring-version-before-expiry",
        "order-keyring-expiry-before-signature",
        "order-signature-before-rollback",
        "order-rollback-before-expiry",
        "order-payload-base64-before-entries",
        "order-alg-before-payload-json",
        "order-one-pass-format-first",
        "order-signature-segment-before-alg",
        "rotation-order-old-threshold-before-version",
        "rotation-order-version-before-new-threshold",
        "rotation-expired-final-after-payload",
        "envelope-nan",
        "envelope-nesting-at-limit",
    ),
    "M-44": (
        "too-large",
        "keyring-too-large",
        "rotation-keyring-too-large",
        "at-size-cap",
        "keyring-at-size-cap",
        "order-size-before-format",
    ),
    "M-45": (
        "header-lone-surrogate",
        "signature-unused-bits",
        "header-invalid-utf8",
        "header-encoded-surrogate",
        "header-utf8-bom",
        "header-noncharacter",
        "header-noncharacter-escaped",
    ),
    "M-46": ("unknown-key-ignored", "signatures-at-cap", "unknown-kid-constructor"),
    "M-47": (
        "alg-mismatch",
        "alg-mismatch-es256-key",
        "bad-signature-threshold-met",
        "tampered-payload",
    ),
    "M-48": ("duplicate-signature", "same-key-two-kids"),
    "M-49": (
        "valid-eddsa",
        "threshold-2-of-3-met",
        "threshold-2-of-3-not-met",
        "unknown-key",
        "root-key-signs-pinset",
        "rotation-old-online-key",
    ),
    "M-50": ("pinset-needs-newer-keyring", "order-keyring-version-before-expiry"),
    "M-51": (
        "expired-keyring",
        "expired-keyring-at-instant",
        "rotation-expired-final",
        "order-keyring-expiry-before-signature",
    ),
    "M-52": ("rollback", "floor-equal", "order-rollback-before-expiry"),
    "M-53": ("expired", "expired-at-instant"),
    "M-54": ("keyring-below-own-threshold",),
    "M-55": ("rotation-from-expired-anchor",),
    "M-56": ("rotation-only-new-roots", "rotation-only-old-roots", "rotation-root-valid"),
    "M-57": ("rotation-skipped-version", "rotation-replayed-keyring", "rotation-online-valid"),
    "M-58": ("rotation-too-many-steps", "rotation-max-steps-exact"),
    "M-59": ("rotation-expired-intermediate", "rotation-expired-final-after-payload"),
}


def requirements_of(name: str) -> list[str]:
    """The ids of ``_SHOWS`` that list the vector ``name``, in spec order."""
    return [must for must, names in _SHOWS.items() if name in names]


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every vector by file stem, each with the requirement ids it shows (``must``)."""
    cases: dict[str, dict[str, Any]] = {
        **_time_cases(),
        **_signature_cases(),
        **_format_cases(),
        **_envelope_cases(),
        **_pinset_schema_cases(),
        **_keyring_cases(),
        **_order_cases(),
        **_rotation_cases(),
        **_host_pattern_cases(),
        **_report_uri_cases(),
        **_time_spelling_cases(),
        **_strict_json_cases(),
        **_key_encoding_cases(),
        **_one_pass_order_cases(),
        **_walk_expiry_cases(),
    }
    listed = {name for names in _SHOWS.values() for name in names}
    assert listed <= set(cases), f"_SHOWS names no such vector: {sorted(listed - set(cases))}"
    for name, case in cases.items():
        case["must"] = requirements_of(name)
        assert case["must"], f"vector {name} shows no requirement: list it in _SHOWS"
    return cases


def write_vectors(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, case in sorted(build_vectors().items()):
        path = out_dir / f"{name}.json"
        path.write_text(json.dumps(case, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1] / "tests/vectors"
    for written_path in write_vectors(target):
        print(written_path)
