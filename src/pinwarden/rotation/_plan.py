"""The ordered steps of a planned key rotation, each checked against the live state.

A planned rotation never makes a client refuse the host, because each step waits for the one
before it (docs/rotation.md):

1. publish the new key's pin beside the current ones (safe publishing keeps a backup);
2. wait until clients have fetched that pin set;
3. deploy the certificate for the new key;
4. retire the old key's pin, keeping one backup pin outside the live chain.

The live state is the channel's published pin set (verified), the chain the host serves now
(verified, normal validation) and, given an admin token, the server's fetch counts by version
(``_uptake``). Step 2 is done when both say so: the refresh interval has passed since the pin
set was issued (a polling client fetches within it plus its jitter, ``RefreshPolicy``; a client
with push at once), and at least ``threshold`` of the fetches over the last interval were of
versions carrying the new pin (fewer: a replica or a cache still serves an older version).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pinwarden._pins import spki_pin_of_der
from pinwarden._tls import verified_chain_der
from pinwarden.client import RefreshPolicy
from pinwarden.document import PinSet
from pinwarden.errors import PinwardenError
from pinwarden.rotation._channel import rulebook_of_pinset
from pinwarden.rotation._uptake import Uptake

__all__ = [
    "DEFAULT_THRESHOLD",
    "LiveChainError",
    "PlanStep",
    "RotationPlan",
    "live_chain_pins",
    "plan_rotation",
    "poll_window",
]

_POLICY = RefreshPolicy()  # the timing every client has unless its app changes it
DEFAULT_THRESHOLD = 0.99
DONE, NOW, WAIT, BLOCKED = "done", "now", "waiting", "blocked"


class LiveChainError(PinwardenError):
    """The host's live chain could not be read (connection, TLS or validation failure)."""


def live_chain_pins(
    host: str,
    port: int,
    *,
    connect_host: str | None = None,
    cafile: str | None = None,
    timeout: float = 10.0,
) -> tuple[str, ...]:
    """The pins of the chain ``host`` serves, as verified by normal validation, leaf first
    (docs/security.md rule 1: the verified chain, not the list the server sent).

    ``timeout`` bounds the whole exchange: a host that trickles its handshake a byte at a time
    resets every per-read timeout, so the connection is shut down under it at the deadline.
    """
    context = ssl.create_default_context(cafile=cafile)
    address = (connect_host or host, port)
    where = f"{host} at {address[0]}:{port}"
    outcome: list[tuple[str, ...] | BaseException] = []
    try:
        raw = socket.create_connection(address, timeout=timeout)
    except OSError as error:
        raise LiveChainError(f"cannot connect to {where}: {error}") from None

    def handshake() -> None:
        try:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                outcome.append(tuple(spki_pin_of_der(der) for der in verified_chain_der(tls)))
        except (OSError, ssl.SSLError) as error:
            outcome.append(error)

    # wrap_socket takes the descriptor over from ``raw``; a duplicate can still shut the
    # connection down under it, which ends a blocked read at once.
    watchdog = raw.dup()
    worker = threading.Thread(target=handshake, name="pinwarden-live-chain", daemon=True)
    worker.start()
    worker.join(timeout)
    late = worker.is_alive()
    with contextlib.suppress(OSError):
        watchdog.shutdown(socket.SHUT_RDWR)
    watchdog.close()
    worker.join(timeout)
    if late or not outcome:
        raise LiveChainError(f"{where} did not complete a TLS handshake within {timeout:g} s")
    result = outcome[0]
    if isinstance(result, ssl.SSLCertVerificationError):
        raise LiveChainError(f"{where} fails normal validation: {result.verify_message}")
    if isinstance(result, BaseException):
        raise LiveChainError(f"cannot read the chain of {where}: {result}")
    return result


@dataclass(frozen=True)
class PlanStep:
    number: int
    title: str
    state: str  # done, now, waiting, blocked
    detail: str
    command: str | None = None


@dataclass(frozen=True)
class RotationPlan:
    host: str
    channel: str
    version: int
    rule: str | None
    published_pins: tuple[str, ...]
    live_pins: tuple[str, ...]
    new_pin: str | None
    steps: tuple[PlanStep, ...]
    problems: tuple[str, ...]

    def view(self) -> dict[str, Any]:
        return asdict(self)


def _new_pin(given: str | None, published: tuple[str, ...], live: tuple[str, ...]) -> str | None:
    """The key rotated to: the one given, else the published backup outside the live chain."""
    if given is not None:
        return given
    outside = [pin for pin in published if pin not in live]
    return outside[0] if len(outside) == 1 else None


def _publish_step(channel: str, rule: str, new_pin: str | None, pins: tuple[str, ...]) -> PlanStep:
    title = "publish the new key's pin beside the current ones"
    if new_pin is None:
        return PlanStep(
            1,
            title,
            BLOCKED,
            "no new key named and no single published backup outside the live chain: give "
            "--new-key FILE (acme.sh: the <key>.next file) or --new-pin",
        )
    if new_pin in pins:
        return PlanStep(1, title, DONE, f"{new_pin} is in the published rule {rule}")
    return PlanStep(
        1,
        title,
        NOW,
        f"{new_pin} is not published yet",
        f"pinwarden pins add {channel} {rule} {new_pin} --label 'next key' && "
        f"pinwarden publish {channel}",
    )


def poll_window(pinset: PinSet, policy: RefreshPolicy = _POLICY) -> timedelta:
    """The longest a polling client waits between fetches of this pin set: its refresh hint
    bounded by the clients' ``policy`` (by default at least a minute), plus the jitter."""
    hint = timedelta(seconds=pinset.refresh_after)
    return policy.interval(hint, pinset.expires - pinset.issued) * (1 + policy.jitter)


def _wait_step(
    published: bool,
    deployed: bool,
    pinset: PinSet,
    now: datetime,
    uptake: Uptake | None,
    threshold: float,
    policy: RefreshPolicy,
) -> PlanStep:
    title = "wait until clients have fetched it"
    if not published:
        return PlanStep(2, title, BLOCKED, "after step 1")
    if deployed:
        return PlanStep(2, title, DONE, "the new key is live already")
    window = poll_window(pinset, policy)
    ready_at = pinset.issued + window
    basis = (
        f"pin set v{pinset.version} was issued {pinset.issued:%Y-%m-%dT%H:%M:%SZ}; polling "
        f"clients fetch within {window.total_seconds():.0f} s, push clients at once"
    )
    if uptake is None:
        basis += "; fetch counts not checked (give --token, read scope, to check them)"
    elif uptake.total and uptake.share < threshold:
        detail = f"{basis}; {uptake.describe()}, below {threshold:.0%}"
        return PlanStep(2, title, WAIT, f"{detail}: a replica or cache may serve an older one")
    else:
        basis += f"; {uptake.describe()}"
    if now >= ready_at:
        return PlanStep(2, title, DONE, basis)
    return PlanStep(2, title, WAIT, f"{basis}; deploy after {ready_at:%Y-%m-%dT%H:%M:%SZ}")


def _deploy_step(channel: str, ready: bool, new_pin: str | None, live: tuple[str, ...]) -> PlanStep:
    title = "deploy the certificate for the new key"
    if new_pin is not None and new_pin in live:
        return PlanStep(3, title, DONE, "the host serves the new key now")
    if not ready:
        return PlanStep(3, title, BLOCKED, "after step 2")
    return PlanStep(
        3,
        title,
        NOW,
        "clients hold the new pin; check the new chain, then reload",
        f"pinwarden preflight --channel {channel} --keyring KEYRING NEW_FULLCHAIN.pem && "
        "systemctl reload YOUR-SERVER",
    )


def _retire_step(
    channel: str, rule: str, deployed: bool, pins: tuple[str, ...], live: tuple[str, ...]
) -> PlanStep:
    title = "retire the old key's pin, keeping one backup outside the live chain"
    if not deployed:
        return PlanStep(4, title, BLOCKED, "after step 3")
    outside = [pin for pin in pins if pin not in live]
    if not outside:
        return PlanStep(
            4,
            title,
            NOW,
            "no published pin is outside the live chain: there is no backup key; make one "
            "offline and publish its pin",
            f"pinwarden keygen --name backup && pinwarden pins add {channel} {rule} BACKUP_PIN "
            f"&& pinwarden publish {channel}",
        )
    if len(outside) == 1:
        return PlanStep(4, title, DONE, f"one backup pin outside the live chain: {outside[0]}")
    return PlanStep(
        4,
        title,
        NOW,
        f"{len(outside)} pins are outside the live chain ({', '.join(outside)}): remove the old "
        "key's once no host serves it, keep the backup",
        f"pinwarden pins remove {channel} {rule} OLD_PIN && pinwarden publish {channel}",
    )


def plan_rotation(
    host: str,
    pinset: PinSet,
    live: tuple[str, ...],
    *,
    new_pin: str | None = None,
    now: datetime,
    uptake: Uptake | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    policy: RefreshPolicy = _POLICY,
) -> RotationPlan:
    """The four steps for ``host`` given the verified ``pinset``, the ``live`` chain pins and,
    when read, the server's ``uptake`` of the new pin; ``policy`` is the clients' timing."""
    rule = rulebook_of_pinset(pinset, (), now).rule_for(host)
    if rule is None:
        problem = f"no rule of pin set v{pinset.version} covers {host}: nothing to rotate"
        return RotationPlan(
            host, pinset.channel, pinset.version, None, (), live, None, (), (problem,)
        )
    problems: list[str] = []
    pins = rule.pins
    if not set(pins) & set(live):
        problems.append(
            f"the live chain of {host} matches no pin of rule {rule.pattern}: clients that "
            "enforce it refuse the host now (an emergency: docs/rotation.md)"
        )
    pattern = str(rule.pattern)
    target = _new_pin(new_pin, pins, live)
    publish = _publish_step(pinset.channel, pattern, target, pins)
    deployed = target is not None and target in live
    wait = _wait_step(publish.state == DONE, deployed, pinset, now, uptake, threshold, policy)
    deploy = _deploy_step(pinset.channel, wait.state == DONE, target, live)
    retire = _retire_step(pinset.channel, pattern, deploy.state == DONE, pins, live)
    return RotationPlan(
        host,
        pinset.channel,
        pinset.version,
        pattern,
        pins,
        live,
        target,
        (publish, wait, deploy, retire),
        tuple(problems),
    )
