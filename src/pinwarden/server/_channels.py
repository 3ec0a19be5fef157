"""Channels, their rules and their pins: the draft that ``publish`` signs.

Every change is audited in its own transaction (docs/server.md, "Tokens, scopes, audit").
Patterns are stored in the normal form of ``HostPattern`` and pins in the canonical ``sha256/…``
spelling, so a draft compares equal to what was published whatever spelling the operator typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pinwarden._hosts import HostPattern
from pinwarden._pins import parse_pin
from pinwarden.client import Mode
from pinwarden.document import FormatError, check_report_uri
from pinwarden.errors import PinwardenError
from pinwarden.export import ROLES, UNSPECIFIED_ROLE, chain_role
from pinwarden.server._audit import record
from pinwarden.server._errors import ConflictError, NotFoundError, ValidationError
from pinwarden.server._livechain import SERVER_CONNECTION, latest_observation, probe_target
from pinwarden.server._models import Channel, Pin, Rule
from pinwarden.server._snapshot import RuleSnapshot, SnapshotPin

__all__ = [
    "DEFAULT_REFRESH_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "RESERVED_SEGMENTS",
    "add_pin",
    "add_rule",
    "channel_view",
    "create_channel",
    "draft_rules",
    "get_channel",
    "get_rule",
    "list_channels",
    "normal_pin",
    "remove_pin",
    "remove_rule",
    "replace_rules",
    "rule_view",
    "set_pin_role",
    "snapshot_of",
    "update_channel",
    "update_rule",
]

DEFAULT_REFRESH_SECONDS = 3600
DEFAULT_TTL_SECONDS = 14 * 24 * 3600
_MIN_REFRESH, _MAX_TTL = 10, 366 * 24 * 3600
# Path words of the public and admin URLs: no channel segment may be one (unambiguous URLs).
RESERVED_SEGMENTS = frozenset(
    {
        "pinset",
        "keyring",
        "events",
        "rules",
        "pins",
        "publish",
        "history",
        "rollback",
        "diff",
        "fetches",
    }
)
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch: "$" lets a "\n" through
# How old a chain this server saw itself may be and still tell a new pin's role.
_ROLE_EVIDENCE_AGE = timedelta(days=30)


def _check_channel_name(name: str) -> str:
    segments = name.split("/")
    if len(name) > 200 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValidationError(
            f"channel name {name!r}: use segments of letters, digits, '.', '_', '-' joined by '/' "
            "(e.g. com.example.app/prod), at most 200 characters"
        )
    reserved = RESERVED_SEGMENTS.intersection(segments)
    if reserved:
        raise ValidationError(f"channel name {name!r}: {sorted(reserved)} are reserved words")
    return name


def _check_timing(refresh_seconds: int, ttl_seconds: int) -> None:
    if not _MIN_REFRESH <= refresh_seconds < ttl_seconds <= _MAX_TTL:
        raise ValidationError(
            f"need {_MIN_REFRESH} <= refresh_seconds < ttl_seconds <= {_MAX_TTL}; "
            f"got refresh {refresh_seconds}, ttl {ttl_seconds}"
        )


def _check_report_uri(uri: str | None) -> str | None:
    """The report URI grammar of docs/spec.md §3.3, checked here so that a channel the API accepts
    never fails later, at signing."""
    try:
        return check_report_uri(uri)
    except FormatError as error:
        raise ValidationError(str(error)) from None


def _normal_pattern(pattern: str) -> str:
    try:
        return str(HostPattern.parse(pattern))
    except PinwardenError as error:
        raise ValidationError(str(error)) from None


def normal_pin(pin: str) -> str:
    try:
        return parse_pin(pin)
    except PinwardenError as error:
        raise ValidationError(str(error)) from None


def _normal_mode(mode: str) -> str:
    try:
        return Mode.parse(mode).value
    except ValueError as error:
        raise ValidationError(str(error)) from None


def _refuse_nulls(changes: dict[str, Any], required: set[str]) -> None:
    """A PATCH may leave a field out, not set one that always has a value to null (422, not a
    TypeError deep in a range check)."""
    nulls = sorted(key for key in required if key in changes and changes[key] is None)
    if nulls:
        raise ValidationError(f"{', '.join(nulls)}: cannot be null (leave the field out instead)")


def _check_probe(host: str | None, port: int) -> None:
    if not 0 < port < 65536:
        raise ValidationError(f"probe port {port} is not a TCP port")
    if host is not None and not re.fullmatch(r"[A-Za-z0-9.:_\-\[\]]{1,300}", host):
        raise ValidationError(f"probe host {host!r} is not a hostname or address")


def create_channel(
    session: Session,
    name: str,
    actor: str,
    *,
    description: str = "",
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    report_uri: str | None = None,
) -> Channel:
    _check_channel_name(name)
    _check_timing(refresh_seconds, ttl_seconds)
    if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ConflictError(f"channel {name!r} exists")
    channel = Channel(
        name=name,
        description=description,
        refresh_seconds=refresh_seconds,
        ttl_seconds=ttl_seconds,
        report_uri=_check_report_uri(report_uri),
    )
    session.add(channel)
    record(session, actor, "channel.create", f"channel:{name}", channel_view(channel, rules=False))
    return channel


def get_channel(session: Session, name: str) -> Channel:
    channel = session.scalar(
        select(Channel)
        .where(Channel.name == name)
        .options(selectinload(Channel.rules).selectinload(Rule.pins))
    )
    if channel is None:
        raise NotFoundError(f"no channel {name!r}")
    return channel


def list_channels(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.name)))


def update_channel(session: Session, name: str, actor: str, changes: dict[str, Any]) -> Channel:
    """Change ``description``, ``refresh_seconds``, ``ttl_seconds`` or ``report_uri``."""
    channel = get_channel(session, name)
    allowed = {"description", "refresh_seconds", "ttl_seconds", "report_uri"}
    if set(changes) - allowed:
        raise ValidationError(f"unknown channel fields {sorted(set(changes) - allowed)}")
    _refuse_nulls(changes, {"description", "refresh_seconds", "ttl_seconds"})
    _check_timing(
        changes.get("refresh_seconds", channel.refresh_seconds),
        changes.get("ttl_seconds", channel.ttl_seconds),
    )
    _check_report_uri(changes.get("report_uri"))
    before = channel_view(channel, rules=False)
    for key, value in changes.items():
        setattr(channel, key, value)
    record(
        session, actor, "channel.update", f"channel:{name}", {"before": before, "changes": changes}
    )
    return channel


def get_rule(channel: Channel, pattern: str) -> Rule:
    normal = _normal_pattern(pattern)
    for rule in channel.rules:
        if rule.pattern == normal:
            return rule
    raise NotFoundError(f"channel {channel.name!r} has no rule for {normal!r}")


def add_rule(
    session: Session,
    channel_name: str,
    pattern: str,
    actor: str,
    *,
    mode: str = "enforce",
    probe_host: str | None = None,
    probe_port: int = 443,
) -> Rule:
    channel = get_channel(session, channel_name)
    normal = _normal_pattern(pattern)
    if any(rule.pattern == normal for rule in channel.rules):
        raise ConflictError(f"channel {channel_name!r} already has a rule for {normal!r}")
    _check_probe(probe_host, probe_port)
    rule = Rule(
        pattern=normal, mode=_normal_mode(mode), probe_host=probe_host, probe_port=probe_port
    )
    channel.rules.append(rule)
    record(session, actor, "rule.add", f"channel:{channel_name}/rule:{normal}", rule_view(rule))
    return rule


def update_rule(
    session: Session, channel_name: str, pattern: str, actor: str, changes: dict[str, Any]
) -> Rule:
    """Change ``mode``, ``probe_host`` or ``probe_port``."""
    rule = get_rule(get_channel(session, channel_name), pattern)
    allowed = {"mode", "probe_host", "probe_port"}
    if set(changes) - allowed:
        raise ValidationError(f"unknown rule fields {sorted(set(changes) - allowed)}")
    _refuse_nulls(changes, {"mode", "probe_port"})
    if "mode" in changes:
        changes = {**changes, "mode": _normal_mode(changes["mode"])}
    _check_probe(
        changes.get("probe_host", rule.probe_host), changes.get("probe_port", rule.probe_port)
    )
    before = rule_view(rule)
    for key, value in changes.items():
        setattr(rule, key, value)
    record(
        session,
        actor,
        "rule.update",
        f"channel:{channel_name}/rule:{rule.pattern}",
        {"before": before, "changes": changes},
    )
    return rule


def remove_rule(session: Session, channel_name: str, pattern: str, actor: str) -> None:
    channel = get_channel(session, channel_name)
    rule = get_rule(channel, pattern)
    record(
        session,
        actor,
        "rule.remove",
        f"channel:{channel_name}/rule:{rule.pattern}",
        rule_view(rule),
    )
    channel.rules.remove(rule)


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"role {role[:40]!r} is not one of {', '.join(ROLES)}")
    return role


def _role_in_live_chain(session: Session, rule: Rule, pin: str) -> str:
    """The role of ``pin`` in the chain this server last saw on the rule's host (its own
    connection, within ``_ROLE_EVIDENCE_AGE``); ``unspecified`` when it saw none with the pin."""
    try:
        target = probe_target(rule.pattern, rule.probe_host, rule.probe_port)
    except (NotFoundError, ValidationError):
        return UNSPECIFIED_ROLE
    seen = latest_observation(session, target, _ROLE_EVIDENCE_AGE, source=SERVER_CONNECTION)
    if seen is None or pin not in seen.pins:
        return UNSPECIFIED_ROLE
    return chain_role(seen.pins.index(pin), len(seen.pins))


def add_pin(
    session: Session,
    channel_name: str,
    pattern: str,
    pin: str,
    actor: str,
    *,
    label: str = "",
    role: str | None = None,
) -> Pin:
    """Add a pin with its chain role; without one, the role its key has in the live chain this
    server last saw, else ``unspecified``."""
    rule = get_rule(get_channel(session, channel_name), pattern)
    canonical = normal_pin(pin)
    if any(existing.pin == canonical for existing in rule.pins):
        raise ConflictError(f"rule {rule.pattern!r} already has pin {canonical}")
    known = _role_in_live_chain(session, rule, canonical) if role is None else _checked_role(role)
    entry = Pin(pin=canonical, label=label, role=known)
    rule.pins.append(entry)
    record(
        session,
        actor,
        "pin.add",
        f"channel:{channel_name}/rule:{rule.pattern}",
        {"pin": canonical, "label": label, "role": known},
    )
    return entry


def set_pin_role(
    session: Session, channel_name: str, pattern: str, pin: str, role: str, actor: str
) -> Pin:
    """Give a pin of the draft its chain role (the next publish carries it)."""
    rule = get_rule(get_channel(session, channel_name), pattern)
    canonical = normal_pin(pin)
    for entry in rule.pins:
        if entry.pin == canonical:
            before, entry.role = entry.role, _checked_role(role)
            record(
                session,
                actor,
                "pin.role",
                f"channel:{channel_name}/rule:{rule.pattern}",
                {"pin": canonical, "before": before, "role": entry.role},
            )
            return entry
    raise NotFoundError(f"rule {rule.pattern!r} has no pin {canonical}")


def remove_pin(session: Session, channel_name: str, pattern: str, pin: str, actor: str) -> None:
    rule = get_rule(get_channel(session, channel_name), pattern)
    canonical = normal_pin(pin)
    for entry in rule.pins:
        if entry.pin == canonical:
            rule.pins.remove(entry)
            record(
                session,
                actor,
                "pin.remove",
                f"channel:{channel_name}/rule:{rule.pattern}",
                {"pin": canonical, "label": entry.label},
            )
            return
    raise NotFoundError(f"rule {rule.pattern!r} has no pin {canonical}")


def snapshot_of(rule: Rule) -> RuleSnapshot:
    """A rule as a snapshot: what a publish signs and stores with the version (for rollback)."""
    return RuleSnapshot(
        pattern=rule.pattern,
        mode=rule.mode,
        pins=tuple(SnapshotPin(pin.pin, pin.label, pin.role) for pin in rule.pins),
        probe_host=rule.probe_host,
        probe_port=rule.probe_port,
    )


def rule_view(rule: Rule) -> dict[str, Any]:
    """A rule as JSON, as the admin API shows it."""
    return snapshot_of(rule).view()


def channel_view(channel: Channel, *, rules: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": channel.name,
        "description": channel.description,
        "refresh_seconds": channel.refresh_seconds,
        "ttl_seconds": channel.ttl_seconds,
        "report_uri": channel.report_uri,
    }
    if rules:
        view["rules"] = [rule_view(rule) for rule in channel.rules]
    return view


def draft_rules(channel: Channel) -> tuple[RuleSnapshot, ...]:
    """The channel's current rules as snapshots, sorted by pattern."""
    return tuple(sorted((snapshot_of(rule) for rule in channel.rules), key=lambda r: r.pattern))


def replace_rules(session: Session, channel: Channel, snapshots: Iterable[RuleSnapshot]) -> None:
    """Make the channel's rules equal to ``snapshots`` (a rollback restores a published version)."""
    channel.rules.clear()
    session.flush()  # delete the old rows before inserting rows with the same patterns
    for snapshot in snapshots:
        channel.rules.append(
            Rule(
                pattern=snapshot.pattern,
                mode=snapshot.mode,
                probe_host=snapshot.probe_host,
                probe_port=snapshot.probe_port,
                pins=[
                    Pin(pin=entry.pin, label=entry.label, role=entry.role)
                    for entry in snapshot.pins
                ],
            )
        )
