"""Each export parsed back with the platform's own kind of parser (the standard library's XML
parser, ``plistlib``, ``json``, and a check of OkHttp's pattern and pin syntax), and each
platform's lookup of a host name, written here from the platform's source, independently of
``pinwarden.export._fidelity``:

- Android (AOSP ``ApplicationConfig.getConfigForHostname``): exact domain, else the longest
  ``includeSubdomains`` domain above the host;
- Apple ATS: exact domain, else the domain one label above with ``NSIncludesSubdomains``;
- TrustKit (``getPinningConfigurationKeyForDomain``): exact domain, else any
  ``TSKIncludeSubdomains`` domain above (two with different policies: undecidable);
- OkHttp (``CertificatePinner.Pin.matchesHostname``): every matching pattern's pins.
"""

from __future__ import annotations

import base64
import json
import plistlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from typing import Any

from pinwarden.export import ExportChannel, ExportRule

# A policy for one host: (enforced, pins as sha256/… strings); None when the host is unpinned.
Policy = tuple[bool, frozenset[str]] | None
UNDECIDABLE = "undecidable"

_BASE64_DIGEST = re.compile(r"[A-Za-z0-9+/]{43}=")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def digest_ok(text: str) -> bool:
    """A base64 SHA-256 (what Android, Apple and TrustKit read): 32 bytes."""
    return bool(_BASE64_DIGEST.fullmatch(text)) and len(base64.b64decode(text)) == 32


def _under(host: str, domain: str) -> bool:
    return host.endswith("." + domain)


@dataclass(frozen=True)
class DomainEntry:
    domain: str
    subdomains: bool
    enforce: bool
    pins: frozenset[str] | None  # None: pinning off
    expiration: date | None = None
    ca_pins: frozenset[str] = frozenset()  # ATS: those of pins in NSPinnedCAIdentities


# ---- parsers -----------------------------------------------------------------------------------


def parse_network_security_config(text: str, *, trustkit: bool) -> list[DomainEntry]:
    """Parse as Android does, checking what its parser (XmlConfigSource) would refuse."""
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))  # noqa: S314 - our own output, as Android reads it
    assert root.tag == "network-security-config"
    entries, seen = [], set()
    for config in root:
        if not isinstance(config.tag, str):
            continue  # a comment
        assert config.tag == "domain-config"
        domains = config.findall("domain")
        assert len(domains) == 1
        name = (domains[0].text or "").strip().lower()
        assert name and name not in seen, f"{name} named twice (Android refuses the file)"
        seen.add(name)
        include = domains[0].get("includeSubdomains")
        assert include in ("true", "false")
        pin_sets = config.findall("pin-set")
        assert len(pin_sets) <= 1
        pins: frozenset[str] | None = None
        expiration = None
        if pin_sets:
            expiration_text = pin_sets[0].get("expiration", "")
            assert _DATE.fullmatch(expiration_text)
            expiration = date.fromisoformat(expiration_text)
            values = []
            for pin in pin_sets[0]:
                assert pin.tag == "pin" and pin.get("digest") == "SHA-256"
                assert digest_ok(pin.text or "")
                values.append("sha256/" + (pin.text or ""))
            assert values
            pins = frozenset(values)
        if trustkit:
            assert pins is not None and len(pins) >= 2  # DomainPinningPolicy
            options = config.find("trustkit-config")
            assert options is not None
            assert options.get("enforcePinning") == "true"
            assert options.get("disableDefaultReportUri") == "true"
        entries.append(DomainEntry(name, include == "true", True, pins, expiration))
    return entries


def parse_trustkit_plist(text: str) -> tuple[list[DomainEntry], dict[str, Any]]:
    configuration = plistlib.loads(text.encode("utf-8"))["TSKConfiguration"]
    assert configuration["TSKSwizzleNetworkDelegates"] is False
    domains = configuration["TSKPinnedDomains"]
    assert domains  # TrustKit refuses an empty TSKPinnedDomains
    entries = []
    for name, policy in domains.items():
        if policy.get("kSKExcludeSubdomainFromParentPolicy"):
            assert list(policy) == ["kSKExcludeSubdomainFromParentPolicy"]
            entries.append(DomainEntry(name, False, False, None))
            continue
        hashes = policy["TSKPublicKeyHashes"]
        assert all(digest_ok(value) for value in hashes)
        enforce = policy["TSKEnforcePinning"]
        assert len(set(hashes)) >= (2 if enforce else 1)  # parse_configuration.m
        assert policy["TSKDisableDefaultReportUri"] is True
        assert _DATE.fullmatch(policy["TSKExpirationDate"])
        entries.append(
            DomainEntry(
                name,
                policy["TSKIncludeSubdomains"],
                enforce,
                frozenset("sha256/" + value for value in hashes),
                date.fromisoformat(policy["TSKExpirationDate"]),
            )
        )
    return entries, domains


def parse_ats_plist(text: str) -> tuple[list[DomainEntry], dict[str, Any]]:
    domains = plistlib.loads(text.encode("utf-8"))["NSAppTransportSecurity"]["NSPinnedDomains"]
    entries = []
    for name, policy in domains.items():
        assert set(policy) <= {
            "NSIncludesSubdomains",
            "NSPinnedLeafIdentities",
            "NSPinnedCAIdentities",
        }
        identities = [
            *policy.get("NSPinnedLeafIdentities", []),
            *policy.get("NSPinnedCAIdentities", []),
        ]
        assert identities and all(list(item) == ["SPKI-SHA256-BASE64"] for item in identities)
        assert all(digest_ok(item["SPKI-SHA256-BASE64"]) for item in identities)
        pins = frozenset("sha256/" + item["SPKI-SHA256-BASE64"] for item in identities)
        ca = frozenset(
            "sha256/" + item["SPKI-SHA256-BASE64"]
            for item in policy.get("NSPinnedCAIdentities", [])
        )
        entries.append(DomainEntry(name, policy["NSIncludesSubdomains"], True, pins, None, ca))
    return entries, domains


_OKHTTP_ADD = re.compile(r'    \.add\("([^"\\$]+)"((?:, "sha256/[A-Za-z0-9+/]{43}=")+)\)')
_OKHTTP_PIN = re.compile(r'"(sha256/[A-Za-z0-9+/]{43}=)"')


def parse_okhttp(text: str) -> list[tuple[str, frozenset[str]]]:
    """The ``.add(pattern, pins…)`` calls, each pattern checked as OkHttp's ``Pin`` checks it."""
    lines = text.splitlines()
    start = lines.index("val certificatePinner = CertificatePinner.Builder()")
    assert all(line.startswith("// ") for line in lines[:start])
    assert lines[-1] == "    .build()"
    added = []
    for line in lines[start + 1 : -1]:
        match = _OKHTTP_ADD.fullmatch(line)
        assert match, line
        pattern = match.group(1)
        assert (
            (pattern.startswith("*.") and "*" not in pattern[1:])
            or (pattern.startswith("**.") and "*" not in pattern[2:])
            or "*" not in pattern
        )
        pins = _OKHTTP_PIN.findall(match.group(2))
        assert all(digest_ok(pin[len("sha256/") :]) for pin in pins)
        added.append((pattern, frozenset(pins)))
    return added


def parse_react_native(text: str) -> list[DomainEntry]:
    options = json.loads(text)
    entries = []
    for name, policy in options.items():
        assert set(policy) == {"includeSubdomains", "publicKeyHashes", "expirationDate"}
        hashes = policy["publicKeyHashes"]
        assert len(set(hashes)) >= 2 and all(digest_ok(value) for value in hashes)
        assert _DATE.fullmatch(policy["expirationDate"])
        pins = frozenset("sha256/" + value for value in hashes)
        entries.append(DomainEntry(name, policy["includeSubdomains"], True, pins))
    return entries


# ---- lookups -----------------------------------------------------------------------------------


def _policy(entry: DomainEntry) -> Policy:
    return None if entry.pins is None else (entry.enforce, entry.pins)


def android_lookup(entries: list[DomainEntry], host: str) -> Policy:
    for entry in entries:
        if entry.domain == host:
            return _policy(entry)
    above = [entry for entry in entries if entry.subdomains and _under(host, entry.domain)]
    return _policy(max(above, key=lambda entry: len(entry.domain))) if above else None


def ats_entry(entries: list[DomainEntry], host: str) -> DomainEntry | None:
    for entry in entries:
        if entry.domain == host:
            return entry
    parent = host.split(".", 1)[1] if "." in host else ""
    above = [entry for entry in entries if entry.subdomains and entry.domain == parent]
    return above[0] if above else None


def ats_lookup(entries: list[DomainEntry], host: str) -> Policy:
    entry = ats_entry(entries, host)
    return None if entry is None else _policy(entry)


def ats_admits_what_pinwarden_does(
    entry: DomainEntry, rule: ExportRule, ios_identities: str
) -> bool:
    """ATS requires the leaf's key in ``NSPinnedLeafIdentities`` (when given) and a CA's key in
    ``NSPinnedCAIdentities`` (when given); pinwarden accepts a chain holding any pin of ``rule``.
    ATS accepts every such chain only when one array is given and holds all the rule's pins (in
    the array of their roles). A rule with leaf and CA pins has no such form: then the arrays
    must be the ones ``--ios-identities`` chose for that rule (with a warning)."""
    ca = entry.ca_pins
    leaf = (entry.pins or frozenset()) - ca
    wanted_ca = frozenset(pin.pin for pin in rule.pins if pin.role in ("intermediate", "root"))
    wanted_leaf = rule.pin_values - wanted_ca
    if wanted_leaf and wanted_ca:
        chosen = {
            "leaf": (wanted_leaf, frozenset()),
            "ca": (frozenset(), wanted_ca),
            "both": (wanted_leaf, wanted_ca),
        }
        return chosen.get(ios_identities) == (leaf, ca)
    if wanted_ca:
        return not leaf and wanted_ca <= ca
    return not ca and wanted_leaf <= leaf


def trustkit_lookup(entries: list[DomainEntry], host: str) -> Policy | str:
    for entry in entries:
        if entry.domain == host:
            return _policy(entry)
    above = {_policy(entry) for entry in entries if entry.subdomains and _under(host, entry.domain)}
    if len(above) > 1:
        return UNDECIDABLE
    return above.pop() if above else None


def okhttp_lookup(added: list[tuple[str, frozenset[str]]], host: str) -> Policy:
    pins: set[str] = set()
    for pattern, values in added:
        if pattern.startswith("**."):
            matched = host == pattern[3:] or _under(host, pattern[3:])
        elif pattern.startswith("*."):
            matched = _under(host, pattern[2:]) and "." not in host[: -len(pattern) + 1]
        else:
            matched = host == pattern
        if matched:
            pins |= values
    return (True, frozenset(pins)) if pins else None


def pinwarden_policy(channel: ExportChannel, host: str) -> Policy:
    rule = channel.governing_rule(host)
    if rule is None or rule.mode == "disabled":
        return None
    return (rule.mode == "enforce", rule.pin_values)


def hosts_of(channel: ExportChannel) -> list[str]:
    """Every rule's base and names one and two labels below it."""
    names: set[str] = set()
    for rule in channel.rules:
        base = rule.pattern.base
        names.update((base, f"a.{base}", f"b.a.{base}"))
    return sorted(names)
