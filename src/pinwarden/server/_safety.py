"""The safe-publishing rules (docs/server.md, "Safe publishing"), and what a publish changes.

A rule that pins (``enforce`` or ``report-only``) is refused when it (a) has fewer than two pins,
(b) has no backup pin outside the chain the host serves now, or (c) matches nothing in that chain.
(a) and (b) keep a way out when the live key is lost; (c) keeps today's clients working. A
``disabled`` rule pins nothing and is always safe.

A rule of the published version that the draft drops is refused too: turning pinning off for a
host is a signed ``disabled`` rule, not an absence (docs/spec.md §3). Without
the rule, clients fall back to the pins they were built with, or to none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pinwarden.server._livechain import LiveChain
from pinwarden.server._snapshot import RuleSnapshot

__all__ = ["RuleCheck", "check_removed_rules", "check_rules", "diff_rules"]

MIN_PINS = 2


@dataclass(frozen=True)
class RuleCheck:
    """The verdict on one rule; ``problems`` is empty when it is safe to publish."""

    pattern: str
    problems: tuple[str, ...] = ()
    live: LiveChain | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def view(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "ok": self.ok,
            "problems": list(self.problems),
            "live_chain": self.live.view() if self.live else None,
        }


# Returns the live chain of a rule, or raises with the reason it cannot be seen.
LiveLookup = Callable[[RuleSnapshot], LiveChain]


def _check_rule(rule: RuleSnapshot, lookup: LiveLookup) -> RuleCheck:
    if rule.mode == "disabled":
        return RuleCheck(rule.pattern)
    pins = rule.pin_values
    problems: list[str] = []
    if len(pins) < MIN_PINS:
        problems.append(
            f"has {len(pins)} pin(s); at least {MIN_PINS} are needed (a live and a backup pin)"
        )
    try:
        live = lookup(rule)
    except Exception as error:  # any failure to see the chain is a reason to refuse
        problems.append(f"cannot see the live chain: {error}")
        return RuleCheck(rule.pattern, tuple(problems))
    served = set(live.pins)
    if not served.intersection(pins):
        problems.append(
            "no pin matches the chain the host serves now; clients would be locked out "
            f"(live chain: {', '.join(live.pins) or 'empty'})"
        )
    if not set(pins) - served:
        problems.append(
            "no backup pin outside the live chain; losing the live key would lock clients out"
        )
    return RuleCheck(rule.pattern, tuple(problems), live)


def check_rules(rules: Sequence[RuleSnapshot], lookup: LiveLookup) -> list[RuleCheck]:
    return [_check_rule(rule, lookup) for rule in rules]


def check_removed_rules(
    published: Sequence[RuleSnapshot] | None, draft: Sequence[RuleSnapshot]
) -> list[RuleCheck]:
    """A refusal for each rule of ``published`` that ``draft`` no longer has."""
    kept = {rule.pattern for rule in draft}
    return [
        RuleCheck(
            rule.pattern,
            (
                "removed: clients would stop pinning this host (only built-in pins remain, if "
                "any); set its mode to 'disabled' to turn pinning off with a signed rule",
            ),
        )
        for rule in published or ()
        if rule.pattern not in kept
    ]


def _change(
    pattern: str, change: str, mode: str, added: Sequence[str], removed: Sequence[str]
) -> dict[str, Any]:
    return {
        "pattern": pattern,
        "change": change,
        "mode": mode,
        "pins_added": list(added),
        "pins_removed": list(removed),
    }


def diff_rules(
    published: Sequence[RuleSnapshot] | None, draft: Sequence[RuleSnapshot]
) -> list[dict[str, Any]]:
    """What clients holding ``published`` would see change with ``draft``, one entry per rule."""
    before = {rule.pattern: rule for rule in published or ()}
    after = {rule.pattern: rule for rule in draft}
    changes: list[dict[str, Any]] = []
    for pattern in sorted(before.keys() | after.keys()):
        old, new = before.get(pattern), after.get(pattern)
        if old is None and new is not None:
            changes.append(_change(pattern, "added", new.mode, new.pin_values, []))
        elif new is None and old is not None:
            entry = _change(pattern, "removed", old.mode, [], old.pin_values)
            entry["note"] = (
                "clients stop pinning this host (only built-in pins remain); "
                "use mode 'disabled' to turn pinning off explicitly"
            )
            changes.append(entry)
        elif old is not None and new is not None:
            added = [pin for pin in new.pin_values if pin not in old.pin_values]
            removed = [pin for pin in old.pin_values if pin not in new.pin_values]
            if added or removed or old.mode != new.mode:
                entry = _change(pattern, "changed", new.mode, added, removed)
                if old.mode != new.mode:
                    entry["mode_before"] = old.mode
                changes.append(entry)
    return changes
