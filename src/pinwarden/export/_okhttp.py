"""``okhttp``: a Kotlin ``CertificatePinner.Builder()`` snippet.

OkHttp (``CertificatePinner.kt``): ``add(pattern, "sha256/…", …)`` with ``api.example.com``,
``*.example.com`` (one label) and ``**.example.com`` (any depth, the domain itself included;
OkHttp 4.3.0 and later). Every matching pattern's pins count, so a host under two rules accepts
the pins of both (a warning). OkHttp has no report-only mode, no way to switch pinning off under
a pinned pattern, and no expiry: a rule's ``expires`` is a warning, as its pins outlive it.
"""

from __future__ import annotations

from pinwarden._hosts import PatternKind
from pinwarden.export._fidelity import Entry, Lookup, Scope, check_fidelity
from pinwarden.export._model import (
    ExportChannel,
    Exported,
    ExportRule,
    ExportSettings,
    Findings,
    comment_text,
)

__all__ = ["export_okhttp"]


def _kotlin_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


_SCOPES = {
    PatternKind.EXACT: Scope.EXACT,
    PatternKind.ONE_LABEL: Scope.CHILDREN,
    PatternKind.ANY_DEPTH: Scope.ANY_DEPTH,
}


def _entry(rule: ExportRule, findings: Findings) -> Entry | None:
    if rule.mode != "enforce":
        findings.warn(rule, f"OkHttp has no {rule.mode} form: left out")
        return None
    return Entry(rule.pattern.base, _SCOPES[rule.pattern.kind], rule, True, rule.pin_values)


def export_okhttp(channel: ExportChannel, settings: ExportSettings) -> Exported:
    findings = Findings("OkHttp")
    entries = [entry for rule in channel.rules if (entry := _entry(rule, findings))]
    check_fidelity(channel, entries, Lookup.UNION, findings)
    findings.warn_unwritten_expiries(entry.rule for entry in entries)
    expiry = min((settings.pins_expire(entry.rule) for entry in entries), default=None)
    lines = [
        "// " + comment_text(f"pinwarden export of channel {channel.name} v{channel.version}"),
        "// OkHttp pins never expire: ship an app update with new pins before "
        + (f"{expiry:%Y-%m-%d}." if expiry else "these keys change."),
    ]
    if any(entry.rule.pattern.kind is PatternKind.ANY_DEPTH for entry in entries):
        lines.append('// "**." patterns need OkHttp 4.3.0 or later.')
    lines.append("val certificatePinner = CertificatePinner.Builder()")
    for entry in entries:
        pins = ", ".join(_kotlin_string(pin.pin) for pin in entry.rule.pins)
        lines.append(f"    .add({_kotlin_string(str(entry.rule.pattern))}, {pins})")
    lines.append("    .build()")
    return findings.result("\n".join(lines) + "\n")
