"""Keep the in-memory store in step with the database, and fan new versions out to replicas.

On PostgreSQL a publish queues ``NOTIFY pinwarden_published`` in its transaction; every replica
LISTENs on a psycopg 3 async connection and reloads on each notification, and after every
(re)connection in case it missed some. On SQLite (one host) the store polls. Either way the
database being down only stops updates: the store keeps serving what it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from pinwarden.server._database import is_postgresql, libpq_conninfo
from pinwarden.server._models import Channel, KeyringRecord, PublishedDocument
from pinwarden.server._store import PublishedStore, ServedDocument

__all__ = [
    "NOTIFY_CHANNEL",
    "StoreSync",
    "notify_replicas_postgresql",
    "notify_replicas_sqlite",
    "served_document",
]

logger = logging.getLogger("pinwarden.server")

NOTIFY_CHANNEL = "pinwarden_published"
_LISTEN_TIMEOUT = 30.0  # reload at least this often even without notifications
_MAX_BACKOFF = 10.0


def notify_replicas_postgresql(session: Session, channel: str, version: int) -> None:
    """Queue the NOTIFY in the publishing transaction: sent on commit, dropped on rollback."""
    payload = json.dumps({"channel": channel, "version": version})
    session.execute(
        text("SELECT pg_notify(:name, :payload)"), {"name": NOTIFY_CHANNEL, "payload": payload}
    )


def notify_replicas_sqlite(session: Session, channel: str, version: int) -> None:
    """SQLite has no NOTIFY; other processes on the same file find new versions by polling."""


@dataclass
class _Loaded:
    keyrings: list[tuple[int, bytes]] = field(default_factory=list)
    pinsets: list[tuple[str, ServedDocument]] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)
    quiet: set[tuple[str, int]] = field(default_factory=set)  # served, not pushed


FRESHNESS_ACTOR = "pinwarden-freshness"
"""Who publishes the freshness re-signatures. Every replica serves such a version without pushing
it: the rules did not change, and a push would make every client fetch at once for nothing
(docs/operations.md, "No push")."""


def served_document(document: PublishedDocument, refresh_seconds: int) -> ServedDocument:
    """A stored document as served; ``Cache-Control`` follows the refresh hint."""
    return ServedDocument.build(document.version, document.body, document.etag, refresh_seconds)


# Called on the event loop with each (channel, version) that became newer in the store.
OnNewVersion = Callable[[str, int], None]


class StoreSync:
    """Loads new versions from the database in a worker thread and applies them on the loop.

    ``on_new_version`` is called on the event loop; the store may be read from the worker thread
    because its maps are copy-on-write (``PublishedStore``).
    """

    def __init__(
        self,
        database_url: str,
        sessions: sessionmaker[Session],
        store: PublishedStore,
        on_new_version: OnNewVersion,
        on_database_state: Callable[[bool], None],
        *,
        poll_seconds: float,
    ) -> None:
        self._url, self._sessions, self._store = database_url, sessions, store
        self._on_new_version, self._on_database_state = on_new_version, on_database_state
        self._poll_seconds = poll_seconds

    def load(self) -> _Loaded:
        """Read what is newer than the store holds (blocking: run it in a worker thread)."""
        held, held_keyrings = self._store.versions(), self._store.keyring_versions()
        loaded = _Loaded()
        with self._sessions() as session:
            for record in session.scalars(
                select(KeyringRecord).where(KeyringRecord.version.not_in(held_keyrings))
            ):
                loaded.keyrings.append((record.version, record.body))
            newest = (
                select(PublishedDocument.channel_id, func.max(PublishedDocument.version).label("v"))
                .group_by(PublishedDocument.channel_id)
                .subquery()
            )
            heads = session.execute(
                select(Channel.id, Channel.name, Channel.refresh_seconds, newest.c.v).join(
                    newest, newest.c.channel_id == Channel.id
                )
            ).all()
            for channel_id, name, refresh_seconds, version in heads:
                if held.get(name, 0) < version:  # only then read the document's bytes
                    document = session.scalars(
                        select(PublishedDocument).where(
                            PublishedDocument.channel_id == channel_id,
                            PublishedDocument.version == version,
                        )
                    ).one()
                    loaded.pinsets.append((name, served_document(document, refresh_seconds)))
                    if document.published_by == FRESHNESS_ACTOR:
                        loaded.quiet.add((name, version))
            loaded.channels = set(session.scalars(select(Channel.name)))
        return loaded

    async def refresh(self) -> None:
        """Load in a thread, apply and announce on the loop; note whether the database answered."""
        try:
            loaded = await run_in_threadpool(self.load)
        except SQLAlchemyError as error:
            self._on_database_state(False)
            logger.warning("pinwarden: cannot reload published documents: %s", error)
            return
        self._on_database_state(True)
        self._store.put_keyrings(loaded.keyrings)
        self._store.set_channels(loaded.channels)
        for channel, version in self._store.put_pinsets(loaded.pinsets):
            if (channel, version) not in loaded.quiet:
                self._on_new_version(channel, version)

    async def run(self) -> None:
        """Forever: LISTEN on PostgreSQL, poll on SQLite. Cancel the task to stop."""
        if is_postgresql(self._url):
            await self._listen()
        else:
            while True:
                await asyncio.sleep(self._poll_seconds)
                try:
                    await self.refresh()
                except Exception:  # keep polling whatever one round did
                    logger.exception("pinwarden: reloading published documents failed")

    async def _listen(self) -> None:
        backoff = 0.5
        conninfo = libpq_conninfo(self._url)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=5
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    await self.refresh()  # whatever was published while not listening
                    while True:
                        async for _ in connection.notifies(timeout=_LISTEN_TIMEOUT, stop_after=1):
                            pass
                        await self.refresh()
            except (psycopg.Error, OSError) as error:
                self._on_database_state(False)
                logger.warning("pinwarden: LISTEN connection lost (%s); retrying", error)
            except Exception:  # the push must outlive any one failure: log it, start over
                logger.exception("pinwarden: the LISTEN loop failed; restarting it")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)
