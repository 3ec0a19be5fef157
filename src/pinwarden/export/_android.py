"""``android-nsc`` and ``trustkit-android``: ``res/xml/network_security_config.xml``.

Android's network security config (API 24+; AOSP ``XmlConfigSource``, ``ApplicationConfig``):
a ``<domain-config>`` per domain, each domain named once in the whole file, ``includeSubdomains``
covering the domain and every name below it (pinwarden's ``**.``), the entry naming the host
exactly winning over the longest covering one. ``<pin digest="SHA-256">`` is the only digest.
``<pin-set expiration="yyyy-MM-dd">`` is parsed in the device's time zone and turns pinning *off*
from that midnight on (``ExportSettings.local_date`` chooses it). A domain-config without a
pin-set is unpinned: that is how a ``disabled`` rule, and a ``report-only`` one (Android has no
report-only mode), are written.

TrustKit for Android reads the same file plus ``<trustkit-config>`` (report URIs,
``disableDefaultReportUri``, ``enforcePinning``); it needs at least two pins in *every*
domain-config, and on Android 7+ the OS enforces each ``<pin-set>`` itself whatever
``enforcePinning`` says, so only ``enforce`` rules are exported to it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pinwarden._hosts import PatternKind
from pinwarden.export._fidelity import (
    Entry,
    Lookup,
    Scope,
    check_fidelity,
    one_entry_per_domain,
)
from pinwarden.export._model import (
    ExportChannel,
    Exported,
    ExportRule,
    ExportSettings,
    Findings,
    comment_text,
)

__all__ = ["export_android_nsc", "export_trustkit_android"]

_MIN_TRUSTKIT_PINS = 2  # TrustKit-Android's DomainPinningPolicy


def _entry(rule: ExportRule, findings: Findings, *, trustkit: bool) -> Entry | None:
    if not findings.expressible_pattern(rule):
        return None
    scope = Scope.EXACT if rule.pattern.kind is PatternKind.EXACT else Scope.ANY_DEPTH
    if rule.mode != "enforce":
        if trustkit:
            why = (
                "TrustKit needs pins in every domain-config"
                if rule.mode == "disabled"
                else "Android 7+ enforces every <pin-set> whatever trustkit-config says"
            )
            findings.warn(rule, f"a {rule.mode} rule cannot be expressed ({why}): left out")
            return None
        if rule.mode == "report-only":
            findings.warn(rule, "Android has no report-only pinning: exported unpinned")
        return Entry(rule.pattern.base, scope, rule, False, None)
    if trustkit and len(rule.pins) < _MIN_TRUSTKIT_PINS:
        findings.refuse(rule, "TrustKit refuses a domain with fewer than two pins (add a backup)")
        return None
    return Entry(rule.pattern.base, scope, rule, True, rule.pin_values)


def _domain_config(
    entry: Entry,
    settings: ExportSettings,
    channel: ExportChannel,
    findings: Findings,
    *,
    trustkit: bool,
) -> ET.Element | None:
    config = ET.Element("domain-config")
    domain = ET.SubElement(config, "domain")
    domain.set("includeSubdomains", "false" if entry.scope is Scope.EXACT else "true")
    domain.text = entry.domain
    if entry.pins is None:
        return config
    expiration = settings.local_date(entry.rule)
    if expiration is None:
        findings.warn(entry.rule, "its pins expire before the next midnight everywhere: left out")
        return None
    pin_set = ET.SubElement(config, "pin-set", expiration=expiration.isoformat())
    for pin in entry.rule.pins:
        ET.SubElement(pin_set, "pin", digest="SHA-256").text = pin.digest
    if trustkit:
        options = ET.SubElement(
            config, "trustkit-config", enforcePinning="true", disableDefaultReportUri="true"
        )
        if channel.report_uri is not None:
            ET.SubElement(options, "report-uri").text = channel.report_uri
    return config


def _export(channel: ExportChannel, settings: ExportSettings, *, trustkit: bool) -> Exported:
    platform = "TrustKit for Android" if trustkit else "Android's network security config"
    findings = Findings(platform)
    entries = [
        entry
        for rule in channel.rules
        if (entry := _entry(rule, findings, trustkit=trustkit)) is not None
    ]
    configs = [
        (entry, config)
        for entry in one_entry_per_domain(entries, findings)
        if (config := _domain_config(entry, settings, channel, findings, trustkit=trustkit))
        is not None
    ]
    check_fidelity(channel, [entry for entry, _ in configs], Lookup.MOST_SPECIFIC, findings)
    root = ET.Element("network-security-config")
    root.append(
        ET.Comment(
            comment_text(
                f" pinwarden export of channel {channel.name} version {channel.version}; each "
                "pin-set expiration is read in the device's time zone and turns pinning off "
                "from that date on "
            )
        )
    )
    for _, config in sorted(configs, key=lambda pair: pair[0].domain):
        root.append(config)
    ET.indent(root, space="    ")
    text = '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
    return findings.result(text + "\n")


def export_android_nsc(channel: ExportChannel, settings: ExportSettings) -> Exported:
    return _export(channel, settings, trustkit=False)


def export_trustkit_android(channel: ExportChannel, settings: ExportSettings) -> Exported:
    return _export(channel, settings, trustkit=True)
