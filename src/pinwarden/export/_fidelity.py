"""What a platform's configuration does for each host name, compared with pinwarden's clients.

Each platform picks the entry for a name its own way, read from its source:

- Android's network security config (``ApplicationConfig.getConfigForHostname``) and Apple's
  ATS: the entry naming the host exactly, else the covering entry with the longest domain
  (``MOST_SPECIFIC``);
- TrustKit (``getPinningConfigurationKeyForDomain``): the exact entry, else *any* entry with
  subdomains that covers the name, whichever its dictionary yields first (``EXACT_THEN_ANY``:
  two candidates with different policies are ambiguous);
- OkHttp (``CertificatePinner.findMatchingPins``): every matching pattern's pins count
  (``UNION``).

``check_fidelity`` walks names of every rule (the base, one and two labels below a wildcard)
and refuses an export that would enforce pins where pinwarden does not, or accept fewer pins
than pinwarden accepts: an app shipped with it could refuse its own server. Less pinning than
pinwarden (a rule left out) is a warning.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pinwarden._hosts import PatternKind
from pinwarden.export._model import ExportChannel, ExportRule, Findings

__all__ = ["Entry", "Lookup", "Scope", "check_fidelity", "one_entry_per_domain"]


class Scope(enum.Enum):
    """The names an entry covers besides its domain itself."""

    EXACT = "exact"  # none
    ONE_LEVEL = "one-level"  # names one label below (Apple's NSIncludesSubdomains)
    CHILDREN = "children"  # names one label below, not the domain itself (OkHttp's *.)
    ANY_DEPTH = "any-depth"  # every name below (includeSubdomains elsewhere, OkHttp's **.)


class Lookup(enum.Enum):
    MOST_SPECIFIC = "most-specific"
    EXACT_THEN_ANY = "exact-then-any"
    UNION = "union"


@dataclass(frozen=True)
class Entry:
    """One entry of a platform configuration. ``pins`` None: pinning off for its names."""

    domain: str
    scope: Scope
    rule: ExportRule
    enforce: bool
    pins: frozenset[str] | None

    def covers(self, host: str) -> bool:
        if host == self.domain:
            return self.scope is not Scope.CHILDREN
        if self.scope is Scope.EXACT or not host.endswith("." + self.domain):
            return False
        return self.scope is Scope.ANY_DEPTH or "." not in host[: -len(self.domain) - 1]


@dataclass(frozen=True)
class _Policy:
    enforce: bool
    pins: frozenset[str]
    source: str
    entry: Entry | None = None  # the one entry applied (None: several, as OkHttp's union)


def _policy(entry: Entry) -> _Policy | None:
    return (
        None if entry.pins is None else _Policy(entry.enforce, entry.pins, str(entry.rule), entry)
    )


def _platform_policy(
    entries: Sequence[Entry], host: str, lookup: Lookup
) -> _Policy | tuple[Entry, ...] | None:
    """What the platform applies to ``host``; a tuple of entries when it may pick either."""
    covering = [entry for entry in entries if entry.covers(host)]
    if lookup is Lookup.UNION:
        pinned = [entry for entry in covering if entry.pins is not None]
        if not pinned:
            return None
        pins = frozenset().union(*(entry.pins or () for entry in pinned))
        return _Policy(True, pins, " and ".join(str(entry.rule) for entry in pinned))
    exact = [entry for entry in covering if entry.domain == host]
    if exact:
        return _policy(exact[0])
    if not covering:
        return None
    if lookup is Lookup.EXACT_THEN_ANY:
        if len({(entry.enforce, entry.pins) for entry in covering}) > 1:
            return tuple(covering)
        return _policy(covering[0])
    return _policy(max(covering, key=lambda entry: len(entry.domain)))


def _sample_hosts(channel: ExportChannel) -> list[str]:
    hosts: set[str] = set()
    for rule in channel.rules:
        base = rule.pattern.base
        if rule.pattern.kind is PatternKind.EXACT:
            hosts.add(base)
        elif rule.pattern.kind is PatternKind.ONE_LABEL:
            hosts.add(f"a.{base}")
        else:
            hosts.update((base, f"a.{base}", f"a.a.{base}"))
    return sorted(hosts, key=lambda host: (host.count("."), host))


def check_fidelity(
    channel: ExportChannel,
    entries: Sequence[Entry],
    lookup: Lookup,
    findings: Findings,
    *,
    admits: Callable[[Entry, ExportRule], bool] | None = None,
) -> None:
    """Warn where the export pins less than pinwarden; refuse where it would enforce more.

    ``admits(entry, rule)`` replaces the comparison of pin sets for a platform that does not
    accept "any pin" (ATS): whether enforcing ``entry`` on a host accepts what pinwarden accepts
    there under ``rule``; a False is refused."""
    platform = findings.platform
    for host in _sample_hosts(channel):
        rule = channel.governing_rule(host)
        wanted = None if rule is None or rule.mode == "disabled" else rule
        got = _platform_policy(entries, host, lookup)
        if isinstance(got, tuple):
            findings.refuse(
                " and ".join(str(entry.rule) for entry in got),
                f"{platform} picks either entry for {host} (its subdomain lookup takes the first "
                "it finds, not the most specific); give them the same pins and mode, or export "
                "one of them",
            )
            continue
        if got is None or not got.enforce:
            if wanted is not None and str(wanted) not in findings.warned:
                if got is None:
                    findings.warn(wanted, f"{host} is not pinned by this export")
                elif wanted.mode == "enforce":
                    findings.warn(wanted, f"{host} is only reported, not enforced, by this export")
            continue
        if wanted is None or wanted.mode != "enforce":
            what = "no rule" if rule is None else f"rule {rule} ({rule.mode})"
            findings.refuse(
                rule or host,
                f"{platform} would enforce the pins of {got.source} on {host}, where pinwarden "
                f"has {what}; an app would refuse a chain pinwarden accepts",
            )
        elif admits is not None and got.entry is not None:
            if not admits(got.entry, wanted):
                findings.refuse(
                    wanted,
                    f"{platform} would check {host} against the identities written for "
                    f"{got.source}, which refuse chains this rule accepts",
                )
        elif got.pins != wanted.pin_values:
            if got.pins > wanted.pin_values:
                findings.warn(
                    wanted,
                    f"{platform} also accepts on {host} the pins of {got.source} (every "
                    "matching pattern counts)",
                )
            else:
                findings.refuse(
                    wanted,
                    f"{platform} would check {host} against {got.source}, which lacks pins "
                    f"this rule accepts; an app would refuse a chain pinwarden accepts",
                )


def one_entry_per_domain(entries: Sequence[Entry], findings: Findings) -> list[Entry]:
    """Platforms key their entries by domain, once each (Android refuses a domain named twice).
    ``x`` and ``**.x`` with the same pins and mode become the one ``**.x`` entry; otherwise the
    exact rule keeps the domain and the wildcard is left out, with a warning."""
    by_domain: dict[str, Entry] = {}
    for entry in entries:
        kept = by_domain.get(entry.domain)
        if kept is None:
            by_domain[entry.domain] = entry
            continue
        wider, exact = (kept, entry) if kept.scope is not Scope.EXACT else (entry, kept)
        if (wider.enforce, wider.pins) == (exact.enforce, exact.pins):
            by_domain[entry.domain] = wider
        else:
            findings.warn(
                wider.rule,
                f"{findings.platform} names each domain once and rule {exact.rule} has other "
                "pins or mode: left out",
            )
            by_domain[entry.domain] = exact
    return list(by_domain.values())
