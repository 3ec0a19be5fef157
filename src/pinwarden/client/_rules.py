"""Pin rules, the sources that hold them, and the violations they record."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from pinwarden._hosts import HostPattern
from pinwarden._pins import parse_pins, pin_digest
from pinwarden.errors import InvalidPinError

__all__ = [
    "Mode",
    "PinRule",
    "PinSource",
    "PinViolation",
    "SinglePinWarning",
    "ViolationCallback",
    "backup_pin_advice",
]

logger = logging.getLogger("pinwarden.client")


class Mode(str, enum.Enum):
    """What a rule does with a connection whose verified chain holds none of its pins."""

    ENFORCE = "enforce"  # refuse it
    REPORT_ONLY = "report-only"  # let it through and record a violation
    DISABLED = "disabled"  # pinning switched off for the host (normal TLS only)

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"unknown pin mode {value!r}: expected one of {names}") from None


@dataclass(frozen=True)
class PinRule:
    """A host pattern, its pins and its mode. Build with ``PinRule.create`` to validate."""

    pattern: HostPattern
    pins: tuple[str, ...]
    mode: Mode = Mode.ENFORCE
    report_uri: str | None = None
    digests: frozenset[bytes] = field(default=frozenset(), repr=False, compare=False)
    # Where the rule came from, for error messages and reports ("static pins", "pin set v7 of
    # channel com.example.app/prod", "the shipped bootstrap pins"); not part of a rule's identity.
    origin: str = field(default="static pins", compare=False)

    @classmethod
    def create(
        cls,
        pattern: str | HostPattern,
        pins: Iterable[str],
        mode: str | Mode = Mode.ENFORCE,
        report_uri: str | None = None,
        *,
        origin: str = "static pins",
    ) -> PinRule:
        """Validate and normalise; an enforcing or reporting rule needs at least one pin."""
        host_pattern = pattern if isinstance(pattern, HostPattern) else HostPattern.parse(pattern)
        canonical = parse_pins(pins)
        rule_mode = Mode.parse(mode)
        if not canonical and rule_mode is not Mode.DISABLED:
            # docs/security.md rule 7: an empty pin list fails closed; refuse to build one at all.
            raise InvalidPinError(f"rule {host_pattern}: an {rule_mode.value} rule needs pins")
        digests = frozenset(pin_digest(pin) for pin in canonical)
        return cls(host_pattern, canonical, rule_mode, report_uri, digests, origin)


class SinglePinWarning(UserWarning):
    """An enforced rule holds one pin only: no backup key for the day that key must change."""


def backup_pin_advice(rule: PinRule) -> str | None:
    """One line of advice when ``rule`` enforces a single pin; None when it has a backup.

    With one pin, the day that key changes (renewal with a new key, a compromise, a move to
    another CA) every client refuses the host until it gets new pins: the 2016 Barclays app
    outage. TrustKit refuses such a rule, Android lint warns (docs/security.md, "One pin").
    """
    if rule.mode is not Mode.ENFORCE or len(rule.pins) != 1:
        return None
    return (
        f"rule {rule.pattern} ({rule.origin}) enforces a single pin: when that key changes, every "
        "client refuses the host until it gets new pins; add a backup pin, of a spare key kept "
        "offline (`pinwarden pin spare-key.pem`) or of the CA you would move to"
    )


@dataclass(frozen=True)
class PinViolation:
    """A verified chain that held none of a rule's pins (RFC 7469 §3 report fields).

    ``verified_pins`` and ``validated_chain_pem`` describe the chain OpenSSL built to a trust anchor
    (what pins are checked against); ``served_chain_pem`` is what the server sent, which may hold
    certificates outside that chain (an appended pinned intermediate, CVE-2016-2402).
    """

    hostname: str
    port: int | None
    rule: PinRule
    verified_pins: tuple[str, ...]  # leaf first
    validated_chain_pem: tuple[str, ...]
    served_chain_pem: tuple[str, ...]
    enforced: bool
    reason: str
    date_time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def noted_hostname(self) -> str:
        return str(self.rule.pattern)


ViolationCallback = Callable[[PinViolation], None]


@runtime_checkable
class PinSource(Protocol):
    """What ``pinned_context`` enforces: static pins now, dynamic pins that change over time.

    ``generation`` changes whenever the rules change, so a connection checked under older rules
    is checked again before it carries another byte (docs/security.md rule 8).
    """

    @property
    def generation(self) -> int: ...

    def rule_for(self, host: str) -> PinRule | None: ...

    def report(self, violation: PinViolation) -> None: ...


RuleSpec = Sequence[str] | Mapping[str, Any] | PinRule


def rule_from_spec(pattern: str, spec: RuleSpec, default_mode: Mode) -> PinRule:
    """A rule from ``{"pattern": [pins]}`` or ``{"pattern": {"pins": [...], "mode": ...}}``."""
    if isinstance(spec, PinRule):
        return spec
    if isinstance(spec, str):
        raise InvalidPinError(f"rule {pattern!r}: pins are a list of strings, not one string")
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"pins", "mode", "report_uri"}
        if unknown:
            raise ValueError(f"rule {pattern!r}: unknown keys {sorted(unknown)}")
        return PinRule.create(
            pattern,
            spec.get("pins", ()),
            spec.get("mode", default_mode),
            spec.get("report_uri"),
        )
    return PinRule.create(pattern, spec, default_mode)


def most_specific(rules: Iterable[PinRule], host: str) -> PinRule | None:
    """The rule whose pattern matches ``host`` most specifically (longest base, then exact)."""
    best: PinRule | None = None
    for rule in rules:
        if rule.pattern.matches(host) and (
            best is None or rule.pattern.specificity > best.pattern.specificity
        ):
            best = rule
    return best


def deliver(callback: ViolationCallback | None, violation: PinViolation) -> None:
    """Hand a violation to the app's callback; a failing callback never breaks the connection."""
    if callback is None:
        return
    try:
        callback(violation)
    except Exception:
        logger.exception("pinwarden: the on_violation callback raised; ignored")
