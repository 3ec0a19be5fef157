"""Opening and resolving alerts: one alert per occurrence of a condition, not one per check.

Whoever evaluates a condition (the monitor after a scan, freshness after a round, the report
surge check) calls ``AlertBook.observe`` with the condition present or absent, every time. The
book turns that level signal into two edges: the first "present" opens an alert, later ones only
refresh it, and the first "absent" after that resolves it. Each edge is logged and queues one
webhook message per endpoint in the caller's transaction (the outbox), so an edge is delivered
exactly when it is committed.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pinwarden.server._errors import NotFoundError
from pinwarden.server._models import utc_now
from pinwarden.server.alerts._models import Alert, OutboxMessage

__all__ = [
    "AlertBook",
    "AlertEvent",
    "AlertKind",
    "Condition",
    "list_alerts",
    "open_alert_counts",
]

logger = logging.getLogger("pinwarden.alerts")

Clock = Callable[[], datetime]


class AlertKind(str, enum.Enum):
    """Each condition the server watches; docs/operations.md says what to do about each."""

    NO_PIN_MATCH = "no-pin-match"
    EXPIRING_WITHOUT_SUCCESSOR = "expiring-without-successor"
    KEY_CHANGED = "key-changed"
    NO_BACKUP_PIN = "no-backup-pin"
    HOST_UNREACHABLE = "host-unreachable"
    PINSET_EXPIRING = "pinset-expiring"
    REPORT_SURGE = "report-surge"
    CT_UNPINNED_KEY = "ct-unpinned-key"  # docs/ct.md
    CT_LOG_MISBEHAVING = "ct-log-misbehaving"  # docs/ct.md


class AlertEvent(str, enum.Enum):
    OPENED = "alert.opened"
    RESOLVED = "alert.resolved"


@dataclass(frozen=True)
class Condition:
    """A condition found present: what, about what (``subject``), and what to tell people."""

    kind: AlertKind
    subject: str
    summary: str
    channel: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return condition_key(self.kind, self.subject)


def condition_key(kind: AlertKind, subject: str) -> str:
    return f"{kind.value}|{subject}"


class AlertBook:
    """``endpoints``: names of the webhook endpoints each edge is queued for."""

    def __init__(
        self,
        endpoints: Sequence[str] = (),
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._endpoints, self._clock = tuple(endpoints), clock

    def observe(
        self, session: Session, kind: AlertKind, subject: str, present: Condition | None
    ) -> AlertEvent | None:
        """Record whether the condition ``kind``/``subject`` holds now; the edge, if any."""
        if present is not None and (present.kind, present.subject) != (kind, subject):
            raise ValueError("the condition observed is not the one named")
        now = self._clock()
        alert = session.scalar(select(Alert).where(Alert.open_key == condition_key(kind, subject)))
        if present is None:
            if alert is None:
                return None
            alert.open_key, alert.resolved_at, alert.last_seen_at = None, now, now
            self._edge(session, alert, AlertEvent.RESOLVED)
            return AlertEvent.RESOLVED
        if alert is not None:
            alert.last_seen_at, alert.summary, alert.detail = now, present.summary, present.detail
            return None
        alert = Alert(
            kind=kind.value,
            subject=subject,
            channel=present.channel,
            open_key=present.key,
            summary=present.summary,
            detail=present.detail,
            opened_at=now,
            last_seen_at=now,
        )
        session.add(alert)
        session.flush()
        self._edge(session, alert, AlertEvent.OPENED)
        return AlertEvent.OPENED

    def acknowledge(self, session: Session, alert_id: int, actor: str) -> Alert:
        """Mark an alert as seen by ``actor``.

        A condition alert stays open until its condition clears. A key change is an event, not a
        state: acknowledging it is what closes it (unless the new key gets published first).
        """
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise NotFoundError(f"no alert #{alert_id}")
        if alert.acked_at is None:
            alert.acked_at, alert.acked_by = self._clock(), actor
        if alert.kind == AlertKind.KEY_CHANGED.value and alert.resolved_at is None:
            self.observe(session, AlertKind.KEY_CHANGED, alert.subject, None)
        return alert

    def _edge(self, session: Session, alert: Alert, event: AlertEvent) -> None:
        if event is AlertEvent.OPENED:
            logger.warning("pinwarden alert #%d opened: %s", alert.id, alert.summary)
        else:
            logger.info("pinwarden alert #%d resolved: %s", alert.id, alert.summary)
        now = self._clock()
        payload = {"type": event.value, "timestamp": now.isoformat(), "data": alert.view()}
        for endpoint in self._endpoints:
            session.add(
                OutboxMessage(
                    message_id=f"msg_alert{alert.id}_{event.name.lower()}",
                    endpoint=endpoint,
                    event_type=event.value,
                    payload=payload,
                    created_at=now,
                    next_attempt_at=now,
                    attempts=0,
                )
            )


def open_alert_counts(session: Session) -> dict[str, int]:
    """Open alerts per kind, every kind present (a zero included): the metric's samples."""
    counts = dict(
        session.execute(
            select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
        ).all()
    )
    return {kind.value: int(counts.get(kind.value, 0)) for kind in AlertKind}


def list_alerts(
    session: Session, *, state: str = "open", kind: str | None = None, limit: int = 100
) -> list[Alert]:
    """Alerts newest first; ``state`` is "open", "resolved" or "all"."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if state == "open":
        query = query.where(Alert.resolved_at.is_(None))
    elif state == "resolved":
        query = query.where(Alert.resolved_at.is_not(None))
    elif state != "all":
        raise ValueError(f"unknown alert state {state!r}: use open, resolved or all")
    if kind is not None:
        query = query.where(Alert.kind == kind)
    return list(session.scalars(query))
