"""What each dashboard page shows, read through the server's own modules (no logic of theirs
repeated here): channels and their versions, monitored hosts and their status, alerts,
suggestions, history with diffs, reports, certificates the CT watch saw.

Every function takes an open session and returns plain values for a template.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pinwarden._tls import certificate_facts
from pinwarden.export import chain_role
from pinwarden.server import _channels as channels
from pinwarden.server._models import Channel, PublishedDocument, ViolationReport
from pinwarden.server._publish import history, latest_document, published_rules
from pinwarden.server._reports import list_reports, summarize_reports
from pinwarden.server._safety import diff_rules
from pinwarden.server._snapshot import RuleSnapshot
from pinwarden.server.alerts import Alert, AlertKind, list_alerts
from pinwarden.server.ct import CtSighting
from pinwarden.server.freshness import FreshnessRound
from pinwarden.server.monitor import MonitoredHost
from pinwarden.server.suggest import Suggestion

__all__ = [
    "ChannelRow",
    "HostRow",
    "VersionRow",
    "channel_rows",
    "ct_sightings",
    "draft_changes",
    "host_rows",
    "open_alerts",
    "report_buckets",
    "report_tables",
    "reports_since",
    "served_chain",
    "suggestion_fingerprint",
    "version_rows",
]

# What the overview calls each host alert (issue 12: ok / expiring / mismatch / unreachable /
# no backup); a key change is shown as such.
_STATUS = {
    AlertKind.NO_PIN_MATCH.value: "mismatch",
    AlertKind.EXPIRING_WITHOUT_SUCCESSOR.value: "expiring",
    AlertKind.HOST_UNREACHABLE.value: "unreachable",
    AlertKind.NO_BACKUP_PIN.value: "no backup",
    AlertKind.KEY_CHANGED.value: "key changed",
}


@dataclass(frozen=True)
class ChannelRow:
    name: str
    description: str
    version: int | None
    published_at: datetime | None
    expires_at: datetime | None
    freshness: str  # "fresh", "expiring", "expired", "not published"
    resign_at: datetime | None
    freshness_error: str | None
    rules: int


def channel_rows(
    session: Session, now: datetime, freshness: FreshnessRound | None
) -> list[ChannelRow]:
    """Every channel with its newest version, its age, expiry and freshness."""
    expiring = {
        alert.channel
        for alert in list_alerts(session, kind=AlertKind.PINSET_EXPIRING.value, limit=1000)
    }
    planned = {entry.channel: entry for entry in (freshness.channels if freshness else [])}
    rows = []
    for channel in channels.list_channels(session):
        document = latest_document(session, channel)
        entry = planned.get(channel.name)
        if document is None:
            state = "not published"
        elif document.expires_at <= now:
            state = "expired"
        elif channel.name in expiring:
            state = "expiring"
        else:
            state = "fresh"
        rows.append(
            ChannelRow(
                channel.name,
                channel.description,
                document.version if document else None,
                document.created_at if document else None,
                document.expires_at if document else None,
                state,
                entry.resign_at if entry else None,
                entry.error if entry else None,
                len(channel.rules),
            )
        )
    return rows


@dataclass(frozen=True)
class HostRow:
    channel: str
    pattern: str
    host: str
    port: int
    checked_at: datetime
    statuses: tuple[str, ...]  # ("ok",) when nothing is wrong
    error: str | None
    chain: tuple[dict[str, Any], ...]

    @property
    def chain_pins(self) -> list[str]:
        return [str(certificate.get("pin")) for certificate in self.chain]

    @property
    def positions(self) -> list[str]:
        """Each certificate's place in the chain: leaf, intermediate or root."""
        return [chain_role(index, len(self.chain)) for index in range(len(self.chain))]


def host_rows(session: Session, channel: str | None = None) -> list[HostRow]:
    """Every monitored host (of ``channel``, or all) with the status its open alerts give it."""
    query = select(MonitoredHost).order_by(MonitoredHost.channel, MonitoredHost.pattern)
    if channel is not None:
        query = query.where(MonitoredHost.channel == channel)
    by_subject: dict[str, list[str]] = {}
    for alert in list_alerts(session, limit=1000):
        if alert.kind in _STATUS:
            by_subject.setdefault(alert.subject, []).append(_STATUS[alert.kind])
    rows = []
    for row in session.scalars(query):
        subject = f"{row.channel} {row.pattern} {row.host}:{row.port}"
        statuses = sorted(set(by_subject.get(subject, [])))
        if not statuses and row.consecutive_failures:
            statuses = ["unreachable"]
        rows.append(
            HostRow(
                row.channel,
                row.pattern,
                row.host,
                row.port,
                row.checked_at,
                tuple(statuses or ["ok"]),
                row.last_error,
                tuple(row.chain or ()),
            )
        )
    return rows


def open_alerts(session: Session, channel: str | None = None) -> list[Alert]:
    found = list_alerts(session, limit=200)
    return [alert for alert in found if channel is None or alert.channel == channel]


@dataclass(frozen=True)
class VersionRow:
    document: PublishedDocument
    changes: list[dict[str, Any]] = field(default_factory=list)


def version_rows(session: Session, name: str, limit: int = 50) -> list[VersionRow]:
    """The channel's versions, newest first, each with what it changed from the one before."""
    documents = history(session, name, limit=limit + 1)
    rows = []
    for index, document in enumerate(documents[:limit]):
        before = documents[index + 1] if index + 1 < len(documents) else None
        previous = published_rules(before) if before is not None else None
        rows.append(VersionRow(document, diff_rules(previous, published_rules(document))))
    return rows


def draft_changes(
    channel: Channel, latest: PublishedDocument | None
) -> tuple[tuple[RuleSnapshot, ...], list[dict[str, Any]]]:
    """The draft's rules and what publishing them would change."""
    draft = channels.draft_rules(channel)
    published = published_rules(latest) if latest is not None else None
    return draft, diff_rules(published, draft)


def suggestion_fingerprint(suggestion: Suggestion) -> str:
    """What *Apply and publish safely* was shown: its applicable changes, hashed. The form sends
    it back and the action refuses a suggestion that changed since (a new CT sighting or monitor
    finding must be seen before it is published)."""
    shown = sorted(
        (change.kind.value, change.pattern, change.pin or "") for change in suggestion.applicable
    )
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()


def ct_sightings(session: Session, channel: str, limit: int = 20) -> list[CtSighting]:
    """The certificates the CT watch saw for the channel's hosts (docs/ct.md): unpinned keys
    first, then the newest."""
    return list(
        session.scalars(
            select(CtSighting)
            .where(CtSighting.channel == channel)
            .order_by(CtSighting.pinned, CtSighting.seen_at.desc(), CtSighting.id.desc())
            .limit(limit)
        )
    )


def reports_since(session: Session, since: datetime) -> list[tuple[str, int]]:
    """Violation reports per host received since ``since``, most first."""
    rows = session.execute(
        select(ViolationReport.hostname, func.count())
        .where(ViolationReport.received_at >= since)
        .group_by(ViolationReport.hostname)
        .order_by(func.count().desc())
    ).all()
    return [(str(host), int(count)) for host, count in rows]


def report_buckets(
    session: Session, now: datetime, *, buckets: int = 24, width: timedelta = timedelta(hours=1)
) -> list[tuple[datetime, int]]:
    """Reports received per ``width``, the last ``buckets`` of them, oldest first."""
    start = now - width * buckets
    times = session.scalars(
        select(ViolationReport.received_at).where(ViolationReport.received_at >= start)
    )
    counts = Counter(int((at - start) / width) for at in times)
    return [(start + width * i, counts.get(i, 0)) for i in range(buckets)]


def served_chain(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The chain a report says the host served, certificate by certificate; a PEM that does
    not parse is shown as such (a report is anyone's input)."""
    shown = []
    for pem in payload.get("served-certificate-chain") or []:
        try:
            der = x509.load_pem_x509_certificate(str(pem).encode()).public_bytes(Encoding.DER)
            facts = certificate_facts(der)
        except (ValueError, TypeError, UnsupportedAlgorithm):  # a key of an unknown algorithm
            shown.append({"subject": "(not a certificate)", "pin": "", "not_after": ""})
            continue
        shown.append(
            {"subject": facts.subject, "pin": facts.pin, "not_after": facts.not_after.isoformat()}
        )
    return shown


def report_tables(session: Session) -> tuple[list[dict[str, Any]], list[Any]]:
    """The counts by host, app id and version, and the newest reports."""
    return summarize_reports(session)[:200], list_reports(session, limit=50)
