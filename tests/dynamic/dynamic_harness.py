"""Real sockets on 127.0.0.1 for the dynamic-client tests: a clock, a PKI, TLS servers.

- ``FakeClock``: the injectable clock (hours pass in a test without a sleep).
- ``AppPKI``: one trustme CA and two leaves for the same names, so a pin set can move an app host
  from one key to the other; plus a backup pin that no server holds.
- ``TLSServer``: a threaded HTTPS server on 127.0.0.1 with a given handler; the TLS handshake runs
  in the connection's thread, sockets time out, ``stop()`` joins.
- ``AppHandler``: the pinned app server; it counts the requests that reached it.
- ``cached_document`` / ``write_cached_document`` / ``with_payload`` / ``without_signatures``: read
  the pin set a client cached, and put back an edited one (the attacker who can write the cache).

Nothing here imports pinwarden's server package: the client stands on its own.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden import spki_pin
from pinwarden.client import EventKind, PinEvent

IO_TIMEOUT = 5.0
WAIT = 10.0  # the longest a test waits for background work
START = datetime(2030, 1, 1, tzinfo=timezone.utc)


class FakeClock:
    """``clock()`` returns ``now``; ``advance()`` moves it forward."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class AppPKI:
    """A CA the client trusts, two leaf keys for the app host, and their pins."""

    directory: Path
    ca: trustme.CA
    leaf_a: trustme.LeafCert
    leaf_b: trustme.LeafCert
    pin_a: str
    pin_b: str
    backup_pin: str  # a key that no server uses: every rule carries one

    @property
    def ca_file(self) -> str:
        path = self.directory / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def server_context(self, leaf: trustme.LeafCert) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        return context


def make_pki(directory: Path) -> AppPKI:
    ca = trustme.CA()
    leaf_a = ca.issue_cert("localhost", "127.0.0.1")
    leaf_b = ca.issue_cert("localhost", "127.0.0.1")
    backup = ec.generate_private_key(ec.SECP256R1())
    return AppPKI(
        directory,
        ca,
        leaf_a,
        leaf_b,
        spki_pin(leaf_a.cert_chain_pems[0].bytes()),
        spki_pin(leaf_b.cert_chain_pems[0].bytes()),
        spki_pin(backup.public_key()),
    )


class TLSServer(ThreadingHTTPServer):
    """An HTTPS server on 127.0.0.1 whose handshakes run in the connection threads."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.state: dict[str, Any] = {}
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"https://localhost:{self.port}{path}"

    def record(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((method, path))

    def count(self, path_part: str = "") -> int:
        with self.lock:
            return sum(1 for _, path in self.requests if path_part in path)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IO_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            tls.close()

    def start(self) -> TLSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=IO_TIMEOUT)


@contextmanager
def running(server: TLSServer) -> Iterator[TLSServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TLSServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class AppHandler(QuietHandler):
    """The pinned app server: answers ``ok`` on a keep-alive connection and counts requests."""

    def do_GET(self) -> None:
        self.server.record("GET", self.path)
        with self.server.lock:
            self.server.state.setdefault("ports", []).append(self.client_address[1])
        self.send_body(200, b"ok", {"Content-Type": "text/plain"})


def app_server(pki: AppPKI, leaf: trustme.LeafCert) -> TLSServer:
    return TLSServer(AppHandler, pki.server_context(leaf))


def raw_https_get(context: ssl.SSLContext, port: int, path: str = "/") -> bytes:
    """One request over the plain ``ssl`` module with ``context``: the response body."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            tls.sendall(request.encode())
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    return data.partition(b"\r\n\r\n")[2]


@dataclass
class Recorder:
    """Collects what a callback receives, thread-safely."""

    items: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[Any]:
        with self.lock:
            return list(self.items)


class Waiter:
    """An ``on_event`` callback that lets a test wait for one kind of event."""

    def __init__(self) -> None:
        self.events: list[PinEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: PinEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, kind: EventKind, version: int | None = None) -> bool:
        def seen() -> bool:
            return any(e.kind is kind and (version is None or e.version == version)
                       for e in self.events)

        with self._changed:
            return self._changed.wait_for(seen, timeout=WAIT)


# -- the cached pin set, as an attacker with write access to the cache directory edits it --------


def cached_document(directory: Path) -> bytes:
    """The signed pin-set bytes in ``directory/pinset.json``."""
    return base64.b64decode(json.loads((directory / "pinset.json").read_text())["document"])


def write_cached_document(directory: Path, raw: bytes) -> None:
    """Replace the cached pin-set bytes, keeping the rest of ``pinset.json`` (ETag, time)."""
    path = directory / "pinset.json"
    stored = json.loads(path.read_text())
    stored["document"] = base64.b64encode(raw).decode()
    path.write_text(json.dumps(stored))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def with_payload(raw: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The signed document ``raw`` with its payload decoded, edited by ``edit`` and encoded again
    in the same form; the signatures are kept as they were (they no longer cover the payload)."""
    envelope = json.loads(raw)
    payload = json.loads(base64.urlsafe_b64decode(envelope["payload"] + "=="))
    edit(payload)
    envelope["payload"] = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    return json.dumps(envelope).encode()


def without_signatures(raw: bytes) -> bytes:
    """The signed document ``raw`` with its payload untouched and every signature dropped."""
    envelope = json.loads(raw)
    envelope["signatures"] = []
    return json.dumps(envelope).encode()
