"""``HttpTransport`` against the ways real servers frame an answer, on every Python ``make test``
runs.

Python's own ``http.server.ThreadingHTTPServer`` with its listening socket wrapped in TLS (how
the 3.13 defect was found: there ``http.client`` closes the connection's socket as soon as it
knows the answer ends the connection) answers over HTTP/1.0, HTTP/1.1 with ``Connection: close``,
chunked, and keep-alive, for each of the dynamic client's calls: the pin set and a keyring
(``get``), a report (``post_json``) and the event stream (``open_stream``). A raw TLS server plays
the odd answers byte by byte: a body that ends before its ``Content-Length``, a status line or
headers trickled one byte at a time, a handshake that never comes. Every server and every read
is bounded in time.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from pinwarden.client import (
    DynamicPins,
    EventKind,
    FetchError,
    HttpTransport,
    PinEvent,
    StaticPins,
)
from pinwarden.document import MAX_KEYRING_BYTES, MAX_PINSET_BYTES
from tests.dynamic.pin_server_simulator import PinServerSimulator
from tests.support.clock import FakeClock
from tests.support.pki import AppPKI, issue_leaf, server_context, write_ca_file
from tests.support.tls_servers import IO_TIMEOUT, ScriptedTLSServer, sends, trickles

CHANNEL = "/v1/channels/com.example.app%2Fprod"
PINSET = b'{"payload": "a signed pin set", "signatures": []}'
KEYRING = b'{"payload": "keyring version 2", "signatures": []}'
EVENTS = [": heartbeat\n", "\n", "event: pinset\n", 'data: {"version": 7}\n', "\n"]
BUDGET = 1.0  # the timeout of the calls that must give up (whole exchange)
MARGIN = 3.0  # generous: a loaded machine is slow, but a held fetch takes many times the budget


# -- Python's own HTTP server, over TLS, framing each answer as the path's first segment says --


class FramingHandler(BaseHTTPRequestHandler):
    """``/{framing}/…``: ``http10`` (HTTP/1.0 with a length), ``http10-unsized`` (HTTP/1.0 to the
    end of the connection), ``close`` (HTTP/1.1, ``Connection: close``), ``chunked`` and
    ``keep-alive`` (HTTP/1.1, the connection stays open for another request)."""

    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT
    server: FramingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        framing, _, route = self.path.lstrip("/").partition("/")
        answers = {
            f"{CHANNEL}/pinset": (PINSET, "application/json"),
            f"{CHANNEL}/keyring/2": (KEYRING, "application/json"),
            f"{CHANNEL}/events": ("".join(EVENTS).encode(), "text/event-stream"),
        }
        body, content_type = answers.get("/" + route, (b'{"error": "no such route"}', ""))
        status = 200 if content_type else 404
        self.answer(framing, status, body, content_type or "application/json")

    def do_POST(self) -> None:
        framing = self.path.lstrip("/").partition("/")[0]
        length = int(self.headers.get("Content-Length", "0"))
        with self.server.lock:
            self.server.posted.append(self.rfile.read(length))
        self.answer(framing, 201, b'{"accepted": 1}', "application/json")

    def answer(self, framing: str, status: int, body: bytes, content_type: str) -> None:
        if framing.startswith("http10"):
            self.protocol_version = "HTTP/1.0"
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("ETag", '"v7"')
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif framing != "http10-unsized":
            self.send_header("Content-Length", str(len(body)))
        if framing == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if framing == "chunked":
            for start in range(0, len(body), 7):  # small chunks: each boundary is crossed
                piece = body[start:start + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)
        self.wfile.flush()


class FramingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), FramingHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.lock = threading.Lock()
        self.posted: list[bytes] = []

    def url(self, framing: str, route: str) -> str:
        return f"https://localhost:{self.server_address[1]}/{framing}{route}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes with an answer unread (a refused 404) resets the connection: the
        client's business, not a server error to print."""
        if not isinstance(sys.exc_info()[1], ConnectionResetError):
            super().handle_error(request, client_address)


FRAMINGS = ["http10", "http10-unsized", "close", "chunked", "keep-alive"]


@pytest.fixture(scope="module")
def stdlib_server(app_pki: AppPKI) -> Iterator[FramingServer]:
    server = FramingServer(app_pki.server_context(app_pki.leaf_a))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(IO_TIMEOUT)


@pytest.fixture
def transport(app_pki: AppPKI) -> HttpTransport:
    return HttpTransport(cafile=app_pki.ca_file, timeout=IO_TIMEOUT, stream_timeout=IO_TIMEOUT)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize(
    ("route", "body", "cap"),
    [("/pinset", PINSET, MAX_PINSET_BYTES), ("/keyring/2", KEYRING, MAX_KEYRING_BYTES)],
    ids=["pinset", "keyring"],
)
def test_get_reads_every_framing(
    transport: HttpTransport, stdlib_server: FramingServer, framing: str, route: str,
    body: bytes, cap: int,
) -> None:
    result = transport.get(stdlib_server.url(framing, CHANNEL + route), etag=None, max_bytes=cap)
    assert (result.status, result.body, result.etag) == (200, body, '"v7"')


@pytest.mark.parametrize("framing", FRAMINGS)
def test_get_of_an_unknown_route_is_a_fetch_error_with_its_status(
    transport: HttpTransport, stdlib_server: FramingServer, framing: str
) -> None:
    """The twin of the reads above: the dynamic client tells a wrong URL from an outage by it."""
    with pytest.raises(FetchError, match="HTTP 404") as raised:
        transport.get(stdlib_server.url(framing, "/v1/nothing"), etag=None, max_bytes=1000)
    assert raised.value.status == 404


@pytest.mark.parametrize("framing", FRAMINGS)
def test_post_json_reads_every_framing(
    transport: HttpTransport, stdlib_server: FramingServer, framing: str
) -> None:
    report = b'{"hostname": "localhost", "framing": "%s"}' % framing.encode()
    assert transport.post_json(stdlib_server.url(framing, "/v1/reports"), report) == 201
    with stdlib_server.lock:
        assert report in stdlib_server.posted


@pytest.mark.parametrize("framing", FRAMINGS)
def test_open_stream_reads_every_framing(
    transport: HttpTransport, stdlib_server: FramingServer, framing: str
) -> None:
    stream = transport.open_stream(stdlib_server.url(framing, CHANNEL + "/events"))
    try:
        assert list(stream.lines()) == EVENTS
    finally:
        stream.close()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_open_stream_of_an_unknown_route_is_a_fetch_error_with_its_status(
    transport: HttpTransport, stdlib_server: FramingServer, framing: str
) -> None:
    with pytest.raises(FetchError, match="expected an event stream") as raised:
        transport.open_stream(stdlib_server.url(framing, "/v1/nothing"))
    assert raised.value.status == 404


def test_a_server_the_client_does_not_trust_is_refused(stdlib_server: FramingServer) -> None:
    """The negative twin of every read above: same server, a transport trusting another CA."""
    stranger = HttpTransport(ssl_context=ssl.create_default_context(), timeout=IO_TIMEOUT)
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED") as raised:
        stranger.get(stdlib_server.url("http10", CHANNEL + "/pinset"), etag=None, max_bytes=1000)
    assert raised.value.status is None


# -- a raw TLS server that plays scripted bytes (tests.support.tls_servers.ScriptedTLSServer) --

# The dynamic client's four calls, on the channel URL ``url`` of a scripted server.
CALLS: dict[str, Callable[[HttpTransport, str], object]] = {
    "get pinset": lambda t, url: t.get(url + "/pinset", etag=None, max_bytes=MAX_PINSET_BYTES),
    "get keyring": lambda t, url: t.get(url + "/keyring/2", etag=None, max_bytes=MAX_KEYRING_BYTES),
    "post_json report": lambda t, url: t.post_json(url + "/reports", b'{"hostname": "x"}'),
    "open_stream": lambda t, url: t.open_stream(url + "/events"),
}


STREAM_HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
TRUNCATED_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: 100\r\n\r\n%s"


def test_a_pin_set_that_ends_before_its_length_is_a_fetch_error(
    app_pki: AppPKI, transport: HttpTransport
) -> None:
    answer = TRUNCATED_BODY % (b"application/json", PINSET[:20])
    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), sends(answer)) as server:
        with pytest.raises(FetchError, match="ended after 20 of 100 bytes") as raised:
            transport.get(server.url(CHANNEL + "/pinset"), etag=None, max_bytes=MAX_PINSET_BYTES)
    assert raised.value.status == 200


def test_a_report_answer_that_ends_early_still_gives_its_status(
    app_pki: AppPKI, transport: HttpTransport
) -> None:
    """The report was taken (the status says so); its answer's body is not read for anything."""
    answer = TRUNCATED_BODY % (b"application/json", b'{"acc')
    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), sends(answer)) as server:
        assert transport.post_json(server.url("/v1/reports"), b'{"hostname": "x"}') == 200
    assert server.requests[0].endswith(b'{"hostname": "x"}')


def test_an_event_stream_that_ends_early_ends_after_its_last_line(
    app_pki: AppPKI, transport: HttpTransport
) -> None:
    """The stream is then reopened after the back-off, as after any end (``_sse.py``)."""
    answer = TRUNCATED_BODY % (b"text/event-stream", "".join(EVENTS[:3]).encode())
    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), sends(answer)) as server:
        stream = transport.open_stream(server.url(CHANNEL + "/events"))
        try:
            assert list(stream.lines()) == EVENTS[:3]
        finally:
            stream.close()


OK_HEAD = b"HTTP/1.1 200 OK\r\n"
# name: (the answer, what post_json returns for it: its status, or None for a FetchError)
HOSTILE_ANSWERS: dict[str, tuple[bytes, int | None]] = {
    "nothing at all": (b"", None),
    "not HTTP": (b"SSH-2.0-OpenSSH_9.6\r\n", None),
    "controls in the status": (b"HTTP/1.1 2\x0000 \x1b[2J\r\n\r\n", None),
    "a NUL and an escape in the reason": (b"HTTP/1.1 500 Bad\x00\x1b[2J\r\n\r\n", 500),
    "a status line of 70 KiB": (b"HTTP/1.1 200 " + b"a" * 70_000 + b"\r\n\r\n", None),
    "a header line of 70 KiB": (OK_HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", None),
    "101 headers": (OK_HEAD + b"X-A: 1\r\n" * 101 + b"\r\n", None),
    "a chunk size that is not hex": (
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", None),
    "a chunk of 2**44 bytes that ends at once": (
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nfffffffffff\r\nabc", 200),
    "a length of 10**30": (OK_HEAD + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n", 200),
}


@pytest.mark.parametrize("answer", sorted(HOSTILE_ANSWERS))
@pytest.mark.parametrize("call", ["get pinset", "open_stream", "post_json report"])
def test_a_hostile_answer_is_one_fetch_error_line(
    app_pki: AppPKI, transport: HttpTransport, call: str, answer: str
) -> None:
    """A pin set or an event stream never comes of these; a report keeps the status it got.
    Whatever the server sent, a message is one printable line of bounded length."""
    raw, report_status = HOSTILE_ANSWERS[answer]
    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), sends(raw)) as server:
        if call == "post_json report" and report_status is not None:
            assert CALLS[call](transport, server.url(CHANNEL)) == report_status
            return
        with pytest.raises(FetchError) as raised:
            CALLS[call](transport, server.url(CHANNEL))
    message = str(raised.value)
    assert message.isprintable() and len(message) < 500, message


# part: (sent at once, then trickled)
TRICKLED = {
    "status line": (b"", b"HTTP/1.0 200 OK\r\nX-Slow: "),
    "headers": (b"HTTP/1.0 200 OK\r\n", b"X-Slow: "),
}


def _trickling_server(pki: AppPKI, part: str) -> ScriptedTLSServer:
    return ScriptedTLSServer(pki.server_context(pki.leaf_a), trickles(*TRICKLED[part]))


@pytest.mark.parametrize("part", sorted(TRICKLED))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_trickled_answer_cannot_hold_a_call_past_its_budget(
    app_pki: AppPKI, call: str, part: str
) -> None:
    """Each byte comes well within any socket timeout; only a deadline over the whole exchange
    stops it. Before the fix, the header phase was bounded per read only."""
    with _trickling_server(app_pki, part) as server:
        transport = HttpTransport(cafile=app_pki.ca_file, timeout=BUDGET, stream_timeout=60.0)
        started = time.monotonic()
        with pytest.raises(FetchError, match="within 1 s") as raised:
            CALLS[call](transport, server.url(CHANNEL))
        elapsed = time.monotonic() - started
    assert elapsed < BUDGET + MARGIN
    assert raised.value.status is None


def test_wait_for_first_fetch_returns_within_its_timeout_from_a_trickling_server(
    app_pki: AppPKI, clock: FakeClock
) -> None:
    """The dynamic client over this transport: the first fetch, and a refresh after it, each
    give up within ``timeout`` and leave the bootstrap pins in force."""
    sim = PinServerSimulator(clock)
    events: list[PinEvent] = []
    with _trickling_server(app_pki, "headers") as server:
        started = time.monotonic()
        source = DynamicPins(
            server.url(urlsplit(sim.url).path), keyring=sim.shipped_keyring,
            bootstrap=StaticPins({"localhost": [app_pki.pin_a, app_pki.backup_pin]}),
            cafile=app_pki.ca_file, clock=clock, timeout=2.0, background=False,
            wait_for_first_fetch=True, on_event=events.append,
        )
        first = time.monotonic() - started
        started = time.monotonic()
        refreshed = source.refresh()
        second = time.monotonic() - started
        source.close()
    assert first < 2.0 + MARGIN and second < 2.0 + MARGIN
    assert [event.kind for event in events] == [EventKind.FETCH_FAILED] * 2
    assert refreshed.kind is EventKind.FETCH_FAILED and "within 2 s" in refreshed.message
    assert source.version is None and source.rule_for("localhost") is not None


def test_a_handshake_that_never_comes_cannot_hold_a_call(app_pki: AppPKI) -> None:
    context = app_pki.server_context(app_pki.leaf_a)
    with ScriptedTLSServer(context, sends(b""), handshake=False) as server:
        transport = HttpTransport(cafile=app_pki.ca_file, timeout=BUDGET)
        started = time.monotonic()
        with pytest.raises(FetchError, match="within 1 s"):
            transport.get(server.url(CHANNEL + "/pinset"), etag=None, max_bytes=1000)
        assert time.monotonic() - started < BUDGET + MARGIN


def test_an_event_stream_may_stay_open_past_the_budget_while_it_talks(app_pki: AppPKI) -> None:
    """The deadline bounds the opening; an open stream is bounded per read (``stream_timeout``),
    and heartbeats keep it open: here 3 lines over about 3 s, past a ``timeout`` of 2 s."""

    def script(tls: ssl.SSLSocket, stopped: threading.Event) -> None:
        tls.sendall(STREAM_HEAD)
        for _ in range(3):
            if stopped.wait(1.0):
                return
            tls.sendall(b": heartbeat\n")

    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), script) as server:
        transport = HttpTransport(cafile=app_pki.ca_file, timeout=2.0, stream_timeout=IO_TIMEOUT)
        stream = transport.open_stream(server.url(CHANNEL + "/events"))
        try:
            assert list(stream.lines()) == [": heartbeat\n"] * 3
        finally:
            stream.close()


def test_a_silent_event_stream_is_dropped_after_its_stream_timeout(app_pki: AppPKI) -> None:
    """The twin of the test above: nothing after the headers."""

    def script(tls: ssl.SSLSocket, stopped: threading.Event) -> None:
        tls.sendall(STREAM_HEAD)
        stopped.wait(IO_TIMEOUT)

    with ScriptedTLSServer(app_pki.server_context(app_pki.leaf_a), script) as server:
        transport = HttpTransport(cafile=app_pki.ca_file, timeout=IO_TIMEOUT, stream_timeout=BUDGET)
        stream = transport.open_stream(server.url(CHANNEL + "/events"))
        try:
            with pytest.raises(FetchError, match="silent for 1 s"):
                list(stream.lines())
        finally:
            stream.close()


# -- host names: subjectAltName only, never the common name ------------------------------------


@pytest.fixture(scope="module")
def named_leaves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``ca``: a CA file; ``cn-only``: a leaf for localhost named only in its subject's CN;
    ``san``: its twin that also names localhost in subjectAltName (key and chain files)."""
    directory = tmp_path_factory.mktemp("common-name")
    ca = trustme.CA()
    files = {"ca": Path(write_ca_file(ca, directory / "ca.pem"))}
    for label, names in (("cn-only", []), ("san", ["localhost"])):
        files[label] = directory / f"{label}.pem"
        files[label].write_bytes(
            issue_leaf(ca, "localhost", names).private_key_and_cert_chain_pem.bytes()
        )
    return files


def _serving(leaf_file: Path) -> ScriptedTLSServer:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(PINSET), PINSET)
    return ScriptedTLSServer(server_context(str(leaf_file)), sends(answer))


def _given_context(ca_file: Path) -> HttpTransport:
    return HttpTransport(ssl_context=ssl.create_default_context(cafile=str(ca_file)),
                         timeout=IO_TIMEOUT)


TRANSPORTS: dict[str, Callable[[Path], HttpTransport]] = {
    "default context": lambda ca: HttpTransport(cafile=str(ca), timeout=IO_TIMEOUT),
    "given context": _given_context,
}


@pytest.mark.parametrize("made_with", sorted(TRANSPORTS))
def test_a_certificate_naming_the_host_only_in_its_common_name_is_refused(
    named_leaves: dict[str, Path], made_with: str
) -> None:
    transport = TRANSPORTS[made_with](named_leaves["ca"])
    with _serving(named_leaves["cn-only"]) as server:
        with pytest.raises(FetchError, match="Hostname mismatch"):
            transport.get(server.url(CHANNEL + "/pinset"), etag=None, max_bytes=1000)


@pytest.mark.parametrize("made_with", sorted(TRANSPORTS))
def test_its_twin_naming_the_host_in_subject_alt_name_is_accepted(
    named_leaves: dict[str, Path], made_with: str
) -> None:
    transport = TRANSPORTS[made_with](named_leaves["ca"])
    with _serving(named_leaves["san"]) as server:
        result = transport.get(server.url(CHANNEL + "/pinset"), etag=None, max_bytes=1000)
    assert result.body == PINSET


def test_a_given_context_stops_matching_common_names() -> None:
    """Changed, not refused: Python's own default context matches common names."""
    context = ssl.create_default_context()
    assert context.hostname_checks_common_name
    HttpTransport(ssl_context=context)
    assert not context.hostname_checks_common_name


def test_an_ipv6_url_without_a_port_goes_to_the_scheme_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given no port, ``http.client`` splits the host ``::1`` itself into "::" and port 1."""
    dialled: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        dialled.append(address)
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(FetchError, match="refused by the test"):
        HttpTransport().get("http://[::1]/v1/channels/x/pinset", etag=None, max_bytes=10)
    assert dialled == [("::1", 80)]
