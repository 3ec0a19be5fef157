"""The admin commands' HTTP client against stub servers on loopback (issue 15 token leak, issue 8).

The token goes to the named server only: a redirect is refused and reported, plain http:// to a
host that is not loopback is refused before anything is sent. Whatever the server answers (not
JSON, too deep, too big, another shape, a validation error), the user gets one line.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pinwarden.cli import _admin_client, main

pytestmark = pytest.mark.network

TOKEN = "pwt_test_secret"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"[]"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class StubServer:
    """An HTTP server on a loopback address that answers every request with ``answer`` and
    records the ``Authorization`` header of each request it gets."""

    host: str
    answer: Answer = field(default_factory=Answer)
    authorizations: list[str | None] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stub.authorizations.append(self.headers.get("Authorization"))
                self.send_response(stub.answer.status)
                for name, value in stub.answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(stub.answer.body)))
                self.end_headers()
                self.wfile.write(stub.answer.body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.timeout = 5
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator[Callable[[str], StubServer]]:
    started: list[StubServer] = []

    def start(host: str = "127.0.0.1") -> StubServer:
        stub = StubServer(host)
        stub.start()
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()


@pytest.fixture
def admin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``admin(url, *args)``: run an admin command against ``url`` with the test token."""

    def run(url: str, *args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("PINWARDEN_URL", url)
        monkeypatch.setenv("PINWARDEN_TOKEN", TOKEN)
        status = main(list(args))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def _one_line_error(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_a_redirect_to_another_host_is_refused_and_the_token_stays_home(
    stub_factory: Callable[[str], StubServer], admin: Callable[..., tuple[int, str, str]]
) -> None:
    elsewhere = stub_factory("127.0.0.2")
    redirecting = stub_factory("127.0.0.1")
    target = f"{elsewhere.url}/v1/admin/channels"
    redirecting.answer = Answer(302, b"", {"Location": target})

    status, out, err = admin(redirecting.url, "channel", "list")

    assert status == 3 and out == ""
    assert f"a redirect to {target}" in err and "not followed" in err
    _one_line_error(err)
    assert redirecting.authorizations == [f"Bearer {TOKEN}"]
    assert elsewhere.authorizations == []  # the leak: urllib used to send the token here


def test_the_same_answer_without_the_redirect_is_accepted(
    stub_factory: Callable[[str], StubServer], admin: Callable[..., tuple[int, str, str]]
) -> None:
    server = stub_factory("127.0.0.2")
    status, out, err = admin(server.url, "channel", "list", "--json")
    assert (status, json.loads(out), err) == (0, [], "")
    assert server.authorizations == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("status_code", [301, 303, 307, 308])
def test_every_redirect_status_is_refused(
    status_code: int,
    stub_factory: Callable[[str], StubServer],
    admin: Callable[..., tuple[int, str, str]],
) -> None:
    elsewhere = stub_factory("127.0.0.2")
    redirecting = stub_factory("127.0.0.1")
    redirecting.answer = Answer(status_code, b"", {"Location": elsewhere.url + "/x"})
    status, _, err = admin(redirecting.url, "channel", "create", "demo")
    assert status == 3 and f"HTTP {status_code}, a redirect" in err
    assert elsewhere.authorizations == []


def _record_opens(monkeypatch: pytest.MonkeyPatch) -> list[urllib.request.Request]:
    """Every request the admin client hands to urllib, refused as unreachable."""
    opened: list[urllib.request.Request] = []

    def refuse(self: Any, request: urllib.request.Request, *args: Any, **kwargs: Any) -> None:
        opened.append(request)
        raise urllib.error.URLError("refused by the test")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", refuse)
    return opened


@pytest.mark.parametrize(
    "url", ["http://192.0.2.1:8080", "http://pins.example.com", "http://[2001:db8::1]:80"]
)
def test_plain_http_to_a_host_off_this_machine_is_refused_before_sending(
    url: str, monkeypatch: pytest.MonkeyPatch, admin: Callable[..., tuple[int, str, str]]
) -> None:
    opened = _record_opens(monkeypatch)
    status, _, err = admin(url, "channel", "list")
    assert status == 2 and "unencrypted" in err and "--insecure-http" in err
    _one_line_error(err)
    assert opened == []


def test_insecure_http_sends_to_a_host_off_this_machine_when_asked(
    monkeypatch: pytest.MonkeyPatch, admin: Callable[..., tuple[int, str, str]]
) -> None:
    opened = _record_opens(monkeypatch)
    status, _, err = admin("http://192.0.2.1:8080", "channel", "list", "--insecure-http")
    assert status == 3 and "cannot reach" in err
    assert [request.get_header("Authorization") for request in opened] == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_plain_http_to_loopback_needs_no_flag(
    url: str, monkeypatch: pytest.MonkeyPatch, admin: Callable[..., tuple[int, str, str]]
) -> None:
    opened = _record_opens(monkeypatch)
    assert admin(url, "channel", "list")[0] == 3
    assert len(opened) == 1


def test_plain_http_to_loopback_ignores_proxy_settings(
    stub_factory: Callable[[str], StubServer],
    monkeypatch: pytest.MonkeyPatch,
    admin: Callable[..., tuple[int, str, str]],
) -> None:
    """A proxy would get the token in clear: plain HTTP goes straight to the server."""
    proxy = stub_factory("127.0.0.2")
    server = stub_factory("127.0.0.1")
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.delenv("no_proxy", raising=False)
    assert admin(server.url, "channel", "list")[0] == 0
    assert proxy.authorizations == [] and len(server.authorizations) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            Answer(200, b"<html>welcome</html>", {"Content-Type": "text/html"}),
            "not JSON (text/html)",
        ),
        (Answer(200, b"\xff\xfe{", {}), "not JSON"),
        (Answer(200, b"[" * 100_000 + b"]" * 100_000), "not JSON"),
        (Answer(200, b" " * (16 * 1024 * 1024 + 1)), "more than 16 MiB"),
        (
            Answer(502, b"<h1>Bad gateway</h1>", {"Content-Type": "text/html"}),
            "HTTP 502: Bad Gateway",
        ),
        (Answer(200, b'{"name": 5}'), "another shape"),
        (Answer(200, b"[1, 2]"), "another shape"),
        (Answer(200, b'"a string"'), "another shape"),
    ],
    ids=["html", "not-utf8", "deep", "huge", "502-html", "wrong-types", "list-of-ints", "string"],
)
def test_an_answer_that_is_not_the_admin_api_is_one_line(
    answer: Answer,
    expected: str,
    stub_factory: Callable[[str], StubServer],
    admin: Callable[..., tuple[int, str, str]],
) -> None:
    server = stub_factory("127.0.0.1")
    server.answer = answer
    status, out, err = admin(server.url, "channel", "list")
    assert status == 3 and out == ""
    assert expected in err
    _one_line_error(err)


def test_a_validation_error_reads_as_field_and_reason(
    stub_factory: Callable[[str], StubServer], admin: Callable[..., tuple[int, str, str]]
) -> None:
    server = stub_factory("127.0.0.1")
    detail = [
        {
            "type": "int_parsing",
            "loc": ["body", "refresh_seconds"],
            "msg": "Input should be a valid integer",
            "input": "x",
        },
        {"type": "missing", "loc": ["body", "rules", 0, "pattern"], "msg": "Field required"},
    ]
    server.answer = Answer(422, json.dumps({"detail": detail}).encode())
    status, _, err = admin(server.url, "channel", "create", "demo")
    assert status == 2
    assert err == (
        "pinwarden channel: error: HTTP 422: field refresh_seconds: Input should be a valid "
        "integer; field rules.0.pattern: Field required\n"
    )
    assert "{" not in err  # not the raw JSON


def test_server_text_cannot_paint_the_terminal(
    stub_factory: Callable[[str], StubServer], admin: Callable[..., tuple[int, str, str]]
) -> None:
    server = stub_factory("127.0.0.1")
    server.answer = Answer(400, json.dumps({"error": "bad\x1b[2J\nOK published"}).encode())
    status, _, err = admin(server.url, "channel", "list")
    assert status == 2 and "\x1b" not in err
    _one_line_error(err)


@pytest.mark.parametrize(
    ("server", "token", "expected"),
    [
        ("ftp://127.0.0.1", TOKEN, "not an http(s) URL"),
        ("http://127.0.0.1:99999", TOKEN, "--server"),
        ("http://", TOKEN, "not an http(s) URL"),
        ("http://127.0.0.1:9", "pwt_a\nX-Injected: 1", "copy it again"),
        ("http://127.0.0.1:9", "pwt_\udcff", "copy it again"),
    ],
)
def test_bad_server_urls_and_tokens_are_one_line(
    server: str,
    token: str,
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    opened = _record_opens(monkeypatch)
    monkeypatch.delenv("PINWARDEN_URL", raising=False)
    monkeypatch.setenv("PINWARDEN_TOKEN", token)
    assert main(["channel", "list", "--server", server]) == 2
    err = capsys.readouterr().err
    assert expected in err
    _one_line_error(err)
    assert opened == []


def test_undecodable_names_are_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, admin: Callable[..., tuple[int, str, str]]
) -> None:
    opened = _record_opens(monkeypatch)
    status, _, err = admin("http://127.0.0.1:9", "channel", "show", "app/\udcff")
    assert status == 2 and "not valid text" in err
    _one_line_error(err)
    status, _, err = admin("http://127.0.0.1:9", "audit", "--target", "\ud800")
    assert status == 2
    assert opened == []


@pytest.fixture
def trickling_url() -> Iterator[str]:
    """A server that sends a status line and then one header byte every 0.1 s, without end."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        listener.settimeout(10)
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.1):
                try:
                    connection.sendall(b"a")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    thread.join(10)


def test_a_trickling_answer_is_bounded_by_one_deadline(
    trickling_url: str,
    monkeypatch: pytest.MonkeyPatch,
    admin: Callable[..., tuple[int, str, str]],
) -> None:
    monkeypatch.setattr(_admin_client, "EXCHANGE_DEADLINE", 1.0)
    status, out, err = admin(trickling_url, "channel", "list")
    assert (status, out) == (3, "")
    assert err == f"pinwarden channel: error: {trickling_url} did not answer within 1 seconds\n"


def test_server_text_in_normal_output_is_escaped(
    stub_factory: Callable[[str], StubServer], admin: Callable[..., tuple[int, str, str]]
) -> None:
    server = stub_factory("127.0.0.1")
    channel = {"name": "demo\x1b]0;owned\x07", "refresh_seconds": 60, "ttl_seconds": 600}
    server.answer = Answer(200, json.dumps([channel]).encode())
    status, out, _ = admin(server.url, "channel", "list")
    assert status == 0 and "\x1b" not in out and "\x07" not in out
    assert out.startswith("demo\\x1b]0;owned\\x07  refresh=60s")
