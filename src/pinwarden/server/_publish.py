"""Publishing: check the draft against the live chains, sign it, store it as a new version.

The order matters. The live chains are looked at first, outside any transaction (they take network
time), and the result is one immutable ``PublishPlan``; then one transaction locks the channel,
runs the plan's action step (publish: the draft is still the one that was checked; rollback: the
old rules become the draft; re-sign: nothing), takes the next version, signs, stores the immutable
row, audits and (on PostgreSQL) queues the NOTIFY that tells the other replicas. A rollback
republishes an old version's rules as a new, higher version (versions only increase).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.document import FormatError, PinSetRule
from pinwarden.server._audit import record
from pinwarden.server._channels import draft_rules, get_channel, replace_rules
from pinwarden.server._errors import (
    ConflictError,
    NotFoundError,
    UnsafePublishError,
    ValidationError,
)
from pinwarden.server._livechain import (
    SERVER_CONNECTION,
    LiveChain,
    connect_and_read_pins,
    latest_observation,
    probe_target,
    record_observation,
)
from pinwarden.server._models import Channel, KeyringRecord, PublishedDocument, utc_now
from pinwarden.server._safety import RuleCheck, check_removed_rules, check_rules, diff_rules
from pinwarden.server._snapshot import (
    RuleSnapshot,
    SnapshotError,
    snapshots_from_json,
    snapshots_to_json,
)
from pinwarden.server._store import etag_for

__all__ = [
    "PUBLISH",
    "RESIGN",
    "ROLLBACK",
    "Action",
    "LiveChainSource",
    "PinSetDraft",
    "PublishOutcome",
    "PublishPlan",
    "Publisher",
    "ReplicaNotifier",
    "SignedPinSet",
    "SignedVersion",
    "Signer",
    "history",
    "latest_document",
    "published_rules",
    "published_version",
]


@dataclass(frozen=True)
class PinSetDraft:
    """Everything a signed pin set says."""

    channel: str
    version: int
    issued: datetime
    expires: datetime
    refresh_after: int
    report_uri: str | None
    rules: tuple[RuleSnapshot, ...]


@dataclass(frozen=True)
class SignedPinSet:
    body: bytes
    keyring_version: int


class Signer(Protocol):
    def sign_pinset(self, draft: PinSetDraft) -> SignedPinSet: ...

    def record_keyrings(self, session: Session) -> None:
        """Mirror keyrings the signer knows and the database lacks (a rotation done elsewhere)."""
        ...


# An action's own step inside the publishing transaction, on the locked channel.
ActionStep = Callable[[Session, Channel, "PublishPlan"], None]


def _require_unchanged_draft(session: Session, channel: Channel, plan: PublishPlan) -> None:
    """Publish: the draft must still be the rules that were checked."""
    if draft_rules(channel) != plan.rules:
        raise ConflictError("the rules changed while publishing; run publish again")


def _restore_draft(session: Session, channel: Channel, plan: PublishPlan) -> None:
    """Rollback: the old version's rules become the draft again."""
    replace_rules(session, channel, plan.rules)


def _keep_draft(session: Session, channel: Channel, plan: PublishPlan) -> None:
    """Re-sign: the published rules are signed again; the draft is left as it is."""


@dataclass(frozen=True)
class Action:
    """What kind of new version a plan makes: its audit name, whether the live chains are
    checked, and its step inside the transaction."""

    name: str
    checks_live_chains: bool
    in_transaction: ActionStep


PUBLISH = Action("publish", True, _require_unchanged_draft)
ROLLBACK = Action("rollback", True, _restore_draft)
# Clients see the same rules, so re-signing checks nothing.
RESIGN = Action("resign", False, _keep_draft)


@dataclass(frozen=True)
class PublishPlan:
    """One new version, decided before its transaction: the rules, what they change, the verdict
    of the checks, who asked and why. Nothing changes it afterwards."""

    action: Action
    channel: str
    rules: tuple[RuleSnapshot, ...]
    previous_version: int | None
    changes: tuple[dict[str, Any], ...]
    checks: tuple[RuleCheck, ...]
    actor: str
    reason: str | None
    force: bool
    republished_from: int | None = None

    @property
    def problems(self) -> list[dict[str, Any]]:
        return [check.view() for check in self.checks if not check.ok]


@dataclass(frozen=True)
class SignedVersion:
    """What the transaction made: the stored row, the keyring it is signed under, and the
    channel's refresh hint (for ``Cache-Control``)."""

    document: PublishedDocument
    keyring: tuple[int, bytes]
    refresh_seconds: int


@dataclass(frozen=True)
class PublishOutcome:
    """What a publish (or its dry run) found and did: its plan, and the version it signed
    (``None`` for a dry run)."""

    plan: PublishPlan
    dry_run: bool
    signed: SignedVersion | None = None

    @property
    def channel(self) -> str:
        return self.plan.channel

    @property
    def document(self) -> PublishedDocument | None:
        return self.signed.document if self.signed else None

    @property
    def keyring(self) -> tuple[int, bytes] | None:
        """The keyring the new version is signed under."""
        return self.signed.keyring if self.signed else None

    @property
    def refresh_seconds(self) -> int:
        return self.signed.refresh_seconds if self.signed else 0

    @property
    def forced(self) -> bool:
        """Published although the checks found problems (``force`` with a reason)."""
        return self.signed is not None and bool(self.plan.problems)

    @property
    def problems(self) -> list[dict[str, Any]]:
        return self.plan.problems

    def view(self) -> dict[str, Any]:
        plan = self.plan
        view: dict[str, Any] = {
            "channel": plan.channel,
            "dry_run": self.dry_run,
            "published": self.document is not None,
            "version": self.document.version if self.document else None,
            "previous_version": plan.previous_version,
            "forced": self.forced,
            "changes": list(plan.changes),
            "checks": [check.view() for check in plan.checks],
            "safe": not plan.problems,
        }
        if plan.republished_from is not None:
            view["republished_from"] = plan.republished_from
        return view


class LiveChainSource:
    """Looks up a rule's live chain: a fresh TLS connection from this server.

    Only when the host cannot be reached (a network failure, not a failed certificate check) does
    the newest chain this server itself saw, younger than ``max_age``, stand in, and the result
    says so (``fallback``). An observation posted through the admin API never does.

    A lookup for a publish records the chain it saw (an observation row and its audit entry);
    one for a dry run records nothing: a dry run changes nothing.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        max_age: timedelta,
        cafile: str | None,
        timeout: float,
    ) -> None:
        self._sessions, self._max_age = sessions, max_age
        self._cafile, self._timeout = cafile, timeout

    def lookup(self, rule: RuleSnapshot, *, record: bool = True) -> LiveChain:
        target = probe_target(rule.pattern, rule.probe_host, rule.probe_port)
        try:
            pins = connect_and_read_pins(target, cafile=self._cafile, timeout=self._timeout)
        except ssl.SSLError:
            raise  # the host answered with a chain clients would refuse: no stand-in
        except OSError as error:
            with self._sessions.begin() as session:
                seen = latest_observation(session, target, self._max_age, source=SERVER_CONNECTION)
            if seen is None:
                raise
            return replace(
                seen,
                fallback=f"the live connection failed ({error}); this server's own "
                f"observation from {seen.seen_at.isoformat()} stands in for it",
            )
        if not record:
            return LiveChain(target, pins, utc_now(), "connection")
        with self._sessions.begin() as session:
            row = record_observation(
                session, target.server_name, target.port, list(pins), SERVER_CONNECTION, "publish"
            )
            seen_at = row.seen_at
        return LiveChain(target, pins, seen_at, "connection")


def latest_document(session: Session, channel: Channel) -> PublishedDocument | None:
    return session.scalar(
        select(PublishedDocument)
        .where(PublishedDocument.channel_id == channel.id)
        .order_by(PublishedDocument.version.desc())
        .limit(1)
    )


def published_version(session: Session, channel: Channel, version: int) -> PublishedDocument:
    """Version ``version`` of the channel as it was published (an immutable row)."""
    document = session.scalar(
        select(PublishedDocument).where(
            PublishedDocument.channel_id == channel.id, PublishedDocument.version == version
        )
    )
    if document is None:
        raise NotFoundError(f"channel {channel.name!r} has no published version {version}")
    return document


def history(session: Session, channel_name: str, *, limit: int = 50) -> list[PublishedDocument]:
    channel = get_channel(session, channel_name)
    query = (
        select(PublishedDocument)
        .where(PublishedDocument.channel_id == channel.id)
        .order_by(PublishedDocument.version.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def published_rules(document: PublishedDocument) -> tuple[RuleSnapshot, ...]:
    """The rules stored with a published version, of any snapshot version this server reads."""
    try:
        return snapshots_from_json(document.rules)
    except SnapshotError as error:
        raise SnapshotError(f"published version {document.version}: {error}") from None


# Runs inside the publishing transaction, after the new row is flushed: tells the other replicas
# (PostgreSQL: pg_notify, sent on commit).
ReplicaNotifier = Callable[[Session, str, int], None]


class Publisher:
    """Makes new signed versions of a channel: ``publish``, ``rollback`` and ``resign``.

    Each reads what it needs, makes one ``PublishPlan`` (checks included), and hands it to
    ``_carry_out``; the only difference inside the transaction is the plan's ``Action``.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: Signer | None,
        live: LiveChainSource,
        notify_replicas: ReplicaNotifier,
        *,
        default_report_uri: str | None = None,
    ) -> None:
        self._sessions, self._signer, self._live = sessions, signer, live
        self._notify_replicas, self._default_report_uri = notify_replicas, default_report_uri

    def publish(
        self,
        channel_name: str,
        actor: str,
        *,
        dry_run: bool = False,
        force: bool = False,
        reason: str | None = None,
    ) -> PublishOutcome:
        """Sign the channel's current rules as the next version."""
        with self._sessions.begin() as session:
            channel = get_channel(session, channel_name)
            rules = draft_rules(channel)
            latest = latest_document(session, channel)
        plan = self._plan(
            PUBLISH, channel_name, rules, latest, actor, force=force, reason=reason, dry_run=dry_run
        )
        return self._carry_out(plan, dry_run=dry_run)

    def rollback(
        self,
        channel_name: str,
        to_version: int,
        actor: str,
        *,
        dry_run: bool = False,
        force: bool = False,
        reason: str | None = None,
    ) -> PublishOutcome:
        """Republish the rules of ``to_version`` as a new version; the draft becomes those rules."""
        with self._sessions.begin() as session:
            channel = get_channel(session, channel_name)
            latest = latest_document(session, channel)
            probes = {rule.pattern: (rule.probe_host, rule.probe_port) for rule in channel.rules}
            old = published_version(session, channel, to_version)
        # Where a host is probed is today's setting, not part of the old version's content.
        rules = tuple(
            replace(rule, probe_host=probes[rule.pattern][0], probe_port=probes[rule.pattern][1])
            if rule.pattern in probes
            else rule
            for rule in published_rules(old)
        )
        plan = self._plan(
            ROLLBACK,
            channel_name,
            rules,
            latest,
            actor,
            force=force,
            reason=reason,
            republished_from=to_version,
            dry_run=dry_run,
        )
        return self._carry_out(plan, dry_run=dry_run)

    def resign(self, channel_name: str, actor: str, *, reason: str) -> PublishOutcome | None:
        """Sign the published rules again as a new version (after a key rotation).

        What clients enforce does not change, so the live-chain checks do not run; ``None`` when
        the channel has nothing published.
        """
        with self._sessions.begin() as session:
            latest = latest_document(session, get_channel(session, channel_name))
        if latest is None:
            return None
        plan = self._plan(
            RESIGN,
            channel_name,
            published_rules(latest),
            latest,
            actor,
            force=False,
            reason=reason,
            republished_from=latest.version,
        )
        return self._carry_out(plan, dry_run=False)

    def _plan(
        self,
        action: Action,
        channel_name: str,
        rules: tuple[RuleSnapshot, ...],
        latest: PublishedDocument | None,
        actor: str,
        *,
        force: bool,
        reason: str | None,
        republished_from: int | None = None,
        dry_run: bool = False,
    ) -> PublishPlan:
        """Check the request and the rules (live chains included, when the action checks them;
        a dry run's lookups record nothing)."""
        if force and not (reason and reason.strip()):
            raise ValidationError("--force needs a --reason; it is recorded in the audit log")
        if not rules:
            raise ValidationError(f"channel {channel_name!r} has no rules to publish")
        # --force skips the safety checks (which refuse a rule with no pin, 409), not the
        # document model's own rules: what it refuses cannot be signed (a 500, before).
        for rule in rules if force else ():
            try:
                PinSetRule(rule.pattern, rule.pin_values, rule.mode)
            except FormatError as error:
                raise ValidationError(str(error)) from None
        published = published_rules(latest) if latest else None
        lookup = partial(self._live.lookup, record=not dry_run)
        checks = (
            check_rules(rules, lookup) + check_removed_rules(published, rules)
            if action.checks_live_chains
            else []
        )
        return PublishPlan(
            action=action,
            channel=channel_name,
            rules=rules,
            previous_version=latest.version if latest else None,
            changes=tuple(diff_rules(published, rules)),
            checks=tuple(checks),
            actor=actor,
            reason=reason,
            force=force,
            republished_from=republished_from,
        )

    def _carry_out(self, plan: PublishPlan, *, dry_run: bool) -> PublishOutcome:
        """A dry run returns the plan; otherwise refuse an unsafe plan unless forced, then sign."""
        if dry_run:
            return PublishOutcome(plan, dry_run=True)
        if plan.problems and not plan.force:
            raise UnsafePublishError(
                f"publishing {plan.channel!r} is unsafe: "
                + "; ".join(f"{p['pattern']}: {', '.join(p['problems'])}" for p in plan.problems)
                + " (use --force with --reason to override)",
                plan.problems,
            )
        if self._signer is None:
            raise ConflictError("this server has no signing key unlocked; it cannot publish")
        return PublishOutcome(plan, dry_run=False, signed=self._commit(plan, self._signer))

    def _commit(self, plan: PublishPlan, signer: Signer) -> SignedVersion:
        """One transaction: lock the channel, run the action's step, take the next version,
        sign, store the immutable row, audit, and tell the other replicas."""
        with self._sessions.begin() as session:
            locked = session.scalar(
                select(Channel).where(Channel.name == plan.channel).with_for_update()
            )
            if locked is None:
                raise NotFoundError(f"no channel {plan.channel!r}")
            channel = get_channel(session, plan.channel)
            plan.action.in_transaction(session, channel, plan)
            version = self._next_version(session, channel, plan)
            issued = utc_now().replace(microsecond=0)
            draft = PinSetDraft(
                channel=channel.name,
                version=version,
                issued=issued,
                expires=issued + timedelta(seconds=channel.ttl_seconds),
                refresh_after=channel.refresh_seconds,
                report_uri=channel.report_uri or self._default_report_uri,
                rules=plan.rules,
            )
            signed = signer.sign_pinset(draft)
            signer.record_keyrings(session)
            keyring = session.get_one(KeyringRecord, signed.keyring_version)
            forced = bool(plan.problems)
            document = PublishedDocument(
                channel_id=channel.id,
                version=version,
                body=signed.body,
                etag=etag_for(version, signed.body),
                rules=snapshots_to_json(plan.rules),
                keyring_version=signed.keyring_version,
                expires_at=draft.expires,
                published_by=plan.actor,
                forced=forced,
                reason=plan.reason,
                republished_from=plan.republished_from,
            )
            session.add(document)
            session.flush()
            record(
                session,
                plan.actor,
                plan.action.name,
                f"channel:{channel.name}",
                {
                    "version": version,
                    "republished_from": plan.republished_from,
                    "changes": list(plan.changes),
                    "forced": forced,
                    "overridden_problems": plan.problems,
                    "live_chains": {
                        check.pattern: check.live.view() for check in plan.checks if check.live
                    },
                },
                plan.reason,
            )
            self._notify_replicas(session, channel.name, version)
            return SignedVersion(document, (keyring.version, keyring.body), channel.refresh_seconds)

    @staticmethod
    def _next_version(session: Session, channel: Channel, plan: PublishPlan) -> int:
        """The version after the newest, if that is still the one the plan was made against."""
        newest = session.scalar(
            select(func.max(PublishedDocument.version)).where(
                PublishedDocument.channel_id == channel.id
            )
        )
        if newest != plan.previous_version:
            raise ConflictError("another publish of this channel happened; run publish again")
        return (newest or 0) + 1
