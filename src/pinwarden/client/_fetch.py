"""HTTP to the pin server: a conditional GET with a byte cap, a JSON POST, an event stream.

``http.client`` directly rather than a client library: it follows no redirects and keeps no
cookies, which is what a pin fetch and a violation report need, and it adds no dependency.
Normal TLS validation applies (system trust store, or the ``cafile``/``ssl_context`` given for a
private CA); plain ``http`` is accepted only for a loopback address, where there is no network to
attack.

``PinServerTransport`` is the seam the dynamic client talks through: ``HttpTransport`` speaks HTTP,
and the tests' in-memory pin-server simulator implements the same three methods.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from pinwarden import __version__
from pinwarden.errors import PinwardenError

__all__ = [
    "EventStream",
    "FetchError",
    "FetchResult",
    "HttpTransport",
    "PinServerTransport",
    "check_url",
    "usable_etag",
]

_USER_AGENT = f"pinwarden/{__version__}"
_CHUNK = 16 * 1024
_MAX_STREAM_LINE = 64 * 1024
_MAX_REPORT_RESPONSE = 4096
# RFC 9110 §8.8.3: an entity-tag is visible ASCII (obs-text aside); real ones are a few dozen bytes.
_ETAG = re.compile(r"[\x21-\x7e]{1,256}")


class FetchError(PinwardenError):
    """The pin server could not be reached, or answered with something other than a document."""


@dataclass(frozen=True)
class FetchResult:
    """A pin-server answer: ``status`` 200 with ``body``, or 304 (not modified) with no body."""

    status: int
    body: bytes = b""
    etag: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == http.HTTPStatus.NOT_MODIFIED


class EventStream(Protocol):
    """An open ``text/event-stream`` response, read one line at a time."""

    def lines(self) -> Iterator[str]: ...

    def close(self) -> None: ...


class PinServerTransport(Protocol):
    """What the dynamic client needs from the network."""

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        """GET ``url`` (``If-None-Match: etag`` when given); ``FetchError`` past ``max_bytes``."""
        ...

    def post_json(self, url: str, body: bytes) -> int:
        """POST ``body`` as ``application/json``; the response status."""
        ...

    def open_stream(self, url: str) -> EventStream:
        """Open a server-sent-events stream."""
        ...


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """``url`` if it is ``https``, or ``http`` to a loopback address; ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{what} {url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"{what} {url!r} carries credentials; they would leak into every request")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return url
    raise ValueError(f"{what} {url!r} must be https (plain http only to a loopback address)")


def usable_etag(etag: str | None) -> str | None:
    """``etag`` if it can be sent back as ``If-None-Match`` as it is, else ``None``.

    An ETag read from the cache or a server is untrusted: a CR/LF or a character outside Latin-1
    makes ``http.client`` raise on every request, freezing the client on the pin set it holds. A
    dropped ETag costs only an unconditional fetch.
    """
    return etag if etag is not None and _ETAG.fullmatch(etag) else None


def _check_tls_context(cafile: str | None, ssl_context: ssl.SSLContext | None) -> None:
    if cafile is not None and not os.path.isfile(cafile):
        raise FileNotFoundError(f"cafile {cafile!r} is not a file")
    if ssl_context is None:
        return
    if cafile is not None:
        raise TypeError("give either cafile or ssl_context, not both")
    if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
        raise ValueError("the pin server's TLS context must validate certificates and hostnames")


# What ``http.client`` raises on a network failure, a bad answer, or a header value it cannot send
# (``ValueError``, ``UnicodeEncodeError``): all become ``FetchError``, never an escape.
_TRANSPORT_ERRORS = (OSError, ValueError, http.client.HTTPException)


class _Deadline:
    """One time budget for a whole exchange, so a server that trickles bytes cannot stall it."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise FetchError("the pin server did not answer in time")
        return left


@dataclass
class _Exchange:
    """An answered request. ``sock`` is kept apart: ``http.client`` drops the connection's own
    reference when the response reads to the end of the connection (no Content-Length)."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: socket.socket | None

    def settimeout(self, seconds: float) -> None:
        if self.sock is not None:
            self.sock.settimeout(seconds)

    def close(self) -> None:
        self.response.close()
        self.connection.close()
        if self.sock is not None:
            self.sock.close()


class _HttpEventStream:
    """Only the thread reading ``lines()`` releases the response (``http.client`` is not
    thread-safe); ``close()`` from another thread shuts the socket down, which ends that read."""

    def __init__(self, exchange: _Exchange) -> None:
        self._exchange = exchange
        self._lock = threading.Lock()
        self._reading = False
        self._closed = False

    def lines(self) -> Iterator[str]:
        with self._lock:
            if self._closed:
                return
            self._reading = True
        try:
            while True:
                try:
                    line = self._exchange.response.readline(_MAX_STREAM_LINE + 1)
                except (OSError, ValueError, http.client.HTTPException) as error:
                    if self._closed:
                        return
                    raise FetchError(f"the event stream broke: {error}") from error
                if not line:
                    return
                if len(line) > _MAX_STREAM_LINE:
                    raise FetchError("the event stream sent a line longer than 64 KiB")
                yield line.decode("utf-8", errors="replace")
        finally:
            with self._lock:
                self._reading, self._closed = False, True
            self._exchange.close()

    def close(self) -> None:
        with self._lock:
            reading, closed = self._reading, self._closed
            self._closed = True
        if reading:
            sock = self._exchange.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        elif not closed:
            self._exchange.close()


class HttpTransport:
    """``PinServerTransport`` over ``http.client``: no redirects, no cookies, bounded in time.

    ``timeout`` bounds a whole GET or POST; ``stream_timeout`` is how long an event stream may stay
    silent (the server sends heartbeat comments more often than that) before it is dropped.
    The default TLS context is built on first use: loading the system trust store takes tens of
    milliseconds, which an app starting on cached pins should not pay before its first request.
    """

    def __init__(
        self,
        *,
        cafile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        stream_timeout: float = 90.0,
    ) -> None:
        _check_tls_context(cafile, ssl_context)
        self._cafile = cafile
        self._context = ssl_context
        self._context_lock = threading.Lock()
        self._timeout = timeout
        self._stream_timeout = stream_timeout

    def _tls_context(self) -> ssl.SSLContext:
        with self._context_lock:
            if self._context is None:
                try:
                    self._context = ssl.create_default_context(cafile=self._cafile)
                except (OSError, ssl.SSLError) as error:
                    raise FetchError(f"cannot load the trust store: {error}") from error
            return self._context

    def _connect(self, url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
        check_url(url, "URL")
        parts = urlsplit(url)
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=self._tls_context()
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return connection, path

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: _Deadline,
        timeout: float,
    ) -> _Exchange:
        try:
            connection, path = self._connect(url, timeout)
        except (ValueError, http.client.HTTPException) as error:
            raise FetchError(f"{method} {url}: {error}") from error
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **headers}
        try:
            connection.request(method, path, body=body, headers=headers)
            sock = connection.sock
            if sock is not None:
                sock.settimeout(min(timeout, deadline.remaining()))
            return _Exchange(connection, connection.getresponse(), sock)
        except _TRANSPORT_ERRORS as error:
            connection.close()
            raise FetchError(f"{method} {url}: {error}") from error
        except BaseException:
            connection.close()
            raise

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        deadline = _Deadline(self._timeout)
        headers = {"Accept": "application/json, application/jose+json"}
        if etag is not None:
            headers["If-None-Match"] = etag
        exchange = self._exchange("GET", url, headers, None, deadline, self._timeout)
        response = exchange.response
        try:
            status = response.status
            if status == http.HTTPStatus.NOT_MODIFIED:
                return FetchResult(status, b"", response.getheader("ETag"))
            if status != http.HTTPStatus.OK:
                # A redirect is not followed: a pin server that moves is configured, not obeyed.
                raise FetchError(f"GET {url}: HTTP {status} {response.reason}")
            body = _read_capped(exchange, max_bytes, deadline, url)
            return FetchResult(status, body, response.getheader("ETag"))
        except _TRANSPORT_ERRORS as error:
            raise FetchError(f"GET {url}: {error}") from error
        finally:
            exchange.close()

    def post_json(self, url: str, body: bytes) -> int:
        deadline = _Deadline(self._timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        exchange = self._exchange("POST", url, headers, body, deadline, self._timeout)
        try:
            exchange.response.read1(_MAX_REPORT_RESPONSE)
            return exchange.response.status
        except _TRANSPORT_ERRORS as error:
            raise FetchError(f"POST {url}: {error}") from error
        finally:
            exchange.close()

    def open_stream(self, url: str) -> EventStream:
        deadline = _Deadline(self._timeout)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        exchange = self._exchange("GET", url, headers, None, deadline, self._timeout)
        status = exchange.response.status
        content_type = (exchange.response.getheader("Content-Type") or "").split(";")[0].strip()
        if status != http.HTTPStatus.OK or content_type != "text/event-stream":
            exchange.close()
            raise FetchError(
                f"GET {url}: expected an event stream, got HTTP {status} {content_type!r}"
            )
        exchange.settimeout(self._stream_timeout)
        return _HttpEventStream(exchange)


def _read_capped(exchange: _Exchange, max_bytes: int, deadline: _Deadline, url: str) -> bytes:
    """The body, refused as soon as it passes ``max_bytes`` (endless data: TUF threat model).

    ``read1`` makes at most one socket read, so the deadline bounds the whole body, not each read.
    """
    response = exchange.response
    declared = response.getheader("Content-Length") or ""
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"GET {url}: the document is {declared} bytes, over the {max_bytes} cap")
    parts: list[bytes] = []
    size = 0
    while True:
        exchange.settimeout(deadline.remaining())
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"GET {url}: the document is over the {max_bytes}-byte cap")
        parts.append(chunk)
