"""A lease row per periodic job, so one replica at a time runs it when several share a database.

Taking the lease is one conditional UPDATE (free, expired, or already ours), or an INSERT when no
row exists yet; the unique primary key settles two replicas inserting at once. This works the same
on SQLite and PostgreSQL and needs no session-bound lock: a replica that dies simply stops
renewing, and another takes over once ``expires_at`` passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pinwarden.server.freshness._models import Lease

__all__ = ["take_lease"]


def take_lease(
    session: Session, name: str, holder: str, *, now: datetime, duration: timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until ``now + duration``; whether held."""
    renewed = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at <= now))
        .values(holder=holder, expires_at=now + duration)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount == 1:  # type: ignore[attr-defined]
        return True
    if session.get(Lease, name) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(Lease(name=name, holder=holder, expires_at=now + duration))
    except IntegrityError:
        return False
    return True
