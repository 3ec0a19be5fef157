"""Abuse (issue 13): spoofed ``X-Forwarded-For``, report floods from many addresses, slow
clients, and the report limits of two replicas. Real ``pinwarden serve`` processes on 127.0.0.1
(the server as deployed: its uvicorn configuration is part of what is tested).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from pinwarden.server import _deadlines
from pinwarden.server._deadlines import DeadlineProtocol
from tests.reliability.test_shared_limits import _replicas
from tests.server.server_harness import PinServer, pin_server_factory  # noqa: F401
from tests.support.waiting import wait_until

REPORT = {"hostname": "api.example.test", "port": 443}
_PER_CLIENT_BURST, _TOTAL_BURST = 20, 200  # ServerConfig's defaults (docs/server.md)


def _report(client: httpx.Client, url: str, forwarded_for: str | None = None) -> int:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return client.post(f"{url}/v1/reports", json=REPORT, headers=headers).status_code


def _idle_connection(port: int) -> socket.socket:
    """A connection that sends nothing: what a slowloris client opens by the thousand."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(_deadlines.HEAD_SECONDS + 15)
    return sock


def test_serve_ignores_a_spoofed_forwarded_for_and_cuts_an_idle_connection(
    pin_server_factory: Callable[..., PinServer],  # noqa: F811
) -> None:
    """Without ``--trusted-proxy`` each report counts against the connection's address (the
    per-client burst of 20 holds whatever the header says); a connection that sends no request
    is answered 408 and closed at the head deadline, not held."""
    server = pin_server_factory()
    idle = _idle_connection(int(server.url.rsplit(":", 1)[1]))
    opened = time.monotonic()
    with httpx.Client(timeout=30) as client:
        answers = [
            _report(client, server.url, f"198.51.100.{index}")
            for index in range(_PER_CLIENT_BURST + 5)
        ]
    assert answers == [202] * _PER_CLIENT_BURST + [429] * 5
    answer = idle.recv(200)
    held = time.monotonic() - opened
    idle.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert _deadlines.HEAD_SECONDS - 1 <= held <= _deadlines.HEAD_SECONDS + 5


def test_behind_a_trusted_proxy_the_report_limits_hold_against_floods(
    pin_server_factory: Callable[..., PinServer],  # noqa: F811
) -> None:
    """With ``--trusted-proxy 127.0.0.1``: 100 reports at once from the proxy's own address
    store exactly the per-client burst (every one answered, none a 5xx); then the header names
    the client, so 250 reports from 250 addresses pass every per-client limit, and the limit for
    all clients together (a burst of 200, then 6 a minute here) refuses the rest."""
    server = pin_server_factory(
        extra_args=["--trusted-proxy", "127.0.0.1", "--report-total-per-minute", "6"]
    )
    started = time.monotonic()

    async def at_once() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            sent = [client.post(f"{server.url}/v1/reports", json=REPORT) for _ in range(100)]
            return [answer.status_code for answer in await asyncio.gather(*sent)]

    flood = asyncio.run(at_once())
    assert sorted(set(flood)) == [202, 429] and flood.count(202) == _PER_CLIENT_BURST
    with httpx.Client(timeout=30) as client:
        answers = [_report(client, server.url, f"203.0.113.{i}") for i in range(250)]
    refilled = (time.monotonic() - started) * 6 / 60
    assert set(answers) == {202, 429}
    stored = flood.count(202) + answers.count(202)
    assert _TOTAL_BURST <= stored <= _TOTAL_BURST + refilled + 1
    metrics = httpx.get(f"{server.url}/metrics").text
    refused = flood.count(429) + answers.count(429)
    assert f'pinwarden_reports_total{{outcome="rate_limited"}} {refused}' in metrics
    # Whatever the proxy forwards is only a name for a bucket: never a 5xx.
    hostile = [b"x" * 8000, b"not an address", b"1.2.3.4, ::::", b"\xff\xfe", b",,,", b"-"]
    with httpx.Client(timeout=30) as client:
        for value in hostile:
            answer = client.post(
                f"{server.url}/v1/reports", json=REPORT, headers={b"x-forwarded-for": value}
            )
            assert answer.status_code in (202, 429), (value[:20], answer.text)


def test_serve_refuses_a_trusted_proxy_that_is_no_address() -> None:
    from pinwarden.cli import build_parser

    parser = build_parser()
    for given in ("10.0.0.0/8", "::1", "127.0.0.1"):
        args = parser.parse_args(["serve", "--data", "d", "--passphrase-env", "X",
                                  "--trusted-proxy", given])  # fmt: skip
        assert args.trusted_proxy
    for wrong in ("proxy.example", "10.0.0.0/33", "1.2.3.4\0", "\udc80", "*", "9" * 5000):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(["serve", "--data", "d", "--trusted-proxy", wrong])
        assert exited.value.code == 2


# ---- slow clients: the deadlines themselves, short, on uvicorn in a thread ---------------------


async def _echo_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, then answers: a route that takes a body, like the report."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def deadline_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(_deadlines, "HEAD_SECONDS", 0.5)
    monkeypatch.setattr(_deadlines, "BODY_SECONDS", 1.0)
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        _echo_body, http=DeadlineProtocol, log_level="warning", lifespan="off",
        timeout_keep_alive=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, "uvicorn to start")
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _held(port: int, first: bytes, trickle: bytes) -> tuple[float, bytes]:
    """Send ``first``, then ``trickle`` every 0.1 s until the server answers or closes."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.1)
    started = time.monotonic()
    sock.sendall(first)
    try:
        while time.monotonic() - started < 10:
            try:
                answer = sock.recv(200)
                return time.monotonic() - started, answer
            except TimeoutError:
                sock.sendall(trickle)
        return time.monotonic() - started, b"still open"
    except OSError:
        return time.monotonic() - started, b""
    finally:
        sock.close()


def test_a_trickled_request_head_is_answered_408_at_the_head_deadline(deadline_server: int) -> None:
    held, answer = _held(deadline_server, b"GET / HTTP/1.1\r\nhost: x\r\n", b"x-a: b\r\n")
    assert answer.startswith(b"HTTP/1.1 408 ") and 0.4 <= held <= 2.0


def test_a_trickled_body_is_cut_at_the_body_deadline(deadline_server: int) -> None:
    head = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 30000\r\n\r\n"
    held, answer = _held(deadline_server, head, b" ")
    assert answer == b"" and 0.9 <= held <= 3.0


def test_requests_sent_in_time_on_one_connection_are_answered(deadline_server: int) -> None:
    """The twin: several requests on one kept-alive connection, each within its deadlines, and
    a body that takes longer than the head deadline but less than the body deadline."""
    with socket.create_connection(("127.0.0.1", deadline_server)) as sock:
        sock.settimeout(5)
        for _ in range(3):
            time.sleep(0.3)  # less than the head deadline between requests
            sock.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n")
            time.sleep(0.7)  # more than the head deadline, less than the body's
            sock.sendall(b"{}")
            assert sock.recv(200).startswith(b"HTTP/1.1 200 ")


# ---- the report limits of two replicas -----------------------------------------------------


@pytest.mark.postgres
def test_two_replicas_share_one_report_limit_per_client(
    pin_server_factory: Callable[..., PinServer],  # noqa: F811
    postgres_url: str,
) -> None:
    """Reports from one address by turns through two replicas on PostgreSQL: 20 in all, not 20
    each (Redis: the same buckets, tests/reliability/test_shared_limits.py)."""
    first, second = _replicas(pin_server_factory, postgres_url, [])
    with httpx.Client(timeout=30) as client:
        answers = [_report(client, (first, second)[i % 2].url) for i in range(30)]
    assert answers == [202] * _PER_CLIENT_BURST + [429] * 10
