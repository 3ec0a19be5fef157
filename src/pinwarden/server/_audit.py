"""The audit log: every change records who, what, when and why, in the change's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden.server._models import AuditEntry

__all__ = ["list_audit", "record"]


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor, action=action, target=target, detail=detail or {}, reason=reason
    )
    session.add(entry)
    return entry


def list_audit(
    session: Session, *, target_prefix: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target_prefix:
        query = query.where(AuditEntry.target.startswith(target_prefix, autoescape=True))
    return list(session.scalars(query))
