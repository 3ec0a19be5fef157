"""Loopback TLS endpoints for the drill and the demo: the API host and an intercepting proxy.

``ApiHost`` answers every HTTPS request with ``200`` and can switch its certificate and key
between two connections, as a reload after a renewal does. ``Interceptor`` is what a corporate
proxy or an attacker with a certificate from a CA the device trusts does: it terminates TLS with
a certificate it made for the host, reads the request in clear, and relays it to the real host.
With ``connect=True`` it is an HTTP proxy (``CONNECT host:port``, RFC 9110 §9.3.6); without, it
stands where the host's address should be (a poisoned DNS answer).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from pinwarden.rotation._certs import IssuedCertificate, LocalCA

__all__ = ["ApiHost", "Interceptor", "read_head"]

_MAX_HEAD = 16 * 1024
_IO_TIMEOUT = 5.0


def read_head(sock: socket.socket | ssl.SSLSocket) -> bytes:
    """An HTTP message head (through the blank line), at most 16 KiB; what came before a close."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _server_context(issued: IssuedCertificate, directory: Path, name: str) -> ssl.SSLContext:
    chain, key = directory / f"{name}.chain.pem", directory / f"{name}.key.pem"
    chain.write_bytes(issued.chain_pem)
    key.write_bytes(issued.key_pem)
    key.chmod(0o600)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return context


class _Listener:
    """Accepts on 127.0.0.1 and handles each connection in a daemon thread until ``close``."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self._handle = handle
        self._socket = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="pinwarden-lab", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.settimeout(_IO_TIMEOUT)
        try:
            self._handle(connection)
        except (OSError, ssl.SSLError):
            pass  # a refused handshake is what pinned clients do to an interceptor
        finally:
            connection.close()

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        self._thread.join(timeout=5)


class ApiHost:
    """An HTTPS API on 127.0.0.1 that serves ``issued`` until told to serve another."""

    def __init__(self, issued: IssuedCertificate, directory: Path) -> None:
        self._directory = directory
        self._serial = 0
        self._lock = threading.Lock()
        self.serving = issued
        self._context = self._load(issued)
        self._listener = _Listener(self._answer)
        self.port = self._listener.port

    def _load(self, issued: IssuedCertificate) -> ssl.SSLContext:
        self._serial += 1
        return _server_context(issued, self._directory, f"api-{self._serial}")

    def serve(self, issued: IssuedCertificate) -> None:
        """Deploy another certificate and key: every later handshake uses them."""
        with self._lock:
            self._context = self._load(issued)
            self.serving = issued

    def _answer(self, connection: socket.socket) -> None:
        with self._lock:
            context = self._context
        with context.wrap_socket(connection, server_side=True) as tls:
            if read_head(tls):
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 16\r\nConnection: close\r\n\r\n{"balance": 100}'
                )

    def close(self) -> None:
        self._listener.close()


class Interceptor:
    """Terminates TLS with its own certificate for the host, logs the request, relays it on.

    ``upstream`` is the real host's address; ``upstream_context`` trusts the real host's CA.
    """

    def __init__(
        self,
        ca: LocalCA,
        upstream: tuple[str, int],
        upstream_context: ssl.SSLContext,
        directory: Path,
        *,
        connect: bool,
    ) -> None:
        self._ca, self._upstream, self._upstream_context = ca, upstream, upstream_context
        self._directory, self._connect = directory, connect
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.requests_read: list[str] = []  # the head of each request, read in clear
        self._listener = _Listener(self._intercept)
        self.port = self._listener.port

    def _context_for(self, host: str) -> ssl.SSLContext:
        with self._lock:
            if host not in self._contexts:
                issued = self._ca.issue(host)
                name = f"forged-{len(self._contexts)}"
                self._contexts[host] = _server_context(issued, self._directory, name)
            return self._contexts[host]

    def _tunnel_host(self, connection: socket.socket) -> str | None:
        request_line = read_head(connection).split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]
        if method != "CONNECT" or ":" not in target:
            connection.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
            return None
        connection.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        return target.rpartition(":")[0]

    def _intercept(self, connection: socket.socket) -> None:
        host = self._tunnel_host(connection) if self._connect else None
        if self._connect and host is None:
            return
        # Without CONNECT the host is the name the client asked for (SNI), read at the handshake.
        names: list[str] = []
        context = self._context_for(host) if host is not None else self._sni_context(names)
        with context.wrap_socket(connection, server_side=True) as tls:
            head = read_head(tls)
            if not head:
                return
            self.requests_read.append(head.decode("latin-1"))
            tls.sendall(self._relay(head, host or names[0]))

    def _sni_context(self, names: list[str]) -> ssl.SSLContext:
        """A context that picks the forged certificate by the name the client sends (SNI)."""
        outer = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

        def pick(tls: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            names.append(name or "localhost")
            tls.context = self._context_for(names[-1])

        outer.sni_callback = pick
        return outer

    def _relay(self, head: bytes, host: str) -> bytes:
        with socket.create_connection(self._upstream, timeout=_IO_TIMEOUT) as raw:
            with self._upstream_context.wrap_socket(raw, server_hostname=host) as upstream:
                upstream.sendall(head)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
                return answer

    def close(self) -> None:
        self._listener.close()
