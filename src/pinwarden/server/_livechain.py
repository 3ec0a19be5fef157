"""The chain a pinned host serves now: a fresh connection from this server.

Safe publishing compares rules with this chain (docs/server.md, "Safe publishing"). The chain is
the *verified* one, after normal CA and hostname validation (docs/security.md rule 1), so the
comparison sees what clients will see. Each connection is recorded as an observation (source
``SERVER_CONNECTION``); when the host cannot be reached, the newest such observation may stand in
for it. Observations posted through the admin API (source ``"api"``, the monitor's) are records
only, never proof: a token holder could post any chain.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden._hosts import HostPattern, PatternKind, normalize_host
from pinwarden._pins import spki_pin_of_der
from pinwarden._tls import verified_chain_der
from pinwarden.errors import PinwardenError
from pinwarden.server._audit import record
from pinwarden.server._errors import NotFoundError, ValidationError
from pinwarden.server._models import Observation, utc_now

__all__ = [
    "SERVER_CONNECTION",
    "LiveChain",
    "ProbeTarget",
    "connect_and_read_pins",
    "latest_observation",
    "list_observations",
    "probe_target",
    "record_observation",
]


# The source of observations made by this server's own connections.
SERVER_CONNECTION = "publish-check"


@dataclass(frozen=True)
class ProbeTarget:
    """Where to look at a rule's live chain: the TLS name, the address to dial, and the port."""

    server_name: str
    address: str
    port: int


@dataclass(frozen=True)
class LiveChain:
    """The pins of a verified chain, leaf first, and where they came from."""

    target: ProbeTarget
    pins: tuple[str, ...]
    seen_at: datetime
    source: str  # "connection", or "observation" (this server's, when a connection failed)
    fallback: str | None = None  # why an observation stands in for a connection

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "host": self.target.server_name,
            "port": self.target.port,
            "pins": list(self.pins),
            "seen_at": self.seen_at.isoformat(),
            "source": self.source,
        }
        if self.fallback is not None:
            view["fallback"] = self.fallback
        return view


def probe_target(pattern: str, probe_host: str | None, probe_port: int) -> ProbeTarget:
    """An exact pattern is verified under its own name, dialled at ``probe_host`` if given.

    A wildcard pattern names no single host: ``probe_host`` must be a hostname under it, which is
    both dialled and verified.
    """
    parsed = HostPattern.parse(pattern)
    if parsed.kind is PatternKind.EXACT:
        return ProbeTarget(parsed.base, probe_host or parsed.base, probe_port)
    if probe_host is None:
        raise NotFoundError(
            f"rule {pattern!r} is a wildcard: set a probe host under it to check its live chain"
        )
    try:
        name = normalize_host(probe_host)
    except PinwardenError as error:
        raise ValidationError(str(error)) from None
    if not parsed.matches(name):
        raise ValidationError(f"probe host {probe_host!r} is not under the pattern {pattern!r}")
    return ProbeTarget(name, name, probe_port)


def connect_and_read_pins(
    target: ProbeTarget, *, cafile: str | None = None, timeout: float = 5.0
) -> tuple[str, ...]:
    """Connect with normal CA and hostname validation; the pins of the verified chain, leaf first.

    The host must be named in a subjectAltName, never only in the subject CN (RFC 6125 §6.4.4),
    as pinwarden's clients require: a chain they refuse is never the live chain "clients see".
    Raises ``OSError`` (``ssl.SSLError`` included) when the host cannot be reached or validated.
    """
    context = ssl.create_default_context(cafile=cafile)
    context.hostname_checks_common_name = False
    with socket.create_connection((target.address, target.port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=target.server_name) as tls:
            return tuple(spki_pin_of_der(der) for der in verified_chain_der(tls))


def latest_observation(
    session: Session, target: ProbeTarget, max_age: timedelta, *, source: str
) -> LiveChain | None:
    """The newest observation of the target's host and port from ``source``, if younger than
    ``max_age``."""
    row = session.scalar(
        select(Observation)
        .where(
            Observation.host == target.server_name,
            Observation.port == target.port,
            Observation.source == source,
        )
        .order_by(Observation.seen_at.desc(), Observation.id.desc())
        .limit(1)
    )
    if row is None or utc_now() - row.seen_at > max_age:
        return None
    return LiveChain(target, tuple(row.chain_pins), row.seen_at, "observation")


def record_observation(
    session: Session, host: str, port: int, pins: list[str], source: str, actor: str
) -> Observation:
    try:
        name = normalize_host(host)
    except PinwardenError as error:
        raise ValidationError(f"observation host: {error}") from None
    row = Observation(host=name, port=port, chain_pins=pins, source=source)
    session.add(row)
    session.flush()
    record(session, actor, "observation.record", f"host:{row.host}:{port}", {"pins": pins})
    return row


def list_observations(session: Session, *, limit: int = 100) -> list[Observation]:
    return list(session.scalars(select(Observation).order_by(Observation.id.desc()).limit(limit)))
