"""The README's code, run as a reader would run it, against real TLS on loopback addresses.

What stands in for the internet, and nothing else:

- ``api.example.com`` resolves to a TLS server on a loopback address (``socket.getaddrinfo``
  answers for that one name with the server's address and port: in this process by a patch, in
  the processes a test starts through ``resolver/sitecustomize.py``). Its certificate is a trustme
  leaf for ``api.example.com`` issued by an intermediate under a test root.
- The test root is trusted the way the README says each stack finds its CAs: requests through
  ``REQUESTS_CA_BUNDLE``; httpx through certifi's bundle (``certifi.where`` names the test root);
  the ``cafile=`` block through its own argument; the command line through the system's CAs
  (``SSL_CERT_FILE``).
- The documented placeholders are replaced by the test PKI's values, per ``placeholders()``, and
  ``make run``'s address and token by those of a real ``pinwarden serve`` process on 127.0.0.1,
  which is also the dynamic block's pin server.

Each block otherwise runs as written: the ```python blocks in this process, the ```sh blocks in
bash. Each negative twin gives pins of keys the server does not hold (or leaves the CA untrusted)
and must fail with the error the README documents.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import http.server
import inspect
import io
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import trustme

from pinwarden import spki_pin
from pinwarden.cli import main
from pinwarden.client import pin_error
from tests.docs.markdown_code import README, CodeBlock, code_blocks
from tests.docs.resolver.sitecustomize import ENVIRONMENT_VARIABLE, resolving
from tests.support.pki import backup_pin
from tests.support.waiting import wait_until

HOST = "api.example.com"
CHANNEL = "com.example.app/prod"
DOCUMENTED_PIN_SERVER = f"https://pins.example.com/v1/channels/{CHANNEL}"
DOCUMENTED_ADMIN_URL = "http://127.0.0.1:8080"  # what make run serves
DOCUMENTED_TOKEN = "pwt_…"
DOCUMENTED_CAFILE = "/etc/pki/internal-ca.pem"
IO_TIMEOUT = 5.0
RESOLVER = Path(__file__).parent / "resolver"

# Which README block each test runs, by a line only that block has. Every python block of the
# README must be claimed (test_every_readme_python_block_is_run).
REQUESTS_BLOCK = '"**.cdn.example.com"'
HTTPX_BLOCK = "pinned_httpx_async_client(pins) as client"
CAFILE_BLOCK = f'cafile="{DOCUMENTED_CAFILE}"'
PIN_ERROR_BLOCK = "refusal = pin_error(error)"
DYNAMIC_BLOCK = "pins = DynamicPins("


# ---- the test PKI and the HTTPS server for api.example.com ----------------------------------


def _listening_address() -> tuple[str, int]:
    """Port 443 of a random loopback address where this process may bind it, else a free port
    of 127.0.0.1. anyio (httpx async) connects to the port of the URL, whatever the resolver
    answered, so only the first lets the async httpx client reach the server."""
    octets = (secrets.randbelow(254) + 1, secrets.randbelow(256), secrets.randbelow(254) + 1)
    address = "127.{}.{}.{}".format(*octets)
    try:
        with socket.create_server((address, 443)):
            return address, 443
    except OSError:
        return "127.0.0.1", 0


@dataclass
class AppHost:
    """The TLS server that answers for api.example.com, and what a reader would pin of it."""

    address: str
    port: int
    ca_file: str
    leaf_pin: str
    intermediate_pin: str
    requests_seen: list[str] = field(default_factory=list)

    def skip_unless_on_port_443(self) -> None:
        if self.port != 443:
            pytest.skip(
                "the async httpx client (anyio) dials the URL's port 443, which this process "
                "may not bind on a loopback address (not root, ip_unprivileged_port_start > 443)"
            )


class _AppHandler(http.server.BaseHTTPRequestHandler):
    timeout = IO_TIMEOUT

    def do_GET(self) -> None:
        self.server.requests_seen.append(self.path)  # type: ignore[attr-defined]
        body = b'{"me": "a reader of the README"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a refused client's aborted handshake is expected here."""


class _TLSServer(http.server.ThreadingHTTPServer):
    """HTTPS whose handshake runs in each request's thread, so no client can stall accept()."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, requests_seen: list[str]
    ) -> None:
        super().__init__(address, _AppHandler)
        self.context = context
        self.requests_seen = requests_seen

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(IO_TIMEOUT)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # a client that refused the chain (the twins) or only probed it
        with tls:
            super().finish_request(tls, client_address)


@pytest.fixture(scope="module")
def app_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppHost]:
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert(HOST, "static.cdn.example.com")
    ca_file = tmp_path_factory.mktemp("readme-pki") / "root.pem"
    root.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    address = _listening_address()
    host = AppHost(
        *address,
        ca_file=str(ca_file),
        leaf_pin=spki_pin(leaf.cert_chain_pems[0].bytes()),
        intermediate_pin=spki_pin(intermediate.cert_pem.bytes()),
    )
    server = _TLSServer(address, context, host.requests_seen)
    host.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield host
    server.shutdown()
    server.server_close()
    thread.join(timeout=IO_TIMEOUT)


@pytest.fixture
def reader(app_host: AppHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppHost]:
    """A reader's machine: api.example.com resolves to the test server; the test root is
    trusted where requests and httpx look by default; the working directory is a fresh one."""
    getaddrinfo = resolving(HOST, app_host.address, app_host.port, socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for scheme in ("HTTPS", "HTTP", "ALL"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", app_host.ca_file)
    monkeypatch.setattr("certifi.where", lambda: app_host.ca_file)
    monkeypatch.chdir(tmp_path)
    app_host.requests_seen.clear()
    yield app_host


def resolving_children(app_host: AppHost) -> dict[str, str]:
    """Environment under which the Python processes a test starts resolve api.example.com to the
    test server (``resolver/sitecustomize.py``)."""
    python_path = [str(RESOLVER), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(python_path),
        ENVIRONMENT_VARIABLE: f"{HOST}={app_host.address}:{app_host.port}",
    }


# ---- running a block ------------------------------------------------------------------------


def readme_python_blocks() -> list[CodeBlock]:
    return [block for block in code_blocks(README) if block.language == "python"]


def readme_block(marker: str) -> CodeBlock:
    (block,) = [block for block in readme_python_blocks() if marker in block.text]
    return block


def placeholders(app_host: AppHost, *, wrong_pins: bool) -> dict[str, str]:
    """The README's placeholders and what this test puts in their place (twins: wrong pins)."""
    live, backup = (backup_pin(), backup_pin()) if wrong_pins else (app_host.leaf_pin, backup_pin())
    return {
        "sha256/LIVE-KEY-PIN=": live,
        "sha256/BACKUP-KEY-PIN=": backup,
        "sha256/CA-PIN=": app_host.intermediate_pin,
        "sha256/BACKUP-PIN=": backup_pin(),
        DOCUMENTED_CAFILE: app_host.ca_file,
    }


def filled(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def run(code: str, namespace: dict[str, Any], where: str) -> None:
    """Run ``code`` as a module body in ``namespace``; top-level ``await`` (the httpx block) runs
    on a fresh event loop, as the asyncio REPL would. A file left open by the code
    (``open(…).read()``) is a ``ResourceWarning``, made an error here: pytest reports it as an
    unraisable exception, which the project's pytest settings turn into a failure."""
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        result = eval(compiled, namespace)  # noqa: S307 - the README's own code, on purpose
        if inspect.iscoroutine(result):
            asyncio.run(result)


def paragraphs(block: CodeBlock) -> list[str]:
    """The parts of a block after its first (its imports) at blank lines, each with the imports."""
    imports, *parts = [part.strip("\n") + "\n" for part in block.text.split("\n\n")]
    return [imports + part for part in parts]


def printed_by(action: Callable[[], None]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        action()
    return output.getvalue()


# ---- the static blocks ----------------------------------------------------------------------


def test_every_readme_python_block_is_run() -> None:
    markers = [REQUESTS_BLOCK, HTTPX_BLOCK, CAFILE_BLOCK, PIN_ERROR_BLOCK, DYNAMIC_BLOCK]
    claimed = {readme_block(marker).where for marker in markers}
    assert claimed == {block.where for block in readme_python_blocks()}


def test_the_placeholder_table_names_what_the_readme_uses(app_host: AppHost) -> None:
    text = "".join(block.text for block in readme_python_blocks())
    for placeholder in [*placeholders(app_host, wrong_pins=False), DOCUMENTED_PIN_SERVER]:
        assert placeholder in text, f"the README no longer uses {placeholder!r}"


def test_the_static_blocks_reach_the_pinned_host(reader: AppHost) -> None:
    values = placeholders(reader, wrong_pins=False)
    namespace: dict[str, Any] = {}
    httpx_sync, _ = paragraphs(readme_block(HTTPX_BLOCK))
    for code, where in (
        (readme_block(REQUESTS_BLOCK).text, readme_block(REQUESTS_BLOCK).where),
        (httpx_sync, readme_block(HTTPX_BLOCK).where),
        (readme_block(CAFILE_BLOCK).text, readme_block(CAFILE_BLOCK).where),
    ):
        run(filled(code, values), namespace, where)
    block = readme_block(PIN_ERROR_BLOCK)
    assert printed_by(lambda: run(filled(block.text, values), namespace, block.where)) == ""
    assert reader.requests_seen == ["/v1/me"] * 3  # requests, httpx, the pin_error block


def test_the_async_httpx_block_reaches_the_pinned_host(reader: AppHost) -> None:
    reader.skip_unless_on_port_443()
    values = placeholders(reader, wrong_pins=False)
    namespace: dict[str, Any] = {}
    block = readme_block(REQUESTS_BLOCK)
    run(filled(block.text, values), namespace, block.where)
    block = readme_block(HTTPX_BLOCK)
    run(filled(block.text, values), namespace, block.where)
    assert reader.requests_seen == ["/v1/me"] * 3  # requests, httpx, httpx async


def test_the_static_blocks_twin_with_wrong_pins_fail_as_documented(reader: AppHost) -> None:
    values = placeholders(reader, wrong_pins=True)
    namespace: dict[str, Any] = {}
    block = readme_block(REQUESTS_BLOCK)
    with pytest.raises(requests.exceptions.SSLError) as refused:
        run(filled(block.text, values), namespace, block.where)
    assert pin_error(refused.value) is not None
    block = readme_block(HTTPX_BLOCK)
    httpx_sync, httpx_async = paragraphs(block)
    parts = [httpx_sync, httpx_async] if reader.port == 443 else [httpx_sync]
    for part in parts:
        with pytest.raises(httpx.ConnectError) as refused_by_httpx:
            run(filled(part, values), namespace, block.where)
        assert pin_error(refused_by_httpx.value) is not None
    assert reader.requests_seen == []  # refused before a single request byte


def test_the_pin_error_block_twin_prints_the_documented_message(reader: AppHost) -> None:
    values = placeholders(reader, wrong_pins=True)
    namespace: dict[str, Any] = {}
    for marker in (REQUESTS_BLOCK, CAFILE_BLOCK):  # pins, then the cafile= session it uses
        block = readme_block(marker)
        with contextlib.suppress(requests.exceptions.SSLError):
            run(filled(block.text, values), namespace, block.where)
    block = readme_block(PIN_ERROR_BLOCK)
    printed = printed_by(lambda: run(filled(block.text, values), namespace, block.where))
    (documented,) = [block.text for block in code_blocks(README) if block.language == "text"]
    documented_lines, printed_lines = documented.splitlines(), printed.splitlines()
    message_lines, attributes = printed_lines[:-1], printed_lines[-1]
    assert len(message_lines) == len(documented_lines), printed
    for shown, documented_line in zip(message_lines, documented_lines, strict=True):
        # Pins, subjects and the end of the next step differ; what comes before them may not.
        prefix = documented_line.split("sha256/")[0].split("…")[0]
        assert shown.startswith(prefix), f"printed {shown!r}, the README shows {documented_line!r}"
    assert message_lines[-3:-1] == [
        f"    {values['sha256/LIVE-KEY-PIN=']}",
        f"    {values['sha256/BACKUP-KEY-PIN=']}",
    ]
    assert attributes.startswith(f"{HOST} (") and attributes.endswith(" static pins")


# ---- the dynamic block, against a real pin server --------------------------------------------


@dataclass
class PinServerForReadme:
    url: str
    admin_token: str
    keyring_path: Path

    def channel_url(self, channel: str) -> str:
        return f"{self.url}/v1/channels/{channel}"


# The README's server commands create CHANNEL; the dynamic block is pointed at these instead.
DYNAMIC_CHANNEL = "com.example.app/readme"
WRONG_CHANNEL = "com.example.app/wrong-pins"


def _admin(server: PinServerForReadme, *argv: str) -> None:
    command = [*argv, "--server", server.url, "--token", server.admin_token]
    assert main(command) == 0, command


@pytest.fixture(scope="module")
def pin_server(
    app_host: AppHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PinServerForReadme]:
    """A ``pinwarden serve`` process that resolves api.example.com to the test server and trusts
    its root, publishing a rule for api.example.com in two channels: ``DYNAMIC_CHANNEL`` with the
    host's live pin and a backup pin (safe), ``WRONG_CHANNEL`` with two pins of keys the host
    does not hold (forced past the safety checks, as a mistake would be)."""
    pytest.importorskip("uvicorn", reason="the pin server needs the server extra")
    from pinwarden.document import KeyDirectory
    from tests.server.server_harness import (
        PASSPHRASE,
        make_data_dir,
        start_serve_process,
        stop_process,
    )

    base = tmp_path_factory.mktemp("readme-pin-server")
    KeyDirectory(base / "offline").init(PASSPHRASE)
    initialized = make_data_dir(base / "data", None, base / "offline")
    with pytest.MonkeyPatch.context() as environment:
        for name, value in resolving_children(app_host).items():
            environment.setenv(name, value)
        url, process = start_serve_process(
            base / "data", ca_file=app_host.ca_file, log_path=base / "serve.log"
        )
    try:
        server = PinServerForReadme(url, initialized.admin_token, initialized.keyring_path)
        for channel, pins, forced in (
            (DYNAMIC_CHANNEL, [app_host.leaf_pin, backup_pin()], []),
            (WRONG_CHANNEL, [backup_pin(), backup_pin()], ["--force", "--reason", "test"]),
        ):
            _admin(server, "channel", "create", channel)
            _admin(server, "rule", "add", channel, HOST)
            for pin in pins:
                _admin(server, "pins", "add", channel, HOST, pin)
            _admin(server, "publish", channel, *forced)
        yield server
    finally:
        stop_process(process)


@contextlib.contextmanager
def dynamic_block_namespace() -> Iterator[dict[str, Any]]:
    """The namespace the dynamic block runs in; its ``DynamicPins`` is closed afterwards."""
    namespace: dict[str, Any] = {}
    try:
        yield namespace
    finally:
        if "pins" in namespace:
            namespace["pins"].close()


def run_dynamic_block(
    reader: AppHost,
    pin_server: PinServerForReadme,
    channel: str,
    namespace: dict[str, Any],
    *,
    wrong_pins: bool,
) -> None:
    """The dynamic block with the documented pin server replaced by ``channel`` of the local one,
    and the keyring it signs with in the working directory as keyring.json."""
    shutil.copyfile(pin_server.keyring_path, "keyring.json")
    values = {
        **placeholders(reader, wrong_pins=wrong_pins),
        DOCUMENTED_PIN_SERVER: pin_server.channel_url(channel),
    }
    block = readme_block(DYNAMIC_BLOCK)
    run(filled(block.text, values), namespace, block.where)


def test_the_dynamic_block_follows_the_signed_pin_set(
    reader: AppHost, pin_server: PinServerForReadme
) -> None:
    with dynamic_block_namespace() as namespace:
        run_dynamic_block(reader, pin_server, DYNAMIC_CHANNEL, namespace, wrong_pins=False)
        pins = namespace["pins"]
        wait_until(lambda: pins.version == 1, what="the first pin set to be fetched and verified")
        assert pins.status.source == f"pin set v1 of channel {DYNAMIC_CHANNEL}"
        namespace["session"].get(f"https://{HOST}/v1/me", timeout=IO_TIMEOUT).raise_for_status()
        assert reader.requests_seen == ["/v1/me"] * 2  # the block's request, then this one


def test_the_dynamic_block_twin_with_wrong_pins_is_refused(
    reader: AppHost, pin_server: PinServerForReadme
) -> None:
    """Wrong pins shipped and wrong pins published: refused on the bootstrap pins or the signed
    ones (whichever the block's request meets), then on the signed ones, named as their origin."""
    with dynamic_block_namespace() as namespace:
        with pytest.raises(requests.exceptions.SSLError):
            run_dynamic_block(reader, pin_server, WRONG_CHANNEL, namespace, wrong_pins=True)
        pins = namespace["pins"]
        wait_until(lambda: pins.version == 1, what="the first pin set to be fetched and verified")
        with pytest.raises(requests.exceptions.SSLError) as refused:
            namespace["session"].get(f"https://{HOST}/v1/me", timeout=IO_TIMEOUT)
        refusal = pin_error(refused.value)
        assert refusal is not None and refusal.origin == f"pin set v1 of channel {WRONG_CHANNEL}"
        assert reader.requests_seen == []


# ---- the shell blocks: the static quick start, then the server commands -----------------------


def readme_shell_script(pin_server: PinServerForReadme) -> str:
    """The README's shell blocks after ``make run``'s, in order, as one script; the ``make run``
    address and token are the test server's."""
    shell_blocks = [block.text for block in code_blocks(README) if block.language == "sh"]
    assert "make run" in shell_blocks[0], "the first shell block is no longer make run's"
    values = {DOCUMENTED_ADMIN_URL: pin_server.url, DOCUMENTED_TOKEN: pin_server.admin_token}
    return filled("set -e\n" + "".join(shell_blocks[1:]), values)


def run_shell(script: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in bash with the project's ``pinwarden`` first on PATH, typing a passphrase."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(
        ["bash", "-c", script],
        input="a backup passphrase\n",
        env={**os.environ, "PATH": path, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_shell_blocks_run_as_written(reader: AppHost, pin_server: PinServerForReadme) -> None:
    """Compute the pins, make the backup key, check the host, then put the pins on the server
    and dry-run the publish: each command as the README writes it, the test root trusted as the
    system's CAs would be (``SSL_CERT_FILE``)."""
    done = run_shell(
        readme_shell_script(pin_server),
        {**resolving_children(reader), "SSL_CERT_FILE": reader.ca_file},
    )
    assert done.returncode == 0, done.stderr
    assert f"pin {reader.leaf_pin} matched at depth 0" in done.stdout
    assert Path("backup-keys/api-backup.key").stat().st_mode & 0o777 == 0o600
    assert f"dry run of {CHANNEL}: safe" in done.stdout
    assert f"check    {HOST}: safe" in done.stdout


def test_the_shell_blocks_twin_without_the_ca_stop_at_the_first_command(
    reader: AppHost, pin_server: PinServerForReadme
) -> None:
    """Negative twin: a host whose CA is not trusted is one clear line and exit 3 from the
    first command, and ``set -e`` stops the script there."""
    done = run_shell(readme_shell_script(pin_server), resolving_children(reader))
    assert done.returncode == 3
    assert done.stderr.startswith("pinwarden pin: error:"), done.stderr
    assert "Traceback" not in done.stderr
    assert not Path("backup-keys").exists()
