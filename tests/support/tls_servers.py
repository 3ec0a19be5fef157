"""TLS servers on 127.0.0.1, every one bounded in time: sockets time out after ``IO_TIMEOUT``
seconds and ``stop()`` closes every connection and joins every thread.

- ``RecordingTLSServer``: HTTPS/1.1 keep-alive; records each application byte received after
  the handshake, so a test can show that not one request byte reached a server the client
  refused (``assert_no_request_byte``).
- ``ConnectProxy``: an HTTP CONNECT proxy that tunnels to 127.0.0.1 only.
- ``TLSServer``: Python's ``ThreadingHTTPServer`` with the TLS handshake in each connection's
  thread, serving a given ``BaseHTTPRequestHandler`` (``QuietHandler`` for a base).
- ``ScriptedTLSServer``: reads a request, then plays a ``Script`` of raw bytes (``sends``,
  ``trickles``), or never completes a handshake.
- ``running(...)``: start servers for the length of a ``with`` block.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, TypeVar

from tests.support.pki import server_context

IO_TIMEOUT = 5.0
TRICKLE_SECONDS = 0.2  # a trickling script sends one byte this often: each read is quick
TRICKLE_LIMIT = 100  # and gives up after this many bytes (20 s): tests stay bounded


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


AnyServer = TypeVar("AnyServer", bound=Server)


@contextmanager
def running(server: AnyServer, *others: Server) -> Iterator[AnyServer]:
    """Start ``server`` and ``others``; yield ``server``; stop them all when the block ends."""
    servers: tuple[Server, ...] = (server, *others)
    for each in servers:
        each.start()
    try:
        yield server
    finally:
        for each in servers:
            each.stop()


# -- a threaded accept loop, and the recording server and proxy built on it ----------------------


class ThreadedServer:
    """Accept loop and per-connection threads on 127.0.0.1, all stopped and joined by ``stop``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"{name}-accept", daemon=True
        )

    def start(self) -> None:
        self._accept_thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._accept_thread.join(IO_TIMEOUT)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._open), list(self._threads)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(IO_TIMEOUT)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(IO_TIMEOUT)
            thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
            with self._lock:
                self._open.add(sock)
                self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            self.handle(sock)
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def handle(self, sock: socket.socket) -> None:
        raise NotImplementedError


@dataclass
class ConnectionRecord:
    """What one accepted connection did: its handshake and every application byte it received."""

    handshake_done: bool = False
    handshake_error: str | None = None
    received: bytearray = field(default_factory=bytearray)
    responses: int = 0
    finished: threading.Event = field(default_factory=threading.Event)


def _http_response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def _complete_request_length(buffer: bytes) -> int | None:
    """Length of the first complete HTTP/1.1 request in ``buffer``, or None if it is partial."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in buffer[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    total = end + 4 + length
    return total if len(buffer) >= total else None


class RecordingTLSServer(ThreadedServer):
    """An HTTPS/1.1 keep-alive server that answers ``ok:<name>`` and records what it receives."""

    def __init__(self, name: str, chain_file: str) -> None:
        super().__init__(name)
        self.context = server_context(chain_file)
        self.body = f"ok:{name}".encode()
        self._records: list[ConnectionRecord] = []

    def url(self, host: str = "localhost", path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    def reset(self) -> None:
        """Forget earlier connections (each test starts from an empty record)."""
        with self._lock:
            self._records = []

    @property
    def connections(self) -> list[ConnectionRecord]:
        with self._lock:
            return list(self._records)

    @property
    def received(self) -> bytes:
        """Every application byte received since ``reset``, all connections together."""
        return b"".join(bytes(record.received) for record in self.connections)

    @property
    def handshakes(self) -> int:
        return sum(record.handshake_done for record in self.connections)

    def wait_closed(self, timeout: float = IO_TIMEOUT) -> bool:
        """Wait until the client has closed every connection; False if one is still open."""
        return all(record.finished.wait(timeout) for record in self.connections)

    def handle(self, sock: socket.socket) -> None:
        record = ConnectionRecord()
        with self._lock:
            self._records.append(record)
        try:
            try:
                tls = self.context.wrap_socket(sock, server_side=True)
            except OSError as error:
                record.handshake_error = repr(error)
                return
            record.handshake_done = True
            with self._lock:
                self._open.add(tls)
            try:
                self._serve(tls, record)
            finally:
                with self._lock:
                    self._open.discard(tls)
                tls.close()
        finally:
            record.finished.set()

    def _serve(self, tls: ssl.SSLSocket, record: ConnectionRecord) -> None:
        pending = b""
        while not self._stopping.is_set():
            try:
                data = tls.recv(65536)
            except OSError:
                return
            if not data:
                return
            record.received += data
            pending += data
            while (length := _complete_request_length(pending)) is not None:
                pending = pending[length:]
                try:
                    tls.sendall(_http_response(self.body))
                except OSError:
                    return
                record.responses += 1


def assert_no_request_byte(server: RecordingTLSServer) -> None:
    """The client reached ``server``, then closed the connection without sending it anything."""
    assert server.connections, f"the client never connected to {server.name}"
    assert server.wait_closed(), f"the client left its connection to {server.name} open"
    assert server.received == b"", f"{server.name} received {server.received!r}"


class ConnectProxy(ThreadedServer):
    """An HTTP CONNECT proxy that tunnels every request to 127.0.0.1 (and nowhere else)."""

    def __init__(self) -> None:
        super().__init__("connect-proxy")
        self.targets: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.targets = []

    def handle(self, sock: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        request_line, _, rest = head.partition(b"\r\n")
        early_data = rest.partition(b"\r\n\r\n")[2]
        method, _, target = request_line.decode("latin-1").partition(" ")
        target = target.rsplit(" ", 1)[0]
        if method != "CONNECT":
            sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        with self._lock:
            self.targets.append(target)
        port = int(target.rsplit(":", 1)[1])
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        except OSError:
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if early_data:
                upstream.sendall(early_data)
            self._pipe(sock, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            idle = 0.0
            while not self._stopping.is_set() and idle < IO_TIMEOUT:
                events = selector.select(0.1)
                idle = idle + 0.1 if not events else 0.0
                for key, _ in events:
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        peers[source].sendall(data)
                    except OSError:
                        return


# -- Python's own HTTP server, the handshake in each connection's thread --------------------------


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


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and sends sized bodies on a keep-alive connection."""

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


# -- a raw TLS server that plays scripted bytes ---------------------------------------------------

Script = Callable[[ssl.SSLSocket, threading.Event], None]


class ScriptedTLSServer:
    """A TLS server on 127.0.0.1: for each connection, reads the request (head and any body),
    then runs ``script(tls_socket, stopped)``; one connection at a time, every wait bounded.

    With ``handshake=False`` it accepts a connection and never answers (for at most
    ``TRICKLE_LIMIT * TRICKLE_SECONDS``). Use it as a context manager, or ``start``/``stop``.
    Assigning ``context`` serves another certificate from the next connection on."""

    def __init__(self, context: ssl.SSLContext, script: Script, *, handshake: bool = True) -> None:
        self.context = context
        self._script = script
        self._handshake = handshake
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.stopped = threading.Event()
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, route: str) -> str:
        return f"https://localhost:{self.port}{route}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (a connection to the port is refused from now on) and join."""
        self.stopped.set()
        self._listener.close()
        self._thread.join(IO_TIMEOUT)

    def __enter__(self) -> ScriptedTLSServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener is closed: stopped
            with connection:
                connection.settimeout(IO_TIMEOUT)
                if not self._handshake:
                    self.stopped.wait(TRICKLE_LIMIT * TRICKLE_SECONDS)
                    continue
                try:
                    with self.context.wrap_socket(connection, server_side=True) as tls:
                        self.requests.append(read_request(tls))
                        self._script(tls, self.stopped)
                except OSError:
                    pass  # the client gave up: what these tests expect it to do


def read_request(tls: ssl.SSLSocket) -> bytes:
    """The request's head and as much of its body as ``Content-Length`` says (64 KiB at most)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = tls.recv(4096)
        if not chunk:
            return data
        data += chunk
    head = data.partition(b"\r\n\r\n")[0]
    lengths = [value for name, _, value in (line.partition(b":") for line in head.split(b"\r\n"))
               if name.strip().lower() == b"content-length"]
    wanted = len(head) + 4 + min(int(lengths[0]) if lengths else 0, 65536)
    while len(data) < wanted and (chunk := tls.recv(4096)):
        data += chunk
    return data


def sends(data: bytes) -> Script:
    """Sends ``data`` at once, then closes the connection."""
    def script(tls: ssl.SSLSocket, stopped: threading.Event) -> None:
        tls.sendall(data)

    return script


def trickles(at_once: bytes, trickled: bytes) -> Script:
    """Sends ``at_once``, then ``trickled`` one byte every ``TRICKLE_SECONDS`` and ``a`` after
    ``a``: a header that never ends (at most ``TRICKLE_LIMIT`` bytes trickled)."""
    def script(tls: ssl.SSLSocket, stopped: threading.Event) -> None:
        tls.sendall(at_once)
        for byte in itertools.islice(itertools.chain(trickled, itertools.repeat(ord("a"))),
                                     TRICKLE_LIMIT):
            if stopped.wait(TRICKLE_SECONDS):
                return
            tls.sendall(bytes([byte]))

    return script
