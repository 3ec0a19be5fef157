"""Verification of keyrings and pin sets: the one place that decides what a client trusts.

Modelled on python-tuf's ``TrustedMetadataSet``: each function moves one piece of data from
*untrusted* to *trusted* through a fixed order of checks (docs/spec.md §5), and each check that
fails raises its own ``DocumentError`` subclass::

    bytes ─ size cap ─► envelope ─ structure ─► payload ─ type, schema, canonical form ─►
      ─ keyring fit ─► keyring expiry ─ signatures, threshold ─► version floor ─► expiry ─► trusted

A keyring moves forward one version at a time (``update_keyring``), each step signed by the root
thresholds of both the trusted version N and the new version N+1. Intermediate keyrings of a walk
may have expired (an old app walks through history); the keyring a pin set is judged with may not.
All expiry checks of one verification use one reading of the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from pinwarden.document._encoding import json_integer, load_json, utc_seconds
from pinwarden.document._envelope import Envelope, count_signers, parse_envelope
from pinwarden.document._errors import (
    ExpiredError,
    FormatError,
    KeyringError,
    RollbackError,
    SignatureError,
)
from pinwarden.document._limits import MAX_KEYRING_BYTES, MAX_KEYRING_STEPS, MAX_PINSET_BYTES
from pinwarden.document._model import KEYRING_TYPE, PINSET_TYPE, Keyring, PinSet

__all__ = [
    "DocumentHint",
    "load_keyring",
    "peek_document",
    "update_keyring",
    "verify_pinset",
    "walk_keyrings",
]


def _clock_reading(now: datetime | None) -> datetime:
    """The one instant a verification judges expiry against (spec §5.3)."""
    return (
        datetime.now(timezone.utc).replace(microsecond=0)
        if now is None
        else utc_seconds(now, "now")
    )


def _require_threshold(envelope: Envelope, keyring: Keyring, role: str, whose: str) -> None:
    keys, threshold = keyring.role(role)
    signers = count_signers(envelope, keys)
    if signers < threshold:
        raise SignatureError(
            f"signed by {signers} of the {role} keys of {whose}; the threshold is {threshold}"
        )


def _require_unexpired(expires: datetime, now: datetime, what: str) -> None:
    # Expired at the instant itself: a document is valid while now < expires.
    if now >= expires:
        raise ExpiredError(f"{what} expired at {expires:%Y-%m-%dT%H:%M:%SZ}")


def _read_keyring(raw: bytes) -> tuple[Envelope, Keyring]:
    envelope = parse_envelope(raw, MAX_KEYRING_BYTES, "keyring")
    return envelope, Keyring.from_payload(envelope.payload, bytes(raw))


def load_keyring(raw: bytes, *, now: datetime | None = None) -> Keyring:
    """The keyring an application ships with (or stored after its last walk).

    Trust in it comes from where it came from; the signatures only show it is self-consistent:
    it must carry its own root threshold. Expiry is judged only when ``now`` is given, because an
    expired shipped keyring can still be walked forward (``walk_keyrings``); ``verify_pinset``
    always judges the keyring it is given.
    """
    envelope, keyring = _read_keyring(raw)
    _require_threshold(envelope, keyring, "root", f"keyring v{keyring.version} itself")
    if now is not None:
        _require_unexpired(keyring.expires, _clock_reading(now), f"keyring v{keyring.version}")
    return keyring


def update_keyring(trusted: Keyring, raw_next: bytes, *, now: datetime | None = None) -> Keyring:
    """One rotation step N -> N+1 (spec §5.4, TUF client workflow 5.3).

    The new keyring must be signed by the root threshold of the trusted keyring (so an attacker
    without the old root keys cannot introduce new ones) and by its own root threshold (so the new
    root keys were really present). Expiry is judged only when ``now`` is given.
    """
    envelope, candidate = _read_keyring(raw_next)
    _require_threshold(envelope, trusted, "root", f"the trusted keyring v{trusted.version}")
    if candidate.version <= trusted.version:
        raise RollbackError(
            f"keyring v{candidate.version} is not newer than the trusted v{trusted.version}"
        )
    if candidate.version != trusted.version + 1:
        raise KeyringError(
            f"keyring v{candidate.version} skips versions: the next one after v{trusted.version} "
            f"is v{trusted.version + 1}"
        )
    _require_threshold(envelope, candidate, "root", f"the new keyring v{candidate.version}")
    if now is not None:
        _require_unexpired(candidate.expires, _clock_reading(now), f"keyring v{candidate.version}")
    return candidate


def walk_keyrings(
    trusted: Keyring,
    fetch: Callable[[int], bytes],
    target_version: int,
    *,
    max_steps: int = MAX_KEYRING_STEPS,
    now: datetime | None = None,
) -> Keyring:
    """Walk the trusted keyring forward to ``target_version``, one verified step at a time.

    ``fetch(version)`` returns the raw keyring of that version (cap the download at
    ``MAX_KEYRING_BYTES``); its own exceptions propagate unchanged. A walk longer than
    ``max_steps`` is refused before anything is fetched. Intermediate keyrings may be expired;
    the final one is judged when ``now`` is given. All or nothing: a failing step raises and the
    caller keeps ``trusted``. A target at or below the trusted version returns ``trusted``.
    """
    steps = target_version - trusted.version
    if steps > max_steps:
        raise KeyringError(
            f"keyring v{target_version} is {steps} versions ahead of the trusted "
            f"v{trusted.version}; the walk is limited to {max_steps}"
        )
    current = trusted
    for version in range(trusted.version + 1, target_version + 1):
        current = update_keyring(current, fetch(version))
    if now is not None:
        _require_unexpired(current.expires, _clock_reading(now), f"keyring v{current.version}")
    return current


def verify_pinset(
    raw: bytes, *, keyring: Keyring, min_version: int = 0, now: datetime | None = None
) -> PinSet:
    """Verify a pin-set document against a trusted keyring (spec §5, in this order).

    ``min_version`` is the client's stored floor: a lower version is a ``RollbackError``; the floor
    itself is accepted (the same document fetched again). Raises a ``DocumentError`` subclass for
    every refusal.
    """
    if isinstance(min_version, bool) or not isinstance(min_version, int) or min_version < 0:
        raise ValueError("min_version must be a non-negative integer")  # a caller's bug
    reading = _clock_reading(now)
    envelope = parse_envelope(raw, MAX_PINSET_BYTES, "pin set")
    pinset = PinSet.from_payload(envelope.payload)
    if pinset.keyring_version > keyring.version:
        raise KeyringError(
            f"the pin set is signed under keyring v{pinset.keyring_version}; walk the trusted "
            f"v{keyring.version} forward first"
        )
    _require_unexpired(keyring.expires, reading, f"keyring v{keyring.version}")
    _require_threshold(envelope, keyring, "online", f"keyring v{keyring.version}")
    if pinset.version < min_version:
        raise RollbackError(
            f"pin set v{pinset.version} is older than v{min_version}, already trusted"
        )
    _require_unexpired(pinset.expires, reading, f"pin set v{pinset.version}")
    return pinset


@dataclass(frozen=True)
class DocumentHint:
    """What a document *claims* about itself, before any verification. Never trust it.

    A client uses ``keyring_version`` only to decide how far to walk its keyring before
    ``verify_pinset``; the CLI uses ``type`` to pick the verification.
    """

    type: str
    version: int
    keyring_version: int | None  # pin sets only


def peek_document(raw: bytes) -> DocumentHint:
    """Read the unverified ``type``, ``version`` and ``keyring_version`` of a document."""
    payload = load_json(parse_envelope(raw, MAX_PINSET_BYTES, "document").payload, "the payload")
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind == PINSET_TYPE:
        keyring_version = json_integer(payload.get("keyring_version"), "keyring_version", 1)
        return DocumentHint(
            PINSET_TYPE, json_integer(payload.get("version"), "version", 1), keyring_version
        )
    if kind == KEYRING_TYPE:
        return DocumentHint(KEYRING_TYPE, json_integer(payload.get("version"), "version", 1), None)
    raise FormatError(f"the payload's type is not {PINSET_TYPE!r} or {KEYRING_TYPE!r}")
