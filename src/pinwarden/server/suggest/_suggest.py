"""Suggestions: the next rule change that keeps clients working, from what the monitor saw.

For each enabled rule of a channel, against the rule's current pins (the draft) and the last
verified chain of each of its hosts:

- a host whose chain matches none of the pins: add its leaf key's pin (it serves a new key);
- a chain certificate near expiry with no pin above it and no backup: add the pin of its issuer,
  so the renewed certificate still matches (for a root: a note, a person decides);
- no pin outside the live chains: a note, since a backup key is made offline (pinwarden keygen);
- a pin that was seen live before and is now gone from every host of the rule: retire it, but
  only when every host was reached at its last check, and the rule keeps a pin matching each
  host and one backup outside the live chains.
- a certificate logged in CT for the rule's hosts with a key the rule does not pin (docs/ct.md):
  once a person has acknowledged its alert (it is a colleague's renewal, not a mis-issuance),
  add its key; until then a note, since the same sighting may be an attacker's certificate.

``apply_suggestion`` makes the changes to the draft and publishes through the publisher's safe
path: the live-chain checks still run and can refuse (docs/operations.md, "Suggestions").
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.server._channels import add_pin, get_channel, remove_pin
from pinwarden.server._errors import ValidationError
from pinwarden.server._models import Rule
from pinwarden.server._publish import Publisher, PublishOutcome
from pinwarden.server.alerts import Alert, AlertKind
from pinwarden.server.ct import CtSighting
from pinwarden.server.monitor import MonitoredHost, checked_channel_name

__all__ = ["ChangeKind", "PinChange", "Suggestion", "apply_suggestion", "suggest"]


class ChangeKind(str, enum.Enum):
    ADD = "add"
    RETIRE = "retire"
    NOTE = "note"  # needs a person: nothing to apply


@dataclass(frozen=True)
class PinChange:
    pattern: str
    kind: ChangeKind
    reason: str
    pin: str | None = None
    label: str = ""

    def view(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "change": self.kind.value,
            "pin": self.pin,
            "label": self.label,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Suggestion:
    channel: str
    changes: tuple[PinChange, ...]

    @property
    def applicable(self) -> tuple[PinChange, ...]:
        return tuple(change for change in self.changes if change.kind is not ChangeKind.NOTE)

    def view(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "changes": [change.view() for change in self.changes],
            "applicable": len(self.applicable),
        }


@dataclass(frozen=True)
class _Host:
    name: str
    reachable: bool
    chain: tuple[dict[str, Any], ...]
    seen: frozenset[str]

    @property
    def pins(self) -> list[str]:
        return [str(certificate["pin"]) for certificate in self.chain]


def suggest(
    session: Session, channel_name: str, *, now: datetime, expiry_warning: timedelta
) -> Suggestion:
    """The suggested changes for ``channel_name``; ``NotFoundError`` for an unknown channel."""
    channel = get_channel(session, checked_channel_name(channel_name))
    rows = session.scalars(select(MonitoredHost).where(MonitoredHost.channel == channel.name))
    hosts: dict[str, list[_Host]] = {}
    for row in rows:
        hosts.setdefault(row.pattern, []).append(
            _Host(
                f"{row.host}:{row.port}",
                row.last_error is None,
                tuple(row.chain or ()),
                frozenset(row.seen_pins or ()),
            )
        )
    changes: list[PinChange] = []
    for rule in channel.rules:
        if rule.mode != "disabled" and hosts.get(rule.pattern):
            changes += _rule_changes(rule, hosts[rule.pattern], now, expiry_warning)
    changes += _ct_changes(session, channel.name, channel.rules, changes, now)
    return Suggestion(channel.name, tuple(changes))


def _ct_changes(
    session: Session,
    channel: str,
    rules: Sequence[Rule],
    earlier: Sequence[PinChange],
    now: datetime,
) -> list[PinChange]:
    """Keys of unexpired certificates logged in CT that the rule does not pin yet: added once
    their alert is acknowledged, noted before."""
    enabled = {
        rule.pattern: {entry.pin for entry in rule.pins}
        for rule in rules
        if rule.mode != "disabled"
    }
    suggested = {(change.pattern, change.pin) for change in earlier}
    sightings = session.scalars(
        select(CtSighting)
        .where(CtSighting.channel == channel, CtSighting.pinned.is_(False))
        .where(CtSighting.not_after > now)
        .order_by(CtSighting.id)
    )
    changes: list[PinChange] = []
    for sighting in sightings:
        pins = enabled.get(sighting.pattern)
        key = (sighting.pattern, sighting.leaf_pin)
        if pins is None or sighting.leaf_pin in pins or key in suggested:
            continue
        suggested.add(key)
        alert = session.scalar(
            select(Alert)
            .where(
                Alert.kind == AlertKind.CT_UNPINNED_KEY.value,
                Alert.subject == sighting.alert_subject,
            )
            .order_by(Alert.id.desc())
            .limit(1)
        )
        names = ", ".join(sighting.names[:3])
        logged = f"a certificate for {names} logged in CT on {sighting.seen_at.date()}"
        if alert is not None and alert.acked_by is not None:
            changes.append(
                PinChange(
                    sighting.pattern,
                    ChangeKind.ADD,
                    f"{logged} (alert #{alert.id}, acknowledged by {alert.acked_by}) uses this key",
                    sighting.leaf_pin,
                    "CT-logged key (suggested)",
                )
            )
        else:
            number = f" (alert #{alert.id})" if alert is not None else ""
            changes.append(
                PinChange(
                    sighting.pattern,
                    ChangeKind.NOTE,
                    f"{logged}{number} uses the key {sighting.leaf_pin}, not pinned: if it is "
                    "yours, acknowledge the alert and its pin is suggested; if not, it was "
                    "mis-issued (have it revoked)",
                )
            )
    return changes


def _rule_changes(
    rule: Rule, hosts: Sequence[_Host], now: datetime, expiry_warning: timedelta
) -> list[PinChange]:
    pins = [entry.pin for entry in rule.pins]
    added: list[PinChange] = []
    for host in hosts:
        if host.chain and not set(host.pins) & set(pins):
            leaf = host.pins[0]
            if leaf not in pins and all(change.pin != leaf for change in added):
                added.append(
                    PinChange(
                        rule.pattern,
                        ChangeKind.ADD,
                        f"{host.name} serves a new key that matches no pin of the rule",
                        leaf,
                        "leaf key (suggested)",
                    )
                )
    live = {pin for host in hosts for pin in host.pins}
    wanted = pins + [change.pin for change in added if change.pin]
    backups = [pin for pin in wanted if pin not in live]
    notes: list[PinChange] = []
    for host in hosts:
        for change in _expiry_changes(rule.pattern, host, wanted, backups, now, expiry_warning):
            if change.kind is ChangeKind.NOTE:
                notes.append(change)
            elif all(earlier.pin != change.pin for earlier in added):
                added.append(change)
    wanted = pins + [change.pin for change in added if change.pin]
    if not [pin for pin in wanted if pin not in live]:
        notes.append(
            PinChange(
                rule.pattern,
                ChangeKind.NOTE,
                "no pin is outside the live chains: make a backup key offline "
                "(pinwarden keygen) and add its pin",
            )
        )
    return added + _retirements(rule.pattern, pins, hosts, wanted, live) + notes


def _expiry_changes(
    pattern: str,
    host: _Host,
    wanted: list[str],
    backups: list[str],
    now: datetime,
    expiry_warning: timedelta,
) -> list[PinChange]:
    """For the first certificate near expiry that nothing covers: pin its issuer, or a note."""
    chain_pins = host.pins
    matched = [index for index, pin in enumerate(chain_pins) if pin in wanted]
    highest = max(matched, default=-1)
    for index, certificate in enumerate(host.chain):
        not_after = datetime.fromisoformat(str(certificate["not_after"]))
        if not_after - now > expiry_warning or index < highest or backups:
            continue
        if index + 1 < len(chain_pins):
            issuer = chain_pins[index + 1]  # not pinned: it would sit above ``highest``
            return [
                PinChange(
                    pattern,
                    ChangeKind.ADD,
                    f"{certificate['subject']} on {host.name} expires {not_after.isoformat()}: "
                    "pin its issuer so the renewed certificate still matches",
                    issuer,
                    f"issuer of {certificate['subject']} (suggested)",
                )
            ]
        return [
            PinChange(
                pattern,
                ChangeKind.NOTE,
                f"the root {certificate['subject']} on {host.name} expires "
                f"{not_after.isoformat()}: pin the key of the root that replaces it",
            )
        ]
    return []


def _retirements(
    pattern: str, pins: list[str], hosts: Sequence[_Host], wanted: list[str], live: set[str]
) -> list[PinChange]:
    """Pins seen live before and gone from every host, when dropping them is safe."""
    if not all(host.reachable and host.chain for host in hosts):
        return []
    seen = set().union(*(host.seen for host in hosts))
    retired = [pin for pin in pins if pin in seen and pin not in live]
    kept = [pin for pin in wanted if pin not in retired]
    keeps_every_host = all(set(host.pins) & set(kept) for host in hosts)
    keeps_a_backup = any(pin not in live for pin in kept)
    if not (keeps_every_host and keeps_a_backup):
        return []
    return [
        PinChange(
            pattern,
            ChangeKind.RETIRE,
            "this key was served before and is gone from every host of the rule",
            pin,
        )
        for pin in retired
    ]


def apply_suggestion(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    suggestion: Suggestion,
    actor: str,
) -> PublishOutcome:
    """Make the suggested pin changes to the draft and publish safely. A refusal
    (``UnsafePublishError``) leaves the changed draft for review; a suggestion with nothing to
    apply is a ``ValidationError``."""
    if not suggestion.applicable:
        raise ValidationError(f"nothing to apply for {suggestion.channel!r}: no pin change")
    with sessions.begin() as session:
        for change in suggestion.applicable:
            assert change.pin is not None
            if change.kind is ChangeKind.ADD:
                add_pin(
                    session,
                    suggestion.channel,
                    change.pattern,
                    change.pin,
                    actor,
                    label=change.label,
                )
            else:
                remove_pin(session, suggestion.channel, change.pattern, change.pin, actor)
    return publisher.publish(suggestion.channel, actor)
