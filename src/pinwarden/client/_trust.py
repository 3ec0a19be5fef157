"""What the dynamic client trusts: its keyring, its version floor, and the pin set it verified.

``TrustStore`` moves bytes from *untrusted* to *trusted* only through ``pinwarden.document``
(``peek_document`` to learn how far to walk the keyring, ``walk_keyrings``, ``verify_pinset``); it
never reads a signature itself. It also owns persistence: every keyring it follows and every pin
set it accepts goes to the cache, and the version floor rises with them. On start, the cache is
verified again from the keyring the app shipped with, exactly as if fetched.

The floor never goes below the highest version the client can prove it saw. A ``floor.json`` that
is damaged, or missing beside a cached pin set, is *lost*: the cached pin set could then be an
older one put there to roll the client back, so it is not put in force (its verified version
still raises the floor in memory: a version that was signed was seen), and the floor file is not
written again until a pin set fetched from the server is accepted. Reading a lost floor as zero
would load that older document and then write the floor lower for good.

``VerifiedPins`` is an accepted pin set with its rules built for enforcement; which of them are in
force at an instant depends only on the clock (document, keyring and per-rule expiry).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from pinwarden._hosts import HostPattern
from pinwarden.client._cache import CachedPinset, CacheError, PinCache, VersionFloor
from pinwarden.client._events import EventCallback, EventKind, PinEvent
from pinwarden.client._rules import PinRule
from pinwarden.document import (
    DocumentError,
    ExpiredError,
    FormatError,
    Keyring,
    KeyringError,
    PinSet,
    peek_document,
    verify_pinset,
    walk_keyrings,
)
from pinwarden.errors import InvalidHostError, InvalidPinError

__all__ = [
    "BOOTSTRAP_ORIGIN",
    "ChannelError",
    "TrustStore",
    "VerifiedPins",
    "channel_of",
    "claimed_channel",
    "pinset_origin",
]

BOOTSTRAP_ORIGIN = "the shipped bootstrap pins"
"""``PinRule.origin`` of the bootstrap rules a ``DynamicPins`` applies."""


def pinset_origin(version: int, channel: str) -> str:
    """``PinRule.origin`` of a rule of a verified pin set."""
    return f"pin set v{version} of channel {channel}"


class ChannelError(DocumentError):
    """A validly signed pin set of another channel: replayed across channels, never applied."""

    # Exported lazily by pinwarden.client, so pinwarden._public_names never sees it there.
    __module__ = "pinwarden.client"


@dataclass(frozen=True)
class VerifiedPins:
    """A verified pin set, its rules ready for enforcement, and until when it may be used."""

    pinset: PinSet
    raw: bytes = field(repr=False)
    etag: str | None
    rules: tuple[tuple[PinRule, datetime], ...]  # each rule and the instant it stops applying
    expires: datetime  # the pin set's or its keyring's expiry, whichever comes first

    @property
    def version(self) -> int:
        return self.pinset.version

    @property
    def origin(self) -> str:
        """The ``PinRule.origin`` of its rules: ``pin set vN of channel C``."""
        return pinset_origin(self.pinset.version, self.pinset.channel)

    def live(self, now: datetime) -> tuple[tuple[PinRule, datetime], ...]:
        """The rules in force at ``now`` (none once the document itself has expired)."""
        if now >= self.expires:
            return ()
        return tuple((rule, until) for rule, until in self.rules if now < until)


def _build(pinset: PinSet, raw: bytes, keyring: Keyring, etag: str | None) -> VerifiedPins:
    expires = min(pinset.expires, keyring.expires)
    rules = []
    for rule in pinset.rules:
        try:
            # A signed pattern is judged by the grammar only: the signer applied its policy
            # (docs/spec.md §3.2), and this client's public-suffix list may be another snapshot.
            built = PinRule.create(
                HostPattern.parse(rule.pattern, grammar_only=True),
                rule.pins,
                rule.mode,
                pinset.report_uri,
                origin=pinset_origin(pinset.version, pinset.channel),
            )
        except (InvalidPinError, InvalidHostError, ValueError) as error:
            raise FormatError(f"rule {rule.pattern}: {error}") from None
        until = expires if rule.expires is None else min(rule.expires, expires)
        rules.append((built, until))
    return VerifiedPins(pinset, raw, etag, tuple(rules), expires)


def channel_of(url: str) -> str | None:
    """The channel named by a channel URL ``…/v1/channels/{channel}``, if it has that shape."""
    path = urlsplit(url).path
    marker = "/v1/channels/"
    if marker not in path:
        return None
    return unquote(path.split(marker, 1)[1].strip("/")) or None


def claimed_channel(raw: bytes) -> str | None:
    """The channel a signed pin set names, read **without verifying** it.

    Only ``PinCache.for_channel`` uses it, to tell which channel's directory a cache of the older
    layout belongs to; the document is verified again on load like any cached one, so a false
    claim only moves a file that is then refused.
    """
    try:
        payload = json.loads(raw)["payload"]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError, KeyError, RecursionError, binascii.Error):
        return None
    channel = claims.get("channel") if isinstance(claims, dict) else None
    return channel if isinstance(channel, str) else None


KeyringFetch = Callable[[int], bytes]


class TrustStore:
    """The keyring and floor in force, the cache behind them, and the checks between."""

    def __init__(
        self,
        shipped: Keyring,
        cache: PinCache | None,
        *,
        channel: str,
        max_keyring_steps: int,
        emit: EventCallback,
    ) -> None:
        self._shipped = shipped
        self._cache = cache
        self._channel = channel
        self._max_steps = max_keyring_steps
        self._emit = emit
        self.keyring = shipped
        self.floor = VersionFloor(0, shipped.version)
        self._floor_lost = False  # floor.json cannot be trusted: do not write it from the cache

    # -- start: the cache, verified again ---------------------------------------------------

    def load(self, now: datetime) -> tuple[VerifiedPins | None, datetime | None]:
        """The cached pin set if it still verifies, and when the server last confirmed it."""
        cache = self._cache
        if cache is None:
            return None, None
        self._load_floor(cache)
        self._load_keyrings(cache)
        try:
            cached = cache.load_pinset()
        except CacheError as error:
            self._recovered("the pin set", error)
            cache.discard_pinset()
            return None, None
        if cached is None:
            return None, None
        try:
            if self.keyring.version < self.floor.keyring_version:
                raise KeyringError(
                    f"the cached keyrings stop at v{self.keyring.version}, below "
                    f"v{self.floor.keyring_version} already trusted"
                )
            pins = self._verify(cached.raw, cached.etag, now)
        except DocumentError as error:
            if isinstance(error, ExpiredError):
                self._emit(
                    PinEvent(
                        EventKind.FELL_BACK, f"the cached pin set is not used: {error}", error=error
                    )
                )
            else:
                self._recovered("the pin set", error)
            cache.discard_pinset()
            return None, None
        if self._floor_lost:
            self.floor = self.floor.raised_to(VersionFloor(pins.version, self.keyring.version))
            self._recovered(
                "the pin set",
                CacheError(
                    f"v{pins.version} verifies, but with the version floor lost it could be a "
                    "rollback; starting on the bootstrap pins"
                ),
            )
            return None, None
        self._raise_floor(VersionFloor(pins.version, self.keyring.version))
        return pins, cached.checked

    def _load_floor(self, cache: PinCache) -> None:
        try:
            stored = cache.load_floor()
        except CacheError as error:
            self._recovered("the version floor", error)
            self._floor_lost = True
            return
        if stored is None:
            # Never stored (a new cache), or deleted from beside the pin set it protects.
            self._floor_lost = cache.has_pinset()
            if self._floor_lost:
                self._recovered("the version floor", CacheError("floor.json is missing"))
            return
        self.floor = self.floor.raised_to(stored)

    def _load_keyrings(self, cache: PinCache) -> None:
        """Walk from the shipped keyring through the cached ones, offline (no fetch at start)."""
        stored = set(cache.keyring_versions())
        top = self._shipped.version
        while top + 1 in stored:
            top += 1
        if top == self._shipped.version:
            return
        try:
            self.keyring = walk_keyrings(
                self._shipped, cache.load_keyring, top, max_steps=self._max_steps
            )
        except (DocumentError, CacheError) as error:
            self._recovered("the cached keyrings", error)
            return
        self.floor = self.floor.raised_to(VersionFloor(0, self.keyring.version))

    def _recovered(self, what: str, error: Exception) -> None:
        self._emit(
            PinEvent(
                EventKind.CACHE_RECOVERED,
                f"{what} in the cache is not used ({type(error).__name__}: {error})",
                error=error,
            )
        )

    # -- a fetched document -----------------------------------------------------------------

    def verify(
        self, raw: bytes, etag: str | None, now: datetime, fetch: KeyringFetch
    ) -> VerifiedPins:
        """Verify a fetched pin set, following the keyring forward first if it names a newer one.

        Raises ``DocumentError`` (refused) or the fetch's own error (a keyring could not be
        fetched). A keyring walk that succeeds is kept even if the pin set is then refused: each
        keyring stands on its own root signatures.
        """
        hint = peek_document(raw)
        target = max(hint.keyring_version or 0, self.floor.keyring_version)
        if target > self.keyring.version:
            self._follow_keyrings(target, fetch)
        return self._verify(raw, etag, now)

    def _verify(self, raw: bytes, etag: str | None, now: datetime) -> VerifiedPins:
        pinset = verify_pinset(
            raw, keyring=self.keyring, min_version=self.floor.pinset_version, now=now
        )
        if pinset.channel != self._channel:
            raise ChannelError(
                f"pin set v{pinset.version} is for channel {pinset.channel!r}, "
                f"not {self._channel!r}"
            )
        return _build(pinset, raw, self.keyring, etag)

    def _follow_keyrings(self, target: int, fetch: KeyringFetch) -> None:
        fetched: dict[int, bytes] = {}

        def fetch_and_keep(version: int) -> bytes:
            fetched[version] = fetch(version)
            return fetched[version]

        previous = self.keyring.version
        self.keyring = walk_keyrings(
            self.keyring, fetch_and_keep, target, max_steps=self._max_steps
        )
        if self._cache is not None:
            try:
                for version in range(previous + 1, self.keyring.version + 1):
                    self._cache.store_keyring(version, fetched[version])
            except OSError as error:
                self._write_failed(error)
        self._raise_floor(VersionFloor(0, self.keyring.version))
        self._emit(
            PinEvent(
                EventKind.KEYRING_ROTATED,
                f"keyring v{previous} -> v{self.keyring.version}",
                version=self.keyring.version,
            )
        )

    # -- persistence ------------------------------------------------------------------------

    def accept(self, pins: VerifiedPins, checked: datetime) -> None:
        """Store an accepted pin set (atomically), then raise the floor to it."""
        self.remember(pins, checked)
        self._floor_lost = False  # a pin set accepted from the server: the floor is whole again
        self._raise_floor(VersionFloor(pins.version, self.keyring.version))

    def remember(self, pins: VerifiedPins, checked: datetime) -> None:
        """Store the pin set in force with its ETag and the time the server last confirmed it."""
        if self._cache is None:
            return
        try:
            self._cache.store_pinset(CachedPinset(pins.raw, pins.etag, checked))
        except OSError as error:
            self._write_failed(error)

    def _raise_floor(self, floor: VersionFloor) -> None:
        self.floor = self.floor.raised_to(floor)
        if self._cache is None or self._floor_lost:
            return
        try:
            self._cache.raise_floor(self.floor)
        except OSError as error:
            self._write_failed(error)

    def _write_failed(self, error: OSError) -> None:
        self._emit(
            PinEvent(
                EventKind.CACHE_WRITE_FAILED, f"the cache was not written: {error}", error=error
            )
        )
