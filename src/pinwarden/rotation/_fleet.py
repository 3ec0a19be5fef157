"""The drill's clients, spread over several processes so that a thousand of them measure the
protocol and not one interpreter lock.

Each client process builds its share of the clients (``Device``: what a device of the lab
knows), then on command makes them request the API, now and then the attacker, and reports
what happened. On devices every client has its own CPU; here the processes share the machine's
cores with the pin server and the API, so the request rate is paced (``rate``, requests per
second over the whole fleet): a fleet that requests flat out measures the CPU it starves the
pin server of, not how fast a pin set reaches clients.

Times are ``time.monotonic()``, one clock for every process of the machine (Linux
``CLOCK_MONOTONIC``), so a client's event time and the parent's publish time compare. The
processes are spawned (the parent runs threads: never forked), so a script that starts a fleet
needs the ``if __name__ == "__main__":`` guard (multiprocessing imports the main module again).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

from pinwarden.client import DynamicPins, EventKind, PinEvent, RefreshPolicy, pinned_context
from pinwarden.rotation._lab import API_HOST, Device, https_get

__all__ = [
    "KINDS",
    "POLL",
    "PUSH",
    "STATIC",
    "UNPINNED",
    "ClientRecord",
    "Fleet",
    "FleetSettings",
    "fleet_policy",
    "running_fleet",
    "wait_for",
]

STATIC, PUSH, POLL, UNPINNED = "static", "dynamic-push", "dynamic-poll", "unpinned"
KINDS = (STATIC, PUSH, POLL, UNPINNED)
_REPLY_TIMEOUT = 300.0  # a child that says nothing this long is stuck


@dataclass(frozen=True)
class FleetSettings:
    clients: int = 10  # of each kind
    processes: int = 2  # client processes
    workers: int = 4  # request threads per process
    rate: float = 200.0  # API requests per second over the fleet (0: as fast as they go)
    attacker_every: int = 4  # one attacker attempt per this many API requests of a worker
    poll_seconds: int = 10  # the channel's refresh hint (a polling client's interval)
    # The dynamic clients' RefreshPolicy.min_interval; None keeps the client's default (60 s).
    min_interval: float | None = None


@dataclass
class ClientRecord:
    """What one client did: requests, refusals, attacks, and for a dynamic client when each
    version was announced by push and when it came in force (monotonic times)."""

    kind: str
    requests: int = 0
    failed: int = 0
    attacks: int = 0
    attacks_accepted: int = 0
    fallbacks: int = 0
    fetched_at: dict[int, float] = field(default_factory=dict)
    announced_at: dict[int, float] = field(default_factory=dict)

    def on_event(self, event: PinEvent) -> None:
        if event.kind is EventKind.FELL_BACK:
            self.fallbacks += 1
        elif event.version is None:
            return
        elif event.kind is EventKind.FETCHED:
            self.fetched_at.setdefault(event.version, time.monotonic())
        elif event.kind is EventKind.PUSH_ANNOUNCED:
            self.announced_at.setdefault(event.version, time.monotonic())


@dataclass
class _Client:
    record: ClientRecord
    context: ssl.SSLContext
    pins: DynamicPins | None = None


def fleet_policy(settings: FleetSettings, *, push: bool) -> RefreshPolicy:
    """Push clients keep the default floor unless told; polling clients fetch at the channel's
    hint, so their floor must not be above it."""
    if push and settings.min_interval is None:
        return RefreshPolicy()
    floor = settings.min_interval or 60.0
    interval = timedelta(seconds=floor if push else min(settings.poll_seconds, floor))
    return RefreshPolicy(min_interval=interval, backoff_base=min(interval, timedelta(seconds=1)))


def _make_client(device: Device, kind: str, settings: FleetSettings) -> _Client:
    """A client of ``kind``; a dynamic one holds its first pin set when this returns."""
    record = ClientRecord(kind)
    if kind == STATIC:
        return _Client(record, device.static_context())
    if kind == UNPINNED:
        return _Client(record, device.unpinned_context())
    push = kind == PUSH
    pins = device.dynamic_pins(
        push=push, policy=fleet_policy(settings, push=push), on_event=record.on_event
    )
    return _Client(record, pinned_context(pins, cafile=device.trust_file), pins)


class _Traffic:
    """Worker threads that make each client request the API, and now and then the attacker,
    at ``rate`` requests per second in all (0: unpaced)."""

    def __init__(
        self,
        device: Device,
        attacker: tuple[str, int],
        clients: list[_Client],
        settings: FleetSettings,
        rate: float,
    ) -> None:
        self._device, self._attacker, self._settings = device, attacker, settings
        self._stop = threading.Event()
        self._lock = threading.Lock()
        count = max(min(settings.workers, len(clients)), 1)
        self._gap = count / rate if rate > 0 else 0.0
        self._threads = [
            threading.Thread(target=self._work, args=(clients[n::count],), daemon=True)
            for n in range(count)
        ]

    def _work(self, mine: list[_Client]) -> None:
        made = 0
        # Workers out of step (not security: spreading requests in time).
        following = time.monotonic() + random.uniform(0, self._gap)  # noqa: S311
        while mine and not self._stop.is_set():
            for client in random.sample(mine, len(mine)):
                if self._stop.wait(max(following - time.monotonic(), 0)):
                    return
                following += self._gap
                made += 1
                self._one(client, attack=made % self._settings.attacker_every == 0)

    def _one(self, client: _Client, *, attack: bool) -> None:
        outcome = https_get(API_HOST, self._device.api_address, client.context)
        record = client.record
        with self._lock:
            record.requests += 1
            record.failed += not outcome.ok
        if attack:
            hijacked = https_get(API_HOST, self._attacker, client.context)
            with self._lock:
                record.attacks += 1
                record.attacks_accepted += hijacked.ok

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _all_fetched(clients: list[_Client], version: int, kinds: tuple[str, ...]) -> bool:
    return all(version in c.record.fetched_at for c in clients if c.record.kind in kinds)


def _child(
    connection: Connection,
    device: Device,
    attacker: tuple[str, int],
    counts: dict[str, int],
    settings: FleetSettings,
    rate: float,
) -> None:
    """One client process: build, then obey ``start``, ``await`` and ``stop``."""
    clients = [_make_client(device, kind, settings) for kind, n in counts.items() for _ in range(n)]
    traffic = _Traffic(device, attacker, clients, settings, rate)
    marked = time.process_time()
    try:
        connection.send(("ready", None))
        while True:
            command, argument = connection.recv()
            if command == "start":
                traffic.start()
            elif command == "mark":
                marked = time.process_time()
            elif command == "await":
                version, deadline, kinds = argument
                while not _all_fetched(clients, version, kinds) and time.monotonic() < deadline:
                    time.sleep(0.01)
                done = _all_fetched(clients, version, kinds)
                connection.send(("awaited", (done, time.process_time() - marked)))
            elif command == "stop":
                traffic.stop()
                connection.send(("records", [client.record for client in clients]))
                return
    finally:
        for client in clients:
            if client.pins is not None:
                client.pins.close()


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` nearly equal shares."""
    return [total // parts + (n < total % parts) for n in range(parts)]


class Fleet:
    """``settings.clients`` clients of each kind in ``settings.processes`` processes."""

    def __init__(self, device: Device, attacker: tuple[str, int], settings: FleetSettings) -> None:
        processes = max(min(settings.processes, settings.clients), 1)
        context = multiprocessing.get_context("spawn")  # the parent runs threads: never fork
        shares = _shares(settings.clients, processes)
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        self._stopped = False
        for share in shares:
            ours, theirs = context.Pipe()
            counts = dict.fromkeys(KINDS, share)
            process = context.Process(
                target=_child,
                args=(theirs, device, attacker, counts, settings, settings.rate / processes),
                daemon=True,
            )
            process.start()
            theirs.close()
            self._connections.append(ours)
            self._processes.append(process)

    def _replies(self, expected: str) -> list[Any]:
        answers = []
        for connection in self._connections:
            try:
                if not connection.poll(_REPLY_TIMEOUT):
                    raise RuntimeError(f"a client process did not answer {expected!r} in time")
                kind, value = connection.recv()
            except EOFError:
                raise RuntimeError("a client process exited (see its error above)") from None
            if kind != expected:
                raise RuntimeError(f"a client process answered {kind!r}, not {expected!r}")
            answers.append(value)
        return answers

    def _tell(self, command: str, argument: object = None) -> None:
        for connection in self._connections:
            connection.send((command, argument))

    def ready(self) -> None:
        """Wait until every process has built its clients (each holds the first pin set)."""
        self._replies("ready")

    def start(self) -> None:
        self._tell("start")

    def mark(self) -> None:
        """Start counting the client processes' CPU time (``await_version`` reports it)."""
        self._tell("mark")

    def await_version(
        self, version: int, seconds: float, kinds: tuple[str, ...] = (PUSH, POLL)
    ) -> tuple[bool, float]:
        """Whether every client of ``kinds`` put ``version`` in force within ``seconds``, and
        the CPU seconds the client processes used since ``mark`` until they did."""
        self._tell("await", (version, time.monotonic() + seconds, kinds))
        replies = self._replies("awaited")
        return all(done for done, _ in replies), sum(cpu for _, cpu in replies)

    def stop(self) -> list[ClientRecord]:
        self._tell("stop")
        self._stopped = True
        return [record for records in self._replies("records") for record in records]

    def close(self) -> None:
        """Wait for the processes after ``stop``; kill them if it was never reached."""
        for process in self._processes:
            process.join(timeout=30 if self._stopped else 0)
            if process.is_alive():
                process.kill()
                process.join()
        for connection in self._connections:
            connection.close()


@contextlib.contextmanager
def running_fleet(
    device: Device, attacker: tuple[str, int], settings: FleetSettings
) -> Iterator[Fleet]:
    """A started fleet (clients built, traffic on); closed at the end, killed if stuck."""
    fleet = Fleet(device, attacker, settings)
    try:
        fleet.ready()
        fleet.start()
        yield fleet
    finally:
        fleet.close()


def wait_for(predicate: Callable[[], bool], deadline: float) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
