"""Real TLS on 127.0.0.1 for the client tests: two PKIs, recording HTTPS servers, a CONNECT proxy.

The legitimate PKI is a root CA with an intermediate that issues the leaf; the rogue PKI is a root
CA that the client *also* trusts (as a user-installed CA would be) issuing its own leaf for the same
names. A third CA is trusted by nobody. Every server records each application byte it receives after
its handshake, so a test can show that not one request byte reached a server the client refused.

Everything is bounded: sockets time out after ``IO_TIMEOUT`` seconds and ``stop()`` closes every
connection and joins every thread.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from pinwarden import spki_pin

IO_TIMEOUT = 5.0
# Every name the leaves are valid for. Only "localhost" and "127.0.0.1" are ever resolved; the other
# names are used as server_hostname on a socket already connected to 127.0.0.1, or reach the
# servers through the CONNECT proxy, which sends every tunnel to 127.0.0.1.
SERVER_NAMES = (
    "localhost",
    "127.0.0.1",
    "xn--bcher-kva.example",  # bücher.example
    "pinwarden.test",
    "api.pinwarden.test",
    "deep.api.pinwarden.test",
)


@dataclass
class PKI:
    """The certificates, their pins and the files the servers and clients load."""

    directory: Path
    legit_root: trustme.CA
    intermediate: trustme.CA
    legit_leaf: trustme.LeafCert
    rogue_root: trustme.CA
    rogue_leaf: trustme.LeafCert
    untrusted_root: trustme.CA
    untrusted_leaf: trustme.LeafCert
    wrong_host_leaf: trustme.LeafCert

    @property
    def ca_bundle(self) -> str:
        """What the client trusts: the legitimate root and the rogue (user-installed) root."""
        return str(self.directory / "client-trust.pem")

    @property
    def untrusted_root_file(self) -> str:
        return str(self.directory / "untrusted-root.pem")

    @property
    def leaf_pin(self) -> str:
        return spki_pin(self.legit_leaf.cert_chain_pems[0].bytes())

    @property
    def intermediate_pin(self) -> str:
        return spki_pin(self.intermediate.cert_pem.bytes())

    @property
    def legit_root_pin(self) -> str:
        return spki_pin(self.legit_root.cert_pem.bytes())

    @property
    def rogue_leaf_pin(self) -> str:
        return spki_pin(self.rogue_leaf.cert_chain_pems[0].bytes())

    @property
    def rogue_root_pin(self) -> str:
        return spki_pin(self.rogue_root.cert_pem.bytes())

    @property
    def backup_pin(self) -> str:
        """The pin of a key that no server uses (a backup key kept offline)."""
        return spki_pin(self.untrusted_root.private_key_pem.bytes())

    def chain_file(self, name: str) -> str:
        return str(self.directory / f"{name}-chain.pem")


def make_pki(directory: Path) -> PKI:
    legit_root = trustme.CA(organization_name="pinwarden tests: legitimate root")
    intermediate = legit_root.create_child_ca()
    rogue_root = trustme.CA(organization_name="pinwarden tests: rogue root")
    untrusted_root = trustme.CA(organization_name="pinwarden tests: untrusted root")
    pki = PKI(
        directory=directory,
        legit_root=legit_root,
        intermediate=intermediate,
        legit_leaf=intermediate.issue_cert(*SERVER_NAMES),
        rogue_root=rogue_root,
        rogue_leaf=rogue_root.issue_cert(*SERVER_NAMES),
        untrusted_root=untrusted_root,
        untrusted_leaf=untrusted_root.issue_cert(*SERVER_NAMES),
        wrong_host_leaf=intermediate.issue_cert("wrong-host.pinwarden.test"),
    )
    (directory / "client-trust.pem").write_bytes(
        legit_root.cert_pem.bytes() + rogue_root.cert_pem.bytes()
    )
    untrusted_root.cert_pem.write_to_path(pki.untrusted_root_file)
    chains = {
        "legit": pki.legit_leaf.private_key_and_cert_chain_pem.bytes(),
        "rogue": pki.rogue_leaf.private_key_and_cert_chain_pem.bytes(),
        # CVE-2016-2402: the rogue chain with the legitimate, pinned intermediate appended.
        "appended": pki.rogue_leaf.private_key_and_cert_chain_pem.bytes()
        + intermediate.cert_pem.bytes(),
        "untrusted": pki.untrusted_leaf.private_key_and_cert_chain_pem.bytes(),
        "wrong-host": pki.wrong_host_leaf.private_key_and_cert_chain_pem.bytes(),
    }
    for name, pem in chains.items():
        Path(pki.chain_file(name)).write_bytes(pem)
    return pki


@dataclass
class ConnectionRecord:
    """What one accepted connection did: its handshake and every application byte it received."""

    handshake_done: bool = False
    handshake_error: str | None = None
    received: bytearray = field(default_factory=bytearray)
    responses: int = 0
    finished: threading.Event = field(default_factory=threading.Event)


class _ThreadedServer:
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


class RecordingTLSServer(_ThreadedServer):
    """An HTTPS/1.1 keep-alive server that answers ``ok:<name>`` and records what it receives."""

    def __init__(self, name: str, chain_file: str) -> None:
        super().__init__(name)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(chain_file)
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


class ConnectProxy(_ThreadedServer):
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


class Servers:
    """The session's servers, by the chain they serve."""

    def __init__(self, pki: PKI) -> None:
        self.legit = RecordingTLSServer("legit", pki.chain_file("legit"))
        self.rogue = RecordingTLSServer("rogue", pki.chain_file("rogue"))
        self.appended = RecordingTLSServer("appended", pki.chain_file("appended"))
        self.untrusted = RecordingTLSServer("untrusted", pki.chain_file("untrusted"))
        self.wrong_host = RecordingTLSServer("wrong-host", pki.chain_file("wrong-host"))
        self.proxy = ConnectProxy()

    @property
    def all(self) -> tuple[RecordingTLSServer, ...]:
        return (self.legit, self.rogue, self.appended, self.untrusted, self.wrong_host)


@contextmanager
def running(*servers: _ThreadedServer) -> Iterator[None]:
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()
