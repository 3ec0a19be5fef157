"""Which published rules a logged certificate concerns, and whether its key is pinned there.

A rule's pattern (exact, ``*.`` one label, ``**.`` any depth: docs/spec.md §3.1) is compared
with each name of the certificate label by label; a certificate label that is a wildcard,
redacted or unreadable stands for any label, so a certificate that could serve a pinned host
is never passed over. Before parsing, an entry is kept only if its DER contains, in any case,
the registrable domain (public suffix plus one label) of some rule, or an IP rule's address:
every name a CA can validate for a host carries those bytes, and most of a log holds none.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pinwarden._hosts import HostPattern, PatternKind, public_suffixes
from pinwarden.server.ct._certs import LoggedCertificate, NameLabels

__all__ = ["RuleSet", "WatchedRule"]


@dataclass(frozen=True)
class WatchedRule:
    channel: str
    pattern: HostPattern
    pins: frozenset[str]

    @property
    def subject(self) -> str:
        return f"{self.channel} {self.pattern}"


def _name_matches(labels: NameLabels, pattern: HostPattern) -> bool:
    base = pattern.base.split(".")
    extra = len(labels) - len(base)
    if pattern.kind is PatternKind.EXACT:
        fits = extra == 0
    elif pattern.kind is PatternKind.ONE_LABEL:
        fits = extra == 1
    else:
        fits = extra >= 0
    return fits and all(
        label is None or label == wanted for label, wanted in zip(labels[extra:], base, strict=True)
    )


def _tokens(pattern: HostPattern) -> list[bytes]:
    try:
        address = ipaddress.ip_address(pattern.base)
    except ValueError:
        domain = public_suffixes().privatesuffix(pattern.base) or pattern.base
        return [domain.encode()]
    return [pattern.base.encode(), address.packed.lower()]


class RuleSet:
    """The enabled published rules to watch for."""

    def __init__(self, rules: Iterable[WatchedRule]) -> None:
        self.rules = tuple(rules)
        tokens = sorted({token for rule in self.rules for token in _tokens(rule.pattern)})
        self._filter = (
            re.compile(b"|".join(re.escape(token) for token in tokens)) if tokens else None
        )

    def may_concern(self, der: bytes) -> bool:
        """Whether the entry's DER holds a rule's domain (so it must be parsed)."""
        return self._filter is not None and self._filter.search(der.lower()) is not None

    def matching(self, facts: LoggedCertificate, der: bytes) -> list[WatchedRule]:
        """The rules a name of the certificate falls under; with unreadable names, every rule
        whose domain is in the DER."""
        if facts.names_unreadable:
            lowered = der.lower()
            return [
                rule
                for rule in self.rules
                if any(token in lowered for token in _tokens(rule.pattern))
            ]
        return [
            rule
            for rule in self.rules
            if any(_name_matches(labels, rule.pattern) for labels in facts.labels)
        ]
