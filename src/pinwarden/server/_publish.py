"""Publishing: check the draft against the live chains, sign it, store it as a new version.

The order matters. The live chains are looked at first, outside any transaction (they take network
time); then one transaction locks the channel, makes sure the draft is still the one that was
checked, takes the next version, signs, stores the immutable row, audits and (on PostgreSQL)
queues the NOTIFY that tells the other replicas. A rollback is the same path with an old
version's rules: it republishes them as a new, higher version (versions only increase).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

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
from pinwarden.server._store import etag_for

__all__ = [
    "LiveChainSource",
    "PinSetDraft",
    "PublishOutcome",
    "Publisher",
    "SignedPinSet",
    "Signer",
    "history",
    "latest_document",
]


@dataclass(frozen=True)
class PinSetDraft:
    """Everything a signed pin set says; ``rules`` are rule snapshots (``rule_view``)."""

    channel: str
    version: int
    issued: datetime
    expires: datetime
    refresh_after: int
    report_uri: str | None
    rules: list[dict[str, Any]]


@dataclass(frozen=True)
class SignedPinSet:
    body: bytes
    keyring_version: int


class Signer(Protocol):
    def sign_pinset(self, draft: PinSetDraft) -> SignedPinSet: ...

    def record_keyrings(self, session: Session) -> None:
        """Mirror keyrings the signer knows and the database lacks (a rotation done elsewhere)."""
        ...


@dataclass
class PublishOutcome:
    """What a publish (or its dry run) found and did."""

    channel: str
    dry_run: bool
    changes: list[dict[str, Any]]
    checks: list[RuleCheck]
    forced: bool = False
    document: PublishedDocument | None = None
    previous_version: int | None = None
    refresh_seconds: int = 0
    keyring: tuple[int, bytes] | None = None  # the keyring the new version is signed under
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[dict[str, Any]]:
        return [check.view() for check in self.checks if not check.ok]

    def view(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "dry_run": self.dry_run,
            "published": self.document is not None,
            "version": self.document.version if self.document else None,
            "previous_version": self.previous_version,
            "forced": self.forced,
            "changes": self.changes,
            "checks": [check.view() for check in self.checks],
            "safe": not self.problems,
            **self.extra,
        }


class LiveChainSource:
    """Looks up a rule's live chain: a fresh TLS connection from this server.

    Only when the host cannot be reached (a network failure, not a failed certificate check) does
    the newest chain this server itself saw, younger than ``max_age``, stand in, and the result
    says so (``fallback``). An observation posted through the admin API never does.
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

    def lookup(self, rule: dict[str, Any]) -> LiveChain:
        target = probe_target(rule["pattern"], rule.get("probe_host"), rule.get("probe_port", 443))
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


def history(session: Session, channel_name: str, *, limit: int = 50) -> list[PublishedDocument]:
    channel = get_channel(session, channel_name)
    query = (
        select(PublishedDocument)
        .where(PublishedDocument.channel_id == channel.id)
        .order_by(PublishedDocument.version.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


# Runs inside the publishing transaction, after the new row is flushed (PostgreSQL: pg_notify).
Announcer = Callable[[Session, str, int], None]


class Publisher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: Signer | None,
        live: LiveChainSource,
        announce: Announcer,
        *,
        default_report_uri: str | None = None,
    ) -> None:
        self._sessions, self._signer, self._live = sessions, signer, live
        self._announce, self._default_report_uri = announce, default_report_uri

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
        return self._run(
            channel_name,
            rules,
            latest,
            actor,
            dry_run=dry_run,
            force=force,
            reason=reason,
            action="publish",
        )

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
            old = session.scalar(
                select(PublishedDocument).where(
                    PublishedDocument.channel_id == channel.id,
                    PublishedDocument.version == to_version,
                )
            )
        if old is None:
            raise NotFoundError(f"channel {channel_name!r} has no published version {to_version}")
        # Where a host is probed is today's setting, not part of the old version's content.
        rules = [
            {
                **rule,
                **dict(zip(("probe_host", "probe_port"), probes[rule["pattern"]], strict=True)),
            }
            if rule["pattern"] in probes
            else rule
            for rule in old.rules
        ]
        return self._run(
            channel_name,
            rules,
            latest,
            actor,
            dry_run=dry_run,
            force=force,
            reason=reason,
            action="rollback",
            republished_from=to_version,
        )

    def resign(self, channel_name: str, actor: str, *, reason: str) -> PublishOutcome | None:
        """Sign the published rules again as a new version (after a key rotation).

        What clients enforce does not change, so the live-chain checks do not run; ``None`` when
        the channel has nothing published.
        """
        with self._sessions.begin() as session:
            latest = latest_document(session, get_channel(session, channel_name))
        if latest is None:
            return None
        return self._run(
            channel_name,
            list(latest.rules),
            latest,
            actor,
            dry_run=False,
            force=False,
            reason=reason,
            action="resign",
            republished_from=latest.version,
        )

    def _run(
        self,
        channel_name: str,
        rules: list[dict[str, Any]],
        latest: PublishedDocument | None,
        actor: str,
        *,
        dry_run: bool,
        force: bool,
        reason: str | None,
        action: str,
        republished_from: int | None = None,
    ) -> PublishOutcome:
        """``action``: "publish" (the draft), "rollback" (an old version's rules, which become the
        draft) or "resign" (the published rules again, unchecked: clients see no change)."""
        if force and not (reason and reason.strip()):
            raise ValidationError("--force needs a --reason; it is recorded in the audit log")
        if not rules:
            raise ValidationError(f"channel {channel_name!r} has no rules to publish")
        published = latest.rules if latest else None
        outcome = PublishOutcome(
            channel_name,
            dry_run,
            diff_rules(published, rules),
            []
            if action == "resign"
            else check_rules(rules, self._live.lookup) + check_removed_rules(published, rules),
            previous_version=latest.version if latest else None,
        )
        if republished_from is not None:
            outcome.extra["republished_from"] = republished_from
        if dry_run:
            return outcome
        if outcome.problems and not force:
            raise UnsafePublishError(
                f"publishing {channel_name!r} is unsafe: "
                + "; ".join(f"{p['pattern']}: {', '.join(p['problems'])}" for p in outcome.problems)
                + " (use --force with --reason to override)",
                outcome.problems,
            )
        if self._signer is None:
            raise ConflictError("this server has no signing key unlocked; it cannot publish")
        outcome.forced = bool(outcome.problems)
        outcome.document = self._commit(
            channel_name, rules, outcome, actor, reason, action, republished_from
        )
        return outcome

    def _commit(
        self,
        channel_name: str,
        rules: list[dict[str, Any]],
        outcome: PublishOutcome,
        actor: str,
        reason: str | None,
        action: str,
        republished_from: int | None,
    ) -> PublishedDocument:
        assert self._signer is not None
        with self._sessions.begin() as session:
            channel = session.scalar(
                select(Channel).where(Channel.name == channel_name).with_for_update()
            )
            if channel is None:
                raise NotFoundError(f"no channel {channel_name!r}")
            channel = get_channel(session, channel_name)
            if action == "publish" and draft_rules(channel) != rules:
                raise ConflictError("the rules changed while publishing; run publish again")
            if action == "rollback":
                replace_rules(session, channel, rules)
            newest = session.scalar(
                select(func.max(PublishedDocument.version)).where(
                    PublishedDocument.channel_id == channel.id
                )
            )
            version = (newest or 0) + 1
            if newest != outcome.previous_version:
                raise ConflictError("another publish of this channel happened; run publish again")
            issued = utc_now().replace(microsecond=0)
            draft = PinSetDraft(
                channel=channel.name,
                version=version,
                issued=issued,
                expires=issued + timedelta(seconds=channel.ttl_seconds),
                refresh_after=channel.refresh_seconds,
                report_uri=channel.report_uri or self._default_report_uri,
                rules=rules,
            )
            signed = self._signer.sign_pinset(draft)
            self._signer.record_keyrings(session)
            outcome.keyring = (
                signed.keyring_version,
                session.get_one(KeyringRecord, signed.keyring_version).body,
            )
            document = PublishedDocument(
                channel_id=channel.id,
                version=version,
                body=signed.body,
                etag=etag_for(version, signed.body),
                rules=rules,
                keyring_version=signed.keyring_version,
                expires_at=draft.expires,
                published_by=actor,
                forced=outcome.forced,
                reason=reason,
                republished_from=republished_from,
            )
            session.add(document)
            session.flush()
            record(
                session,
                actor,
                action,
                f"channel:{channel.name}",
                {
                    "version": version,
                    "republished_from": republished_from,
                    "changes": outcome.changes,
                    "forced": outcome.forced,
                    "overridden_problems": outcome.problems,
                    "live_chains": {
                        check.pattern: check.live.view() for check in outcome.checks if check.live
                    },
                },
                reason,
            )
            self._announce(session, channel.name, version)
            outcome.refresh_seconds = channel.refresh_seconds
        return document
