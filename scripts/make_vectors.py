"""Generate the signed-document test vectors in tests/vectors/ (docs/spec.md §7).

    python scripts/make_vectors.py [OUT_DIR]        # default: tests/vectors

Every key is derived from a fixed seed and every time is fixed, so EdDSA vectors come out byte for
byte the same on every run; ES256 signatures are randomised (ECDSA), so those bytes differ while
the verdicts do not. One JSON file per case::

    {"description", "keyring", "document", "now", "min_version", "expect"
     [, "keyrings": [...]] [, "max_steps": N]}

``keyring`` (the trusted keyring) and ``document`` (a pin set) are the exact bytes as strings;
``expect`` is "valid" or the name of the error the verifier must raise. How to run a vector is in
docs/spec.md §7 and tests/document/document_helpers.py (run_vector).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from pinwarden._pins import pin_from_digest
from pinwarden.document import (
    MAX_PINSET_BYTES,
    Keyring,
    PinSet,
    PinSetRule,
    SigningKey,
    sign_keyring,
    sign_pinset,
)
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


def forged(payload: bytes, header: dict[str, str], sign: Callable[[bytes], bytes]) -> bytes:
    """An envelope with a hand-made header and signature, for algorithms joserfc must refuse."""
    protected = b64url_encode(canonical_json(header))
    payload_segment = b64url_encode(payload)
    signature = b64url_encode(sign(f"{protected}.{payload_segment}".encode()))
    entry = {"protected": protected, "signature": signature}
    return canonical_json({"payload": payload_segment, "signatures": [entry]})


ROOTS = [key(f"root-{n}") for n in (1, 2, 3)]
NEW_ROOTS = [key(f"new-root-{n}") for n in (1, 2, 3)]
ONLINE = key("online-1")
NEW_ONLINE = key("online-2")
STRANGER = key("stranger")
ES_ROOTS = [key(f"es-root-{n}", "ES256") for n in (1, 2, 3)]
ES_ONLINE = key("es-online-1", "ES256")

KEYRING_V1 = keyring(1, ROOTS, [ONLINE])
KEYRING_RAW = sign_keyring(KEYRING_V1, ROOTS)
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
    }


def _format_cases() -> dict[str, dict[str, Any]]:
    padded = PINSET_RAW + b" " * (MAX_PINSET_BYTES + 1 - len(PINSET_RAW))
    loose_payload = json.dumps(pinset().to_json(), indent=1).encode()
    duplicate_member = pinset().to_payload().replace(b'"version":7', b'"version":1,"version":7')
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
    }


def _time_cases() -> dict[str, dict[str, Any]]:
    expired_ring = sign_keyring(keyring(1, ROOTS, [ONLINE], expires=NOW - timedelta(days=1)), ROOTS)
    return {
        "valid-eddsa": vector("EdDSA keyring (root 2 of 3, online 1 of 1) and pin set", "valid"),
        "valid-es256": vector(
            "ES256 (P-256) keyring and pin set",
            "valid",
            trusted=sign_keyring(keyring(1, ES_ROOTS, [ES_ONLINE]), ES_ROOTS),
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
    }


def _rotation_cases() -> dict[str, dict[str, Any]]:
    v2 = keyring(2, NEW_ROOTS, [NEW_ONLINE])
    v2_both = sign_keyring(v2, [*ROOTS[:2], *NEW_ROOTS[:2]])
    v3_from_v1 = sign_keyring(keyring(3, ROOTS, [NEW_ONLINE]), ROOTS)
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
    }


def build_vectors() -> dict[str, dict[str, Any]]:
    """Every vector by file stem."""
    return {
        **_time_cases(),
        **_signature_cases(),
        **_format_cases(),
        **_rotation_cases(),
    }


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
