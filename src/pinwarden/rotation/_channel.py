"""A channel's published pin set, verified as a client verifies it, and the rules clients hold.

``fetch_published`` reads ``{server}/v1/channels/{channel}/pinset`` through the dynamic client's own
transport (size caps, time bounds, no redirects), walks the given keyring forward through the
server's keyrings when the pin set is signed under a newer one, and verifies the pin set with
``pinwarden.document`` (docs/spec.md §5): nothing unverified is ever judged against.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pinwarden._hosts import HostPattern
from pinwarden.client import FetchError, HttpTransport, Mode, PinRule
from pinwarden.document import (
    MAX_KEYRING_BYTES,
    MAX_PINSET_BYTES,
    DocumentError,
    Keyring,
    PinSet,
    load_keyring,
    peek_document,
    verify_pinset,
    walk_keyrings,
)
from pinwarden.errors import PinwardenError

__all__ = [
    "ChannelPinsError",
    "RuleBook",
    "channel_url",
    "fetch_published",
    "rulebook_of_pinset",
    "verify_local_pinset",
]


class ChannelPinsError(PinwardenError):
    """The published pin set could not be fetched, or was refused by verification."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(message)
        self.network = network


@dataclass(frozen=True)
class RuleBook:
    """The rules one population of clients holds, and how to name that population."""

    population: str
    rules: tuple[PinRule, ...]
    # Rules a dynamic client holds beside the signed ones (its bootstrap), which lose ties.
    shipped: tuple[PinRule, ...] = ()

    def rule_for(self, host: str) -> PinRule | None:
        """The dynamic client's choice (``DynamicPins.rule_for``): the most specific pattern of
        the signed and the shipped rules; a tie goes to the signed rule."""
        best: PinRule | None = None
        for rule in (*self.rules, *self.shipped):
            if rule.pattern.matches(host) and (
                best is None or rule.pattern.specificity > best.pattern.specificity
            ):
                best = rule
        return best

    @property
    def all_rules(self) -> tuple[PinRule, ...]:
        return (*self.rules, *self.shipped)


def channel_url(server: str, channel: str) -> str:
    return f"{server.rstrip('/')}/v1/channels/{urllib.parse.quote(channel, safe='/')}"


def _load_trusted(keyring_raw: bytes) -> Keyring:
    try:
        return load_keyring(keyring_raw)
    except DocumentError as error:
        raise ChannelPinsError(
            f"the keyring does not load: {type(error).__name__}: {error}"
        ) from None


def _checked(pinset_raw: bytes, keyring: Keyring, channel: str, now: datetime) -> PinSet:
    try:
        pinset = verify_pinset(pinset_raw, keyring=keyring, now=now)
    except DocumentError as error:
        raise ChannelPinsError(f"the pin set is refused: {type(error).__name__}: {error}") from None
    if pinset.channel != channel:
        raise ChannelPinsError(
            f"the pin set is signed for channel {pinset.channel!r}, not {channel!r}"
        )
    return pinset


def fetch_published(
    server: str,
    channel: str,
    keyring_raw: bytes,
    *,
    cafile: str | None = None,
    timeout: float = 10.0,
    now: datetime | None = None,
) -> PinSet:
    """The channel's pin set as served now, verified from the keyring ``keyring_raw``."""
    reading = now or datetime.now(timezone.utc)
    url = channel_url(server, channel)
    try:
        transport = HttpTransport(cafile=cafile, timeout=timeout)
        raw = transport.get(f"{url}/pinset", etag=None, max_bytes=MAX_PINSET_BYTES).body
        trusted = _load_trusted(keyring_raw)
        hint = peek_document(raw)
        if hint.keyring_version is not None and hint.keyring_version > trusted.version:
            trusted = walk_keyrings(
                trusted,
                lambda version: (
                    transport.get(
                        f"{url}/keyring/{version}", etag=None, max_bytes=MAX_KEYRING_BYTES
                    ).body
                ),
                hint.keyring_version,
                now=reading,
            )
    except FetchError as error:
        raise ChannelPinsError(f"cannot fetch {url}/pinset: {error}", network=True) from None
    except (OSError, ValueError) as error:  # a missing --ca-file, a URL that is not http(s)
        raise ChannelPinsError(f"cannot fetch {url}/pinset: {error}", network=True) from None
    except DocumentError as error:
        raise ChannelPinsError(f"the pin set is refused: {type(error).__name__}: {error}") from None
    return _checked(raw, trusted, channel, reading)


def verify_local_pinset(
    pinset_raw: bytes, channel: str, keyring_raw: bytes, *, now: datetime | None = None
) -> PinSet:
    """A signed pin-set file (``pinwarden export``, a CDN copy), verified from the keyring."""
    trusted = _load_trusted(keyring_raw)
    return _checked(pinset_raw, trusted, channel, now or datetime.now(timezone.utc))


def rulebook_of_pinset(
    pinset: PinSet, shipped: Sequence[PinRule], now: datetime | None = None
) -> RuleBook:
    """The rules a client that verified ``pinset`` enforces at ``now`` (a rule past its own
    ``expires`` no longer applies), beside its shipped ones."""
    reading = now or datetime.now(timezone.utc)
    origin = f"pin set v{pinset.version} of channel {pinset.channel}"
    rules = tuple(
        PinRule.create(
            HostPattern.parse(rule.pattern, grammar_only=True),
            rule.pins,
            Mode.parse(rule.mode),
            origin=origin,
        )
        for rule in pinset.rules
        if rule.expires is None or reading < rule.expires
    )
    return RuleBook(f"clients holding pin set v{pinset.version}", rules, tuple(shipped))
