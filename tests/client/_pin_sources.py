"""Pin sources written for the tests: rules that change, rules no builder would make, failures."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from pinwarden.client import PinRule, PinViolation, StaticPins
from pinwarden.client._rules import RuleSpec


class ChangingPins:
    """A pin source whose rules can be replaced, bumping ``generation`` as a dynamic source will."""

    def __init__(self, rules: Mapping[str, RuleSpec]) -> None:
        self._lock = threading.Lock()
        self._static = StaticPins(rules)
        self._generation = 1
        self.violations: list[PinViolation] = []

    def replace(self, rules: Mapping[str, RuleSpec]) -> None:
        with self._lock:
            self._static = StaticPins(rules)
            self._generation += 1

    @property
    def generation(self) -> int:
        return self._generation

    def rule_for(self, host: str) -> PinRule | None:
        return self._static.rule_for(host)

    def report(self, violation: PinViolation) -> None:
        self.violations.append(violation)


class FixedRule:
    """A source that returns one rule for every host, however it was built."""

    generation = 0

    def __init__(self, rule: PinRule) -> None:
        self.rule = rule

    def rule_for(self, host: str) -> PinRule | None:
        return self.rule

    def report(self, violation: PinViolation) -> None:
        pass


class BrokenSource:
    """A source that fails where ``fails_in`` says: ``generation``, ``rule_for`` or ``report``.

    It starts healthy, so that ``pinned_context`` accepts it, and breaks when ``fails_in`` is set.
    """

    def __init__(self, rule: PinRule | None = None) -> None:
        self.fails_in = ""
        self.rule = rule

    def _maybe_fail(self, where: str) -> None:
        if self.fails_in == where:
            raise RuntimeError(f"pin source broken in {where}")

    @property
    def generation(self) -> int:
        self._maybe_fail("generation")
        return 0

    def rule_for(self, host: str) -> PinRule | None:
        self._maybe_fail("rule_for")
        return self.rule

    def report(self, violation: PinViolation) -> None:
        self._maybe_fail("report")
