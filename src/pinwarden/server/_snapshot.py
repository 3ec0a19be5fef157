"""The rule snapshot: a rule as it was published, stored forever in its published row.

Rollback republishes a snapshot, history shows it, the next publish diffs against it, so a row
written today must stay readable by every later server. Each stored rule carries the
``snapshot_version`` it was written in. Rows written before there was a version have none; they
are version 1, the same shape. Keys a version does not define are ignored; a version newer than
this server knows is refused with a message that says to upgrade, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pinwarden.export import UNSPECIFIED_ROLE
from pinwarden.server._errors import ServerError

__all__ = [
    "SNAPSHOT_VERSION",
    "RuleSnapshot",
    "SnapshotError",
    "SnapshotPin",
    "snapshots_from_json",
    "snapshots_to_json",
]

SNAPSHOT_VERSION = 1
_VERSION_KEY = "snapshot_version"
DEFAULT_PROBE_PORT = 443


class SnapshotError(ServerError):
    """A stored rule snapshot this server cannot read (malformed, or from a newer server).

    409: the request is fine; the stored state conflicts with what this server can do."""

    status = 409


@dataclass(frozen=True)
class SnapshotPin:
    """One pin of a published rule, its label and its chain role."""

    pin: str
    label: str = ""
    role: str = UNSPECIFIED_ROLE

    def view(self) -> dict[str, str]:
        """The pin as the admin API shows it; ``role`` only when known, so a row written before
        roles existed shows as it did."""
        shown = {"pin": self.pin, "label": self.label}
        return shown if self.role == UNSPECIFIED_ROLE else {**shown, "role": self.role}


@dataclass(frozen=True)
class RuleSnapshot:
    """A rule as published: pattern (normal form), mode, pins, and where its host is probed."""

    pattern: str
    mode: str
    pins: tuple[SnapshotPin, ...]
    probe_host: str | None = None
    probe_port: int = DEFAULT_PROBE_PORT

    @property
    def pin_values(self) -> tuple[str, ...]:
        return tuple(entry.pin for entry in self.pins)

    def view(self) -> dict[str, Any]:
        """The rule as the admin API shows it."""
        return {
            "pattern": self.pattern,
            "mode": self.mode,
            "pins": [entry.view() for entry in self.pins],
            "probe_host": self.probe_host,
            "probe_port": self.probe_port,
        }

    def to_json(self) -> dict[str, Any]:
        """The stored form: the view and the snapshot version it is written in."""
        return {_VERSION_KEY: SNAPSHOT_VERSION, **self.view()}

    @classmethod
    def from_json(cls, data: object) -> RuleSnapshot:
        """A stored rule of any version up to ``SNAPSHOT_VERSION``; ``SnapshotError`` otherwise."""
        if not isinstance(data, Mapping):
            raise SnapshotError(f"a rule snapshot is an object, not {type(data).__name__}")
        version = data.get(_VERSION_KEY, 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise SnapshotError(f"{_VERSION_KEY} is {_kind(version)}, not a version number")
        if version > SNAPSHOT_VERSION:
            raise SnapshotError(
                f"a rule snapshot of version {version} was written by a newer server (this one "
                f"reads up to {SNAPSHOT_VERSION}); upgrade this server"
            )
        probe_host = data.get("probe_host")
        return cls(
            pattern=_text(data, "pattern"),
            mode=_text(data, "mode"),
            pins=tuple(_pin(entry) for entry in _list(data, "pins")),
            probe_host=None if probe_host is None else _text(data, "probe_host"),
            probe_port=_port(data.get("probe_port", DEFAULT_PROBE_PORT)),
        )


def snapshots_from_json(stored: object) -> tuple[RuleSnapshot, ...]:
    """The rules of a published row (its ``rules`` column)."""
    if not isinstance(stored, list):
        raise SnapshotError(f"published rules are a list, not {type(stored).__name__}")
    return tuple(RuleSnapshot.from_json(entry) for entry in stored)


def snapshots_to_json(rules: Iterable[RuleSnapshot]) -> list[dict[str, Any]]:
    return [rule.to_json() for rule in rules]


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise SnapshotError(f"rule snapshot member {key!r} is {_kind(value)}, not a string")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise SnapshotError(f"rule snapshot member {key!r} is {_kind(value)}, not a list")
    return value


def _pin(entry: object) -> SnapshotPin:
    if not isinstance(entry, Mapping):
        raise SnapshotError(f"a snapshot pin is an object, not {type(entry).__name__}")
    return SnapshotPin(
        _text(entry, "pin"),
        _text(entry, "label") if "label" in entry else "",
        _text(entry, "role") if "role" in entry else UNSPECIFIED_ROLE,
    )


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise SnapshotError(f"rule snapshot member 'probe_port' is {_kind(value)}, not a TCP port")
    return value


def _kind(value: object) -> str:
    """What a stored value is, for a message: never its repr (it may be huge or deeply nested)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**9:
        return f"the number {value}"
    return "missing" if value is None else f"a {type(value).__name__}"
