"""Keeping every published pin set fresh: the server's own timestamp role (TUF).

A pin set expires ``ttl_seconds`` after it is signed. Well before that, once less than
``resign_when_left`` of the TTL remains (less a jitter fixed per channel and version, so channels
published together do not all re-sign in the same round), the server signs the channel's
published rules again as a new version through the publisher's ``resign`` entry point. What clients
enforce does not change; the new version is higher, so clients accept it under their version
floor. It is not pushed to event streams: clients take it at their next poll, which comes long
before the old version expires (docs/operations.md, "Freshness").

One replica at a time re-signs (the ``freshness`` lease). Every replica checks expiry: a pin set
within ``warn_within`` of expiring opens a ``pinset-expiring`` alert, whatever the cause (no
online key on any replica, a key that does not unlock, a database that refuses writes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.errors import PinwardenError
from pinwarden.server._models import Channel, PublishedDocument, utc_now
from pinwarden.server._publish import PublishOutcome
from pinwarden.server._sync import FRESHNESS_ACTOR
from pinwarden.server.alerts import AlertBook, AlertKind, Condition
from pinwarden.server.freshness._lease import take_lease

__all__ = [
    "FRESHNESS_ACTOR",
    "ChannelFreshness",
    "Freshener",
    "FreshnessPolicy",
    "FreshnessRound",
    "Resigner",
]

logger = logging.getLogger("pinwarden.freshness")

_LEASE = "freshness"

Clock = Callable[[], datetime]


class Resigner(Protocol):
    """The publisher's entry point that signs a channel's published rules again."""

    def resign(self, channel_name: str, actor: str, *, reason: str) -> PublishOutcome | None: ...


@dataclass(frozen=True)
class FreshnessPolicy:
    """``resign_when_left``: the fraction of the TTL left when a pin set is re-signed;
    ``jitter``: up to this fraction of the TTL earlier; ``warn_within``: how close to expiry a
    pin set opens an alert; ``lease``: how long one round's lease lasts (longer than a round)."""

    resign_when_left: float = 0.5
    jitter: float = 0.1
    warn_within: timedelta = timedelta(days=3)
    lease: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not 0 < self.resign_when_left < 1:
            raise ValueError("resign_when_left is a fraction of the TTL in (0, 1)")
        if not 0 <= self.jitter < 1 - self.resign_when_left:
            raise ValueError("jitter is a fraction in [0, 1 - resign_when_left)")
        if self.warn_within <= timedelta(0) or self.lease <= timedelta(0):
            raise ValueError("warn_within and lease must be positive")

    def resign_at(
        self, channel: str, version: int, expires_at: datetime, ttl: timedelta
    ) -> datetime:
        """When to re-sign this version: a fixed point per channel and version, so every round
        and every replica agree on it."""
        digest = hashlib.sha256(f"{channel}\0{version}".encode()).digest()
        spread = int.from_bytes(digest[:8], "big") / 2**64
        return expires_at - ttl * (self.resign_when_left + self.jitter * spread)


@dataclass(frozen=True)
class ChannelFreshness:
    channel: str
    version: int
    expires_at: datetime
    resign_at: datetime
    resigned_to: int | None = None
    error: str | None = None


@dataclass
class FreshnessRound:
    at: datetime
    held_lease: bool = False
    channels: list[ChannelFreshness] = field(default_factory=list)
    resigned: list[PublishOutcome] = field(default_factory=list)
    error: str | None = None  # the round could not read the database

    @property
    def failures(self) -> list[ChannelFreshness]:
        return [entry for entry in self.channels if entry.error is not None]


@dataclass(frozen=True)
class _Head:
    channel: str
    version: int
    expires_at: datetime
    ttl: timedelta


class Freshener:
    """One round at a time (``run_once``, blocking: run it in a thread).

    ``resigner`` is ``None`` on a replica without an unlocked online key: it then only watches
    expiry. ``run_forever`` runs rounds on a schedule and serves each new version on the loop.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        resigner: Resigner | None,
        alerts: AlertBook,
        *,
        holder: str,
        policy: FreshnessPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions, self._resigner, self._alerts = sessions, resigner, alerts
        self._holder, self._clock = holder, clock
        self._policy = policy or FreshnessPolicy()
        self.last_round: FreshnessRound | None = None
        self.resigns = 0
        self.failures = 0

    def run_once(self) -> FreshnessRound:
        now = self._clock()
        result = FreshnessRound(now)
        try:
            with self._sessions.begin() as session:
                if self._resigner is not None:
                    result.held_lease = take_lease(
                        session, _LEASE, self._holder, now=now, duration=self._policy.lease
                    )
                heads = _published_heads(session)
        except SQLAlchemyError as error:
            result.error = f"the database did not answer: {_one_line(error)}"
            self._finish(result)
            return result
        for head in heads:
            result.channels.append(self._keep_fresh(head, now, result))
        self._watch_expiry(result, now)
        self._finish(result)
        return result

    def _keep_fresh(self, head: _Head, now: datetime, result: FreshnessRound) -> ChannelFreshness:
        resign_at = self._policy.resign_at(head.channel, head.version, head.expires_at, head.ttl)
        entry = ChannelFreshness(head.channel, head.version, head.expires_at, resign_at)
        if not result.held_lease or now < resign_at:
            return entry
        assert self._resigner is not None  # only a replica with a key takes the lease
        reason = f"kept fresh: v{head.version} expires {head.expires_at.isoformat()}"
        try:
            outcome = self._resigner.resign(head.channel, FRESHNESS_ACTOR, reason=reason)
        except (PinwardenError, SQLAlchemyError, OSError) as error:
            logger.error("pinwarden: cannot re-sign %s: %s", head.channel, _one_line(error))
            return ChannelFreshness(
                head.channel, head.version, head.expires_at, resign_at, error=_one_line(error)
            )
        if outcome is None or outcome.document is None:
            return entry
        self.resigns += 1
        result.resigned.append(outcome)
        document = outcome.document
        return ChannelFreshness(
            head.channel, head.version, document.expires_at, resign_at, document.version
        )

    def _watch_expiry(self, result: FreshnessRound, now: datetime) -> None:
        try:
            with self._sessions.begin() as session:
                for entry in result.channels:
                    self._alerts.observe(
                        session,
                        AlertKind.PINSET_EXPIRING,
                        entry.channel,
                        self._expiring(entry, now),
                    )
        except IntegrityError:
            pass  # another replica opened the same alert in the same instant
        except SQLAlchemyError as error:
            result.error = f"cannot record alerts: {_one_line(error)}"

    def _expiring(self, entry: ChannelFreshness, now: datetime) -> Condition | None:
        left = entry.expires_at - now
        if left > self._policy.warn_within:
            return None
        why = entry.error or (
            "no replica with an unlocked online key re-signed it"
            if self._resigner is None or entry.resigned_to is None
            else "unknown"
        )
        return Condition(
            AlertKind.PINSET_EXPIRING,
            entry.channel,
            f"the pin set of {entry.channel} expires at {entry.expires_at.isoformat()} "
            f"and was not re-signed: {why}",
            channel=entry.channel,
            detail={"version": entry.version, "expires_at": entry.expires_at.isoformat()},
        )

    def _finish(self, result: FreshnessRound) -> None:
        if result.error is not None or result.failures:
            self.failures += 1
        self.last_round = result

    async def run_forever(
        self,
        every: timedelta,
        serve: Callable[[PublishOutcome], None],
        rng: random.Random | None = None,
    ) -> None:
        """A round every ``every`` (±10 %) in a worker thread; each new version is handed to
        ``serve`` on the event loop (the store's owner). Cancel the task to stop."""
        rng = rng or random.SystemRandom()
        while True:
            try:
                result = await asyncio.to_thread(self.run_once)
            except Exception:  # the schedule must outlive any one round
                logger.exception("pinwarden: a freshness round failed")
            else:
                for outcome in result.resigned:
                    try:
                        serve(outcome)
                    except Exception:  # served at the next store reload instead
                        logger.exception("pinwarden: cannot serve re-signed %s", outcome.channel)
            await asyncio.sleep(every.total_seconds() * rng.uniform(0.9, 1.1))

    def health_lines(self) -> list[str]:
        """Lines for ``/healthz``'s detail: what keeps a pin set from staying fresh."""
        last = self.last_round
        if last is None:
            return []
        lines = [f"freshness: {last.error}"] if last.error else []
        lines += [
            f"freshness: {entry.channel}: cannot re-sign v{entry.version} ({entry.error}); "
            f"it expires at {entry.expires_at.isoformat()}"
            for entry in last.failures
        ]
        if self._resigner is None:
            lines += [
                f"freshness: {entry.channel}: this replica has no online key; v{entry.version} "
                f"expires at {entry.expires_at.isoformat()}"
                for entry in last.channels
                if entry.expires_at - last.at <= self._policy.warn_within
            ]
        return lines

    def seconds_to_expiry(self) -> dict[str, float]:
        """Per channel, seconds until the served pin set expires (a metric)."""
        last = self.last_round
        if last is None:
            return {}
        return {e.channel: (e.expires_at - last.at).total_seconds() for e in last.channels}


def _published_heads(session: Session) -> list[_Head]:
    heads: list[_Head] = []
    for channel in session.scalars(select(Channel).order_by(Channel.name)):
        document = session.scalar(
            select(PublishedDocument)
            .where(PublishedDocument.channel_id == channel.id)
            .order_by(PublishedDocument.version.desc())
            .limit(1)
        )
        if document is not None:
            heads.append(
                _Head(
                    channel.name,
                    document.version,
                    document.expires_at,
                    timedelta(seconds=channel.ttl_seconds),
                )
            )
    return heads


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
