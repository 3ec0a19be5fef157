"""The operations tests' harness: an injected clock, the server app in this process, TLS hosts
that change certificates on demand, a Standard Webhooks receiver, a client transport that talks
to the app without sockets."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient

from pinwarden._pins import spki_pin
from pinwarden.client._fetch import EventStream, FetchError, FetchResult
from pinwarden.server import ServerConfig, create_app
from pinwarden.server._channels import add_pin, add_rule, create_channel
from tests.server.server_harness import SERVER_PASSPHRASE, InitializedData, make_data_dir
from tests.support.clock import FakeClock

START = datetime(2026, 12, 1, tzinfo=timezone.utc)
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The injected clock, also the one the publisher stamps ``issued``/``expires`` with."""
    fake = FakeClock(START)
    monkeypatch.setattr("pinwarden.server._publish.utc_now", fake)
    monkeypatch.setattr("pinwarden.server._livechain.utc_now", fake)
    return fake


# ---- the server in this process ----------------------------------------------------------------


class AppTransport:
    """The dynamic client's ``PinServerTransport`` over the ASGI app (no sockets, no threads)."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.gets = 0

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        self.gets += 1
        headers = {"if-none-match": etag} if etag else {}
        response = self.http.get(urlsplit(url).path, headers=headers)
        if response.status_code == 304:
            return FetchResult(304, etag=etag)
        if response.status_code != 200:
            raise FetchError(f"HTTP {response.status_code}")
        if len(response.content) > max_bytes:
            raise FetchError("too large")
        return FetchResult(200, response.content, response.headers.get("etag"))

    def post_json(self, url: str, body: bytes) -> int:
        headers = {"content-type": "application/json"}
        return self.http.post(urlsplit(url).path, content=body, headers=headers).status_code

    def open_stream(self, url: str) -> EventStream:
        raise FetchError("no event streams in these tests")


@dataclass
class OperationsServer:
    """The app over a data directory, run by a ``TestClient`` (its lifespan included)."""

    data: InitializedData
    config: ServerConfig
    app: Any = None
    http: TestClient = field(init=False)
    _exit: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> OperationsServer:
        self.app = create_app(self.config)
        self.http = self._exit.enter_context(TestClient(self.app, base_url="http://127.0.0.1"))
        return self

    def stop(self) -> None:
        self._exit.close()

    def restart(self) -> OperationsServer:
        """A new process's worth of state over the same database and key directory."""
        self.stop()
        self._exit = contextlib.ExitStack()
        return self.start()

    @property
    def services(self) -> Any:
        return self.app.services

    def session(self) -> contextlib.AbstractContextManager[Session]:
        return self.services.sessions.begin()  # type: ignore[no-any-return]

    @property
    def keyring(self) -> bytes:
        return (Path(self.config.key_dir) / "keyring.json").read_bytes()

    def channel_url(self, channel: str) -> str:
        return f"http://127.0.0.1/v1/channels/{channel}"

    def add_channel(
        self,
        channel: str,
        rules: dict[str, list[str]],
        *,
        ttl: timedelta = timedelta(days=14),
        refresh: timedelta = timedelta(days=1),
        probes: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        """A channel whose rules (pattern: pins, the last pin labelled backup) are in force."""
        with self.session() as session:
            create_channel(
                session,
                channel,
                "test",
                ttl_seconds=int(ttl.total_seconds()),
                refresh_seconds=int(refresh.total_seconds()),
            )
            for pattern, pins in rules.items():
                host, port = (probes or {}).get(pattern, (None, 443))
                add_rule(session, channel, pattern, "test", probe_host=host, probe_port=port)
                for index, pin in enumerate(pins):
                    label = "backup key" if index == len(pins) - 1 else f"pin {index}"
                    add_pin(session, channel, pattern, pin, "test", label=label)

    def publish(self, channel: str, *, force: bool = False) -> int:
        outcome = self.services.publisher.publish(
            channel, "test", force=force, reason="test" if force else None
        )
        self.refresh_store()
        return int(outcome.document.version)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        """An admin API request with the initial admin token (or ``token=``)."""
        token = kwargs.pop("token", self.data.admin_token)
        headers = {
            **kwargs.pop("headers", {}),
            **({"authorization": f"Bearer {token}"} if token else {}),
        }
        return self.http.request(method, f"/v1/admin{path}", headers=headers, **kwargs)

    def refresh_store(self) -> None:
        """What the store's poll does every few seconds: serve what the database holds."""
        assert self.http.portal is not None
        self.http.portal.call(self.services.sync.refresh)


@pytest.fixture
def operations_server(
    tmp_path: Path, template_key_dir: Path, trust_ca: tuple[trustme.CA, str]
) -> Iterator[Callable[..., OperationsServer]]:
    """Start the app over a fresh SQLite data directory; ``config`` overrides settings."""
    servers: list[OperationsServer] = []

    def start(**config: Any) -> OperationsServer:
        data = make_data_dir(tmp_path / f"data{len(servers)}", None, template_key_dir)
        settings: dict[str, Any] = {
            "database_url": data.database_url,
            "key_dir": data.data.key_dir,
            "passphrase": SERVER_PASSPHRASE,
            "ca_file": trust_ca[1],
            "probe_timeout": 2.0,
            "poll_seconds": 3600.0,  # the tests refresh the store themselves
            "operations": False,  # the tests run each room's rounds themselves
            **config,
        }
        server = OperationsServer(data, ServerConfig(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# ---- TLS hosts that change certificates ----------------------------------------------------------


class RotatingHost:
    """A TLS server on 127.0.0.1 whose certificate can be replaced (``serve``) mid-test."""

    def __init__(self, name: str, ca: trustme.CA) -> None:
        self.name, self.ca = name, ca
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._context: ssl.SSLContext | None = None
        self.leaf_pin = ""
        self.serve()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def serve(self, *, not_after: datetime | None = None, ca: trustme.CA | None = None) -> str:
        """Serve a new certificate with a new key (from ``ca``, default this host's CA)."""
        issued = (ca or self.ca).issue_cert(self.name, not_after=not_after)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        issued.configure_cert(context)
        self._context = context
        self.leaf_pin = spki_pin(issued.cert_chain_pems[0].bytes())
        return self.leaf_pin

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                connection.settimeout(2)
                assert self._context is not None
                with self._context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass
            finally:
                connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)


@pytest.fixture
def rotating_hosts(trust_ca: tuple[trustme.CA, str]) -> Iterator[Callable[[str], RotatingHost]]:
    hosts: list[RotatingHost] = []

    def start(name: str = "api.example.test") -> RotatingHost:
        host = RotatingHost(name, trust_ca[0])
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()


# ---- a webhook receiver --------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """Records each verified Standard Webhooks delivery; answers ``fail_next`` requests with 503."""

    url: str = ""
    deliveries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [message_id for message_id, _ in self.deliveries]


def _receiver_handler(receiver: WebhookReceiver) -> type[http.server.BaseHTTPRequestHandler]:
    verifier = Webhook(WEBHOOK_SECRET)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self._answer(503)
                    return
                try:
                    payload = verifier.verify(body, dict(self.headers.items()))
                except Exception as error:
                    receiver.refused.append(str(error))
                    self._answer(400)
                    return
                receiver.deliveries.append((self.headers["webhook-id"], payload))
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def json_of(value: Any) -> Any:
    return json.loads(json.dumps(value))
