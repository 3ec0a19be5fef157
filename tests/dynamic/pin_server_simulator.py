"""An in-memory pin server for the dynamic-client tests (after python-tuf's RepositorySimulator).

``PinServerSimulator`` holds the keys (root keys 2 of 3, one online key), the keyring history and
the document it serves, and signs on demand with the real ``pinwarden.document`` signing code. It
implements ``PinServerTransport`` itself, so a ``DynamicPins`` built with ``transport=sim`` fetches,
walks keyrings, follows the event stream and posts reports with no socket at all. For end-to-end
tests, ``SimulatorHandler`` serves the same routes over real HTTPS on 127.0.0.1.

Routes, as the pin server defines them (``url`` is the channel URL)::

    GET  {url}/pinset              the served document, ETag, 304 on If-None-Match
    GET  {url}/keyring/{version}   each published keyring
    GET  {url}/events              event: pinset / data: {"version": N}; ": heartbeat" comments
    POST {base}/v1/reports         violation reports (recorded)

Example::

    sim = PinServerSimulator(clock)
    sim.publish({"localhost": [pin_a, backup]})        # v1, served at once
    sim.rotate_online_key()                            # keyring v2; later pin sets use the new key
    sim.publish({"localhost": [pin_b, backup]})        # v2
    sim.serve(sim.documents[1])                        # replay: serve an old document
    sim.down = True                                    # every request fails
    sim.hold()                                         # pin-set answers wait for ...
    sim.wait_until_held()                              # (a request is waiting now)
    sim.release()                                      # ... this
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pinwarden.client import DynamicPins, StaticPins
from pinwarden.client._cache import channel_directory_name
from pinwarden.client._fetch import FetchError, FetchResult
from pinwarden.document import (
    Keyring,
    PinSet,
    PinSetRule,
    SigningKey,
    sign_keyring,
    sign_pinset,
)
from tests.support.clock import FakeClock
from tests.support.tls_servers import QuietHandler, TLSServer
from tests.support.waiting import WAIT

BASE = "https://pins.simulator.test"
CHANNEL = "com.example.app/prod"
HEARTBEAT = ": heartbeat\n"

RuleSpec = Sequence[str] | Mapping[str, Any] | PinSetRule


def make_rule(pattern: str, spec: RuleSpec) -> PinSetRule:
    """``[pins]`` or ``{"pins": [...], "mode": ..., "expires": datetime}``."""
    if isinstance(spec, PinSetRule):
        return spec
    if isinstance(spec, Mapping):
        return PinSetRule(
            pattern, tuple(spec.get("pins", ())), spec.get("mode", "enforce"), spec.get("expires")
        )
    return PinSetRule(pattern, tuple(spec))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None


class SimulatedEventStream:
    """One subscriber's stream: lines pushed by ``announce``; ``close()`` ends ``lines()``."""

    def __init__(self) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()

    def push(self, line: str) -> None:
        self._lines.put(line)

    def lines(self) -> Iterator[str]:
        while (line := self._lines.get()) is not None:
            yield line

    def close(self) -> None:
        self._lines.put(None)


class PinServerSimulator:
    """The pin server, in memory; a ``PinServerTransport``."""

    def __init__(self, clock: FakeClock, *, channel: str = CHANNEL, base: str = BASE) -> None:
        self.clock = clock
        self.channel = channel
        self.base = base
        self.url = f"{base}/v1/channels/{channel}"
        self.report_url = f"{base}/v1/reports"
        self.lock = threading.Lock()
        self.root_keys = [SigningKey.generate() for _ in range(3)]
        self.online_keys = [SigningKey.generate()]
        self.keyring_lifetime = timedelta(days=365)
        self.keyrings: dict[int, bytes] = {}
        self.documents: dict[int, bytes] = {}
        self.served: bytes | None = None
        self.down = False
        self.requests: list[tuple[str, str]] = []
        self.reports: list[dict[str, Any]] = []
        self.streams: list[SimulatedEventStream] = []
        self.held = 0  # pin-set requests waiting for release() now
        self._held_changed = threading.Condition(self.lock)
        self._released = threading.Event()
        self._released.set()
        self._publish_keyring(signers=self.root_keys[:2])

    # -- what the server holds -------------------------------------------------------------

    @property
    def keyring_version(self) -> int:
        return max(self.keyrings)

    @property
    def shipped_keyring(self) -> bytes:
        """The keyring an app is built with: version 1."""
        return self.keyrings[1]

    @property
    def version(self) -> int:
        return max(self.documents, default=0)

    def _keyring(self, version: int) -> Keyring:
        return Keyring(
            version,
            self.clock() + self.keyring_lifetime,
            tuple(key.public() for key in self.root_keys),
            2,
            tuple(key.public() for key in self.online_keys),
            1,
        )

    def _publish_keyring(self, signers: Sequence[SigningKey]) -> bytes:
        version = max(self.keyrings, default=0) + 1
        raw = sign_keyring(self._keyring(version), signers)
        self.keyrings[version] = raw
        return raw

    def rotate_online_key(self) -> bytes:
        """Keyring N+1 with a new online key (same root keys); later pin sets use the new key."""
        self.online_keys = [SigningKey.generate()]
        return self._publish_keyring(signers=self.root_keys[:2])

    def rotate_root_keys(self) -> bytes:
        """Keyring N+1 with new root keys, signed by the thresholds of both N and N+1."""
        old = self.root_keys
        self.root_keys = [SigningKey.generate() for _ in range(3)]
        return self._publish_keyring(signers=[*old[:2], *self.root_keys[:2]])

    def make_pinset(
        self,
        rules: Mapping[str, RuleSpec],
        *,
        version: int | None = None,
        expires_in: timedelta = timedelta(days=7),
        refresh_after: int = 3600,
        report_uri: str | None = None,
        channel: str | None = None,
        signers: Sequence[SigningKey] | None = None,
    ) -> bytes:
        """A signed pin set (not served): by default the next version, signed by the online key."""
        now = self.clock()
        pinset = PinSet(
            channel or self.channel,
            version if version is not None else self.version + 1,
            now,
            now + expires_in,
            refresh_after,
            report_uri,
            tuple(make_rule(pattern, spec) for pattern, spec in rules.items()),
            self.keyring_version,
        )
        return sign_pinset(pinset, signers if signers is not None else self.online_keys)

    def publish(self, rules: Mapping[str, RuleSpec], **options: Any) -> int:
        """Sign the next version, serve it and announce it; its version."""
        raw = self.make_pinset(rules, **options)
        version = options.get("version") or self.version + 1
        self.documents[version] = raw
        self.serve(raw)
        self.announce(version)
        return version

    def serve(self, raw: bytes | None) -> None:
        """Serve exactly these bytes from now on (a replay, a freeze, an attacker's document)."""
        with self.lock:
            self.served = raw

    def client(self, bootstrap: StaticPins, **options: Any) -> DynamicPins:
        """A ``DynamicPins`` of this channel on the simulator's clock, through the simulator
        itself unless ``transport=`` says otherwise, with no refresh loop unless asked."""
        options.setdefault("background", False)
        options.setdefault("transport", self)
        return DynamicPins(
            self.url, keyring=self.shipped_keyring, bootstrap=bootstrap, clock=self.clock,
            **options,
        )

    def cache_of(self, cache_dir: Path) -> Path:
        """Where a client of this channel keeps its cache under ``cache_dir``."""
        return cache_dir / channel_directory_name(self.channel)

    @staticmethod
    def etag_of(raw: bytes) -> str:
        return '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'

    # -- a slow server ---------------------------------------------------------------------

    def hold(self) -> None:
        """Hold every pin-set answer until ``release()``: a pin server slow to answer. A request
        held longer than ``WAIT`` seconds is answered 503, so a test that forgets cannot hang."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_until_held(self) -> bool:
        """Wait until a pin-set request is being held; False after ``WAIT`` seconds."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self.held > 0, timeout=WAIT)

    def _answer_now(self) -> bool:
        """Wait while answers are held; False if the hold outlasted ``WAIT``."""
        with self._held_changed:
            self.held += 1
            self._held_changed.notify_all()
        try:
            return self._released.wait(WAIT)
        finally:
            with self._held_changed:
                self.held -= 1

    # -- push ------------------------------------------------------------------------------

    def announce(self, version: int) -> None:
        with self.lock:
            streams = list(self.streams)
        for stream in streams:
            stream.push("event: pinset\n")
            stream.push(f"data: {json.dumps({'version': version})}\n")
            stream.push("\n")

    def heartbeat(self) -> None:
        with self.lock:
            streams = list(self.streams)
        for stream in streams:
            stream.push(HEARTBEAT)
            stream.push("\n")

    def close_streams(self) -> None:
        with self.lock:
            streams, self.streams = self.streams, []
        for stream in streams:
            stream.close()

    # -- the routes ------------------------------------------------------------------------

    def count(self, suffix: str) -> int:
        with self.lock:
            return sum(1 for _, path in self.requests if path.endswith(suffix))

    def respond(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        with self.lock:
            self.requests.append((method, path))
        channel_path = urlsplit(self.url).path
        if method == "POST" and path == urlsplit(self.report_url).path:
            with self.lock:
                self.reports.append(json.loads(body))
            return Response(201)
        if method != "GET" or not path.startswith(channel_path + "/"):
            return Response(404)
        route = path[len(channel_path) + 1 :]
        if route == "pinset":
            if not self._answer_now():
                return Response(503)
            with self.lock:
                served = self.served
            if served is None:
                return Response(404)
            etag = self.etag_of(served)
            if headers.get("If-None-Match") == etag:
                return Response(304, headers={"ETag": etag})
            cache = "max-age=60"
            return Response(200, served, {"ETag": etag, "Cache-Control": cache})
        if route.startswith("keyring/") and route[8:].isdigit():
            raw = self.keyrings.get(int(route[8:]))
            return Response(200, raw) if raw is not None else Response(404)
        return Response(404)

    # -- PinServerTransport ----------------------------------------------------------------

    def _check(self, url: str) -> str:
        if self.down:
            raise FetchError(f"{url}: connection refused (simulated outage)")
        if not url.startswith(self.base + "/"):
            raise FetchError(f"{url}: not this server")
        return urlsplit(url).path

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        headers = {"If-None-Match": etag} if etag is not None else {}
        response = self.respond("GET", self._check(url), headers, b"")
        if response.status not in (200, 304):
            raise FetchError(f"GET {url}: HTTP {response.status}", status=response.status)
        if len(response.body) > max_bytes:
            raise FetchError(f"GET {url}: over the {max_bytes}-byte cap")
        return FetchResult(response.status, response.body, (response.headers or {}).get("ETag"))

    def post_json(self, url: str, body: bytes) -> int:
        return self.respond("POST", self._check(url), {}, body).status

    def open_stream(self, url: str) -> SimulatedEventStream:
        path = self._check(url)
        if path != urlsplit(self.url).path + "/events":
            raise FetchError(f"GET {url}: HTTP 404", status=404)
        stream = SimulatedEventStream()
        with self.lock:
            self.requests.append(("GET", path))
            self.streams.append(stream)
        return stream


class SimulatorHandler(QuietHandler):
    """The simulator's routes over real HTTPS (``server.state["sim"]`` is the simulator).

    Paths are the simulator's own; the host part of its URLs is replaced by the server's.
    """

    @property
    def sim(self) -> PinServerSimulator:
        simulator: PinServerSimulator = self.server.state["sim"]
        return simulator

    def _reply(self, method: str, body: bytes) -> None:
        self.server.record(method, self.path)
        response = self.sim.respond(method, self.path, dict(self.headers), body)
        self.send_body(response.status, response.body, response.headers)

    def do_GET(self) -> None:
        if self.path.endswith("/events"):
            self._stream_events()
        else:
            self._reply("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._reply("POST", self.rfile.read(length))

    def _stream_events(self) -> None:
        self.server.record("GET", self.path)
        stream = SimulatedEventStream()
        with self.sim.lock:
            self.sim.streams.append(stream)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(HEARTBEAT.encode() + b"\n")
            self.wfile.flush()
            for line in stream.lines():
                self.wfile.write(line.encode())
                self.wfile.flush()
        except OSError:
            pass


def simulator_server(sim: PinServerSimulator, context: Any) -> TLSServer:
    """A TLS server running the simulator's routes; point the client at ``server_url(...)``."""
    server = TLSServer(SimulatorHandler, context)
    server.state["sim"] = sim
    return server


def server_url(server: TLSServer, sim: PinServerSimulator) -> str:
    """The channel URL of ``sim`` as served by ``server``."""
    return server.url(urlsplit(sim.url).path)


def report_url(server: TLSServer, sim: PinServerSimulator) -> str:
    return server.url(urlsplit(sim.report_url).path)
