"""The JWS envelope: RFC 7515 §7.2.1 general JSON serialization, several signatures (spec §2).

pinwarden reads the envelope's structure strictly (exact members, unpadded base64url, a protected
header of exactly ``alg`` and ``kid``) so that it can pick the signatures made by trusted keys; the
signatures themselves are produced and checked by joserfc, with the algorithm taken from the
trusted key and joserfc's registry limited to the allow-list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import GuestProtocol
from joserfc.jws import JWSRegistry

from pinwarden.document._encoding import b64url_decode, canonical_json, load_json
from pinwarden.document._errors import FormatError, SignatureError, SizeError
from pinwarden.document._keys import ALGORITHMS, JoseKey, KeyringKey, SigningKey
from pinwarden.document._limits import MAX_KEYRING_BYTES, MAX_PINSET_BYTES, MAX_SIGNATURES

__all__ = ["Envelope", "count_signers", "parse_envelope", "sign_envelope"]


class _AllowListRegistry(JWSRegistry):
    """joserfc's registry limited to ``ALGORITHMS``.

    ``get_alg`` is overridden only to skip joserfc's RFC 9864 deprecation warning for ``EdDSA``:
    the spec keeps the ``EdDSA`` name, and the trusted key pins its curve to Ed25519, which is the
    ambiguity RFC 9864 removes.
    """

    def get_alg(self, name: str) -> JWSAlgModel:
        if name not in ALGORITHMS:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


_REGISTRY = _AllowListRegistry(algorithms=ALGORITHMS)
# Our own cap (checked before parsing) bounds the payload; joserfc's default is smaller.
_REGISTRY.max_payload_length = max(MAX_PINSET_BYTES, MAX_KEYRING_BYTES)


@dataclass(frozen=True)
class Signature:
    """One entry of ``signatures``: its protected header values and its segments as sent."""

    alg: str
    kid: str
    protected: str
    signature: str


@dataclass(frozen=True)
class Envelope:
    """A structurally valid envelope; nothing in it is trusted yet."""

    payload_segment: str
    payload: bytes
    signatures: tuple[Signature, ...]


def _exact_object(value: object, members: set[str], what: str) -> dict[str, object]:
    if not isinstance(value, dict) or set(value) != members:
        raise FormatError(f"{what} must be a JSON object of exactly {sorted(members)}")
    return value


def _segment(value: object, what: str) -> tuple[str, bytes]:
    """A base64url segment as sent, and its bytes."""
    decoded = b64url_decode(value, what)
    return str(value), decoded


def _signature_entry(value: object) -> Signature:
    entry = _exact_object(value, {"protected", "signature"}, "a signature entry")
    signature, _ = _segment(entry["signature"], "a signature")
    protected, header_bytes = _segment(entry["protected"], "a protected header")
    header = _exact_object(
        load_json(header_bytes, "a protected header"), {"alg", "kid"}, "a protected header"
    )
    alg, kid = header["alg"], header["kid"]
    if not isinstance(alg, str) or not isinstance(kid, str):
        raise FormatError("alg and kid must be strings")
    if alg not in ALGORITHMS:
        raise SignatureError(f"algorithm {alg!r} is not allowed (allowed: {', '.join(ALGORITHMS)})")
    return Signature(alg, kid, protected, signature)


def parse_envelope(raw: bytes, max_bytes: int, what: str) -> Envelope:
    """Size cap first (before any parsing), then the envelope's exact structure (spec §2, §5.1)."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise FormatError(f"a {what} is bytes, not {type(raw).__name__}")
    if len(raw) > max_bytes:
        raise SizeError(f"the {what} is {len(raw)} bytes; the cap is {max_bytes}")
    document = _exact_object(
        load_json(bytes(raw), f"the {what}"), {"payload", "signatures"}, f"a {what} (JWS JSON)"
    )
    signatures = document["signatures"]
    if not isinstance(signatures, list) or not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise FormatError(f"signatures must be a list of 1 to {MAX_SIGNATURES} entries")
    payload_segment, payload = _segment(document["payload"], "the payload")
    entries = tuple(_signature_entry(entry) for entry in signatures)
    return Envelope(payload_segment, payload, entries)


def count_signers(envelope: Envelope, keys: Sequence[KeyringKey]) -> int:
    """How many distinct trusted public keys signed the envelope (spec §5.2).

    A signature whose kid names no key in ``keys`` is ignored (it may be meant for another role or
    keyring version). A signature whose kid names a trusted key must use that key's algorithm and
    must verify, or the whole document is refused. Two ids of one key, or one signature sent twice,
    count once.
    """
    by_kid = {key.kid: key for key in keys}
    trusted = [entry for entry in envelope.signatures if entry.kid in by_kid]
    for entry in trusted:
        key = by_kid[entry.kid]
        if entry.alg != key.algorithm:
            raise SignatureError(
                f"signature by {entry.kid}: header alg {entry.alg} but the key is {key.algorithm}"
            )
    if not trusted:
        return 0
    general = {
        "payload": envelope.payload_segment,
        "signatures": [{"protected": e.protected, "signature": e.signature} for e in trusted],
    }
    try:
        jws.deserialize_json(
            cast(jws.GeneralJSONSerialization, general), _key_finder(by_kid), registry=_REGISTRY
        )
    except (JoseError, ValueError, TypeError) as error:
        raise SignatureError(f"a signature by a trusted key does not verify: {error}") from None
    return len({by_kid[entry.kid].fingerprint for entry in trusted})


def _key_finder(
    by_kid: Mapping[str, KeyringKey] | Mapping[str, SigningKey],
) -> Callable[[GuestProtocol], JoseKey]:
    """joserfc's key callback: the key the header's kid names (already checked to exist)."""

    def find(member: GuestProtocol) -> JoseKey:
        return by_kid[member.headers()["kid"]].jose_key()

    return find


def sign_envelope(payload: bytes, keys: Sequence[SigningKey]) -> bytes:
    """The canonical JSON envelope of ``payload`` with one signature per distinct key id."""
    by_kid = {key.kid: key for key in keys}
    if not by_kid:
        raise ValueError("signing needs at least one key")
    members: list[jws.HeaderDict] = [
        {"protected": {"alg": key.algorithm, "kid": key.kid}} for key in by_kid.values()
    ]
    general = jws.serialize_json(members, payload, _key_finder(by_kid), registry=_REGISTRY)
    return canonical_json(dict(general))
