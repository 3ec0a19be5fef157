"""How far a new pin has reached clients, from the pin server's fetch counts by version.

The server counts what it served (``GET /v1/admin/channels/{channel}/fetches``: 200s and 304s by
version, every replica) and keeps each published version's rules (``…/history``). A version
"carries" the new pin when its rule for the host (the most specific pattern, as a client picks
it) lists the pin. The share of recent fetches on carrying versions is what ``rotate plan``
waits on: below the threshold, some replica still serves an older version or clients are still
being served one. These are fetches, not devices: a client that has not fetched at all is not
seen, which is why the plan also waits out the refresh interval (``_plan``).

Both answers come from the network: every field is checked, a malformed one is an
``UptakeError``, never a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pinwarden._hosts import HostPattern
from pinwarden.errors import InvalidHostError, PinwardenError

__all__ = ["Uptake", "UptakeError", "measure_uptake", "read_uptake", "versions_carrying"]


class UptakeError(PinwardenError):
    """The server's fetch counts or history did not have the expected form."""


@dataclass(frozen=True)
class Uptake:
    """Fetches over the last ``window_seconds``: all, and those of versions carrying the pin."""

    window_seconds: int
    total: int
    carrying: int
    versions: tuple[int, ...]  # the carrying versions fetched in the window

    @property
    def share(self) -> float:
        return self.carrying / self.total if self.total else 0.0

    def describe(self) -> str:
        if not self.total:
            return f"no pin-set fetches in the last {self.window_seconds} s"
        shown = ", ".join(f"v{version}" for version in self.versions) or "none"
        return (
            f"{self.carrying} of {self.total} pin-set fetches in the last {self.window_seconds} s "
            f"({self.share:.1%}) were of versions carrying the new pin ({shown})"
        )


def _field(entry: object, name: str, kind: type[Any]) -> Any:
    if not isinstance(entry, Mapping) or not isinstance(entry.get(name), kind):
        raise UptakeError(f"the server's answer has no {kind.__name__} {name!r} where expected")
    value = entry[name]
    if kind is int and (isinstance(value, bool) or value < 0):
        raise UptakeError(f"the server's answer has a bad {name!r}: {value!r}")
    return value


def _rule_pins(rules: Sequence[object], host: str) -> set[str]:
    """The pins of the rule a client applies to ``host``: the most specific matching pattern."""
    best: tuple[tuple[int, int], set[str]] | None = None
    for rule in rules:
        try:
            pattern = HostPattern.parse(_field(rule, "pattern", str), grammar_only=True)
        except InvalidHostError as error:
            raise UptakeError(f"the server's history has a bad pattern: {error}") from None
        if pattern.matches(host) and (best is None or pattern.specificity > best[0]):
            pins = {_field(entry, "pin", str) for entry in _field(rule, "pins", list)}
            best = (pattern.specificity, pins)
    return best[1] if best else set()


def versions_carrying(history: object, host: str, pin: str) -> set[int]:
    """The versions, of the server's ``history`` answer, whose rule for ``host`` lists ``pin``."""
    if not isinstance(history, list):
        raise UptakeError("the server's history is not a list of versions")
    versions = [(_field(entry, "version", int), _field(entry, "rules", list)) for entry in history]
    return {version for version, rules in versions if pin in _rule_pins(rules, host)}


def measure_uptake(report: object, carrying: set[int]) -> Uptake:
    """The ``fetches`` answer of the server, split by whether each version carries the pin."""
    window = _field(report, "window_seconds", int)
    counts = {
        _field(row, "version", int): _field(row, "fetches", int)
        for row in _field(report, "versions", list)
    }
    fetched = sorted(version for version in counts if version in carrying)
    return Uptake(
        window,
        sum(counts.values()),
        sum(counts[version] for version in fetched),
        tuple(fetched),
    )


def read_uptake(
    get: Callable[[str], object], channel: str, host: str, pin: str, window_seconds: int
) -> Uptake:
    """The uptake of ``pin`` for ``host``, read through ``get`` (the JSON answer of a GET of an
    admin API path, ``/channels/…``, with a read-scope token): its history and fetch counts."""
    path = f"/channels/{urllib.parse.quote(channel, safe='/')}"
    carrying = versions_carrying(get(f"{path}/history?limit=500"), host, pin)
    return measure_uptake(get(f"{path}/fetches?window={window_seconds}"), carrying)
