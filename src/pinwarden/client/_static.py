"""Static pins: the rules an app is built with."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from pinwarden._hosts import HostPattern
from pinwarden.client._rules import (
    Mode,
    PinRule,
    PinViolation,
    RuleSpec,
    SinglePinWarning,
    ViolationCallback,
    backup_pin_advice,
    deliver,
    most_specific,
    rule_from_spec,
)

__all__ = ["StaticPins"]


class StaticPins:
    """Pins fixed at build time: ``StaticPins({"api.example.com": ["sha256/…", "sha256/…"]})``.

    A rule's value is a list of pins, or a mapping with ``pins``, ``mode`` (``enforce``,
    ``report-only``, ``disabled``) and ``report_uri``. ``mode`` is the default for rules that do not
    name one. ``on_violation`` is called with each ``PinViolation`` (enforced or report-only).
    A host that no pattern matches is not pinned: it gets normal TLS validation only.

    An enforced rule with a single pin gives a ``SinglePinWarning``: keep a backup pin.
    """

    def __init__(
        self,
        rules: Mapping[str, RuleSpec],
        *,
        mode: str | Mode = Mode.ENFORCE,
        on_violation: ViolationCallback | None = None,
    ) -> None:
        default_mode = Mode.parse(mode)
        built: dict[HostPattern, PinRule] = {}
        for pattern, spec in rules.items():
            rule = rule_from_spec(pattern, spec, default_mode)
            if rule.pattern in built:
                raise ValueError(f"host pattern {pattern!r} appears twice (as {rule.pattern})")
            built[rule.pattern] = rule
            advice = backup_pin_advice(rule)
            if advice is not None:
                warnings.warn(advice, SinglePinWarning, stacklevel=2)
        self._rules = tuple(built.values())
        self.on_violation = on_violation

    @property
    def rules(self) -> tuple[PinRule, ...]:
        return self._rules

    @property
    def generation(self) -> int:
        return 0

    def rule_for(self, host: str) -> PinRule | None:
        return most_specific(self._rules, host)

    def report(self, violation: PinViolation) -> None:
        deliver(self.on_violation, violation)

    def __repr__(self) -> str:
        return f"StaticPins({len(self._rules)} rules)"
