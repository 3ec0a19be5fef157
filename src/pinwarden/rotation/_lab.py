"""A pinned API on loopback with everything around it, for the drill, the demo and their tests.

The real parts, nothing simulated: an API host with its own CA (``ApiHost``), the pin server
(``pinwarden.server.create_app`` under uvicorn in this process, on a fresh SQLite data directory),
a channel that pins the host's live key and an offline backup key, published through safe
publishing, and a CA the device trusts besides the API's (the intercepting proxy's, or the CA an
attacker got a certificate from). Needs ``pinwarden[server]``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pinwarden._pins import spki_pin
from pinwarden.client import (
    DynamicPins,
    PinValidationError,
    StaticPins,
    pinned_context,
)
from pinwarden.rotation._certs import IssuedCertificate, LocalCA, new_key
from pinwarden.rotation._channel import channel_url
from pinwarden.rotation._endpoints import ApiHost, Interceptor, read_head

__all__ = ["API_HOST", "CHANNEL", "Device", "Lab", "Outcome", "https_get"]

API_HOST = "api.bank.test"
CHANNEL = "com.example.bank/prod"
_PASSPHRASE = b"pinwarden lab: a throw-away data directory on loopback"
_START_TIMEOUT = 30.0


class LabError(RuntimeError):
    """The lab could not be set up (a port, the server, a refused publish)."""


@dataclass(frozen=True)
class Outcome:
    """One request: did it get the API's answer, and if not, was it a pin refusal."""

    ok: bool
    pin_refused: bool
    detail: str


def _tunnel(sock: socket.socket, host: str, port: int) -> None:
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    status = read_head(sock).split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise OSError(f"the proxy answered {status.decode('latin-1')!r}")


def https_get(
    host: str,
    address: tuple[str, int],
    context: ssl.SSLContext,
    *,
    proxy: tuple[str, int] | None = None,
    timeout: float = 5.0,
) -> Outcome:
    """``GET /v1/balance`` on ``host``, connecting to ``address`` (or through ``proxy``)."""
    try:
        with socket.create_connection(proxy or address, timeout=timeout) as raw:
            if proxy is not None:
                _tunnel(raw, host, address[1])
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(
                    f"GET /v1/balance HTTP/1.1\r\nHost: {host}\r\n"
                    "Authorization: Bearer user-secret\r\nConnection: close\r\n\r\n".encode()
                )
                status = read_head(tls).split(b"\r\n", 1)[0].decode("latin-1")
    except PinValidationError as error:
        return Outcome(False, True, f"refused by pinning: {error.reason}")
    except ssl.SSLError as error:
        return Outcome(False, False, f"TLS failed: {error.reason or error}")
    except OSError as error:
        return Outcome(False, False, f"connection failed: {error}")
    return Outcome(status.startswith("HTTP/1.1 200"), False, status or "no answer")


@dataclass(frozen=True)
class Device:
    """A device of the lab: the channel and keyring its app ships, the CAs it trusts (the API's
    and the interception CA), the pins built into the app, and where the API is."""

    channel_url: str
    keyring: bytes
    trust_file: str
    shipped: tuple[str, ...]  # the live key's pin and the offline backup's
    api_address: tuple[str, int]

    def shipped_pins(self) -> StaticPins:
        """What the app was built with: the live key's pin and the backup's."""
        return StaticPins({API_HOST: list(self.shipped)})

    def unpinned_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.trust_file)

    def static_context(self) -> ssl.SSLContext:
        return pinned_context(self.shipped_pins(), cafile=self.trust_file)

    def dynamic_pins(self, *, push: bool, **options: Any) -> DynamicPins:
        """A dynamic client of the channel that ships the same pins as the static app; its
        first pin set fetched before it returns unless ``options`` say otherwise."""
        settings: dict[str, Any] = {"wait_for_first_fetch": True, **options}
        return DynamicPins(
            self.channel_url,
            keyring=self.keyring,
            bootstrap=self.shipped_pins(),
            push=push,
            **settings,
        )


def _run_uvicorn(app: Any) -> tuple[str, Any, threading.Thread, socket.socket]:
    import uvicorn

    sock = socket.create_server(("127.0.0.1", 0), backlog=2048)
    config = uvicorn.Config(
        app, log_level="error", access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise LabError("the pin server did not start")
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread, sock


class Lab:
    """The API, its CA, the pin server with a published channel, and the device's trust.

    ``refresh_seconds`` is the channel's refresh hint (how often polling clients fetch);
    ``push_clients`` how many push streams the server takes (all from 127.0.0.1).
    Use as a context manager; ``close`` stops every thread it started.
    """

    def __init__(
        self, directory: Path, *, refresh_seconds: int = 10, push_clients: int = 100
    ) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.api_ca = LocalCA("Bank API CA")
        self.other_ca = LocalCA("Trusted Interception CA")  # trusted by the device, not the API's
        self.live = self.api_ca.issue(API_HOST)
        self.backup_key = new_key()
        self.backup_pin = spki_pin(self.backup_key)
        self.trust_file = directory / "device-trust.pem"
        self.trust_file.write_bytes(self.api_ca.cert_pem + self.other_ca.cert_pem)
        self.api_ca_file = directory / "api-ca.pem"
        self.api_ca_file.write_bytes(self.api_ca.cert_pem)
        self._stack = contextlib.ExitStack()
        try:
            self.api = ApiHost(self.live, directory)
            self._stack.callback(self.api.close)
            self._start_pin_server(push_clients)
            self._publish_channel(refresh_seconds)
        except BaseException:
            self._stack.close()
            raise

    # -- the pin server -------------------------------------------------------------------------

    def _start_pin_server(self, push_clients: int) -> None:
        import httpx

        from pinwarden.server import DataDirectory, ServerConfig, create_app, initialize

        data = DataDirectory(self.directory / "pin-server")
        created = initialize(data, _PASSPHRASE)
        config = ServerConfig(
            database_url=created.database_url,
            key_dir=data.key_dir,
            passphrase=_PASSPHRASE,
            ca_file=str(self.api_ca_file),
            heartbeat_seconds=1.0,
            poll_seconds=0.2,
            probe_timeout=2.0,
            operations=False,
            # Every client of the lab connects from 127.0.0.1.
            sse_max_streams=push_clients + 100,
            sse_max_streams_per_client=push_clients + 100,
        )
        self.app = create_app(config)
        self.server_url, server, thread, sock = _run_uvicorn(self.app)

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

        self._stack.callback(stop)
        self.keyring = (data.key_dir / "keyring.json").read_bytes()
        self.keyring_file = data.key_dir / "keyring.json"
        self.admin = httpx.Client(
            base_url=f"{self.server_url}/v1/admin",
            headers={"authorization": f"Bearer {created.admin_token}"},
            timeout=30,
        )
        self.admin_token = created.admin_token
        self._stack.callback(self.admin.close)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.admin.request(method, path, json=body)
        if answer.status_code >= 300:
            raise LabError(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:500]}")
        return answer.json()

    def _publish_channel(self, refresh_seconds: int) -> None:
        self.call("POST", "/channels", {"name": CHANNEL, "refresh_seconds": refresh_seconds})
        self.call(
            "POST",
            f"/channels/{CHANNEL}/rules",
            {"pattern": API_HOST, "probe_host": "127.0.0.1", "probe_port": self.api.port},
        )
        self.add_pin(self.live.pin, "live key")
        self.add_pin(self.backup_pin, "offline backup key")
        self.publish()

    def add_pin(self, pin: str, label: str) -> None:
        path = f"/channels/{CHANNEL}/rules/{API_HOST}/pins"
        self.call("POST", path, {"pin": pin, "label": label})

    def remove_pin(self, pin: str) -> None:
        answer = self.admin.request(
            "DELETE", f"/channels/{CHANNEL}/rules/{API_HOST}/pins", params={"pin": pin}
        )
        if answer.status_code >= 300:
            raise LabError(f"removing {pin}: HTTP {answer.status_code}: {answer.text[:500]}")

    def publish(self) -> int:
        """Publish through the safety checks; the new version."""
        outcome = self.call(
            "POST", f"/channels/{CHANNEL}/publish", {"dry_run": False, "force": False}
        )
        return int(outcome["version"])

    def served_version(self) -> int:
        """The version of the pin set the server serves now (unverified: for waiting only)."""
        from pinwarden.document import peek_document

        return peek_document(self.admin.get(f"{self.channel_url}/pinset").content).version

    @property
    def channel_url(self) -> str:
        return channel_url(self.server_url, CHANNEL)

    # -- the device -------------------------------------------------------------------------------

    @property
    def api_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.api.port)

    @property
    def device(self) -> Device:
        """What a device knows of the lab, picklable: the drill's client processes get it."""
        return Device(
            self.channel_url,
            self.keyring,
            str(self.trust_file),
            (self.live.pin, self.backup_pin),
            self.api_address,
        )

    def shipped_pins(self) -> StaticPins:
        return self.device.shipped_pins()

    def unpinned_context(self) -> ssl.SSLContext:
        return self.device.unpinned_context()

    def static_context(self) -> ssl.SSLContext:
        return self.device.static_context()

    def dynamic_pins(self, *, push: bool, **options: Any) -> DynamicPins:
        return self.device.dynamic_pins(push=push, **options)

    def interceptor(self, *, connect: bool) -> Interceptor:
        """An intercepting proxy (``connect``) or a DNS-hijacking attacker, with a certificate
        for the API host from the CA the device trusts besides the API's."""
        upstream = ssl.create_default_context(cafile=str(self.api_ca_file))
        interceptor = Interceptor(
            self.other_ca, self.api_address, upstream, self.directory, connect=connect
        )
        self._stack.callback(interceptor.close)
        return interceptor

    def new_certificate(self, key: Any = None) -> IssuedCertificate:
        return self.api_ca.issue(API_HOST, key)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
