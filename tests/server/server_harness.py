"""What only the pin server's tests need, over the shared harness (``tests.support``):
databases, data directories, real servers, TLS hosts.

``conftest.py`` beside this file exposes the fixtures. Another suite (the dynamic client's
end-to-end test) can use ``pin_server_factory``, which starts a real ``pinwarden serve`` process on
127.0.0.1 with a fresh data directory and returns a ``PinServer`` (``url``, ``admin_token``,
``keyring_path``, ``cli_env()``, ...), by importing it into its own test module or conftest::

    from tests.server.server_harness import pin_server, pin_server_factory, template_key_dir

See docs/server.md, "Starting a server in a test".
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn

from pinwarden._pins import spki_pin
from pinwarden.document import KeyDirectory, Keyring
from tests.support.pki import issue_leaf, leaf_pin, server_context, write_ca_file
from tests.support.tls_servers import ScriptedTLSServer, free_port, sends
from tests.support.waiting import wait_until

PASSPHRASE = b"test passphrase, not secret"  # the offline key directory's
# The server's own: export-online re-encrypts the online keys under it (never the offline one).
SERVER_PASSPHRASE = b"test server passphrase, not secret"
_START_TIMEOUT = 30.0


# ---- databases -------------------------------------------------------------------------------


def _postgres_base_url() -> str | None:
    return os.environ.get("PINWARDEN_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test run on the machine's PostgreSQL, dropped at the end.

    Skips, with the reason, when ``PINWARDEN_TEST_POSTGRES_URL`` is unset or unreachable.
    """
    base = _postgres_base_url()
    if not base:
        pytest.skip("PostgreSQL tests: set PINWARDEN_TEST_POSTGRES_URL (postgresql+psycopg://…)")
    import psycopg
    from sqlalchemy.engine import make_url

    from pinwarden.server._database import libpq_conninfo

    name = f"pinwarden_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(libpq_conninfo(base), autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL at {make_url(base).host} is unreachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_conninfo(base), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """A fresh schema in the run's database, as a URL whose search_path selects it."""
    import psycopg
    from sqlalchemy.engine import make_url

    from pinwarden.server._database import libpq_conninfo

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_conninfo(postgres_database), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(postgres_database).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_conninfo(postgres_database), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pinwarden.db'}"
    return str(request.getfixturevalue("postgres_url"))


# ---- metrics ---------------------------------------------------------------------------------


def exposed_samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` read by prometheus-client's own parser: (sample name, sorted labels) to value.

    The parser raises on anything a Prometheus server would refuse."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


# ---- data directories ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def template_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline key directory (root and online keys) made per run; each data directory gets a
    copy of it as its own offline directory, and the server only the online keys (same keys)."""
    path = tmp_path_factory.mktemp("template") / "keys"
    KeyDirectory(path).init(PASSPHRASE)
    return path


@dataclass
class InitializedData:
    data: Any  # DataDirectory
    database_url: str
    admin_token: str
    offline_key_dir: Path  # the root keys: beside the data directory, never in it

    @property
    def keyring_path(self) -> Path:
        return Path(self.data.key_dir) / "keyring.json"

    def rotate_online_offline(self) -> int:
        """``pinwarden keys rotate-online`` on the offline directory, then ``export-online`` to
        the server's key directory; the new keyring version."""
        offline = KeyDirectory(self.offline_key_dir)
        offline.rotate_online(PASSPHRASE)
        return export_online_keys(offline, self.data.key_dir).version


def export_online_keys(offline: KeyDirectory, target: Path) -> Keyring:
    """``pinwarden keys export-online``: the online keys re-encrypted under the server's
    passphrase."""
    return offline.export_online(target, passphrase=PASSPHRASE, server_passphrase=SERVER_PASSPHRASE)


def offline_key_dir_of(data_dir: Path) -> Path:
    return data_dir.with_name(f"{data_dir.name}-offline-keys")


def make_data_dir(path: Path, database_url: str | None, template_key_dir: Path) -> InitializedData:
    """``pinwarden keys export-online --dir OFFLINE --to TRANSFER``, where OFFLINE is a copy of the
    template, then ``pinwarden init --keys-from TRANSFER`` with the server's passphrase."""
    from pinwarden.server import DataDirectory, initialize

    offline = offline_key_dir_of(path)
    shutil.copytree(template_key_dir, offline)
    transfer = path.with_name(f"{path.name}-transfer-keys")
    export_online_keys(KeyDirectory(offline), transfer)
    data = DataDirectory(path)
    result = initialize(data, SERVER_PASSPHRASE, database_url=database_url, keys_from=transfer)
    return InitializedData(data, result.database_url, result.admin_token, offline)


@pytest.fixture
def initialized(tmp_path: Path, database_url: str, template_key_dir: Path) -> InitializedData:
    return make_data_dir(tmp_path / "data", database_url, template_key_dir)


# ---- TLS hosts -------------------------------------------------------------------------------


@dataclass
class TLSHost:
    """A TLS server on 127.0.0.1 with a trustme certificate for ``name``; it completes each
    handshake and holds the connection until the client closes it."""

    name: str
    ca_file: str
    leaf_pin: str
    ca_pin: str
    server: ScriptedTLSServer = field(repr=False)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def probe(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop listening: a connection to the port is refused from now on."""
        self.server.stop()


@pytest.fixture(scope="session")
def trust_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    return ca, write_ca_file(ca, tmp_path_factory.mktemp("ca") / "ca.pem")


@pytest.fixture
def tls_host_factory(trust_ca: tuple[trustme.CA, str]) -> Iterator[Callable[..., TLSHost]]:
    """Start TLS servers on 127.0.0.1 for given names, each with a fresh key; with
    ``common_name_only=True`` the certificate names the host in its CN only (no SAN)."""
    ca, ca_file = trust_ca
    hosts: list[TLSHost] = []

    def start(name: str = "api.example.test", *, common_name_only: bool = False) -> TLSHost:
        issued = issue_leaf(ca, name) if common_name_only else ca.issue_cert(name)
        server = ScriptedTLSServer(server_context(issued), sends(b""))
        server.start()
        host = TLSHost(name, ca_file, leaf_pin(issued), spki_pin(ca.cert_pem.bytes()), server)
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        host.stop()


@pytest.fixture
def tls_host(tls_host_factory: Callable[[str], TLSHost]) -> TLSHost:
    return tls_host_factory("api.example.test")


# ---- in-process server (uvicorn in a thread) -------------------------------------------------


@dataclass
class LiveServer:
    url: str
    admin_token: str
    app: Any
    initialized: InitializedData

    @property
    def services(self) -> Any:
        return self.app.services

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def cli_env(self) -> dict[str, str]:
        return {"PINWARDEN_URL": self.url, "PINWARDEN_TOKEN": self.admin_token}

    def run_cli(self, *args: str | bytes) -> subprocess.CompletedProcess[str]:
        """``pinwarden ARGS`` in a subprocess, pointed at this server with the admin token."""
        return subprocess.run(
            [sys.executable, "-m", "pinwarden", *args],
            env={**os.environ, **self.cli_env()},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def run_uvicorn_in_thread(app: Any) -> tuple[str, Callable[[], None]]:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
        proxy_headers=False,  # as `pinwarden serve`: X-Forwarded-For only from --trusted-proxy
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), _START_TIMEOUT, "uvicorn start")
    if not server.started:
        raise RuntimeError("the server did not start (see the log above)")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture
def live_server_factory(
    tmp_path: Path, database_url: str, template_key_dir: Path, trust_ca: tuple[trustme.CA, str]
) -> Iterator[Callable[..., LiveServer]]:
    """Start the app in this process (uvicorn in a thread) over a fresh data directory."""
    from pinwarden.server import ServerConfig, create_app

    stops: list[Callable[[], None]] = []

    def start(**overrides: Any) -> LiveServer:
        initialized = make_data_dir(tmp_path / f"data{len(stops)}", database_url, template_key_dir)
        settings: dict[str, Any] = {
            "database_url": initialized.database_url,
            "key_dir": initialized.data.key_dir,
            "passphrase": SERVER_PASSPHRASE,
            "ca_file": trust_ca[1],
            "heartbeat_seconds": 0.5,
            "poll_seconds": 0.2,
            "probe_timeout": 2.0,
            **overrides,
        }
        app = create_app(ServerConfig(**settings))
        url, stop = run_uvicorn_in_thread(app)
        stops.append(stop)
        return LiveServer(url, initialized.admin_token, app, initialized)

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory()


# ---- a real `pinwarden serve` process ----------------------------------------------------------


@dataclass
class PinServer:
    """A ``pinwarden serve`` process on 127.0.0.1 with its data directory and admin token."""

    url: str
    admin_token: str
    data_dir: Path
    keyring_path: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def cli_env(self) -> dict[str, str]:
        """Environment for ``pinwarden`` admin commands against this server."""
        return {**os.environ, "PINWARDEN_URL": self.url, "PINWARDEN_TOKEN": self.admin_token}

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/v1/channels/{channel}"

    @property
    def offline_key_dir(self) -> Path:
        """The offline key directory ``make_data_dir`` initialized this server from."""
        return offline_key_dir_of(self.data_dir)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_serve_process(
    data_dir: Path,
    *,
    port: int | None = None,
    database_url: str | None = None,
    ca_file: str | None = None,
    extra_args: list[str] | None = None,
    log_path: Path,
    verify: ssl.SSLContext | bool = True,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start ``pinwarden serve``; HTTPS given --tls-cert (``verify`` checks it)."""
    port = port or free_port()
    passphrase_file = data_dir / "test-passphrase"
    if not passphrase_file.exists():
        fd = os.open(passphrase_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(SERVER_PASSPHRASE)
    command = [
        sys.executable,
        "-m",
        "pinwarden",
        "serve",
        "--data",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--passphrase-file",
        str(passphrase_file),
        "--heartbeat",
        "1",
        "--poll",
        "0.2",
    ]
    if database_url:
        command += ["--database-url", database_url]
    if ca_file:
        command += ["--ca-file", ca_file]
    command += extra_args or []
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"{'https' if '--tls-cert' in command else 'http'}://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"pinwarden serve exited: {log_path.read_text()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, _START_TIMEOUT, "pinwarden serve to answer /healthz")
    return url, process


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def pin_server_factory(
    tmp_path_factory: pytest.TempPathFactory, template_key_dir: Path
) -> Iterator[Callable[..., PinServer]]:
    """``start(ca_file=None, database_url=None, data_dir=None, admin_token=None, extra_args=None,
    verify=True) -> PinServer``.

    A fresh data directory (SQLite unless ``database_url``) unless ``data_dir`` names an
    initialized one (a second replica). ``ca_file``: CA certificates the server trusts when it
    connects to pinned hosts for the safe-publishing checks (a trustme CA in tests). With
    ``extra_args=["--tls-cert", …, "--tls-key", …]`` the server speaks HTTPS and ``verify`` is an
    ``ssl.SSLContext`` that trusts its certificate.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        *,
        ca_file: str | None = None,
        database_url: str | None = None,
        data_dir: Path | None = None,
        admin_token: str | None = None,
        extra_args: list[str] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> PinServer:
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp("pin-server") / "data"
            initialized = make_data_dir(data_dir, database_url, template_key_dir)
            admin_token, url_of_db = initialized.admin_token, initialized.database_url
        else:
            assert admin_token is not None, "a second replica needs the first one's admin token"
            url_of_db = database_url or f"sqlite:///{data_dir / 'pinwarden.db'}"
        log_path = data_dir.parent / f"serve-{len(processes)}.log"
        url, process = start_serve_process(
            data_dir,
            database_url=database_url,
            ca_file=ca_file,
            extra_args=extra_args,
            log_path=log_path,
            verify=verify,
        )
        processes.append(process)
        return PinServer(
            url,
            admin_token,
            data_dir,
            data_dir / "keys" / "keyring.json",
            url_of_db,
            process,
            log_path,
        )

    yield start
    for process in processes:
        stop_process(process)


@pytest.fixture
def pin_server(pin_server_factory: Callable[..., PinServer]) -> PinServer:
    return pin_server_factory()


# ---- server-sent events ------------------------------------------------------------------------


@dataclass
class SSEEvent:
    event: str | None
    data: str | None
    id: str | None


class SSEListener:
    """Reads an event stream in a thread; ``next_event`` waits a bounded time for the next one."""

    def __init__(
        self, url: str, headers: dict[str, str] | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        import queue

        self.events: queue.Queue[SSEEvent] = queue.Queue()
        self.comments: list[str] = []
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=30.0), verify=verify)
        self._opened, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self._thread.start()
        if not self._opened.wait(_START_TIMEOUT):
            raise AssertionError(f"the event stream {url} did not open")

    def _read(self, url: str, headers: dict[str, str]) -> None:
        fields: dict[str, str] = {}
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self.status = response.status_code
                self._opened.set()
                for line in response.iter_lines():
                    if self._stop.is_set():  # heartbeats wake this loop up regularly
                        break
                    if line.startswith(":"):
                        self.comments.append(line[1:].strip())
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    else:  # a blank line dispatches, if there is data (WHATWG HTML 9.2.6)
                        if "data" in fields:
                            event = SSEEvent(fields.get("event"), fields["data"], fields.get("id"))
                            self.events.put(event)
                        fields = {}
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self._opened.set()

    def next_event(self, timeout: float = 10.0) -> SSEEvent:
        import queue

        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._client.close()


# ---- a TCP proxy that can cut the database off ---------------------------------------------------


class TCPProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``cut()`` drops every connection and stops
    listening (the database is "down"), ``restore()`` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def url_for(self, database_url: str) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
