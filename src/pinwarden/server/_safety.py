"""The publishing rules of the design brief ("Safe rotation"), and what a publish changes.

A rule that pins (``enforce`` or ``report-only``) is refused when it (a) has fewer than two pins,
(b) has no backup pin outside the chain the host serves now, or (c) matches nothing in that chain.
(a) and (b) keep a way out when the live key is lost; (c) keeps today's clients working. A
``disabled`` rule pins nothing and is always safe.

A rule of the published version that the draft drops is refused too: turning pinning off for a
host is a signed ``disabled`` rule, not an absence (design brief, "Signed document"). Without
the rule, clients fall back to the pins they were built with, or to none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinwarden.server._livechain import LiveChain

__all__ = ["RuleCheck", "check_removed_rules", "check_rules", "diff_rules"]

MIN_PINS = 2


@dataclass
class RuleCheck:
    """The verdict on one rule; ``problems`` is empty when it is safe to publish."""

    pattern: str
    problems: list[str] = field(default_factory=list)
    live: LiveChain | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def view(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "ok": self.ok,
            "problems": self.problems,
            "live_chain": self.live.view() if self.live else None,
        }


# Returns the live chain of a rule snapshot, or raises with the reason it cannot be seen.
LiveLookup = Callable[[dict[str, Any]], LiveChain]


def _check_rule(rule: dict[str, Any], lookup: LiveLookup) -> RuleCheck:
    check = RuleCheck(rule["pattern"])
    if rule["mode"] == "disabled":
        return check
    pins = [entry["pin"] for entry in rule["pins"]]
    if len(pins) < MIN_PINS:
        check.problems.append(
            f"has {len(pins)} pin(s); at least {MIN_PINS} are needed (a live and a backup pin)"
        )
    try:
        check.live = lookup(rule)
    except Exception as error:  # any failure to see the chain is a reason to refuse
        check.problems.append(f"cannot see the live chain: {error}")
        return check
    live = set(check.live.pins)
    if not live.intersection(pins):
        check.problems.append(
            "no pin matches the chain the host serves now; clients would be locked out "
            f"(live chain: {', '.join(check.live.pins) or 'empty'})"
        )
    if not set(pins) - live:
        check.problems.append(
            "no backup pin outside the live chain; losing the live key would lock clients out"
        )
    return check


def check_rules(rules: list[dict[str, Any]], lookup: LiveLookup) -> list[RuleCheck]:
    return [_check_rule(rule, lookup) for rule in rules]


def check_removed_rules(
    published: list[dict[str, Any]] | None, draft: list[dict[str, Any]]
) -> list[RuleCheck]:
    """A refusal for each rule of ``published`` that ``draft`` no longer has."""
    kept = {rule["pattern"] for rule in draft}
    return [
        RuleCheck(
            rule["pattern"],
            [
                "removed: clients would stop pinning this host (only built-in pins remain, if "
                "any); set its mode to 'disabled' to turn pinning off with a signed rule"
            ],
        )
        for rule in published or []
        if rule["pattern"] not in kept
    ]


def _pins_of(rule: dict[str, Any]) -> list[str]:
    return [entry["pin"] for entry in rule["pins"]]


def diff_rules(
    published: list[dict[str, Any]] | None, draft: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What clients holding ``published`` would see change with ``draft``, one entry per rule."""
    before = {rule["pattern"]: rule for rule in published or []}
    after = {rule["pattern"]: rule for rule in draft}
    changes: list[dict[str, Any]] = []
    for pattern in sorted(before.keys() | after.keys()):
        old, new = before.get(pattern), after.get(pattern)
        if old is None and new is not None:
            changes.append(
                {
                    "pattern": pattern,
                    "change": "added",
                    "mode": new["mode"],
                    "pins_added": _pins_of(new),
                    "pins_removed": [],
                }
            )
        elif new is None and old is not None:
            changes.append(
                {
                    "pattern": pattern,
                    "change": "removed",
                    "mode": old["mode"],
                    "pins_added": [],
                    "pins_removed": _pins_of(old),
                    "note": "clients stop pinning this host (only built-in pins remain); "
                    "use mode 'disabled' to turn pinning off explicitly",
                }
            )
        elif old is not None and new is not None:
            added = [pin for pin in _pins_of(new) if pin not in _pins_of(old)]
            removed = [pin for pin in _pins_of(old) if pin not in _pins_of(new)]
            if added or removed or old["mode"] != new["mode"]:
                entry: dict[str, Any] = {
                    "pattern": pattern,
                    "change": "changed",
                    "mode": new["mode"],
                    "pins_added": added,
                    "pins_removed": removed,
                }
                if old["mode"] != new["mode"]:
                    entry["mode_before"] = old["mode"]
                changes.append(entry)
    return changes
