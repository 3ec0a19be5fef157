"""``ios-plist`` (App Transport Security's ``NSPinnedDomains``) and ``trustkit-ios``, both as
Info.plist fragments.

ATS (iOS 14+, Apple's Information Property List reference): ``NSPinnedDomains`` maps a domain to
``NSIncludesSubdomains`` (the domain and names *one* label below it),
``NSPinnedLeafIdentities`` and ``NSPinnedCAIdentities`` (arrays of ``{SPKI-SHA256-BASE64: …}``).
ATS blocks a connection unless the leaf's key is in the first array, and some CA's key in the
second; when both are given, both must match. pinwarden accepts a chain when *any* of its keys is
pinned, so a pin's chain role decides its array, and a rule with leaf and CA pins has no faithful
ATS form (``--ios-identities`` chooses). ATS has no report-only mode and no expiry: its pins last
until the app is updated.

TrustKit (``parse_configuration.m``, ``configuration_utils.m``): ``TSKConfiguration`` →
``TSKPinnedDomains`` → domain → ``TSKPublicKeyHashes`` (at least two when enforcing),
``TSKEnforcePinning``, ``TSKIncludeSubdomains`` (every name below), ``TSKExpirationDate``
(``yyyy-MM-dd`` read as UTC midnight), ``TSKReportUris``, ``TSKDisableDefaultReportUri`` (set:
reports go to the channel's report URI only, never to TrustKit's default collector). A disabled
exact host under a pinned parent becomes TrustKit's exclusion key, whose string value in
TrustKit's source is ``kSKExcludeSubdomainFromParentPolicy``.
"""

from __future__ import annotations

import plistlib
from collections.abc import Callable
from typing import Any

from pinwarden._hosts import PatternKind
from pinwarden.export._fidelity import (
    Entry,
    Lookup,
    Scope,
    check_fidelity,
    one_entry_per_domain,
)
from pinwarden.export._model import (
    UNSPECIFIED_ROLE,
    ExportChannel,
    Exported,
    ExportPin,
    ExportRule,
    ExportSettings,
    Findings,
)

__all__ = ["IOS_IDENTITIES", "export_ios_plist", "export_trustkit_ios"]

IOS_IDENTITIES = ("auto", "leaf", "ca", "both")
_SPKI_KEY = "SPKI-SHA256-BASE64"
# TrustKit's kTSKExcludeSubdomainFromParentPolicy is this string (sic) in TSKTrustKitConfig.m.
_TSK_EXCLUDE = "kSKExcludeSubdomainFromParentPolicy"
_MIN_TRUSTKIT_PINS = 2


def _plist(value: dict[str, Any]) -> str:
    return plistlib.dumps(value, fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")


# ---- App Transport Security --------------------------------------------------------------------


def _chosen(
    pins: tuple[ExportPin, ...], choice: str
) -> tuple[tuple[ExportPin, ...], tuple[ExportPin, ...]]:
    """The pins ATS gets as leaf and as CA identities, by role and ``--ios-identities``."""
    leaf = tuple(pin for pin in pins if not pin.is_ca)
    ca = tuple(pin for pin in pins if pin.is_ca)
    if leaf and ca and choice in ("leaf", "ca"):
        return (leaf, ()) if choice == "leaf" else ((), ca)
    return leaf, ca


def _digests(pins: tuple[ExportPin, ...]) -> frozenset[str]:
    return frozenset(pin.digest for pin in pins)


def _identities(
    rule: ExportRule, settings: ExportSettings, findings: Findings
) -> dict[str, list[dict[str, str]]] | None:
    """The leaf and CA identity arrays of a rule, by its pins' chain roles."""
    unknown = [pin for pin in rule.pins if pin.role == UNSPECIFIED_ROLE]
    for pin in unknown:
        hint = settings.role_hint(str(rule.pattern), pin.pin)
        findings.refuse(rule, f"pin {pin.pin} has no chain role, which ATS needs: {hint}")
    if unknown:
        return None
    choice = settings.ios_identities
    leaf, ca = _chosen(rule.pins, "both")
    if leaf and ca:
        if choice == "auto":
            findings.refuse(
                rule,
                "has leaf and CA pins; ATS requires a match in each list when both are given "
                "(pinwarden accepts any one pin): choose with --ios-identities leaf, ca or both",
            )
            return None
        if choice == "both":
            findings.warn(rule, "on iOS a chain needs a pinned leaf key AND a pinned CA")
        else:
            dropped = "CA" if choice == "leaf" else "leaf and backup"
            findings.warn(
                rule,
                f"its {dropped} pins are left out (--ios-identities {choice}); iOS refuses a "
                "chain that only they would match",
            )
        leaf, ca = _chosen(rule.pins, choice)
    arrays = {"NSPinnedLeafIdentities": leaf, "NSPinnedCAIdentities": ca}
    return {key: [{_SPKI_KEY: pin.digest} for pin in pins] for key, pins in arrays.items() if pins}


def _ats_admits(choice: str) -> Callable[[Entry, ExportRule], bool]:
    """Whether ATS, enforcing the identities written for ``entry`` on a host, accepts the chains
    pinwarden accepts there under ``wanted``: the arrays ``wanted`` itself gets (its role choice
    was warned about), or one array holding all of its pins in their role. Roles are the pin
    server's records, not signed (docs/export.md): a wanted pin without one admits nothing."""

    def admits(entry: Entry, wanted: ExportRule) -> bool:
        if any(pin.role == UNSPECIFIED_ROLE for pin in wanted.pins):
            return False
        leaf, ca = map(_digests, _chosen(entry.rule.pins, choice))
        if (leaf, ca) == tuple(map(_digests, _chosen(wanted.pins, choice))):
            return True
        wanted_leaf, wanted_ca = map(_digests, _chosen(wanted.pins, "both"))
        if wanted_leaf and wanted_ca:
            return False
        return not ca and wanted_leaf <= leaf if wanted_leaf else not leaf and wanted_ca <= ca

    return admits


def _ats_entry(rule: ExportRule, findings: Findings) -> Entry | None:
    if not findings.expressible_pattern(rule):
        return None
    if rule.mode != "enforce":
        findings.warn(rule, f"ATS has no {rule.mode} form (no entry means unpinned): left out")
        return None
    if rule.pattern.kind is PatternKind.EXACT:
        return Entry(rule.pattern.base, Scope.EXACT, rule, True, rule.pin_values)
    findings.warn(
        rule,
        "ATS's NSIncludesSubdomains covers one label below the domain: names deeper than "
        f"a.{rule.pattern.base} are not pinned on iOS",
    )
    return Entry(rule.pattern.base, Scope.ONE_LEVEL, rule, True, rule.pin_values)


def export_ios_plist(channel: ExportChannel, settings: ExportSettings) -> Exported:
    findings = Findings("App Transport Security")
    entries = [entry for rule in channel.rules if (entry := _ats_entry(rule, findings))]
    domains: dict[str, Any] = {}
    kept: list[Entry] = []
    for entry in one_entry_per_domain(entries, findings):
        identities = _identities(entry.rule, settings, findings)
        if identities is not None:
            kept.append(entry)
            domains[entry.domain] = {
                "NSIncludesSubdomains": entry.scope is not Scope.EXACT,
                **identities,
            }
    check_fidelity(
        channel, kept, Lookup.MOST_SPECIFIC, findings, admits=_ats_admits(settings.ios_identities)
    )
    findings.warn_unwritten_expiries(entry.rule for entry in kept)
    findings.warn(
        "NSPinnedDomains",
        "ATS pins have no expiry and cannot change until the app is updated: ship an update "
        "before these keys change, and keep a backup pin in every domain",
    )
    return findings.result(_plist({"NSAppTransportSecurity": {"NSPinnedDomains": domains}}))


# ---- TrustKit ----------------------------------------------------------------------------------


def _trustkit_entry(rule: ExportRule, findings: Findings) -> Entry | None:
    if not findings.expressible_pattern(rule) or not findings.signer_policy_holds(rule):
        return None
    scope = Scope.EXACT if rule.pattern.kind is PatternKind.EXACT else Scope.ANY_DEPTH
    if rule.mode == "disabled":
        return Entry(rule.pattern.base, scope, rule, False, None)
    if rule.mode == "enforce" and len(rule.pins) < _MIN_TRUSTKIT_PINS:
        findings.refuse(rule, "TrustKit refuses an enforced domain with fewer than two pins")
        return None
    return Entry(rule.pattern.base, scope, rule, rule.mode == "enforce", rule.pin_values)


def _has_pinned_parent(entry: Entry, entries: list[Entry]) -> bool:
    return any(
        other.pins is not None
        and other.scope is Scope.ANY_DEPTH
        and entry.domain.endswith("." + other.domain)
        for other in entries
    )


def _trustkit_policy(
    entry: Entry, channel: ExportChannel, settings: ExportSettings, findings: Findings
) -> dict[str, Any] | None:
    if entry.pins is None:
        return {_TSK_EXCLUDE: True}
    expiration = settings.utc_date(entry.rule)
    if expiration is None:
        findings.warn(entry.rule, "its pins expire before the next midnight UTC: left out")
        return None
    policy: dict[str, Any] = {
        "TSKPublicKeyHashes": [pin.digest for pin in entry.rule.pins],
        "TSKEnforcePinning": entry.enforce,
        "TSKIncludeSubdomains": entry.scope is not Scope.EXACT,
        "TSKExpirationDate": expiration.isoformat(),
        "TSKDisableDefaultReportUri": True,
    }
    if channel.report_uri is not None:
        policy["TSKReportUris"] = [channel.report_uri]
    return policy


def export_trustkit_ios(channel: ExportChannel, settings: ExportSettings) -> Exported:
    findings = Findings("TrustKit")
    entries = one_entry_per_domain(
        [entry for rule in channel.rules if (entry := _trustkit_entry(rule, findings))], findings
    )
    kept: list[Entry] = []
    domains: dict[str, Any] = {}
    for entry in entries:
        if entry.pins is None and (
            entry.scope is not Scope.EXACT or not _has_pinned_parent(entry, entries)
        ):
            findings.warn(
                entry.rule,
                "TrustKit excludes only an exact name from a pinned parent domain: left out",
            )
            continue
        policy = _trustkit_policy(entry, channel, settings, findings)
        if policy is not None:
            kept.append(entry)
            domains[entry.domain] = policy
    check_fidelity(channel, kept, Lookup.EXACT_THEN_ANY, findings)
    if not domains:
        findings.refuse(channel.name, "TrustKit refuses a configuration without pinned domains")
    configuration = {"TSKSwizzleNetworkDelegates": False, "TSKPinnedDomains": domains}
    return findings.result(_plist({"TSKConfiguration": configuration}))
