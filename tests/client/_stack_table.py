"""One table of HTTP stacks, each able to GET a URL with pins, directly or through a CONNECT proxy.

Every entry builds its client with the public pinwarden helper for that stack, so the table tests
the helpers as well as the engine. ``find_pin_error`` digs the ``PinValidationError`` out of the
wrapper each stack raises (requests ``SSLError``, httpx ``ConnectError``, aiohttp
``ClientConnectorCertificateError``, ...).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import urllib3

from pinwarden.client import (
    PinSource,
    PinValidationError,
    pinned_aiohttp_connector,
    pinned_context,
    pinned_httpx_async_client,
    pinned_httpx_client,
    pinned_pool_manager,
    pinned_proxy_manager,
    pinned_requests_session,
)

TIMEOUT = 5.0

T = TypeVar("T")
Fetch = Callable[[PinSource, str, str, "str | None"], str]


def _request_bytes(host: str, port: int) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n\r\n".encode()


def _read_http_body(read: Callable[[], bytes]) -> str:
    """Read one response with a Content-Length from ``read`` (a callable returning chunks)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = read()
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = read()
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        body += chunk
    return body.decode()


def open_tunnel(proxy_url: str, host: str, port: int) -> socket.socket:
    """A TCP socket through the CONNECT proxy to ``host:port``, ready for TLS."""
    proxy = urlsplit(proxy_url)
    sock = socket.create_connection((proxy.hostname or "", proxy.port or 0), timeout=TIMEOUT)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(1)  # one byte at a time: nothing of the TLS stream is read here
        if not chunk:
            sock.close()
            raise ConnectionError("the proxy closed the tunnel")
        reply += chunk
    if not reply.startswith(b"HTTP/1.1 200"):
        sock.close()
        raise ConnectionError(f"the proxy refused: {reply!r}")
    return sock


def tcp_to(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port``, whatever name TLS will use."""
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def tls_get(tls: ssl.SSLSocket, host: str, port: int) -> str:
    """Send one GET on ``tls`` and return the body of the response."""
    tls.sendall(_request_bytes(host, port))
    return _read_http_body(lambda: tls.recv(65536))


class BioConnection:
    """TLS over memory BIOs (``SSLObject``, as asyncio uses it) pumped over a real socket."""

    def __init__(
        self, context: ssl.SSLContext, port: int, host: str, session: ssl.SSLSession | None = None
    ) -> None:
        self.sock = tcp_to(port)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(
            self.incoming, self.outgoing, server_hostname=host, session=session
        )
        self.host, self.port = host, port

    def run(self, operation: Callable[[], T]) -> T:
        """Call ``operation`` until it stops asking for network data; send what it writes."""
        for _ in range(100):
            try:
                result = operation()
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if data:
                    self.incoming.write(data)
                else:
                    self.incoming.write_eof()
                continue
            self._flush()
            return result
        raise AssertionError("the TLS exchange made no progress")

    def get(self) -> str:
        self.run(lambda: self.tls.write(_request_bytes(self.host, self.port)))
        return _read_http_body(lambda: self.run(lambda: self.tls.read(65536)))

    def _flush(self) -> None:
        pending = self.outgoing.read()
        if pending:
            self.sock.sendall(pending)

    def close(self) -> None:
        self.sock.close()


def _fetch_ssl(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    if proxy:
        sock = open_tunnel(proxy, host, port)
    else:
        sock = tcp_to(port)
    context = pinned_context(source, cafile=cafile)
    with context.wrap_socket(sock, server_hostname=host) as tls:
        tls.sendall(_request_bytes(host, port))
        return _read_http_body(lambda: tls.recv(65536))


async def _fetch_asyncio(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = pinned_context(source, cafile=cafile)
    if proxy:
        # The tunnel is set up blocking, then asyncio runs TLS over it (StreamWriter.start_tls
        # would need Python 3.11).
        tunnel = await asyncio.to_thread(open_tunnel, proxy, host, port)
        tunnel.setblocking(False)
        reader, writer = await asyncio.open_connection(
            sock=tunnel, ssl=context, server_hostname=host
        )
    else:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=host
        )
    try:
        writer.write(_request_bytes(host, port))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return (await reader.readexactly(length)).decode()
    finally:
        writer.close()


def _fetch_requests(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    with pinned_requests_session(source, cafile=cafile) as session:
        session.trust_env = False  # no proxy or CA bundle from the environment
        proxies = {"https": proxy} if proxy else None
        response = session.get(url, proxies=proxies, timeout=TIMEOUT)
        return response.text


def _fetch_urllib3(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    if proxy:
        manager: urllib3.PoolManager = pinned_proxy_manager(proxy, source, cafile=cafile)
    else:
        manager = pinned_pool_manager(source, cafile=cafile)
    with manager:
        response = manager.request("GET", url, timeout=TIMEOUT, retries=False)
        return response.data.decode()


def _fetch_httpx(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    with pinned_httpx_client(
        source, cafile=cafile, proxy=proxy, timeout=TIMEOUT, trust_env=False
    ) as client:
        return client.get(url).text


async def _fetch_httpx_async(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    async with pinned_httpx_async_client(
        source, cafile=cafile, proxy=proxy, timeout=TIMEOUT, trust_env=False
    ) as client:
        return (await client.get(url)).text


async def _fetch_aiohttp(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    connector = pinned_aiohttp_connector(source, cafile=cafile)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(url, proxy=proxy) as response:
            return await response.text()


def _sync(coroutine_function: Callable[..., object]) -> Fetch:
    def fetch(source: PinSource, cafile: str, url: str, proxy: str | None) -> str:
        return asyncio.run(coroutine_function(source, cafile, url, proxy))  # type: ignore[arg-type]

    return fetch


@dataclass(frozen=True)
class Stack:
    name: str
    fetch: Fetch
    memory_bio: bool  # TLS through ssl.SSLObject (asyncio), not ssl.SSLSocket

    def __str__(self) -> str:
        return self.name


STACKS = (
    Stack("ssl", _fetch_ssl, memory_bio=False),
    Stack("asyncio", _sync(_fetch_asyncio), memory_bio=True),
    Stack("requests", _fetch_requests, memory_bio=False),
    Stack("urllib3", _fetch_urllib3, memory_bio=False),
    Stack("httpx", _fetch_httpx, memory_bio=False),
    Stack("httpx-async", _sync(_fetch_httpx_async), memory_bio=True),
    Stack("aiohttp", _sync(_fetch_aiohttp), memory_bio=True),
)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps: causes, contexts, ``reason``, exception arguments."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            getattr(current, "certificate_error", None),
            *current.args,
        ]
        pending.extend(item for item in linked if isinstance(item, BaseException))


def find_pin_error(error: BaseException) -> PinValidationError | None:
    """The ``PinValidationError`` somewhere inside ``error``, or None."""
    return next((e for e in _causes(error) if isinstance(e, PinValidationError)), None)


def find_cert_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error (of any kind) somewhere inside ``error``, or None."""
    return next((e for e in _causes(error) if isinstance(e, ssl.SSLCertVerificationError)), None)


def fetch_error(
    stack: Stack, source: PinSource, cafile: str, url: str, proxy: str | None = None
) -> BaseException:
    """The error ``stack`` raises for this request; fails the test if the request succeeds."""
    try:
        body = stack.fetch(source, cafile, url, proxy)
    except Exception as error:  # every stack wraps the TLS error its own way
        return error
    raise AssertionError(f"{stack}: the request succeeded with {body!r}")


__all__ = [
    "STACKS",
    "TIMEOUT",
    "BioConnection",
    "Stack",
    "fetch_error",
    "find_cert_error",
    "find_pin_error",
    "open_tunnel",
    "tcp_to",
    "tls_get",
]
