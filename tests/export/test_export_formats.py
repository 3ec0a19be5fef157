"""Each platform export parsed back and held to the platform's own rules (docs/export.md).

The property test generates channels and checks, through the independent parsers and lookups of
``export_helpers``, that an export never makes a platform enforce pins where pinwarden does not,
never accepts fewer pins than pinwarden (except ATS, which checks by chain role), and never
leaves a pinned host unpinned without a warning naming its rule.
"""

from __future__ import annotations

import base64
import hashlib
import json
import plistlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pinwarden._hosts import HostPattern
from pinwarden.export import (
    FORMATS,
    ROLES,
    ExportChannel,
    ExportPin,
    ExportRefused,
    ExportRule,
    ExportSettings,
    export,
)
from tests.export.export_helpers import (
    Policy,
    android_lookup,
    ats_admits_what_pinwarden_does,
    ats_entry,
    ats_lookup,
    hosts_of,
    okhttp_lookup,
    parse_ats_plist,
    parse_network_security_config,
    parse_okhttp,
    parse_react_native,
    parse_trustkit_plist,
    pinwarden_policy,
    trustkit_lookup,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
SETTINGS = ExportSettings(now=NOW)
REPORT_URI = "https://pins.example.com/v1/reports"


def pin(name: str) -> str:
    return "sha256/" + base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()


LEAF, BACKUP, CA, ROOT = pin("leaf"), pin("backup"), pin("ca"), pin("root")


def rule(
    pattern: str, mode: str = "enforce", *pins: tuple[str, str], expires: datetime | None = None
) -> ExportRule:
    return ExportRule(
        HostPattern.parse(pattern), mode, tuple(ExportPin(p, r) for p, r in pins), expires
    )


API = rule("api.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
CDN = rule("**.cdn.example.com", "enforce", (CA, "intermediate"), (ROOT, "root"))


def channel(*rules: ExportRule) -> ExportChannel:
    return ExportChannel("com.example.app/prod", 7, REPORT_URI, rules)


# ---- android-nsc -------------------------------------------------------------------------------


def test_android_nsc_names_each_domain_once_with_sha256_pins_and_a_safe_expiration() -> None:
    exported = export("android-nsc", channel(API, CDN), SETTINGS)
    entries = parse_network_security_config(exported.text, trustkit=False)
    by_domain = {entry.domain: entry for entry in entries}
    assert set(by_domain) == {"api.example.com", "cdn.example.com"}
    assert not by_domain["api.example.com"].subdomains and by_domain["cdn.example.com"].subdomains
    assert by_domain["api.example.com"].pins == API.pin_values
    # A year after the export, less a day: midnight of that date in UTC-12 is before the expiry.
    assert by_domain["api.example.com"].expiration == date(2027, 11, 29)
    assert exported.warnings == ()


def test_android_nsc_writes_report_only_and_disabled_rules_unpinned_and_warns() -> None:
    report_only = rule("beta.example.com", "report-only", (LEAF, "leaf"))
    disabled = rule("old.cdn.example.com", "disabled")
    exported = export("android-nsc", channel(API, CDN, report_only, disabled), SETTINGS)
    entries = {e.domain: e for e in parse_network_security_config(exported.text, trustkit=False)}
    assert entries["beta.example.com"].pins is None and entries["old.cdn.example.com"].pins is None
    assert any("beta.example.com: " in w and "report-only" in w for w in exported.warnings)


def test_android_nsc_leaves_out_a_one_label_wildcard_with_a_warning() -> None:
    exported = export("android-nsc", channel(API, rule("*.img.example.com", "enforce",
                                                      (CA, "intermediate"))), SETTINGS)  # fmt: skip
    domains = {e.domain for e in parse_network_security_config(exported.text, trustkit=False)}
    assert domains == {"api.example.com"}
    assert [w for w in exported.warnings if w.startswith("*.img.example.com: ")]


def test_a_domain_and_its_wildcard_merge_when_equal_and_keep_the_exact_rule_otherwise() -> None:
    same = rule("**.api.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
    exported = export("android-nsc", channel(API, same), SETTINGS)
    (entry,) = parse_network_security_config(exported.text, trustkit=False)
    assert entry.subdomains and entry.pins == API.pin_values and not exported.warnings
    other = rule("**.api.example.com", "enforce", (CA, "intermediate"), (ROOT, "root"))
    exported = export("android-nsc", channel(API, other), SETTINGS)
    (entry,) = parse_network_security_config(exported.text, trustkit=False)
    assert not entry.subdomains and entry.pins == API.pin_values
    assert [w for w in exported.warnings if w.startswith("**.api.example.com: ")]


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        # Midnight of the date in UTC-12 (12:00 UTC that day) must not be after the expiry.
        (datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc), date(2027, 3, 10)),
        (datetime(2027, 3, 10, 11, 59, tzinfo=timezone.utc), date(2027, 3, 9)),
    ],
)
def test_the_android_expiration_is_off_by_the_rule_expiry_in_every_time_zone(
    expires: datetime, expected: date
) -> None:
    expiring = rule("api.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "b"), expires=expires)
    exported = export("android-nsc", channel(expiring), SETTINGS)
    (entry,) = parse_network_security_config(exported.text, trustkit=False)
    assert entry.expiration == expected
    assert datetime(*expected.timetuple()[:3], tzinfo=timezone.utc) + timedelta(hours=12) <= (
        expires
    )


def test_a_rule_expiring_before_the_next_midnight_everywhere_is_left_out_with_a_warning() -> None:
    soon = rule("api.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"),
                expires=NOW + timedelta(hours=10))  # fmt: skip
    exported = export("android-nsc", channel(soon), SETTINGS)
    assert parse_network_security_config(exported.text, trustkit=False) == []
    assert any("expire" in warning for warning in exported.warnings)


def test_a_channel_name_cannot_end_the_xml_comment() -> None:
    hostile = ExportChannel("evil-->--<x/>\u202e", 1, None, (API,))
    text = export("android-nsc", hostile, SETTINGS).text
    root = ET.fromstring(text.encode())  # noqa: S314 - our own output
    assert [child.tag for child in root if isinstance(child.tag, str)] == ["domain-config"]


# ---- trustkit ----------------------------------------------------------------------------------


def test_trustkit_ios_sets_report_uris_disables_the_default_one_and_dates_in_utc() -> None:
    report_only = rule("beta.example.com", "report-only", (LEAF, "leaf"))
    exported = export("trustkit-ios", channel(API, CDN, report_only), SETTINGS)
    entries, domains = parse_trustkit_plist(exported.text)
    assert {e.domain: e.enforce for e in entries} == {
        "api.example.com": True,
        "cdn.example.com": True,
        "beta.example.com": False,  # TSKEnforcePinning false: TrustKit reports only
    }
    assert all(policy["TSKReportUris"] == [REPORT_URI] for policy in domains.values())
    # TrustKit reads the date as midnight UTC: the UTC date of the expiry, a year from now.
    assert domains["api.example.com"]["TSKExpirationDate"] == "2027-11-30"


def test_trustkit_refuses_an_enforced_rule_with_one_pin() -> None:
    single = rule("api.example.com", "enforce", (LEAF, "leaf"))
    for format_name in ("trustkit-ios", "trustkit-android", "react-native"):
        with pytest.raises(ExportRefused, match="fewer than two pins"):
            export(format_name, channel(single), SETTINGS)


def test_trustkit_ios_excludes_a_disabled_host_under_a_pinned_parent() -> None:
    disabled = rule("old.cdn.example.com", "disabled")
    _, domains = parse_trustkit_plist(export("trustkit-ios", channel(CDN, disabled), SETTINGS).text)
    assert domains["old.cdn.example.com"] == {"kSKExcludeSubdomainFromParentPolicy": True}


def test_trustkit_refuses_nested_subdomain_entries_it_would_pick_between_at_random() -> None:
    inner = rule("**.x.cdn.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
    with pytest.raises(ExportRefused, match="picks either entry"):
        export("trustkit-ios", channel(CDN, inner), SETTINGS)


def test_trustkit_android_exports_enforced_rules_only() -> None:
    report_only = rule("beta.example.com", "report-only", (LEAF, "leaf"), (BACKUP, "b"))
    exported = export("trustkit-android", channel(API, report_only), SETTINGS)
    entries = parse_network_security_config(exported.text, trustkit=True)
    assert [entry.domain for entry in entries] == ["api.example.com"]
    root = ET.fromstring(exported.text.encode())  # noqa: S314 - our own output
    assert [uri.text for uri in root.iter("report-uri")] == [REPORT_URI]
    assert any("Android 7+" in warning for warning in exported.warnings)


# ---- ios-plist (ATS) ---------------------------------------------------------------------------


def test_ios_plist_puts_each_pin_in_the_array_of_its_chain_role() -> None:
    exported = export("ios-plist", channel(API, CDN), SETTINGS)
    _, domains = parse_ats_plist(exported.text)
    leaf = [i["SPKI-SHA256-BASE64"] for i in domains["api.example.com"]["NSPinnedLeafIdentities"]]
    assert leaf == [LEAF[7:], BACKUP[7:]]
    assert "NSPinnedCAIdentities" not in domains["api.example.com"]
    assert len(domains["cdn.example.com"]["NSPinnedCAIdentities"]) == 2
    assert domains["cdn.example.com"]["NSIncludesSubdomains"] is True
    assert any("until the app is updated" in warning for warning in exported.warnings)
    assert any("one label below" in warning for warning in exported.warnings)


def test_ios_plist_refuses_a_pin_without_a_role_naming_it_and_the_command() -> None:
    unknown = rule("api.example.com", "enforce", (LEAF, "unspecified"), (BACKUP, "backup"))
    hinted = ExportSettings(now=NOW, role_hint=lambda pattern, p: f"run set-role {pattern} {p}")
    with pytest.raises(ExportRefused) as refused:
        export("ios-plist", channel(unknown), hinted)
    assert refused.value.problems == (
        f"api.example.com: pin {LEAF} has no chain role, which ATS needs: "
        f"run set-role api.example.com {LEAF}",
    )


def test_ios_plist_makes_a_mixed_rule_choose_which_identities_ats_checks() -> None:
    mixed = rule("api.example.com", "enforce", (LEAF, "leaf"), (CA, "intermediate"))
    with pytest.raises(ExportRefused, match="--ios-identities"):
        export("ios-plist", channel(mixed), SETTINGS)
    for choice, keys in (
        ("leaf", {"NSPinnedLeafIdentities"}),
        ("ca", {"NSPinnedCAIdentities"}),
        ("both", {"NSPinnedLeafIdentities", "NSPinnedCAIdentities"}),
    ):
        chosen = ExportSettings(now=NOW, ios_identities=choice)
        exported = export("ios-plist", channel(mixed), chosen)
        _, domains = parse_ats_plist(exported.text)
        assert set(domains["api.example.com"]) - {"NSIncludesSubdomains"} == keys
        assert any(w.startswith("api.example.com: ") for w in exported.warnings)


def test_ios_plist_refuses_to_enforce_another_rules_identities_where_a_rule_is_left_out() -> None:
    # ATS has no one-label wildcard: *.example.com is left out, and a.example.com falls to the
    # **.example.com entry, whose keys iOS would then require where pinwarden accepts others.
    wide = rule("**.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
    one_label = rule("*.example.com", "enforce", (CA, "leaf"), (ROOT, "backup"))
    for format_name in ("ios-plist", "android-nsc", "trustkit-ios"):
        with pytest.raises(ExportRefused, match=r"a\.example\.com"):
            export(format_name, channel(wide, one_label), SETTINGS)
    # The same keys in the same roles: iOS enforces what pinwarden does, with a warning.
    same = rule("*.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
    exported = export("ios-plist", channel(wide, same), SETTINGS)
    assert any(w.startswith("*.example.com: ") for w in exported.warnings)


def test_ios_plist_leaves_out_report_only_rules_with_a_warning() -> None:
    report_only = rule("beta.example.com", "report-only", (LEAF, "leaf"))
    exported = export("ios-plist", channel(API, report_only), SETTINGS)
    _, domains = parse_ats_plist(exported.text)
    assert set(domains) == {"api.example.com"}
    assert any(w.startswith("beta.example.com: ATS has no report-only") for w in exported.warnings)


# ---- okhttp, react-native, json ----------------------------------------------------------------


def test_okhttp_writes_patterns_as_okhttp_reads_them_and_notes_its_version() -> None:
    one_label = rule("*.img.example.com", "enforce", (CA, "intermediate"), (ROOT, "root"))
    exported = export("okhttp", channel(API, CDN, one_label), SETTINGS)
    assert parse_okhttp(exported.text) == [
        ("api.example.com", API.pin_values),
        ("**.cdn.example.com", CDN.pin_values),
        ("*.img.example.com", one_label.pin_values),
    ]
    assert '// "**." patterns need OkHttp 4.3.0 or later.' in exported.text.splitlines()


def test_every_rule_expiry_a_format_cannot_write_is_a_warning() -> None:
    expiring = rule("api.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"),
                    expires=NOW + timedelta(days=30))  # fmt: skip
    for format_name in ("okhttp", "ios-plist"):
        exported = export(format_name, channel(expiring, CDN), SETTINGS)
        assert [w for w in exported.warnings if w.startswith("api.example.com: ")
                and "2026-12-30" in w], format_name  # fmt: skip
    # Formats with an expiry write it instead (no warning for it).
    for format_name in ("android-nsc", "trustkit-ios", "trustkit-android", "react-native"):
        exported = export(format_name, channel(expiring, CDN), SETTINGS)
        assert not [w for w in exported.warnings if "2026-12-30" in w], format_name


def test_okhttp_warns_that_a_host_under_two_patterns_accepts_both() -> None:
    inner = rule("api.cdn.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup"))
    exported = export("okhttp", channel(CDN, inner), SETTINGS)
    assert any("every matching pattern counts" in warning for warning in exported.warnings)


def test_react_native_options_parse_as_json_with_two_hashes_per_domain() -> None:
    exported = export("react-native", channel(API, CDN), SETTINGS)
    entries = {entry.domain: entry for entry in parse_react_native(exported.text)}
    assert entries["cdn.example.com"].subdomains and not entries["api.example.com"].subdomains
    assert entries["api.example.com"].pins == API.pin_values


def test_json_round_trips_the_rules_with_roles() -> None:
    document = json.loads(export("json", channel(API, CDN), SETTINGS).text)
    assert document["rules"][0] == {
        "pattern": "api.example.com",
        "mode": "enforce",
        "pins": [{"pin": LEAF, "role": "leaf"}, {"pin": BACKUP, "role": "backup"}],
        "expires": None,
    }


def test_every_exported_plist_is_a_valid_xml_plist() -> None:
    for format_name in ("ios-plist", "trustkit-ios"):
        text = export(format_name, channel(API, CDN), SETTINGS).text
        assert isinstance(plistlib.loads(text.encode()), dict)


# ---- the property: never more pinning than pinwarden, never less without a warning -------------

_BASES = ("example.com", "api.example.com", "cdn.example.com", "x.cdn.example.com")
_PREFIXES = ("", "*.", "**.")
_PINS = (LEAF, BACKUP, CA, ROOT)


@st.composite
def _channels(draw: st.DrawFn) -> ExportChannel:
    patterns = draw(
        st.lists(
            st.tuples(st.sampled_from(_PREFIXES), st.sampled_from(_BASES)),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    rules = []
    for prefix, base in patterns:
        mode = draw(st.sampled_from(("enforce", "enforce", "report-only", "disabled")))
        pins = draw(st.lists(st.sampled_from(_PINS), min_size=mode != "disabled", max_size=3,
                             unique=True))  # fmt: skip
        roles = draw(st.lists(st.sampled_from(ROLES), min_size=len(pins), max_size=len(pins)))
        rules.append(rule(prefix + base, mode, *zip(pins, roles, strict=True)))
    return channel(*rules)


Lookup = Callable[[str], Policy | str]


def _platform(format_name: str, text: str) -> list[tuple[Lookup, str]]:
    """(host lookup, label) pairs: a function of a host for each platform the format targets."""
    if format_name in ("android-nsc", "trustkit-android"):
        entries = parse_network_security_config(text, trustkit=format_name != "android-nsc")
        return [(lambda h: android_lookup(entries, h), "android")]
    if format_name == "trustkit-ios":
        entries, _ = parse_trustkit_plist(text)
        return [(lambda h: trustkit_lookup(entries, h), "trustkit")]
    if format_name == "ios-plist":
        entries, _ = parse_ats_plist(text)
        return [(lambda h: ats_lookup(entries, h), "ats")]
    if format_name == "okhttp":
        added = parse_okhttp(text)
        return [(lambda h: okhttp_lookup(added, h), "okhttp")]
    entries = parse_react_native(text)  # iOS: TrustKit; Android: OkHttp with **. patterns
    added = [(("**." if e.subdomains else "") + e.domain, e.pins or frozenset()) for e in entries]
    return [
        (lambda h: trustkit_lookup(entries, h), "trustkit"),
        (lambda h: okhttp_lookup(added, h), "okhttp"),
    ]


@pytest.mark.parametrize("format_name", [name for name in FORMATS if name != "json"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=_channels(), identities=st.sampled_from(("auto", "leaf", "ca", "both")))
@example(  # ATS leaves out *.example.com, then enforces **.example.com's keys on a.example.com
    generated=channel(
        rule("**.example.com", "enforce", (LEAF, "leaf"), (BACKUP, "backup")),
        rule("*.example.com", "enforce", (CA, "leaf"), (ROOT, "backup")),
    ),
    identities="auto",
)
def test_an_export_never_enforces_more_than_pinwarden_nor_less_without_a_warning(
    format_name: str, generated: ExportChannel, identities: str
) -> None:
    chosen = ExportSettings(now=NOW, ios_identities=identities)
    try:
        exported = export(format_name, generated, chosen)
    except ExportRefused as refused:
        assert refused.problems
        return
    for lookup, label in _platform(format_name, exported.text):
        for host in hosts_of(generated):
            got, wanted = lookup(host), pinwarden_policy(generated, host)
            assert not isinstance(got, str), (label, host)  # UNDECIDABLE
            governing = generated.governing_rule(host)
            if got is not None and got[0]:
                assert wanted is not None and wanted[0], (label, host, got, wanted)
                assert governing is not None
                if label == "ats":  # ATS checks by chain role, not "any pin"
                    entry = ats_entry(parse_ats_plist(exported.text)[0], host)
                    assert entry is not None
                    assert ats_admits_what_pinwarden_does(entry, governing, identities), (
                        host, entry, governing,
                    )  # fmt: skip
                else:
                    assert got[1] >= wanted[1], (label, host, got, wanted)
            elif wanted is not None and (wanted[0] or got is None):
                assert governing is not None
                assert any(w.startswith(f"{governing}: ") for w in exported.warnings), (
                    label, host, exported.warnings,
                )  # fmt: skip
