"""The two documents: a channel's pin set and the keyring that says who may sign it (spec §3, §4).

Constructing a ``PinSetRule``, ``PinSet`` or ``Keyring`` validates and normalises it (host patterns
via ``HostPattern``, pins via ``parse_pins``, times to whole UTC seconds), so a value that exists is
one a verifier would accept. ``to_payload`` is its one canonical encoding (RFC 8785);
``from_payload`` reads a payload back and insists it was that encoding, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pinwarden._hosts import HostPattern
from pinwarden._pins import parse_pins
from pinwarden.document._encoding import (
    canonical_json,
    format_time,
    json_integer,
    load_json,
    parse_time,
    utc_seconds,
)
from pinwarden.document._errors import FormatError
from pinwarden.document._keys import KeyringKey
from pinwarden.document._limits import MAX_ROLE_KEYS
from pinwarden.errors import InvalidHostError, InvalidPinError

__all__ = [
    "KEYRING_TYPE",
    "MODES",
    "PINSET_TYPE",
    "Keyring",
    "PinSet",
    "PinSetRule",
    "check_report_uri",
]

PINSET_TYPE = "pinwarden.pinset"
KEYRING_TYPE = "pinwarden.keyring"
MODES = ("enforce", "report-only", "disabled")
_MAX_CHANNEL = 256
_MAX_URI = 2048
_CHANNEL = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


def _optional_time(value: object, what: str) -> datetime | None:
    return None if value is None else utc_seconds(value, what)


# docs/spec.md §3.3: RFC 3986 pchar, percent-encodings with two hex digits.
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_REPORT_URI = re.compile(
    r"https?://(?P<host>[a-z0-9._-]+|\[[0-9a-f:]+\])(?::(?P<port>[1-9][0-9]{0,4}))?"
    rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?"
)
_MAX_PORT = 65535


def check_report_uri(value: object) -> str | None:
    """``value`` if it is ``None`` or a report URI as docs/spec.md §3.3 defines it exactly:
    lower-case ``http``/``https``, a host in normal form (§3.1; an IPv6 address in brackets), an
    optional port 1-65535 without leading zeros, RFC 3986 path and query characters, no user
    info, no fragment, at most 2048 characters. ``FormatError`` otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_URI:
        raise FormatError(f"report_uri must be a string of at most {_MAX_URI} characters")
    match = _REPORT_URI.fullmatch(value)
    if match is None:
        raise FormatError(
            f"report_uri {value[:80]!r} is not http(s)://host[:port][/path][?query] in "
            "RFC 3986 characters (lower-case scheme and host, no user info, no fragment)"
        )
    host, port = match["host"], match["port"]
    if port is not None and int(port) > _MAX_PORT:
        raise FormatError(f"report_uri port {port} is above {_MAX_PORT}")
    bare = host[1:-1] if host.startswith("[") else host
    try:
        normal = HostPattern.parse(bare, grammar_only=True).base
    except InvalidHostError as error:
        raise FormatError(f"report_uri host: {error}") from None
    if normal != bare or (":" in normal) != host.startswith("["):
        raise FormatError(f"report_uri host {host!r} is not in normal form (spell it {normal!r})")
    return value


@dataclass(frozen=True)
class PinSetRule:
    """One host pattern, its pins and its mode; ``disabled`` is pinning switched off, signed."""

    pattern: str
    pins: tuple[str, ...]
    mode: str = "enforce"
    expires: datetime | None = None

    def __post_init__(self) -> None:
        try:
            # Grammar only: a verifier does not re-judge the signer's policy (docs/spec.md §3.2).
            pattern = str(HostPattern.parse(self.pattern, grammar_only=True))
            pins = parse_pins(self.pins) if isinstance(self.pins, list | tuple) else None
        except (InvalidHostError, InvalidPinError) as error:
            raise FormatError(f"rule {self.pattern!r}: {error}") from None
        if pins is None:
            raise FormatError(f"rule {pattern}: pins must be a list of strings")
        if self.mode not in MODES:
            raise FormatError(f"rule {pattern}: mode {self.mode!r} is not one of {MODES}")
        if not pins and self.mode != "disabled":
            # docs/security.md rule 7: an empty pin list fails closed; a document cannot even
            # express one.
            raise FormatError(f"rule {pattern}: an {self.mode} rule needs at least one pin")
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "expires", _optional_time(self.expires, f"rule {pattern} expires"))

    def to_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "pins": list(self.pins),
            "mode": self.mode,
            "expires": None if self.expires is None else format_time(self.expires),
        }

    @classmethod
    def from_json(cls, value: object) -> PinSetRule:
        rule = _members(value, "a rule", ("pattern", "pins", "mode", "expires"))
        pins = rule["pins"]
        if not isinstance(pins, list) or not all(isinstance(pin, str) for pin in pins):
            raise FormatError(f"rule {rule['pattern']!r}: pins must be a list of strings")
        expires = rule["expires"]
        return cls(
            rule["pattern"],
            tuple(pins),
            rule["mode"],
            None if expires is None else parse_time(expires, "rule expires"),
        )


@dataclass(frozen=True)
class PinSet:
    """What a channel publishes: its rules, signed by the keyring's online keys (spec §3)."""

    channel: str
    version: int
    issued: datetime
    expires: datetime
    refresh_after: int  # seconds: the hint for when a client should fetch again
    report_uri: str | None
    rules: tuple[PinSetRule, ...]
    keyring_version: int  # the keyring whose online keys sign this pin set

    def __post_init__(self) -> None:
        if not isinstance(self.channel, str) or not _CHANNEL.fullmatch(self.channel):
            raise FormatError("channel must be non-empty printable ASCII without spaces")
        if len(self.channel) > _MAX_CHANNEL:
            raise FormatError(f"channel is longer than {_MAX_CHANNEL} characters")
        json_integer(self.version, "version", 1)
        json_integer(self.refresh_after, "refresh_after", 1)
        json_integer(self.keyring_version, "keyring_version", 1)
        issued = utc_seconds(self.issued, "issued")
        expires = utc_seconds(self.expires, "expires")
        if expires <= issued:
            raise FormatError("expires must be later than issued")
        rules = tuple(self.rules) if isinstance(self.rules, list | tuple) else None
        if rules is None or not all(isinstance(rule, PinSetRule) for rule in rules):
            raise FormatError("rules must be a sequence of PinSetRule")
        patterns = [rule.pattern for rule in rules]
        if len(set(patterns)) != len(patterns):
            raise FormatError("two rules have the same host pattern")
        object.__setattr__(self, "issued", issued)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "report_uri", check_report_uri(self.report_uri))
        object.__setattr__(self, "rules", rules)

    def to_json(self) -> dict[str, Any]:
        """The payload as a JSON value (``type`` included)."""
        return {
            "type": PINSET_TYPE,
            "channel": self.channel,
            "version": self.version,
            "issued": format_time(self.issued),
            "expires": format_time(self.expires),
            "refresh_after": self.refresh_after,
            "report_uri": self.report_uri,
            "keyring_version": self.keyring_version,
            "rules": [rule.to_json() for rule in self.rules],
        }

    def to_payload(self) -> bytes:
        """The canonical payload bytes that get signed (RFC 8785)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, value: object) -> PinSet:
        doc = _members(value, "a pin set", _PINSET_MEMBERS, document_type=PINSET_TYPE)
        rules = doc["rules"]
        if not isinstance(rules, list):
            raise FormatError("rules must be a list")
        return cls(
            doc["channel"],
            doc["version"],
            parse_time(doc["issued"], "issued"),
            parse_time(doc["expires"], "expires"),
            doc["refresh_after"],
            doc["report_uri"],
            tuple(PinSetRule.from_json(rule) for rule in rules),
            doc["keyring_version"],
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> PinSet:
        return _canonical(cls.from_json(load_json(payload, "the payload")), payload)


_PINSET_MEMBERS = (
    "type",
    "channel",
    "version",
    "issued",
    "expires",
    "refresh_after",
    "report_uri",
    "keyring_version",
    "rules",
)


def _role_keys(keys: object, role: str) -> tuple[KeyringKey, ...]:
    if not isinstance(keys, list | tuple) or not all(isinstance(k, KeyringKey) for k in keys):
        raise FormatError(f"{role} keys must be a sequence of KeyringKey")
    if not 1 <= len(keys) <= MAX_ROLE_KEYS:
        raise FormatError(f"the {role} role must have 1 to {MAX_ROLE_KEYS} keys")
    return tuple(sorted(keys, key=lambda key: key.kid))


def _distinct(keys: Iterable[KeyringKey]) -> set[str]:
    return {key.fingerprint for key in keys}


@dataclass(frozen=True)
class Keyring:
    """The root keys (k of n sign keyrings) and online keys (k of n sign pin sets) (spec §4).

    ``raw`` holds the exact signed bytes it was read from; empty for a keyring built locally.
    """

    version: int
    expires: datetime
    root_keys: tuple[KeyringKey, ...]
    root_threshold: int
    online_keys: tuple[KeyringKey, ...]
    online_threshold: int
    raw: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        json_integer(self.version, "version", 1)
        object.__setattr__(self, "expires", utc_seconds(self.expires, "expires"))
        roles = {"root": self.root_keys, "online": self.online_keys}
        thresholds = {"root": self.root_threshold, "online": self.online_threshold}
        for role, keys in roles.items():
            object.__setattr__(self, f"{role}_keys", _role_keys(keys, role))
            threshold = json_integer(thresholds[role], f"{role} threshold", 1)
            # Count distinct keys, not ids: a threshold that needs one key twice is unreachable.
            if threshold > len(_distinct(getattr(self, f"{role}_keys"))):
                raise FormatError(f"the {role} threshold {threshold} exceeds its distinct keys")
        kids = [key.kid for key in (*self.root_keys, *self.online_keys)]
        if len(set(kids)) != len(kids):
            raise FormatError("a key id appears twice in the keyring")
        if _distinct(self.root_keys) & _distinct(self.online_keys):
            raise FormatError("a key cannot be both a root key and an online key")

    def role(self, name: str) -> tuple[tuple[KeyringKey, ...], int]:
        """The keys and threshold of the ``"root"`` or ``"online"`` role."""
        if name == "root":
            return self.root_keys, self.root_threshold
        if name == "online":
            return self.online_keys, self.online_threshold
        raise ValueError(f"no role {name!r}: a keyring has 'root' and 'online'")

    def to_json(self) -> dict[str, Any]:
        """The payload as a JSON value (``type`` included)."""
        return {
            "type": KEYRING_TYPE,
            "version": self.version,
            "expires": format_time(self.expires),
            "root": _role_json(self.root_keys, self.root_threshold),
            "online": _role_json(self.online_keys, self.online_threshold),
        }

    def to_payload(self) -> bytes:
        """The canonical payload bytes that get signed (RFC 8785)."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, value: object, raw: bytes = b"") -> Keyring:
        members = ("type", "version", "expires", "root", "online")
        doc = _members(value, "a keyring", members, document_type=KEYRING_TYPE)
        root_keys, root_threshold = _role_from_json(doc["root"], "root")
        online_keys, online_threshold = _role_from_json(doc["online"], "online")
        return cls(
            doc["version"],
            parse_time(doc["expires"], "expires"),
            root_keys,
            root_threshold,
            online_keys,
            online_threshold,
            raw,
        )

    @classmethod
    def from_payload(cls, payload: bytes, raw: bytes = b"") -> Keyring:
        return _canonical(cls.from_json(load_json(payload, "the payload"), raw), payload)


def _role_json(keys: tuple[KeyringKey, ...], threshold: int) -> dict[str, Any]:
    return {"threshold": threshold, "keys": {key.kid: key.to_jwk() for key in keys}}


def _role_from_json(value: object, role: str) -> tuple[tuple[KeyringKey, ...], Any]:
    members = _members(value, f"the {role} role", ("threshold", "keys"))
    keys = members["keys"]
    if not isinstance(keys, dict):
        raise FormatError(f"the {role} keys must be an object of key id to JWK")
    if len(keys) > MAX_ROLE_KEYS:
        raise FormatError(f"the {role} role must have 1 to {MAX_ROLE_KEYS} keys")
    return tuple(KeyringKey.from_jwk(kid, jwk) for kid, jwk in keys.items()), members["threshold"]


def _members(
    value: object, what: str, names: Iterable[str], *, document_type: str | None = None
) -> Mapping[str, Any]:
    """``value`` as an object with exactly the members ``names``; unknown members are refused."""
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a JSON object")
    if document_type is not None and value.get("type") != document_type:
        # Type confusion (spec §5.1): a keyring is never a pin set, nor the other way round.
        raise FormatError(f"type is {value.get('type')!r}, expected {document_type!r}")
    expected = set(names)
    if set(value) != expected:
        missing, unknown = sorted(expected - set(value)), sorted(set(value) - expected)
        raise FormatError(f"{what}: missing members {missing}, unknown members {unknown}")
    return value


_Document = TypeVar("_Document", "PinSet", "Keyring")


def _canonical(document: _Document, payload: bytes) -> _Document:
    if document.to_payload() != payload:
        raise FormatError(
            "the payload is not in canonical form (RFC 8785 JSON, normalised host patterns, "
            "canonical pins, sorted key ids)"
        )
    return document
