"""``HttpTransport`` against real HTTPS servers on 127.0.0.1: ETag, byte cap, time budget,
no redirects, no cookies, normal TLS validation, event streams."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import pytest
import trustme

from pinwarden.client._fetch import FetchError, HttpTransport, check_url
from tests.support.pki import AppPKI
from tests.support.tls_servers import QuietHandler, TLSServer, running

DOCUMENT = b'{"a signed": "document"}'


class PinHandler(QuietHandler):
    """/doc (ETag "v1"), /big, /chunked-big, /redirect, /stall, /cookie, /report, /events."""

    def do_GET(self) -> None:
        self.server.record("GET", self.path)
        self.server.state.setdefault("headers", []).append(dict(self.headers))
        if self.path == "/doc":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_body(304, b"", {"ETag": '"v1"'})
            else:
                self.send_body(200, DOCUMENT, {"ETag": '"v1"'})
        elif self.path == "/big":
            self.send_body(200, b"x" * 5000)
        elif self.path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/redirect":
            self.send_body(302, b"", {"Location": "/doc"})
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(50):  # one byte every 0.1 s: each read is quick, the whole is not
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/cookie":
            self.send_body(200, b"{}", {"Set-Cookie": "session=secret; Path=/"})
        elif self.path == "/events":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b": heartbeat\n\nevent: pinset\ndata: {\"version\": 4}\n\n")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_body(404, b"")

    def do_POST(self) -> None:
        self.server.record("POST", self.path)
        length = int(self.headers.get("Content-Length", "0"))
        self.server.state.setdefault("posted", []).append(
            (self.rfile.read(length), dict(self.headers))
        )
        self.send_body(303 if self.path == "/redirect" else 201, b"", {"Location": "/elsewhere"})


@pytest.fixture(scope="module")
def pin_server(app_pki: AppPKI) -> Iterator[TLSServer]:
    with running(TLSServer(PinHandler, app_pki.server_context(app_pki.leaf_a))) as server:
        yield server


@pytest.fixture
def transport(app_pki: AppPKI) -> HttpTransport:
    return HttpTransport(cafile=app_pki.ca_file, timeout=2.0)


def test_get_returns_the_body_and_etag(transport: HttpTransport, pin_server: TLSServer) -> None:
    result = transport.get(pin_server.url("/doc"), etag=None, max_bytes=1000)
    assert (result.status, result.body, result.etag) == (200, DOCUMENT, '"v1"')


def test_a_matching_etag_gets_304_and_no_body(
    transport: HttpTransport, pin_server: TLSServer
) -> None:
    result = transport.get(pin_server.url("/doc"), etag='"v1"', max_bytes=1000)
    assert result.not_modified and result.body == b""
    other = transport.get(pin_server.url("/doc"), etag='"v0"', max_bytes=1000)
    assert not other.not_modified and other.body == DOCUMENT


@pytest.mark.parametrize("etag", ['"x"\r\nInjected: 1', '"\u2603"'])
def test_a_header_value_http_client_cannot_send_is_a_fetch_error(
    transport: HttpTransport, pin_server: TLSServer, etag: str
) -> None:
    """http.client raises ValueError / UnicodeEncodeError here: the transport says FetchError."""
    before = pin_server.count("/doc")
    with pytest.raises(FetchError):
        transport.get(pin_server.url("/doc"), etag=etag, max_bytes=1000)
    assert pin_server.count("/doc") == before  # nothing was sent


@pytest.mark.parametrize("path", ["/big", "/chunked-big"])
def test_a_body_over_the_cap_is_refused(
    transport: HttpTransport, pin_server: TLSServer, path: str
) -> None:
    with pytest.raises(FetchError, match="cap"):
        transport.get(pin_server.url(path), etag=None, max_bytes=4096)
    assert len(transport.get(pin_server.url(path), etag=None, max_bytes=10_000).body) > 4096


def test_a_redirect_is_not_followed(transport: HttpTransport, pin_server: TLSServer) -> None:
    before = pin_server.count("/doc")
    with pytest.raises(FetchError, match="302"):
        transport.get(pin_server.url("/redirect"), etag=None, max_bytes=1000)
    assert pin_server.count("/doc") == before


def test_a_trickling_server_cannot_hold_a_fetch_past_its_budget(
    app_pki: AppPKI, pin_server: TLSServer
) -> None:
    transport = HttpTransport(cafile=app_pki.ca_file, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError):
        transport.get(pin_server.url("/stall"), etag=None, max_bytes=1000)
    assert time.monotonic() - started < 4.0  # the server would take 5 s


def test_the_pin_server_certificate_is_validated(pin_server: TLSServer) -> None:
    stranger = trustme.CA()
    context = ssl.create_default_context()
    stranger.configure_trust(context)
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
        HttpTransport(ssl_context=context).get(pin_server.url("/doc"), etag=None, max_bytes=10)


def test_a_context_that_skips_validation_is_refused() -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="must validate"):
        HttpTransport(ssl_context=context)


def test_no_cookie_is_kept_between_requests(
    transport: HttpTransport, pin_server: TLSServer
) -> None:
    transport.get(pin_server.url("/cookie"), etag=None, max_bytes=100)
    transport.get(pin_server.url("/doc"), etag=None, max_bytes=100)
    assert all("Cookie" not in headers for headers in pin_server.state["headers"])


def test_post_sends_json_and_follows_no_redirect(
    transport: HttpTransport, pin_server: TLSServer
) -> None:
    assert transport.post_json(pin_server.url("/reports"), b'{"x": 1}') == 201
    assert transport.post_json(pin_server.url("/redirect"), b'{"x": 2}') == 303
    posted = pin_server.state["posted"]
    assert [body for body, _ in posted][-2:] == [b'{"x": 1}', b'{"x": 2}']
    assert posted[-1][1]["Content-Type"] == "application/json"
    assert pin_server.count("/elsewhere") == 0


def test_an_event_stream_is_read_line_by_line(
    transport: HttpTransport, pin_server: TLSServer
) -> None:
    stream = transport.open_stream(pin_server.url("/events"))
    try:
        lines = list(stream.lines())
    finally:
        stream.close()
    assert lines == [": heartbeat\n", "\n", "event: pinset\n", 'data: {"version": 4}\n', "\n"]


def test_a_non_stream_answer_is_not_an_event_stream(
    transport: HttpTransport, pin_server: TLSServer
) -> None:
    with pytest.raises(FetchError, match="event stream"):
        transport.open_stream(pin_server.url("/doc"))


def test_closing_a_stream_wakes_a_blocked_reader(app_pki: AppPKI) -> None:
    release = threading.Event()

    class Silent(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            release.wait(5)

    with running(TLSServer(Silent, app_pki.server_context(app_pki.leaf_a))) as server:
        stream = HttpTransport(cafile=app_pki.ca_file).open_stream(server.url("/events"))
        done = threading.Event()

        def read() -> None:
            try:
                list(stream.lines())
            except (OSError, FetchError):
                pass
            done.set()

        threading.Thread(target=read, daemon=True).start()
        assert not done.wait(0.2)
        stream.close()
        assert done.wait(5)
        release.set()


@pytest.mark.parametrize(
    "url",
    ["http://pins.example.com/v1", "ftp://127.0.0.1/x", "https:///nohost",
     "https://user:pw@pins.example.com/"],
)
def test_urls_that_are_not_https_or_loopback_http_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url, "pin server URL")


@pytest.mark.parametrize(
    "url", ["https://pins.example.com/v1", "http://127.0.0.1:8080/v1", "http://[::1]/x",
            "http://localhost:8080/v1"],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert check_url(url, "pin server URL") == url
