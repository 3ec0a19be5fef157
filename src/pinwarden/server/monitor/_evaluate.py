"""What a check of one rule's host means: which published pins the verified chain matches, and
which alert conditions hold (docs/operations.md, "Alerts"). Pure functions of the check, the
published pins and what the previous check left; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pinwarden.export import chain_role
from pinwarden.server.alerts import AlertKind, Condition
from pinwarden.server.monitor._scan import ScanResult, ScanTarget

__all__ = [
    "HOST_KINDS",
    "HostMemory",
    "HostReport",
    "MonitorPolicy",
    "PinMatch",
    "PublishedPin",
    "RuleTarget",
    "evaluate",
]

# The alert kinds a host check decides (the others come from freshness and reports).
HOST_KINDS = (
    AlertKind.NO_PIN_MATCH,
    AlertKind.EXPIRING_WITHOUT_SUCCESSOR,
    AlertKind.KEY_CHANGED,
    AlertKind.NO_BACKUP_PIN,
    AlertKind.HOST_UNREACHABLE,
)


@dataclass(frozen=True)
class MonitorPolicy:
    """``expiry_warning``: how close to expiry a chain certificate needs a successor pin;
    ``unreachable_after``: failed checks in a row before an alert; ``concurrency`` and
    ``timeout``: the scanner's; ``surge_reports`` within ``surge_window``: a report surge."""

    expiry_warning: timedelta = timedelta(days=21)
    unreachable_after: int = 3
    concurrency: int = 100
    timeout: float = 10.0
    surge_reports: int = 50
    surge_window: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.expiry_warning <= timedelta(0) or self.surge_window <= timedelta(0):
            raise ValueError("expiry_warning and surge_window must be positive")
        if not 1 <= self.unreachable_after <= 1000 or not 1 <= self.surge_reports:
            raise ValueError("unreachable_after is 1 to 1000 and surge_reports at least 1")


@dataclass(frozen=True)
class PublishedPin:
    pin: str
    label: str = ""

    @property
    def is_backup(self) -> bool:
        return "backup" in self.label.lower()


@dataclass(frozen=True)
class RuleTarget:
    """One host of one enabled rule; ``published`` is ``None`` while the rule is unpublished."""

    channel: str
    pattern: str
    mode: str
    published: tuple[PublishedPin, ...] | None
    scan: ScanTarget

    @property
    def subject(self) -> str:
        return f"{self.channel} {self.pattern} {self.scan.server_name}:{self.scan.port}"

    def view(self) -> dict[str, Any]:
        """The target as JSON (the admin API hands targets to ``pinwarden monitor --once``)."""
        return {
            "channel": self.channel,
            "pattern": self.pattern,
            "mode": self.mode,
            "published": None
            if self.published is None
            else [{"pin": pin.pin, "label": pin.label} for pin in self.published],
            "server_name": self.scan.server_name,
            "address": self.scan.address,
            "port": self.scan.port,
            "ca_bundle_pem": self.scan.ca_bundle_pem,
        }

    @classmethod
    def from_view(cls, data: object) -> RuleTarget:
        """A target from JSON that came over the network: ``ValueError`` (one line naming the
        member) for anything of the wrong type or size."""
        if not isinstance(data, dict):
            raise ValueError("a monitor target is a JSON object")
        published = data.get("published")
        if published is not None and (
            not isinstance(published, list) or len(published) > _MAX_PINS
        ):
            raise ValueError(f"'published' is a list of at most {_MAX_PINS} pins, or null")
        port = data.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError("'port' is a TCP port number")
        return cls(
            _text(data, "channel", 200),
            _text(data, "pattern", 300),
            _text(data, "mode", 20),
            None
            if published is None
            else tuple(
                PublishedPin(_text(entry, "pin", 100), _text(entry, "label", 200, optional=True))
                for entry in published
            ),
            ScanTarget(
                _text(data, "server_name", 300),
                _text(data, "address", 300),
                port,
                _text(data, "ca_bundle_pem", _MAX_PEM, optional=True) or None,
            ),
        )


_MAX_PINS = 100
_MAX_PEM = 1 << 20


def _text(data: object, key: str, limit: int, *, optional: bool = False) -> str:
    value = data.get(key) if isinstance(data, dict) else None
    if optional and value in (None, ""):
        return ""
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise ValueError(f"'{key}' is a text of 1 to {limit} characters without NUL")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"'{key}' is not valid Unicode text") from None
    return value


@dataclass(frozen=True)
class HostMemory:
    """What the previous checks of this host left."""

    leaf_pin: str | None = None
    consecutive_failures: int = 0
    key_change_open: bool = False
    previous_leaf: str | None = None


@dataclass(frozen=True)
class PinMatch:
    pin: str
    position: str  # "leaf", "intermediate" or "root"
    label: str
    backup: bool  # the host now serves a key published as a backup

    def view(self) -> dict[str, Any]:
        return {
            "pin": self.pin,
            "position": self.position,
            "label": self.label,
            "backup": self.backup,
        }


@dataclass(frozen=True)
class HostReport:
    target: RuleTarget
    result: ScanResult
    memory: HostMemory  # after this check
    matches: tuple[PinMatch, ...] = ()
    backups: tuple[str, ...] = ()  # published pins outside the live chain
    conditions: tuple[Condition, ...] = ()
    decided: tuple[AlertKind, ...] = field(default=HOST_KINDS)  # kinds this check can tell

    @property
    def needs_attention(self) -> bool:
        return bool(self.conditions)

    def view(self) -> dict[str, Any]:
        return {
            "channel": self.target.channel,
            "pattern": self.target.pattern,
            "mode": self.target.mode,
            "published": self.target.published is not None,
            **self.result.view(),
            "positions": [
                chain_role(i, len(self.result.chain)) for i in range(len(self.result.chain))
            ],
            "matches": [match.view() for match in self.matches],
            "backup_pins": list(self.backups),
            "conditions": [{"kind": c.kind.value, "summary": c.summary} for c in self.conditions],
        }


def evaluate(
    target: RuleTarget,
    result: ScanResult,
    previous: HostMemory,
    policy: MonitorPolicy,
    now: datetime,
) -> HostReport:
    if result.error is not None:
        return _unreachable(target, result, previous, policy)
    chain_pins = [certificate.pin for certificate in result.chain]
    leaf = chain_pins[0]
    changed = previous.leaf_pin is not None and previous.leaf_pin != leaf
    published = target.published
    matches = tuple(
        PinMatch(
            pin.pin,
            chain_role(chain_pins.index(pin.pin), len(chain_pins)),
            pin.label,
            pin.is_backup,
        )
        for pin in published or ()
        if pin.pin in chain_pins
    )
    backups = tuple(pin.pin for pin in published or () if pin.pin not in chain_pins)
    published_pins = {pin.pin for pin in published or ()}
    key_change_open = changed or (previous.key_change_open and leaf not in published_pins)
    memory = HostMemory(
        leaf,
        0,
        key_change_open,
        previous.leaf_pin if changed else previous.previous_leaf,
    )
    conditions: list[Condition] = []
    if key_change_open:
        conditions.append(_key_changed(target, memory, leaf))
    if published is not None and target.mode != "disabled":
        conditions += _pin_conditions(target, result, matches, backups, policy, now)
    return HostReport(target, result, memory, matches, backups, tuple(conditions))


def _unreachable(
    target: RuleTarget, result: ScanResult, previous: HostMemory, policy: MonitorPolicy
) -> HostReport:
    failures = previous.consecutive_failures + 1
    memory = HostMemory(
        previous.leaf_pin, failures, previous.key_change_open, previous.previous_leaf
    )
    conditions: tuple[Condition, ...] = ()
    if failures >= policy.unreachable_after:
        conditions = (
            Condition(
                AlertKind.HOST_UNREACHABLE,
                target.subject,
                f"{target.scan.server_name}:{target.scan.port} ({target.pattern} in "
                f"{target.channel}) failed {failures} checks in a row: {result.error}",
                channel=target.channel,
                detail={"failures": failures, "error": result.error},
            ),
        )
    # The other conditions cannot be told without a chain: they stay as they were.
    return HostReport(
        target, result, memory, conditions=conditions, decided=(AlertKind.HOST_UNREACHABLE,)
    )


def _key_changed(target: RuleTarget, memory: HostMemory, leaf: str) -> Condition:
    return Condition(
        AlertKind.KEY_CHANGED,
        target.subject,
        f"{target.scan.server_name}:{target.scan.port} ({target.pattern} in {target.channel}) "
        f"now serves a new key {leaf}; before: {memory.previous_leaf}",
        channel=target.channel,
        detail={"leaf_pin": leaf, "previous_leaf_pin": memory.previous_leaf},
    )


def _pin_conditions(
    target: RuleTarget,
    result: ScanResult,
    matches: tuple[PinMatch, ...],
    backups: tuple[str, ...],
    policy: MonitorPolicy,
    now: datetime,
) -> list[Condition]:
    where = f"{target.scan.server_name}:{target.scan.port} ({target.pattern} in {target.channel})"
    conditions: list[Condition] = []
    if not matches:
        conditions.append(
            Condition(
                AlertKind.NO_PIN_MATCH,
                target.subject,
                f"{where} serves a chain that matches none of the published pins: clients "
                "that enforce them refuse it",
                channel=target.channel,
                detail={"chain": [c.pin for c in result.chain]},
            )
        )
    if not backups:
        conditions.append(
            Condition(
                AlertKind.NO_BACKUP_PIN,
                target.subject,
                f"{where}: every published pin is in the live chain; no backup key would keep "
                "clients working if the live key is lost",
                channel=target.channel,
            )
        )
    chain_pins = [certificate.pin for certificate in result.chain]
    # A matched pin above a certificate keeps clients working when that certificate is renewed.
    highest_match = max((chain_pins.index(match.pin) for match in matches), default=-1)
    for index, certificate in enumerate(result.chain):
        expiring = certificate.not_after - now <= policy.expiry_warning
        if expiring and index >= highest_match and not backups:
            conditions.append(
                Condition(
                    AlertKind.EXPIRING_WITHOUT_SUCCESSOR,
                    target.subject,
                    f"{where}: {certificate.subject} expires {certificate.not_after.isoformat()} "
                    "and no published pin would match its successor",
                    channel=target.channel,
                    detail={"certificate": certificate.view()},
                )
            )
            break
    return conditions
