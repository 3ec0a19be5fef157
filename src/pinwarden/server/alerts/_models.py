"""Alerts and the webhook outbox.

An alert is one row per occurrence of a condition: ``open_key`` is the condition's key while the
alert is open and NULL once resolved, and is unique, so a condition has at most one open alert
on every backend (NULLs never collide in a unique constraint, on SQLite and PostgreSQL alike).
Each opening and resolution queues one outbox row per webhook endpoint in the same transaction;
its ``message_id`` is stable, so a retry or a restart sends the same ``webhook-id`` again and a
receiver can tell a repeat from a new event (Standard Webhooks, "Idempotency").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pinwarden.server._models import Base, utc_now

__all__ = ["Alert", "OutboxMessage"]


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(700))
    channel: Mapped[str | None] = mapped_column(String(200))
    open_key: Mapped[str | None] = mapped_column(String(800), unique=True)
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    opened_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(300))

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject": self.subject,
            "channel": self.channel,
            "state": "open" if self.resolved_at is None else "resolved",
            "summary": self.summary,
            "detail": self.detail,
            "opened_at": self.opened_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acked_at": self.acked_at.isoformat() if self.acked_at else None,
            "acked_by": self.acked_by,
        }


class OutboxMessage(Base):
    """One webhook message for one endpoint, kept until delivered or given up."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint", name="uq_webhook_outbox_message_endpoint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(100))
    endpoint: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
