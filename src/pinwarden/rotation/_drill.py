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

Clients are served by a pool of worker threads (one TLS handshake per request, as pins apply per
connection), so the request rate per client falls as the number of clients grows; failure windows
are taken from the clients' own events, not from the request rate.
"""

from __future__ import annotations

import contextlib
import math
import random
import ssl
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden._pins import spki_pin
from pinwarden.client import DynamicPins, EventKind, PinEvent, RefreshPolicy, pinned_context
from pinwarden.rotation._certs import new_key
from pinwarden.rotation._channel import fetch_published
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab, https_get
from pinwarden.rotation._plan import DONE, live_chain_pins, plan_rotation

__all__ = [
    "DrillSettings",
    "KindResult",
    "ScenarioResult",
    "emergency",
    "planned",
    "untouched_days",
]

STATIC, PUSH, POLL, UNPINNED = "static", "dynamic-push", "dynamic-poll", "unpinned"
KINDS = (STATIC, PUSH, POLL, UNPINNED)


@dataclass(frozen=True)
class DrillSettings:
    clients: int = 10  # of each kind
    workers: int = 16  # threads making the requests
    attacker_every: int = 4  # one attacker attempt per this many API requests of a worker
    outage_seconds: float = 2.0  # emergency: the new key is live this long before the publish
    observe_seconds: float = 2.0  # how long each phase runs with clients requesting
    recovery_deadline: float = 120.0
    poll_seconds: int = 10  # the channel's refresh hint (a polling client's interval), >= 10
    # The dynamic clients' RefreshPolicy.min_interval; None keeps the client's default (60 s).
    min_interval: float | None = None


@dataclass
class _Events:
    """What a dynamic client's events tell: when each version came in force, and fallbacks."""

    fetched_at: dict[int, float] = field(default_factory=dict)  # version -> monotonic time
    fallbacks: int = 0

    def on_event(self, event: PinEvent) -> None:
        if event.kind is EventKind.FETCHED and event.version is not None:
            self.fetched_at.setdefault(event.version, time.monotonic())
        elif event.kind is EventKind.FELL_BACK:
            self.fallbacks += 1


@dataclass
class _Client:
    kind: str
    context: ssl.SSLContext
    pins: DynamicPins | None = None
    events: _Events = field(default_factory=_Events)
    requests: int = 0
    failed: int = 0
    attacks: int = 0
    attacks_accepted: int = 0


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
        if not self.windows:
            return None
        ordered = sorted(self.windows)
        return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]

    @property
    def median(self) -> float | None:
        return statistics.median(self.windows) if self.windows else None


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    kinds: tuple[KindResult, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def of(self, kind: str) -> KindResult:
        return next(result for result in self.kinds if result.kind == kind)


def _policy(settings: DrillSettings) -> RefreshPolicy:
    if settings.min_interval is None:
        return RefreshPolicy()
    interval = timedelta(seconds=settings.min_interval)
    return RefreshPolicy(min_interval=interval, backoff_base=min(interval, timedelta(seconds=1)))


def _poll_policy(settings: DrillSettings) -> RefreshPolicy:
    """Polling clients fetch at the channel's hint: their floor must not be above it."""
    interval = timedelta(seconds=min(settings.poll_seconds, settings.min_interval or 60))
    return RefreshPolicy(min_interval=interval, backoff_base=min(interval, timedelta(seconds=1)))


def _client(lab: Lab, kind: str, settings: DrillSettings) -> _Client:
    if kind == STATIC:
        return _Client(kind, lab.static_context())
    if kind == UNPINNED:
        return _Client(kind, lab.unpinned_context())
    events = _Events()
    push = kind == PUSH
    pins = lab.dynamic_pins(
        push=push,
        policy=_policy(settings) if push else _poll_policy(settings),
        on_event=events.on_event,
    )
    return _Client(kind, pinned_context(pins, cafile=str(lab.trust_file)), pins, events)


def _clients(lab: Lab, settings: DrillSettings) -> list[_Client]:
    return [_client(lab, kind, settings) for kind in KINDS for _ in range(settings.clients)]


class _Traffic:
    """Worker threads that make each client request the API, and now and then the attacker."""

    def __init__(self, lab: Lab, clients: list[_Client], settings: DrillSettings) -> None:
        self._lab, self._clients, self._settings = lab, clients, settings
        self._attacker = lab.interceptor(connect=False)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, args=(clients[number :: settings.workers],),
                             daemon=True)
            for number in range(min(settings.workers, len(clients)))
        ]

    def _work(self, mine: list[_Client]) -> None:
        made = 0
        while not self._stop.is_set():
            for client in random.sample(mine, len(mine)):
                if self._stop.is_set():
                    return
                made += 1
                self._one(client, attack=made % self._settings.attacker_every == 0)

    def _one(self, client: _Client, *, attack: bool) -> None:
        outcome = https_get(API_HOST, self._lab.api_address, client.context)
        with self._lock:
            client.requests += 1
            client.failed += not outcome.ok
        if attack:
            hijacked = https_get(API_HOST, ("127.0.0.1", self._attacker.port), client.context)
            with self._lock:
                client.attacks += 1
                client.attacks_accepted += hijacked.ok

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        for thread in self._threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=30)


def _summarise(
    clients: list[_Client], since: float | None = None, version: int | None = None
) -> tuple[KindResult, ...]:
    results = []
    for kind in KINDS:
        group = [client for client in clients if client.kind == kind]
        windows: list[float] = []
        if since is not None and version is not None and kind in (PUSH, POLL):
            seen = [c.events.fetched_at.get(version) for c in group]
            windows = [at - since for at in seen if at is not None]
        results.append(
            KindResult(
                kind,
                len(group),
                sum(c.requests for c in group),
                sum(c.failed for c in group),
                sum(c.attacks for c in group),
                sum(c.attacks_accepted for c in group),
                sum(c.events.fallbacks for c in group),
                tuple(windows),
                len(group) - len(windows) if kind in (PUSH, POLL) and since is not None else 0,
            )
        )
    return tuple(results)


def _wait_for(predicate: Callable[[], bool], deadline: float) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@contextlib.contextmanager
def _scenario(directory: Path, settings: DrillSettings) -> Iterator[tuple[Lab, list[_Client]]]:
    with Lab(
        directory, refresh_seconds=settings.poll_seconds, push_clients=settings.clients
    ) as lab:
        clients = _clients(lab, settings)
        try:
            yield lab, clients
        finally:
            for client in clients:
                if client.pins is not None:
                    client.pins.close()


def _plan_step(lab: Lab, number: int, new_pin: str) -> str:
    """The state of step ``number`` of ``rotate plan`` for the API host, judged live."""
    pinset = fetch_published(lab.server_url, CHANNEL, lab.keyring)
    live = live_chain_pins(
        API_HOST, lab.api.port, connect_host="127.0.0.1", cafile=str(lab.api_ca_file)
    )
    now = datetime.now(timezone.utc)
    return plan_rotation(API_HOST, pinset, live, new_pin=new_pin, now=now).steps[number - 1].state


def planned(directory: Path, settings: DrillSettings) -> ScenarioResult:
    """A planned rotation to the published backup key, following ``rotate plan``."""
    started = time.monotonic()
    with _scenario(directory, settings) as (lab, clients):
        traffic = _Traffic(lab, clients, settings)
        with traffic.running():
            target = lab.backup_pin
            notes = [] if _plan_step(lab, 1, target) == DONE else ["step 1 was not done"]
            waited = _wait_for(
                lambda: _plan_step(lab, 2, target) == DONE, settings.poll_seconds * 1.1 + 5
            )
            lab.api.serve(lab.new_certificate(lab.backup_key))  # step 3: deploy
            time.sleep(settings.observe_seconds)
            lab.add_pin(spki_pin(new_key()), "new offline backup key")  # step 4
            lab.remove_pin(lab.live.pin)
            lab.publish()
            time.sleep(settings.observe_seconds)
        notes += [] if waited else ["step 2 did not report done in time; deployed anyway"]
        kinds = _summarise(clients)
        return ScenarioResult("planned", kinds, time.monotonic() - started, tuple(notes))


def emergency(directory: Path, settings: DrillSettings) -> ScenarioResult:
    """A key nobody pinned goes live; its pin is published ``outage_seconds`` later."""
    started = time.monotonic()
    with _scenario(directory, settings) as (lab, clients):
        traffic = _Traffic(lab, clients, settings)
        dynamic = [client for client in clients if client.pins is not None]
        with traffic.running():
            time.sleep(settings.observe_seconds)
            replacement = lab.new_certificate()
            lab.api.serve(replacement)
            time.sleep(settings.outage_seconds)
            lab.add_pin(replacement.pin, "emergency key")
            publishing = time.monotonic()
            version = lab.publish()
            _wait_for(
                lambda: all(version in client.events.fetched_at for client in dynamic),
                settings.recovery_deadline,
            )
            time.sleep(settings.observe_seconds)
        kinds = _summarise(clients, publishing, version)
        return ScenarioResult("emergency", kinds, time.monotonic() - started)


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
            services.sessions, services.publisher, AlertBook(clock=clock), holder="drill",
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
                if client.pins is not None:
                    client.pins.close()
    note = f"{freshener.resigns} re-signatures by freshness in {days} days"
    return ScenarioResult(
        f"untouched {days} days", _summarise(made), time.monotonic() - started, (note,)
    )


def _untouched_client(lab: Lab, clock: _InjectedClock) -> _Client:
    """A polling client on the injected clock that fetches only when told (``refresh()``)."""
    events = _Events()
    pins = lab.dynamic_pins(push=False, background=False, clock=clock, on_event=events.on_event)
    return _Client(POLL, pinned_context(pins, cafile=str(lab.trust_file)), pins, events)


def _freshness_round(lab: Lab, freshener: Any) -> None:
    """One round; a re-signed version is waited for until the server serves it."""
    for outcome in freshener.run_once().resigned:
        if outcome.document is not None:
            version = outcome.document.version
            _wait_for(lambda: lab.served_version() >= version, 10)  # noqa: B023 - called here


def _poll_and_request(lab: Lab, client: _Client, attacker: tuple[str, int]) -> None:
    assert client.pins is not None
    client.pins.refresh()
    client.requests += 1
    client.failed += not https_get(API_HOST, lab.api_address, client.context).ok
    client.attacks += 1
    client.attacks_accepted += https_get(API_HOST, attacker, client.context).ok


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
