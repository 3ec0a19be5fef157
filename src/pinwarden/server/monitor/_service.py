"""The server's monitor: every enabled rule's host, checked, remembered, turned into alerts.

A round reads the targets (rules, their published pins, probe settings) and what the previous
round left, scans without holding a database connection, then records each host's state and
observes each alert condition in one transaction. Violation-report surges are checked in the same
round. One replica at a time runs rounds (the ``monitor`` lease, taken by the caller's loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.errors import PinwardenError
from pinwarden.server._errors import NotFoundError
from pinwarden.server._livechain import probe_target
from pinwarden.server._models import Channel, PublishedDocument, ViolationReport, utc_now
from pinwarden.server._publish import published_rules
from pinwarden.server._snapshot import RuleSnapshot
from pinwarden.server.alerts import Alert, AlertBook, AlertKind, Condition
from pinwarden.server.freshness import take_lease
from pinwarden.server.monitor._evaluate import (
    HOST_KINDS,
    HostMemory,
    HostReport,
    MonitorPolicy,
    PublishedPin,
    RuleTarget,
    evaluate,
)
from pinwarden.server.monitor._models import MonitoredHost, ProbeSettings
from pinwarden.server.monitor._scan import ScanResult, ScanTarget, scan

__all__ = [
    "Monitor",
    "MonitorRound",
    "SkippedRule",
    "check_targets",
    "checked_channel_name",
    "published_pins_of",
    "rule_targets",
]

logger = logging.getLogger("pinwarden.monitor")

Clock = Callable[[], datetime]
_SEEN_PINS_KEPT = 50
_LEASE = "monitor"

# A monitored host: channel, pattern, TLS name, port.
HostKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class SkippedRule:
    channel: str
    pattern: str
    reason: str


@dataclass
class MonitorRound:
    at: datetime
    reports: list[HostReport] = field(default_factory=list)
    skipped: list[SkippedRule] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return any(report.needs_attention for report in self.reports)

    def view(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "needs_attention": self.needs_attention,
            "hosts": [report.view() for report in self.reports],
            "skipped": [vars(skipped) for skipped in self.skipped],
        }


def published_pins_of(
    rules: Sequence[RuleSnapshot], pattern: str
) -> tuple[PublishedPin, ...] | None:
    """The pins the published rules give ``pattern``; ``None`` if they have no such rule."""
    for rule in rules:
        if rule.pattern == pattern:
            return tuple(PublishedPin(entry.pin, entry.label) for entry in rule.pins)
    return None


def checked_channel_name(name: str) -> str:
    """``name`` if a database can hold it; else ``NotFoundError`` (a lone surrogate or NUL can
    name no channel, and would fail in the database driver instead)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFoundError(f"no channel {name!r}") from None
    if "\x00" in name:
        raise NotFoundError(f"no channel {name!r}")
    return name


def rule_targets(
    session: Session, channel_name: str | None = None
) -> tuple[list[RuleTarget], list[SkippedRule]]:
    """Every enabled rule's host, with its published pins and probe settings."""
    query = select(Channel).order_by(Channel.name)
    if channel_name is not None:
        query = query.where(Channel.name == checked_channel_name(channel_name))
    settings = {(s.channel, s.pattern): s for s in session.scalars(select(ProbeSettings))}
    targets: list[RuleTarget] = []
    skipped: list[SkippedRule] = []
    for channel in session.scalars(query):
        document = session.scalar(
            select(PublishedDocument)
            .where(PublishedDocument.channel_id == channel.id)
            .order_by(PublishedDocument.version.desc())
            .limit(1)
        )
        published = published_rules(document) if document is not None else None
        for rule in channel.rules:
            if rule.mode == "disabled":
                continue
            extra = settings.get((channel.name, rule.pattern))
            try:
                where = probe_target(rule.pattern, rule.probe_host, rule.probe_port)
            except PinwardenError as error:
                skipped.append(SkippedRule(channel.name, rule.pattern, str(error)))
                continue
            targets.append(
                RuleTarget(
                    channel.name,
                    rule.pattern,
                    rule.mode,
                    published_pins_of(published, rule.pattern) if published is not None else None,
                    ScanTarget(
                        where.server_name,
                        (extra.connect_to if extra else None) or where.address,
                        where.port,
                        extra.ca_bundle_pem if extra else None,
                    ),
                )
            )
    return targets, skipped


async def check_targets(
    targets: Sequence[RuleTarget],
    *,
    cafile: str | None,
    policy: MonitorPolicy,
    clock: Clock = utc_now,
    memories: Mapping[HostKey, HostMemory] | None = None,
    on_result: Callable[[ScanResult], None] | None = None,
) -> MonitorRound:
    """Scan the targets and evaluate each against what its previous check left (``memories``;
    none: a first check, as ``pinwarden monitor --once`` makes). Records nothing."""
    results = await scan(
        (target.scan for target in targets),
        cafile=cafile,
        concurrency=policy.concurrency,
        timeout=policy.timeout,
        clock=clock,
        on_result=on_result,
    )
    now = clock()
    known = memories or {}
    reports = [
        evaluate(target, result, known.get(_key(target), HostMemory()), policy, now)
        for target, result in zip(targets, results, strict=True)
    ]
    return MonitorRound(now, reports)


class Monitor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        alerts: AlertBook,
        *,
        cafile: str | None = None,
        policy: MonitorPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions, self._alerts, self._cafile = sessions, alerts, cafile
        self.policy = policy or MonitorPolicy()
        self._clock = clock
        self.last_round: MonitorRound | None = None
        self.checks: Counter[str] = Counter()  # "reached" / "failed", since start

    async def run_forever(
        self,
        holder: str,
        *,
        every: timedelta,
        per_channel: Mapping[str, timedelta] | None = None,
        tick: timedelta = timedelta(seconds=30),
    ) -> None:
        """Check each channel on its own schedule (``per_channel``, else ``every``), on one
        replica at a time (the ``monitor`` lease, renewed each ``tick``). The first check comes
        one tick after start, once the server serves. Cancel to stop."""
        schedule = dict(per_channel or {})
        next_due: dict[str, datetime] = {}
        while True:
            await asyncio.sleep(tick.total_seconds())
            try:
                for channel in await asyncio.to_thread(self._due, holder, next_due, tick):
                    await self.run_once(channel)
                    next_due[channel] = self._clock() + schedule.get(channel, every)
            except Exception:  # the schedule must outlive any one round
                logger.exception("pinwarden: a monitor round failed")

    def _due(self, holder: str, next_due: dict[str, datetime], tick: timedelta) -> list[str]:
        """The channels due now, if this replica holds the monitor lease."""
        now = self._clock()
        with self._sessions.begin() as session:
            if not take_lease(session, _LEASE, holder, now=now, duration=tick * 4):
                next_due.clear()  # another replica runs the schedule; start afresh on takeover
                return []
            names = session.scalars(select(Channel.name).order_by(Channel.name)).all()
        return [name for name in names if next_due.get(name, now) <= now]

    async def run_once(self, channel: str | None = None) -> MonitorRound:
        """Check every enabled rule's host (of ``channel``, or all); record; observe alerts."""
        targets, skipped, memories = await asyncio.to_thread(self._load, channel)
        outcome = await check_targets(
            targets,
            cafile=self._cafile,
            policy=self.policy,
            clock=self._clock,
            memories=memories,
        )
        outcome.skipped = skipped
        self.checks.update(
            "reached" if report.result.reachable else "failed" for report in outcome.reports
        )
        await asyncio.to_thread(self._record, outcome, channel)
        self.last_round = outcome
        return outcome

    def _load(
        self, channel: str | None
    ) -> tuple[list[RuleTarget], list[SkippedRule], dict[HostKey, HostMemory]]:
        with self._sessions() as session:
            targets, skipped = rule_targets(session, channel)
            memories = {
                (row.channel, row.pattern, row.host, row.port): _memory_of(session, row)
                for row in session.scalars(select(MonitoredHost))
            }
        return targets, skipped, memories

    def _record(self, outcome: MonitorRound, channel: str | None) -> None:
        with self._sessions.begin() as session:
            rows = {
                (row.channel, row.pattern, row.host, row.port): row
                for row in session.scalars(select(MonitoredHost))
            }
            for report in outcome.reports:
                self._remember(session, rows.get(_key(report.target)), report, outcome.at)
                present = {condition.kind: condition for condition in report.conditions}
                for kind in report.decided:
                    self._alerts.observe(session, kind, report.target.subject, present.get(kind))
            self._forget_gone_targets(session, outcome, channel)
            self._check_report_surges(session, outcome.at)

    def _remember(
        self, session: Session, row: MonitoredHost | None, report: HostReport, now: datetime
    ) -> None:
        target = report.target
        if row is None:
            row = MonitoredHost(
                channel=target.channel,
                pattern=target.pattern,
                host=target.scan.server_name,
                port=target.scan.port,
                chain=[],
                seen_pins=[],
            )
            session.add(row)
        row.checked_at = now
        row.consecutive_failures = report.memory.consecutive_failures
        row.last_error = report.result.error
        if report.result.reachable:
            row.leaf_pin = report.memory.leaf_pin
            row.chain = [certificate.view() for certificate in report.result.chain]
            chain_pins = [certificate.pin for certificate in report.result.chain]
            kept = [pin for pin in row.seen_pins or [] if pin not in chain_pins]
            row.seen_pins = (chain_pins + kept)[:_SEEN_PINS_KEPT]

    def _forget_gone_targets(
        self, session: Session, outcome: MonitorRound, channel: str | None
    ) -> None:
        """Resolve host alerts of rules removed or disabled since (within the round's scope)."""
        current = {report.target.subject for report in outcome.reports}
        query = select(Alert).where(
            Alert.resolved_at.is_(None), Alert.kind.in_([kind.value for kind in HOST_KINDS])
        )
        if channel is not None:
            query = query.where(Alert.channel == channel)
        for alert in session.scalars(query).all():
            if alert.subject not in current:
                self._alerts.observe(session, AlertKind(alert.kind), alert.subject, None)

    def _check_report_surges(self, session: Session, now: datetime) -> None:
        """A host with ``surge_reports`` or more violation reports in ``surge_window``."""
        since = now - self.policy.surge_window
        counts = dict(
            session.execute(
                select(ViolationReport.hostname, func.count())
                .where(ViolationReport.received_at >= since, ViolationReport.received_at <= now)
                .group_by(ViolationReport.hostname)
            ).all()
        )
        open_hosts = session.scalars(
            select(Alert.subject).where(
                Alert.kind == AlertKind.REPORT_SURGE.value, Alert.resolved_at.is_(None)
            )
        ).all()
        for host in sorted(set(counts) | set(open_hosts)):
            count = int(counts.get(host, 0))
            present = None
            if count >= self.policy.surge_reports:
                present = Condition(
                    AlertKind.REPORT_SURGE,
                    host,
                    f"{count} pin violation reports for {host} in the last "
                    f"{self.policy.surge_window}: clients refuse what this host serves them",
                    detail={
                        "reports": count,
                        "window_seconds": self.policy.surge_window.total_seconds(),
                    },
                )
            self._alerts.observe(session, AlertKind.REPORT_SURGE, host, present)


def _key(target: RuleTarget) -> HostKey:
    return (target.channel, target.pattern, target.scan.server_name, target.scan.port)


def _memory_of(session: Session, row: MonitoredHost) -> HostMemory:
    """The row, and the key change still open for it (with the key it changed from)."""
    subject = f"{row.channel} {row.pattern} {row.host}:{row.port}"
    change = session.scalar(
        select(Alert).where(
            Alert.kind == AlertKind.KEY_CHANGED.value,
            Alert.subject == subject,
            Alert.resolved_at.is_(None),
        )
    )
    previous = change.detail.get("previous_leaf_pin") if change is not None else None
    return HostMemory(
        row.leaf_pin,
        row.consecutive_failures,
        change is not None,
        previous if isinstance(previous, str) else None,
    )
