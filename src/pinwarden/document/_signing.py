"""The signing side: a pin set or keyring, canonical payload, one signature per key (spec §2)."""

from __future__ import annotations

from collections.abc import Sequence

from pinwarden._hosts import HostPattern
from pinwarden.document._envelope import sign_envelope
from pinwarden.document._errors import FormatError, SizeError
from pinwarden.document._keys import SigningKey
from pinwarden.document._limits import MAX_KEYRING_BYTES, MAX_PINSET_BYTES
from pinwarden.document._model import Keyring, PinSet
from pinwarden.errors import InvalidHostError

__all__ = ["sign_keyring", "sign_pinset"]


def _signed(payload: bytes, keys: Sequence[SigningKey], max_bytes: int, what: str) -> bytes:
    document = sign_envelope(payload, keys)
    if len(document) > max_bytes:
        # Every client would refuse it (spec §5.1): refuse to publish it at all.
        raise SizeError(f"the signed {what} is {len(document)} bytes; the cap is {max_bytes}")
    return document


def _refuse_by_signer_policy(pinset: PinSet) -> None:
    """docs/spec.md §3.2: what a signer refuses and a verifier does not re-judge, because the
    answer depends on a snapshot (of the public-suffix list, of Unicode): a wildcard over a
    public suffix, an A-label that is not IDNA 2008."""
    for rule in pinset.rules:
        try:
            HostPattern.parse(rule.pattern)
        except InvalidHostError as error:
            raise FormatError(f"refusing to sign: {error}") from None


def sign_pinset(pinset: PinSet, keys: Sequence[SigningKey]) -> bytes:
    """The signed pin-set document: sign with the keyring's online keys (a threshold of them).

    Refuses (``FormatError``) a rule the signer's policy forbids (docs/spec.md §3.2).
    """
    _refuse_by_signer_policy(pinset)
    return _signed(pinset.to_payload(), keys, MAX_PINSET_BYTES, "pin set")


def sign_keyring(keyring: Keyring, keys: Sequence[SigningKey]) -> bytes:
    """The signed keyring: sign with a root threshold of this keyring and, for a rotation, of the
    keyring before it (``update_keyring`` checks both)."""
    return _signed(keyring.to_payload(), keys, MAX_KEYRING_BYTES, "keyring")
