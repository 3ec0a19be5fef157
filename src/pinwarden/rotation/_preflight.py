"""Preflight: would clients holding these rules accept this chain or key for the hosts it names?

Each population of clients (those holding the published pin set, those still on the shipped
bootstrap pins) is judged on its own: a deploy is safe only when every population accepts it.
A host is judged by the rule the client itself would pick (``RuleBook.rule_for``, the dynamic
client's matching), against the pins of every key of the chain, as the client checks the verified
chain (docs/security.md rule 1). A wildcard name of the certificate (``*.example.com``) is judged
for each host a rule names exactly under it, and for any other name under it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pinwarden._hosts import PatternKind
from pinwarden.client import Mode
from pinwarden.rotation._channel import RuleBook
from pinwarden.rotation._material import Candidate

__all__ = ["Verdict", "hosts_to_judge", "judge"]

# Stands for "any name under the wildcard that no rule names exactly": one label, never a real
# host name (an underscore is not valid in a host name), so no exact rule can match it.
_ANY_LABEL = "any_name"


@dataclass(frozen=True)
class Verdict:
    """One host of one candidate, as one population of clients would see it."""

    source: str
    host: str
    population: str
    accepted: bool
    rule: str | None
    mode: str | None
    matched_pin: str | None
    reason: str
    pin_to_publish: str | None  # the pin to add to the rule first, when refused

    def view(self) -> dict[str, Any]:
        return asdict(self)


def hosts_to_judge(names: Iterable[str], books: Sequence[RuleBook]) -> list[tuple[str, str]]:
    """``(shown, looked up)`` host pairs for the certificate's names.

    ``*.base`` becomes every host an exact rule names one label under ``base``, and one name no
    rule names exactly; other names are judged as they are.
    """
    pairs: list[tuple[str, str]] = []
    for name in names:
        if not name.startswith("*."):
            pairs.append((name, name))
            continue
        base = name[2:]
        exact = sorted(
            {
                rule.pattern.base
                for book in books
                for rule in book.all_rules
                if rule.pattern.kind is PatternKind.EXACT
                and rule.pattern.base.endswith("." + base)
                and "." not in rule.pattern.base[: -len(base) - 1]
            }
        )
        pairs.extend((host, host) for host in exact)
        pairs.append((name, f"{_ANY_LABEL}.{base}"))
    return pairs


def _verdict(candidate: Candidate, shown: str, host: str, book: RuleBook) -> Verdict:
    rule = book.rule_for(host)
    common = {"source": candidate.source, "host": shown, "population": book.population}
    if rule is None:
        return Verdict(
            **common,
            accepted=True,
            rule=None,
            mode=None,
            matched_pin=None,
            reason="no rule covers the host: normal TLS validation only",
            pin_to_publish=None,
        )
    named = {"rule": str(rule.pattern), "mode": rule.mode.value}
    if rule.mode is Mode.DISABLED:
        return Verdict(
            **common,
            **named,
            accepted=True,
            matched_pin=None,
            reason="the rule is disabled: normal TLS validation only",
            pin_to_publish=None,
        )
    matched = next((pin for pin in candidate.pins if pin in rule.pins), None)
    if matched is not None:
        depth = candidate.pins.index(matched)
        return Verdict(
            **common,
            **named,
            accepted=True,
            matched_pin=matched,
            reason=f"pin of {'the leaf key' if depth == 0 else f'chain depth {depth}'} "
            f"is in rule {rule.pattern} ({rule.origin})",
            pin_to_publish=None,
        )
    if rule.mode is Mode.REPORT_ONLY:
        return Verdict(
            **common,
            **named,
            accepted=True,
            matched_pin=None,
            reason=f"no key is pinned by rule {rule.pattern}: report-only, so clients connect "
            "and send a violation report",
            pin_to_publish=candidate.key_pin,
        )
    return Verdict(
        **common,
        **named,
        accepted=False,
        matched_pin=None,
        reason=f"no key of the {candidate.kind} is pinned by rule {rule.pattern} "
        f"({rule.origin}): these clients would refuse the host",
        pin_to_publish=candidate.key_pin,
    )


def judge(candidate: Candidate, hosts: Sequence[str], books: Sequence[RuleBook]) -> list[Verdict]:
    """Every (host, population) verdict for ``candidate``; ``hosts`` are normalised names."""
    return [
        _verdict(candidate, shown, host, book)
        for shown, host in hosts_to_judge(hosts, books)
        for book in books
    ]
