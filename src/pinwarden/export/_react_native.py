"""``react-native``: the options object of ``react-native-ssl-public-key-pinning``'s
``initializeSslPinning``.

Its ``DomainOptions`` (``src/types.ts``): ``includeSubdomains``, ``publicKeyHashes`` (base64,
at least two: iOS runs TrustKit, which refuses fewer when enforcing) and ``expirationDate``
(``yyyy-MM-dd``). On iOS it is TrustKit (the exact domain, else any covering domain); on Android
OkHttp's ``CertificatePinner`` with ``**.domain`` for ``includeSubdomains`` (every matching
pattern counts). It always enforces: a report-only or disabled rule has no form, and neither has
a one-label wildcard. The date is chosen as for Android (``ExportSettings.local_date``), which is
never later than TrustKit's UTC reading needs.
"""

from __future__ import annotations

import json

from pinwarden._hosts import PatternKind
from pinwarden.export._fidelity import Entry, Lookup, Scope, check_fidelity, one_entry_per_domain
from pinwarden.export._model import ExportChannel, Exported, ExportRule, ExportSettings, Findings

__all__ = ["export_react_native"]

_PACKAGE = "react-native-ssl-public-key-pinning"
_MIN_PINS = 2


def _entry(rule: ExportRule, findings: Findings) -> Entry | None:
    if not findings.expressible_pattern(rule) or not findings.signer_policy_holds(rule):
        return None
    if rule.mode != "enforce":
        findings.warn(rule, f"{_PACKAGE} always enforces; a {rule.mode} rule is left out")
        return None
    if len(rule.pins) < _MIN_PINS:
        findings.refuse(rule, "TrustKit (its iOS side) refuses a domain with fewer than two pins")
        return None
    scope = Scope.EXACT if rule.pattern.kind is PatternKind.EXACT else Scope.ANY_DEPTH
    return Entry(rule.pattern.base, scope, rule, True, rule.pin_values)


def export_react_native(channel: ExportChannel, settings: ExportSettings) -> Exported:
    findings = Findings(_PACKAGE)
    entries = one_entry_per_domain(
        [entry for rule in channel.rules if (entry := _entry(rule, findings))], findings
    )
    options: dict[str, dict[str, object]] = {}
    kept: list[Entry] = []
    for entry in entries:
        expiration = settings.local_date(entry.rule)
        if expiration is None:
            findings.warn(entry.rule, "its pins expire before the next midnight: left out")
            continue
        kept.append(entry)
        options[entry.domain] = {
            "includeSubdomains": entry.scope is not Scope.EXACT,
            "publicKeyHashes": [pin.digest for pin in entry.rule.pins],
            "expirationDate": expiration.isoformat(),
        }
    for platform, lookup in (
        ("iOS (TrustKit)", Lookup.EXACT_THEN_ANY),
        ("Android (OkHttp)", Lookup.UNION),
    ):
        findings.platform = f"{_PACKAGE} on {platform}"
        check_fidelity(channel, kept, lookup, findings)
    findings.platform = _PACKAGE
    if not options:
        findings.refuse(
            channel.name, "TrustKit (its iOS side) refuses a configuration without domains"
        )
    return findings.result(json.dumps(options, indent=2, sort_keys=True) + "\n")
