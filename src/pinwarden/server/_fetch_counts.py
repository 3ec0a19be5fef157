"""Pin-set fetches counted by channel and version: which pin set clients end up holding.

The pin-set path (``PinsetEndpoint``) calls ``FetchCounter.count`` once per 200 or 304: a
dictionary increment on the event loop, no database write per request. A 200 of version v and a
304 for the ETag of version v both leave the client holding v (RFC 9110 §15.4.5: a 304 confirms
the stored representation is current), so both count for v. A loop (``Services.run_operations``)
moves the counts into ``pinset_fetch_counts`` every few seconds, one row per channel, version,
replica and minute, so every replica's counts add up when read.

These are fetches, not devices: a client fetches once per refresh interval and after each push,
so the numbers weigh versions by recent traffic. ``addresses`` is the count of distinct client
addresses in that minute on that replica (capped); many devices share an address behind NAT
and one device changes addresses, so it is a rough gauge of how many clients, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Index, Integer, String, UniqueConstraint, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from pinwarden.server._channels import get_channel
from pinwarden.server._metrics import Metrics
from pinwarden.server._models import Base, utc_now

__all__ = [
    "FETCH_RETENTION",
    "FETCH_RETENTION_SECONDS",
    "FLUSH_SECONDS",
    "PRUNE_EVERY",
    "FetchCount",
    "FetchCounter",
    "PendingFetches",
    "add_fetch_metrics",
    "fetch_report",
    "fetch_summary",
    "fetches_by_version",
    "prune_fetches",
    "store_fetches",
]

logger = logging.getLogger("pinwarden.server")

FLUSH_SECONDS = 5.0  # how far the stored counts may lag the served fetches
FETCH_RETENTION = timedelta(days=14)  # rows older than this are deleted (hourly)
PRUNE_EVERY = timedelta(hours=1)
FETCH_RETENTION_SECONDS = int(FETCH_RETENTION.total_seconds())
# Distinct addresses kept per channel and version in one minute: bounds the memory a flood of
# spoofed-looking addresses can take; past it the figure is a floor.
MAX_ADDRESSES = 100_000


class FetchCount(Base):
    """Fetches of one version of one channel served by one replica in one minute."""

    __tablename__ = "pinset_fetch_counts"
    __table_args__ = (
        UniqueConstraint(
            "channel", "version", "replica", "minute", name="uq_pinset_fetch_counts_channel"
        ),
        Index("ix_pinset_fetch_counts_channel_minute", "channel", "minute"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    replica: Mapped[str] = mapped_column(String(200))
    minute: Mapped[datetime]
    fetches: Mapped[int] = mapped_column(Integer)
    addresses: Mapped[int] = mapped_column(Integer)


@dataclass
class PendingFetches:
    """Counts taken from the counter, not yet stored: fetches since the last take, and the
    distinct addresses seen so far in ``minute``."""

    minute: datetime
    fetches: dict[tuple[str, int], int] = field(default_factory=dict)
    addresses: dict[tuple[str, int], int] = field(default_factory=dict)


def _minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class FetchCounter:
    """This process's counts since the last flush. Event-loop only: ``count`` and ``take`` run
    on the loop, so they need no lock; the database write of a take runs in a thread."""

    def __init__(self) -> None:
        self._fetches: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._addresses: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
        self._minute = _minute_of(utc_now())
        self._taken: defaultdict[str, int] = defaultdict(int)  # per channel, for /metrics
        self._next_prune: datetime | None = None  # None: at the first flush
        self.failed_flushes = 0

    def count(self, channel: str, version: int, address: str) -> None:
        """One client now holds ``version`` of ``channel`` (the hot path: keep it cheap)."""
        key = (channel, version)
        self._fetches[key] += 1
        seen = self._addresses[key]
        if len(seen) < MAX_ADDRESSES:
            seen.add(address)

    def totals(self) -> dict[str, int]:
        """Fetches counted per channel since this process started (taken or not)."""
        totals = dict(self._taken)
        for (channel, _), fetches in list(self._fetches.items()):
            totals[channel] = totals.get(channel, 0) + fetches
        return totals

    def take(self, now: datetime | None = None) -> PendingFetches:
        """The counts to store, and a fresh start; the address sets restart with each minute."""
        moment = now or utc_now()
        pending = PendingFetches(
            self._minute,
            dict(self._fetches),
            {key: len(seen) for key, seen in self._addresses.items()},
        )
        self._fetches.clear()
        for (channel, _), fetches in pending.fetches.items():
            self._taken[channel] += fetches
        minute = _minute_of(moment)
        if minute != self._minute:
            self._addresses.clear()
            self._minute = minute
        return pending

    def give_back(self, pending: PendingFetches) -> None:
        """Counts whose write failed: added again, so the next flush stores them."""
        for (channel, version), fetches in pending.fetches.items():
            self._fetches[channel, version] += fetches
            self._taken[channel] -= fetches

    async def flush(self, sessions: sessionmaker[Session], replica: str) -> bool:
        """Store the counts taken now (the write in a thread); on a database error keep them
        for the next flush and say so."""
        now = utc_now()
        pending = self.take(now)
        prune = self._next_prune is None or now >= self._next_prune
        if not pending.fetches and not prune:
            return True

        def write() -> None:
            with sessions.begin() as session:
                store_fetches(session, pending, replica)
                if prune:  # hourly, with traffic or without
                    prune_fetches(session, now)

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as error:
            self.give_back(pending)
            self.failed_flushes += 1
            logger.warning("pinwarden: cannot store pin-set fetch counts: %s", error)
            return False
        if prune:
            self._next_prune = now + PRUNE_EVERY
        return True

    async def flush_forever(
        self, sessions: sessionmaker[Session], replica: str, every: float = FLUSH_SECONDS
    ) -> None:
        """The flush loop of ``Services.run_operations``; cancel to stop."""
        while True:
            await asyncio.sleep(every)
            await self.flush(sessions, replica)


def store_fetches(session: Session, pending: PendingFetches, replica: str) -> None:
    """Add ``pending`` to this replica's rows (an upsert: the row of a minute grows over several
    flushes)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for (channel, version), fetches in sorted(pending.fetches.items()):
        insert = dialect.insert(FetchCount).values(
            channel=channel,
            version=version,
            replica=replica,
            minute=pending.minute,
            fetches=fetches,
            addresses=pending.addresses.get((channel, version), 0),
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["channel", "version", "replica", "minute"],
                set_={
                    "fetches": FetchCount.fetches + insert.excluded.fetches,
                    # The address set grows through the minute: its latest size is the figure.
                    "addresses": func.max(FetchCount.addresses, insert.excluded.addresses)
                    if dialect is sqlite
                    else func.greatest(FetchCount.addresses, insert.excluded.addresses),
                },
            )
        )


def prune_fetches(session: Session, now: datetime) -> None:
    """Delete the rows past ``FETCH_RETENTION`` (every replica's: any one may do it)."""
    session.execute(delete(FetchCount).where(FetchCount.minute < now - FETCH_RETENTION))


def fetches_by_version(
    session: Session, channel: str, *, since: datetime | None = None
) -> dict[int, int]:
    """Fetches of each version of ``channel`` over every replica (since ``since``, default all
    kept rows), as stored by the last flush of each replica."""
    query = select(FetchCount.version, func.sum(FetchCount.fetches)).where(
        FetchCount.channel == channel
    )
    if since is not None:
        query = query.where(FetchCount.minute >= _minute_of(since))
    rows = session.execute(query.group_by(FetchCount.version))
    return {int(version): int(total) for version, total in rows}


def fetch_summary(session: Session, channel: str, *, since: datetime) -> list[dict[str, int]]:
    """Per version since ``since``: fetches, and the busiest minute's distinct addresses
    summed over replicas (a rough count of clients, see the module docstring)."""
    per_minute = (
        select(
            FetchCount.version,
            FetchCount.minute,
            func.sum(FetchCount.addresses).label("addresses"),
        )
        .where(FetchCount.channel == channel, FetchCount.minute >= _minute_of(since))
        .group_by(FetchCount.version, FetchCount.minute)
        .subquery()
    )
    peak = select(per_minute.c.version, func.max(per_minute.c.addresses))
    peaks = {version: top for version, top in session.execute(peak.group_by(per_minute.c.version))}
    fetches = fetches_by_version(session, channel, since=since)
    return [
        {"version": version, "fetches": total, "addresses": int(peaks.get(version) or 0)}
        for version, total in sorted(fetches.items())
    ]


def add_fetch_metrics(metrics: Metrics, counter: FetchCounter) -> None:
    """``/metrics``: this replica's fetches per channel, and its failed flushes."""
    metrics.add_counter(
        "pinwarden_pinset_fetches_total",
        "Pin-set fetches (200 and 304) served by this replica, per channel.",
        lambda: [({"channel": c}, n) for c, n in sorted(counter.totals().items())],
    )
    metrics.add_counter(
        "pinwarden_fetch_count_flush_failures_total",
        "Flushes of the fetch counts that the database refused (retried at the next).",
        lambda: [({}, counter.failed_flushes)],
    )


def fetch_report(session: Session, channel: str, window_seconds: int) -> dict[str, Any]:
    """The admin API's view (``GET /v1/admin/channels/{channel}/fetches``): per version its
    fetches over the last ``window_seconds`` and their share of the channel's fetches."""
    name = get_channel(session, channel).name  # 404 for a channel that does not exist
    since = utc_now() - timedelta(seconds=window_seconds)
    versions = fetch_summary(session, name, since=since)
    total = sum(row["fetches"] for row in versions)
    return {
        "channel": name,
        "window_seconds": window_seconds,
        "since": _minute_of(since).isoformat(),
        "total": total,
        "versions": [{**row, "share": row["fetches"] / total} for row in versions],
        "counted": "fetches (200 and 304 responses), not devices; addresses: the busiest "
        "minute's distinct client addresses, a rough count of clients",
    }
