"""What only the dynamic-client tests need, over the shared harness (``tests.support``).

- ``AppHandler`` / ``app_server``: the pinned app server; it counts the requests that reached it.
- ``raw_https_get``: one request over the plain ``ssl`` module.
- ``Recorder`` / ``Waiter``: callbacks that collect what they receive; a ``Waiter`` lets a test
  wait for one kind of event.
- ``cached_document`` / ``write_cached_document`` / ``with_payload`` / ``without_signatures``: read
  the pin set a client cached, and put back an edited one (the attacker who can write the cache).

Nothing here imports pinwarden's server package: the client stands on its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme

from pinwarden._pins import pin_from_digest
from pinwarden.client import EventKind, PinEvent
from tests.support.pki import AppPKI
from tests.support.tls_servers import IO_TIMEOUT, QuietHandler, TLSServer
from tests.support.waiting import WAIT

# Pins of keys no test server holds: SHA-256 of "A" to "D".
PIN_A, PIN_B, PIN_C, PIN_D = (pin_from_digest(hashlib.sha256(n.encode()).digest()) for n in "ABCD")


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
