"""The CT watch: follow each log from where it stopped, verify, match, record, alert.

A round reads the log lists and the published rules, then for each log: fetch and verify the
signed tree head; continue the collapsed tree from the stored position through every new entry;
and only when the recomputed root equals the signed one believe the batch, recording its
sightings, alerts and the new position in one transaction. A new log starts at its end (its
collapsed tree rebuilt from an audit path or the hash tiles, checked against the head), or at
its start with ``start_at_end=False``. A log whose head does not verify, whose tree shrinks, or
whose entries do not hash to what it signed is itself an alert (``ct-log-misbehaving``); a log
that cannot be reached is retried next round.

Alert ``ct-unpinned-key`` opens once per certificate (TBS hash) and rule, when neither the
leaf's key nor its verified issuer's key is among the rule's published pins; it resolves when
that key becomes pinned or the rule goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pinwarden._hosts import HostPattern
from pinwarden._pins import pin_from_digest, spki_pin_of_der
from pinwarden.errors import PinwardenError
from pinwarden.server._models import Channel, PublishedDocument, utc_now
from pinwarden.server._publish import published_rules
from pinwarden.server.alerts import Alert, AlertBook, AlertKind, Condition
from pinwarden.server.ct._certs import LoggedCertificate, logged_certificate
from pinwarden.server.ct._entries import LogEntry
from pinwarden.server.ct._fetch import Fetcher, LogFetchError
from pinwarden.server.ct._heads import TreeHead
from pinwarden.server.ct._loglist import CtLog, LogListError, load_log_lists
from pinwarden.server.ct._match import RuleSet, WatchedRule
from pinwarden.server.ct._merkle import CollapsedTree
from pinwarden.server.ct._models import CtLogState, CtSighting
from pinwarden.server.ct._readers import LogMisbehaved, LogReader, reader_for
from pinwarden.server.ct._wire import MalformedEntry
from pinwarden.server.freshness import Lease, take_lease

__all__ = ["CtWatcher", "LogOutcome", "WatchRound", "watched_rules"]

logger = logging.getLogger("pinwarden.ct")

Clock = Callable[[], datetime]
_LEASE = "ct-watch"
# How long an expired sighting (not_after passed) and the state of a log no longer listed are
# kept: long enough for a late look at the dashboard, short enough that the tables stay small.
_RETENTION = timedelta(days=30)


class _LeaseLost(Exception):
    """Another replica holds the ``ct-watch`` lease: this round stops before the next log."""


class _Conflict(Exception):
    """Another replica recorded this log since this round read its position."""


@dataclass
class LogOutcome:
    log: str
    description: str
    start: int
    end: int
    error: str | None = None
    misbehaved: str | None = None

    def view(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class WatchRound:
    at: datetime
    logs: list[LogOutcome] = field(default_factory=list)
    sightings: list[dict[str, Any]] = field(default_factory=list)  # new this round
    alerts_opened: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def needs_attention(self) -> bool:
        return self.alerts_opened > 0 or any(log.misbehaved for log in self.logs)

    def view(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "needs_attention": self.needs_attention,
            "logs": [log.view() for log in self.logs],
            "sightings": self.sightings,
            "alerts_opened": self.alerts_opened,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _Found:
    entry: LogEntry
    facts: LoggedCertificate
    rule: WatchedRule
    issuer_pin: str | None

    @property
    def pinned(self) -> bool:
        return self.facts.pin in self.rule.pins or self.issuer_pin in self.rule.pins


def watched_rules(session: Session) -> RuleSet:
    """Every enabled rule of every channel's newest published version (what clients enforce)."""
    rules = []
    for channel in session.scalars(select(Channel).order_by(Channel.name)):
        document = session.scalar(
            select(PublishedDocument)
            .where(PublishedDocument.channel_id == channel.id)
            .order_by(PublishedDocument.version.desc())
            .limit(1)
        )
        if document is None:
            continue
        for rule in published_rules(document):
            if rule.mode == "disabled":
                continue
            try:
                pattern = HostPattern.parse(rule.pattern, grammar_only=True)
            except PinwardenError:
                continue
            rules.append(WatchedRule(channel.name, pattern, frozenset(rule.pin_values)))
    return RuleSet(rules)


def _issuer_pin(entry: LogEntry, reader: LogReader) -> str | None:
    """The issuer's key pin, where the tree covers it (a precert's issuer key hash) or the
    leaf's signature verifies with the issuer the log supplied."""
    if entry.issuer_key_hash is not None:
        return pin_from_digest(entry.issuer_key_hash)
    issuer_der = reader.issuer(entry)
    if issuer_der is None:
        return None
    try:
        leaf = x509.load_der_x509_certificate(entry.der)
        leaf.verify_directly_issued_by(x509.load_der_x509_certificate(issuer_der))
        return spki_pin_of_der(issuer_der)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return None  # an issuer the log made up: outside the tree hash, never a reason to stop


class CtWatcher:
    """``sources``: log list files or URLs. ``start_at_end``: where a log never seen starts."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        alerts: AlertBook,
        sources: Sequence[str],
        *,
        cafile: str | None = None,
        timeout: float = 20.0,
        batch_size: int = 256,
        start_at_end: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        self._sessions, self._alerts, self.sources = sessions, alerts, tuple(sources)
        self._cafile, self._timeout, self._batch = cafile, timeout, batch_size
        self._start_at_end, self._clock = start_at_end, clock
        self.entries: Counter[str] = Counter()  # "read", "unparsable", "matched"
        self.rounds: Counter[str] = Counter()  # "ok", "failed"
        self.positions: dict[str, int] = {}
        self.last_round: WatchRound | None = None
        self._lease: tuple[str, timedelta] | None = None  # (holder, duration) while leased
        self._renewed: datetime | None = None

    async def run_forever(self, holder: str, *, every: timedelta) -> None:
        """A round every ``every`` on one replica at a time (the ``ct-watch`` lease, lasting
        ``every * 3`` and renewed as the round goes). Cancel to stop."""
        while True:
            await asyncio.sleep(every.total_seconds())
            try:
                await asyncio.to_thread(self.run_leased, holder, every * 3)
            except LogFetchError as error:  # no log list readable: counted by run_once
                logger.warning("pinwarden: CT watch round skipped: %s", error)
            except Exception:  # the schedule must outlive any one round
                self.rounds["failed"] += 1
                logger.exception("pinwarden: a CT watch round failed")

    def run_leased(
        self, holder: str, duration: timedelta, *, release: bool = False
    ) -> WatchRound | None:
        """``run_once`` holding the ``ct-watch`` lease, renewed between logs and batches (a
        round may outlast one lease); None when another holder has it. A round whose lease is
        lost midway stops before its next log, saying so in its notes. ``release``: give the
        lease up afterwards (``pinwarden ct watch --once``, so the server's next round runs)."""
        self._lease, self._renewed = (holder, duration), None
        try:
            self._renew()
        except _LeaseLost:
            self._lease = None
            return None
        try:
            return self.run_once()
        finally:
            if release:
                with self._sessions.begin() as session:
                    session.execute(
                        update(Lease)
                        .where(Lease.name == _LEASE, Lease.holder == holder)
                        .values(expires_at=self._clock())
                    )
            self._lease = None

    def _renew(self) -> None:
        """Renew the lease when a third of it has passed; ``_LeaseLost`` when another has it."""
        if self._lease is None:
            return
        holder, duration = self._lease
        now = self._clock()
        if self._renewed is not None and now - self._renewed < duration / 3:
            return
        with self._sessions.begin() as session:
            if not take_lease(session, _LEASE, holder, now=now, duration=duration):
                raise _LeaseLost(f"another replica holds the {_LEASE} lease")
        self._renewed = now

    def run_once(self) -> WatchRound:
        """One round over every followed log (blocking: run it in a thread)."""
        outcome = WatchRound(self._clock())
        with Fetcher(timeout=self._timeout, cafile=self._cafile) as fetcher:
            try:
                logs, notes = load_log_lists(self.sources, fetcher, outcome.at)
            except LogListError as error:
                self.rounds["failed"] += 1
                raise LogFetchError(f"no log list could be read: {error}") from None
            outcome.notes += notes
            with self._sessions() as session:
                rules = watched_rules(session)
            for log in logs:
                try:
                    self._renew()
                    outcome.logs.append(
                        self._follow(log, reader_for(log, fetcher, self._batch), rules, outcome)
                    )
                except _LeaseLost as error:
                    outcome.notes.append(f"round stopped before {log.description}: {error}")
                    break
        with self._sessions.begin() as session:
            self._resolve_pinned(session, rules)
            self._prune(session, {log.name for log in logs}, outcome)
        self.rounds["ok"] += 1
        self.last_round = outcome
        return outcome

    def _prune(self, session: Session, listed: set[str], outcome: WatchRound) -> None:
        """Forget sightings expired for ``_RETENTION`` (unless their alert is still open) and
        the state of logs no longer listed nor read for ``_RETENTION`` (a list that failed to
        load for a while loses nothing)."""
        cutoff = outcome.at - _RETENTION
        open_subjects = set(
            session.scalars(
                select(Alert.subject).where(
                    Alert.kind == AlertKind.CT_UNPINNED_KEY.value, Alert.resolved_at.is_(None)
                )
            )
        )
        expired = [
            sighting.id
            for sighting in session.scalars(select(CtSighting).where(CtSighting.not_after < cutoff))
            if sighting.alert_subject not in open_subjects
        ]
        stale = session.scalars(
            select(CtLogState.id).where(
                CtLogState.log_id.not_in(listed), CtLogState.updated_at < cutoff
            )
        ).all()
        for model, ids in ((CtSighting, expired), (CtLogState, stale)):
            for start in range(0, len(ids), 500):
                session.execute(delete(model).where(model.id.in_(ids[start : start + 500])))
        if expired or stale:
            outcome.notes.append(
                f"pruned {len(expired)} expired sighting(s), {len(stale)} unlisted log(s)"
            )

    def _follow(
        self, log: CtLog, reader: LogReader, rules: RuleSet, outcome: WatchRound
    ) -> LogOutcome:
        with self._sessions() as session:
            state = session.scalar(select(CtLogState).where(CtLogState.log_id == log.name))
            tree = (
                CollapsedTree.from_json(state.tree_size, state.collapsed)
                if state is not None
                else None
            )
        read_at = tree.size if tree else None
        result = LogOutcome(
            log.name, log.description, tree.size if tree else 0, tree.size if tree else 0
        )
        try:
            head = reader.head()
            if tree is None:
                tree = reader.right_edge(head) if self._start_at_end else CollapsedTree()
                result.start = result.end = tree.size
            found = self._catch_up(log, reader, rules, tree, head)
            self._record(log, tree, head, found, outcome, read_at)
        except LogMisbehaved as error:
            result.misbehaved = str(error)
            self._record_misbehaviour(log, str(error))
            return result
        except (LogFetchError, MalformedEntry, _Conflict, IntegrityError) as error:
            result.error = (
                "another replica recorded this log during the round; retried next round"
                if isinstance(error, _Conflict | IntegrityError)
                else str(error)[:500]
            )
            logger.warning("pinwarden: CT log %s: %s", log.description, result.error)
            self._save_error(log, result.error, outcome)
            return result
        result.end = tree.size
        return result

    def _catch_up(
        self, log: CtLog, reader: LogReader, rules: RuleSet, tree: CollapsedTree, head: TreeHead
    ) -> list[_Found]:
        """Append every entry up to ``head`` to ``tree`` and collect the matches; believe none
        of it unless the root comes out as signed."""
        if head.size < tree.size:
            raise LogMisbehaved(f"the log's signed tree shrank from {tree.size} to {head.size}")
        found: list[_Found] = []
        read = unparsable = 0
        for batch in reader.batches(tree.size, head.size) if head.size > tree.size else ():
            self._renew()
            for digest, entry in batch:
                tree.append(digest)
                read += 1
                if entry is None:
                    unparsable += 1
                elif rules.may_concern(entry.der):
                    try:
                        facts = logged_certificate(entry)
                    except MalformedEntry:
                        unparsable += 1
                        continue
                    for rule in rules.matching(facts, entry.der):
                        pin = None if facts.pin in rule.pins else _issuer_pin(entry, reader)
                        found.append(_Found(entry, facts, rule, pin))
        if tree.size != head.size or tree.root() != head.root:
            raise LogMisbehaved(
                f"the entries up to {head.size} do not hash to the root the log signed: the log "
                "forked or serves other entries than it signed"
            )
        self.entries.update(read=read, unparsable=unparsable, matched=len(found))
        return found

    def _record(
        self,
        log: CtLog,
        tree: CollapsedTree,
        head: TreeHead,
        found: list[_Found],
        outcome: WatchRound,
        read_at: int | None,
    ) -> None:
        """Save the batch in one transaction, unless the stored position is no longer the one
        read at the start (``read_at``; None: no state yet): then another replica that held the
        lease before this one recorded it meanwhile, and nothing of this round is kept."""
        now = self._clock()
        with self._sessions.begin() as session:
            state = session.scalar(select(CtLogState).where(CtLogState.log_id == log.name))
            if (state.tree_size if state is not None else None) != read_at:
                raise _Conflict(log.name)
            self._save_state(session, log, tree, head, None, now)
            for item in found:
                self._sight(session, log, item, now, outcome)
            self._alerts.observe(session, AlertKind.CT_LOG_MISBEHAVING, log.name, None)
        self.positions[log.description] = tree.size

    def _sight(
        self, session: Session, log: CtLog, item: _Found, now: datetime, outcome: WatchRound
    ) -> None:
        tbs = item.facts.tbs_hash.hex()
        existing = session.scalar(
            select(CtSighting.id).where(
                CtSighting.tbs_hash == tbs,
                CtSighting.channel == item.rule.channel,
                CtSighting.pattern == str(item.rule.pattern),
            )
        )
        if existing is not None:
            return  # the precertificate's final certificate, or seen in another log
        sighting = CtSighting(
            tbs_hash=tbs,
            channel=item.rule.channel,
            pattern=str(item.rule.pattern),
            log_id=log.name,
            entry_index=item.entry.index,
            precert=item.entry.precert,
            names=list(item.facts.names[:100]),
            leaf_pin=item.facts.pin,
            issuer_pin=item.issuer_pin,
            pinned=item.pinned,
            subject=item.facts.subject[:2000],
            issuer=item.facts.issuer[:2000],
            not_before=item.facts.not_before,
            not_after=item.facts.not_after,
            seen_at=now,
        )
        session.add(sighting)
        session.flush()
        outcome.sightings.append(sighting.view())
        if item.pinned:
            return
        names = ", ".join(item.facts.names[:5]) or "(names unreadable)"
        subject = sighting.alert_subject
        condition = Condition(
            AlertKind.CT_UNPINNED_KEY,
            subject,
            f"a certificate for {names} was logged in CT with a key ({item.facts.pin}) that "
            f"is not pinned for {item.rule.pattern} in {item.rule.channel}: clients would refuse "
            "it; if it is yours, add its pin before it is deployed",
            channel=item.rule.channel,
            detail=sighting.view(),
        )
        if self._alerts.observe(session, AlertKind.CT_UNPINNED_KEY, subject, condition):
            outcome.alerts_opened += 1

    def _save_state(
        self,
        session: Session,
        log: CtLog,
        tree: CollapsedTree,
        head: TreeHead,
        error: str | None,
        now: datetime,
    ) -> None:
        state = session.scalar(select(CtLogState).where(CtLogState.log_id == log.name))
        if state is None:
            state = CtLogState(log_id=log.name)
            session.add(state)
        state.description, state.api, state.url = log.description[:300], log.api, log.url
        state.tree_size, state.root_hash = tree.size, tree.root().hex()
        state.collapsed, state.head_timestamp = tree.to_json(), head.timestamp
        state.updated_at, state.last_error = now, error

    def _save_error(self, log: CtLog, error: str, outcome: WatchRound) -> None:
        """The error on the log's state row; a log never read yet has none (a row would need a
        verified position), so the round's notes say it instead."""
        with self._sessions.begin() as session:
            state = session.scalar(select(CtLogState).where(CtLogState.log_id == log.name))
            if state is not None:
                state.last_error, state.updated_at = error, self._clock()
                return
        outcome.notes.append(f"{log.description} has not been read yet: {error}"[:600])

    def _record_misbehaviour(self, log: CtLog, why: str) -> None:
        logger.error("pinwarden: CT log %s misbehaves: %s", log.description, why)
        condition = Condition(
            AlertKind.CT_LOG_MISBEHAVING,
            log.name,
            f"CT log {log.description} ({log.url}) misbehaves: {why}",
            detail={**log.view(), "reason": why},
        )
        with self._sessions.begin() as session:
            self._alerts.observe(session, AlertKind.CT_LOG_MISBEHAVING, log.name, condition)
            state = session.scalar(select(CtLogState).where(CtLogState.log_id == log.name))
            if state is not None:
                state.last_error, state.updated_at = why[:500], self._clock()

    def _resolve_pinned(self, session: Session, rules: RuleSet) -> None:
        """An unpinned-key alert resolves once its key is pinned or its rule is gone."""
        current = {rule.subject: rule for rule in rules.rules}
        open_alerts = session.scalars(
            select(Alert).where(
                Alert.kind == AlertKind.CT_UNPINNED_KEY.value, Alert.resolved_at.is_(None)
            )
        ).all()
        for alert in open_alerts:
            rule = current.get(alert.subject.rpartition(" tbs:")[0])
            pins = {alert.detail.get("leaf_pin"), alert.detail.get("issuer_pin")} - {None}
            if rule is None or pins & rule.pins:
                self._alerts.observe(session, AlertKind.CT_UNPINNED_KEY, alert.subject, None)
