"""The monitor: connects to every enabled rule's host, records the verified chain and what it
matches, and says which alert conditions hold (docs/operations.md, "What the server watches")."""

from __future__ import annotations

from pinwarden.server.monitor._evaluate import (
    HostMemory,
    HostReport,
    MonitorPolicy,
    PinMatch,
    PublishedPin,
    RuleTarget,
    evaluate,
)
from pinwarden.server.monitor._models import MonitoredHost, ProbeSettings
from pinwarden.server.monitor._scan import ScanResult, ScanTarget, scan
from pinwarden.server.monitor._service import (
    Monitor,
    MonitorRound,
    SkippedRule,
    check_targets,
    checked_channel_name,
    published_pins_of,
    rule_targets,
)
from pinwarden.server.monitor._settings import (
    MAX_CA_BUNDLE_CHARS,
    probe_settings_view,
    set_probe_settings,
)

__all__ = [
    "MAX_CA_BUNDLE_CHARS",
    "HostMemory",
    "HostReport",
    "Monitor",
    "MonitorPolicy",
    "MonitorRound",
    "MonitoredHost",
    "PinMatch",
    "ProbeSettings",
    "PublishedPin",
    "RuleTarget",
    "ScanResult",
    "ScanTarget",
    "SkippedRule",
    "check_targets",
    "checked_channel_name",
    "evaluate",
    "probe_settings_view",
    "published_pins_of",
    "rule_targets",
    "scan",
    "set_probe_settings",
]
