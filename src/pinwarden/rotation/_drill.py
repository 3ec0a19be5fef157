"""The rotation drill: how many requests fail when a certificate changes, measured on loopback.

Each scenario starts from a fresh ``Lab`` (API host, pin server, published channel) and runs
clients of four kinds that request the API continuously: statically pinned (the shipped pins:
the live key and an offline backup), dynamically pinned with push, dynamically pinned polling
only, and an unpinned control. Between requests to the API each client also tries the attacker:
a host that presents a certificate for the API's name from a CA the device trusts.

- **planned**: the steps of ``rotate plan`` (the backup key is already published; wait until
  clients have had time to fetch; deploy; publish a new backup and retire the old key).
- **emergency**: a key nobody pinned goes live; after ``outage_seconds`` the operator publishes its
  pin. A dynamic client's failure window runs from the publish request to the instant it put the
  new pin set in force (its ``fetched`` event); a static client never recovers.
- **untouched** (``untouched_days``): nobody touches anything for 60 days on an injected clock;
  the server's freshness keeps the pin set alive; a polling client never falls back.

The clients live in several processes (``pinwarden.rotation._fleet``), their requests paced
(one TLS handshake per request, as pins apply per connection); failure windows are taken from
the clients' own events, not from the request rate.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden._pins import spki_pin
from pinwarden.client import DynamicPins, pinned_context
from pinwarden.rotation._certs import new_key
from pinwarden.rotation._channel import fetch_published
from pinwarden.rotation._fleet import (
    KINDS,
    POLL,
    PUSH,
    ClientRecord,
    FleetSettings,
    fleet_policy,
    running_fleet,
    wait_for,
)
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab, https_get
from pinwarden.rotation._plan import DONE, live_chain_pins, plan_rotation, poll_window
from pinwarden.rotation._uptake import read_uptake

__all__ = [
    "DrillSettings",
    "KindResult",
    "ScenarioResult",
    "emergency",
    "planned",
    "untouched_days",
]


@dataclass(frozen=True)
class DrillSettings:
    fleet: FleetSettings = field(default_factory=FleetSettings)
    outage_seconds: float = 2.0  # emergency: the new key is live this long before the publish
    observe_seconds: float = 2.0  # how long each phase runs with clients requesting
    recovery_deadline: float = 120.0


@dataclass(frozen=True)
class KindResult:
    kind: str
    clients: int
    requests: int
    failed: int
    attacks: int
    attacks_accepted: int
    fallbacks: int
    windows: tuple[float, ...] = ()  # seconds, one per dynamic client that recovered
    unrecovered: int = 0

    def percentile(self, fraction: float) -> float | None:
        """The nearest-rank percentile of the windows (``0.99``: p99)."""
        return _percentile(self.windows, fraction)

    @property
    def median(self) -> float | None:
        return statistics.median(self.windows) if self.windows else None


def _percentile(values: tuple[float, ...], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    kinds: tuple[KindResult, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def of(self, kind: str) -> KindResult:
        return next(result for result in self.kinds if result.kind == kind)


def _summarise(
    records: list[ClientRecord], since: float | None = None, version: int | None = None
) -> tuple[KindResult, ...]:
    results = []
    for kind in KINDS:
        group = [record for record in records if record.kind == kind]
        windows: list[float] = []
        timed = since is not None and version is not None and kind in (PUSH, POLL)
        if since is not None and version is not None and timed:
            seen = [record.fetched_at.get(version) for record in group]
            windows = [at - since for at in seen if at is not None]
        results.append(
            KindResult(
                kind,
                len(group),
                sum(r.requests for r in group),
                sum(r.failed for r in group),
                sum(r.attacks for r in group),
                sum(r.attacks_accepted for r in group),
                sum(r.fallbacks for r in group),
                tuple(windows),
                len(group) - len(windows) if timed else 0,
            )
        )
    return tuple(results)


def _push_breakdown(
    records: list[ClientRecord], publishing: float, published: float, version: int
) -> str:
    """Where a push client's window goes: the publish request, the announcement reaching it
    after the publish returned, and its fetch and verification after the announcement."""
    pushed = [r for r in records if r.kind == PUSH and version in r.announced_at]
    reach = tuple(r.announced_at[version] - published for r in pushed)
    fetch = tuple(r.fetched_at[version] - r.announced_at[version] for r in pushed
                  if version in r.fetched_at)  # fmt: skip

    def shown(values: tuple[float, ...]) -> str:
        figures = (_percentile(values, 0.5), _percentile(values, 0.99))
        return " / ".join(_seconds(value) for value in figures)

    return (
        f"push window, p50 / p99 (s): publish request {published - publishing:.2f}; "
        f"announcement reached the client after it {shown(reach)}; fetch and verification "
        f"after the announcement {shown(fetch)}"
    )


@contextlib.contextmanager
def _lab(directory: Path, settings: DrillSettings) -> Iterator[Lab]:
    fleet = settings.fleet
    with Lab(directory, refresh_seconds=fleet.poll_seconds, push_clients=fleet.clients) as lab:
        yield lab


def _plan_step(lab: Lab, number: int, new_pin: str, settings: FleetSettings) -> str:
    """The state of step ``number`` of ``rotate plan`` for the API host, judged live, with the
    server's fetch counts, for clients with the fleet's polling policy."""
    pinset = fetch_published(lab.server_url, CHANNEL, lab.keyring)
    live = live_chain_pins(
        API_HOST, lab.api.port, connect_host="127.0.0.1", cafile=str(lab.api_ca_file)
    )
    policy = fleet_policy(settings, push=False)
    window = max(60, math.ceil(poll_window(pinset, policy).total_seconds()))
    uptake = read_uptake(lambda path: lab.call("GET", path), CHANNEL, API_HOST, new_pin, window)
    now = datetime.now(timezone.utc)
    plan = plan_rotation(
        API_HOST, pinset, live, new_pin=new_pin, now=now, uptake=uptake, policy=policy
    )
    return plan.steps[number - 1].state


def planned(directory: Path, settings: DrillSettings) -> ScenarioResult:
    """A planned rotation to the published backup key, following ``rotate plan``.

    Step 2 waits on the server's fetch counts too: the share of the last minute's fetches
    carrying the new pin reaches 99 % once the fetches of the version before it have aged out.
    """
    started = time.monotonic()
    fleet = settings.fleet
    with _lab(directory, settings) as lab:
        attacker = ("127.0.0.1", lab.interceptor(connect=False).port)
        with running_fleet(lab.device, attacker, fleet) as running:
            target = lab.backup_pin
            step1 = _plan_step(lab, 1, target, fleet)
            notes = [] if step1 == DONE else ["step 1 was not done"]
            waited = wait_for(
                lambda: _plan_step(lab, 2, target, fleet) == DONE, fleet.poll_seconds * 1.1 + 5
            )
            lab.api.serve(lab.new_certificate(lab.backup_key))  # step 3: deploy
            time.sleep(settings.observe_seconds)
            lab.add_pin(spki_pin(new_key()), "new offline backup key")  # step 4
            lab.remove_pin(lab.live.pin)
            lab.publish()
            time.sleep(settings.observe_seconds)
            records = running.stop()
        notes += [] if waited else ["step 2 did not report done in time; deployed anyway"]
        return ScenarioResult(
            "planned", _summarise(records), time.monotonic() - started, tuple(notes)
        )


def emergency(directory: Path, settings: DrillSettings) -> ScenarioResult:
    """A key nobody pinned goes live; its pin is published ``outage_seconds`` later."""
    started = time.monotonic()
    with _lab(directory, settings) as lab:
        attacker = ("127.0.0.1", lab.interceptor(connect=False).port)
        with running_fleet(lab.device, attacker, settings.fleet) as running:
            time.sleep(settings.observe_seconds)
            replacement = lab.new_certificate()
            lab.api.serve(replacement)
            time.sleep(settings.outage_seconds)
            lab.add_pin(replacement.pin, "emergency key")
            running.mark()
            server_cpu = time.process_time()
            publishing = time.monotonic()
            version = lab.publish()
            published = time.monotonic()
            _, clients_cpu = running.await_version(version, settings.recovery_deadline, (PUSH,))
            server_cpu = time.process_time() - server_cpu
            running.await_version(version, settings.recovery_deadline)
            time.sleep(settings.observe_seconds)
            records = running.stop()
        kinds = _summarise(records, publishing, version)
        cpu = (
            f"CPU from the publish until every push client held the new pin set: "
            f"{server_cpu:.2f} s in the process of the pin server, the API and the attacker; "
            f"{clients_cpu:.2f} s in the client processes "
            f"({clients_cpu / settings.fleet.clients * 1000:.1f} ms a push client)"
        )
        notes = (_push_breakdown(records, publishing, published, version), cpu)
        return ScenarioResult("emergency", kinds, time.monotonic() - started, notes)


class _InjectedClock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def untouched_days(directory: Path, days: int = 60, clients: int = 3) -> ScenarioResult:
    """Nobody touches anything for ``days`` on an injected clock, read every 6 hours.

    The server's freshness re-signs the pin set (``pinwarden.server.freshness``). The server takes
    no clock in its configuration, so this scenario runs the freshness rounds itself with the
    injected clock, and replaces the clock the publisher stamps ``issued``/``expires`` with.
    """
    from unittest import mock

    from pinwarden.server.alerts import AlertBook
    from pinwarden.server.freshness import Freshener

    started = time.monotonic()
    clock = _InjectedClock()
    with Lab(directory) as lab, mock.patch("pinwarden.server._publish.utc_now", clock):
        made = [_untouched_client(lab, clock) for _ in range(clients)]
        services = lab.app.services
        freshener = Freshener(
            services.sessions,
            services.publisher,
            AlertBook(clock=clock),
            holder="drill",
            clock=clock,
        )
        attacker = ("127.0.0.1", lab.interceptor(connect=False).port)
        try:
            for _ in range(days * 4):
                clock.now += timedelta(hours=6)
                _freshness_round(lab, freshener)
                for client in made:
                    _poll_and_request(lab, client, attacker)
        finally:
            for client in made:
                client.pins.close()
    note = f"{freshener.resigns} re-signatures by freshness in {days} days"
    records = [client.record for client in made]
    return ScenarioResult(
        f"untouched {days} days", _summarise(records), time.monotonic() - started, (note,)
    )


@dataclass
class _Untouched:
    record: ClientRecord
    pins: DynamicPins
    context: ssl.SSLContext


def _untouched_client(lab: Lab, clock: _InjectedClock) -> _Untouched:
    """A polling client on the injected clock that fetches only when told (``refresh()``)."""
    record = ClientRecord(POLL)
    pins = lab.dynamic_pins(push=False, background=False, clock=clock, on_event=record.on_event)
    return _Untouched(record, pins, pinned_context(pins, cafile=str(lab.trust_file)))


def _freshness_round(lab: Lab, freshener: Any) -> None:
    """One round; a re-signed version is waited for until the server serves it."""
    for outcome in freshener.run_once().resigned:
        if outcome.document is not None:
            version = outcome.document.version
            wait_for(lambda: lab.served_version() >= version, 10)  # noqa: B023 - called here


def _poll_and_request(lab: Lab, client: _Untouched, attacker: tuple[str, int]) -> None:
    client.pins.refresh()
    record = client.record
    record.requests += 1
    record.failed += not https_get(API_HOST, lab.api_address, client.context).ok
    record.attacks += 1
    record.attacks_accepted += https_get(API_HOST, attacker, client.context).ok


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _window(kind: KindResult) -> str:
    if not kind.windows and not kind.unrecovered:
        return "-"
    figures = (kind.median, kind.percentile(0.99), max(kind.windows, default=None))
    shown = " / ".join(_seconds(value) for value in figures)
    return shown + (f" ({kind.unrecovered} never)" if kind.unrecovered else "")


def markdown_table(results: list[ScenarioResult]) -> list[str]:
    """The drill's results as a Markdown table, one row per scenario and client kind."""
    lines = [
        "| scenario | clients | kind | requests | failed | attacker accepted / tried "
        "| fallbacks | failure window p50 / p99 / max (s) |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for kind in result.kinds:
            if kind.clients:
                lines.append(
                    f"| {result.name} | {kind.clients} | {kind.kind} | {kind.requests} "
                    f"| {kind.failed} | {kind.attacks_accepted} / {kind.attacks} "
                    f"| {kind.fallbacks} | {_window(kind)} |"
                )
    return lines
