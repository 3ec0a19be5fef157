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
import io
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import SplitResult, urlsplit

from pinwarden import __version__
from pinwarden._hosts import is_loopback
from pinwarden.errors import PinwardenError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

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
    """The pin server could not be reached, or answered with something other than a document.

    ``status`` is the HTTP status of the answer when there was one (a ``404`` says the URL or the
    channel is wrong, not that the server is down), ``None`` when no status line arrived.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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


def check_url(url: str, what: str) -> str:
    """``url`` if it is ``https``, or ``http`` to a loopback address; ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{what} {url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"{what} {url!r} carries credentials; they would leak into every request")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
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


def _match_subject_alt_names_only(context: ssl.SSLContext) -> ssl.SSLContext:
    """``context`` with a host matched against the certificate's subjectAltName only, never its
    common name (RFC 9525 drops common-name matching; urllib3 turns it off likewise).

    Python's own default context matches common names, so a context given for the pin server is
    changed rather than refused: refusing would refuse every ``ssl.create_default_context()``,
    and the change only narrows what that context accepts.
    """
    context.hostname_checks_common_name = False
    return context


# What ``http.client`` raises on a network failure, a bad answer, or a header value it cannot send
# (``ValueError``, ``UnicodeEncodeError``), and what the deadline raises (``TimeoutError``): all
# become ``FetchError``, never an escape.
_TRANSPORT_ERRORS = (OSError, ValueError, http.client.HTTPException)


class _Deadline:
    """One time budget for a whole exchange, so a server that trickles bytes cannot stall it."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._exceeded = f"no complete answer within {seconds:g} s"

    def remaining(self) -> float:
        """The seconds left; ``TimeoutError`` once there are none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError(self._exceeded)
        return left

    def failure(self, what: str, error: Exception, status: int | None = None) -> FetchError:
        """``error`` of the exchange ``what`` as a ``FetchError``. Any timeout is this deadline's
        (no wait is allowed longer than what it leaves), and is told as such."""
        reason = self._exceeded if isinstance(error, TimeoutError) else _printable(str(error))
        return FetchError(f"{what}: {reason}", status=status)


class _BoundedSocket:
    """The connected socket as ``http.client`` sees it, each blocking call bounded by the budget.

    ``http.client`` reads the status line and every header with its own ``readline`` inside
    ``getresponse()``, and a socket timeout bounds one read, not their sum; so before every send
    and every receive the timeout is set to what the deadline leaves. The response reads through
    a file made here that holds its own reference to the socket: from Python 3.13 the connection
    closes its socket once it knows the response ends the connection, and ``HTTPResponse.read1``
    then closes the response's file, so nothing may reach the socket through the connection
    (CPython ``Lib/http/client.py``: ``HTTPConnection.getresponse``, ``HTTPResponse.read1``).

    Once connected, ``http.client`` calls only ``sendall``, ``makefile("rb")`` and ``close`` on
    ``HTTPConnection.sock`` (``HTTPConnection.send`` and ``close``, ``HTTPResponse.__init__``, in
    3.10 to 3.13); tests/dynamic/test_transport_servers.py runs every path on each version.
    """

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.sock = sock
        self._timeout: Callable[[], float] = deadline.remaining

    def stream(self, idle_seconds: float) -> None:
        """From now on each read may wait ``idle_seconds``, with no bound on the whole: an event
        stream stays open as long as the server keeps talking."""
        self._timeout = lambda: idle_seconds

    def bound_next_call(self) -> None:
        self.sock.settimeout(self._timeout())

    def sendall(self, data: ReadableBuffer) -> None:
        self.bound_next_call()
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        """A buffered reader like ``socket.makefile("rb")``, the only mode ``http.client`` uses."""
        if mode != "rb":
            raise ValueError(f"only mode 'rb' is supported, not {mode!r}")
        return io.BufferedReader(_BoundedReader(self))

    def shutdown(self) -> None:
        """Wake a read blocked in another thread (it then sees the end of the stream)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


class _BoundedReader(io.RawIOBase):
    """The raw file under the response's buffer: each ``readinto`` is one bounded receive."""

    def __init__(self, bounded: _BoundedSocket) -> None:
        super().__init__()
        self._bounded = bounded
        # A SocketIO, as under ``socket.makefile``: the socket stays open until this is closed too.
        self._file = bounded.sock.makefile("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int | None:
        self._bounded.bound_next_call()
        return self._file.readinto(buffer)

    def close(self) -> None:
        self._file.close()
        super().close()


@dataclass
class _Exchange:
    """An answered request on a connection of its own."""

    connection: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: _BoundedSocket

    def close(self) -> None:
        self.response.close()
        self.connection.close()
        self.sock.close()  # http.client may have dropped its reference already


class _HttpEventStream:
    """Only the thread reading ``lines()`` releases the response (``http.client`` is not
    thread-safe); ``close()`` from another thread shuts the socket down, which ends that read."""

    def __init__(self, exchange: _Exchange, idle_seconds: float) -> None:
        exchange.sock.stream(idle_seconds)
        self._exchange = exchange
        self._idle_seconds = idle_seconds
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
                except _TRANSPORT_ERRORS as error:
                    if self._closed:
                        return
                    reason = (f"silent for {self._idle_seconds:g} s"
                              if isinstance(error, TimeoutError) else _printable(str(error)))
                    raise FetchError(f"the event stream broke: {reason}") from error
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
            self._exchange.sock.shutdown()
        elif not closed:
            self._exchange.close()


def _printable(text: str, limit: int = 200) -> str:
    """``text`` (it may quote what a server sent: ``BadStatusLine`` gives the whole line) as one
    line of a message: non-printable characters escaped, at most about ``limit`` characters."""
    escaped = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[: limit + 1])
    return escaped if len(escaped) <= limit else escaped[:limit] + "…"


def _shown(text: str) -> str:
    """Server text (a reason phrase, a header value) quoted, as one line of a message."""
    return repr(text[:64])


class HttpTransport:
    """``PinServerTransport`` over ``http.client``: no redirects, no cookies, bounded in time.

    ``timeout`` bounds a whole GET or POST, and the opening of an event stream: every byte from
    the TCP connect to the end of the body (name resolution is the system resolver's).
    ``stream_timeout`` is how long an open event stream may stay silent (the server sends
    heartbeat comments more often than that) before it is dropped. The default TLS context is
    built on first use: loading the system trust store takes tens of milliseconds, which an app
    starting on cached pins should not pay before its first request. A given ``ssl_context``
    must validate certificates and host names, and is set to stop matching common names.
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
        self._context = None if ssl_context is None else _match_subject_alt_names_only(ssl_context)
        self._context_lock = threading.Lock()
        self._timeout = timeout
        self._stream_timeout = stream_timeout

    def _tls_context(self) -> ssl.SSLContext:
        with self._context_lock:
            if self._context is None:
                try:
                    default = ssl.create_default_context(cafile=self._cafile)
                    self._context = _match_subject_alt_names_only(default)
                except (OSError, ssl.SSLError) as error:
                    raise FetchError(f"cannot load the trust store: {error}") from error
            return self._context

    def _connect(
        self, parts: SplitResult, deadline: _Deadline
    ) -> tuple[http.client.HTTPConnection, _BoundedSocket]:
        """A connection to the URL's host with the TCP connect and the TLS handshake done here,
        each under what the deadline leaves: ``HTTPSConnection.connect`` would give the handshake
        the whole timeout again after the TCP connect."""
        host = parts.hostname or ""
        context = self._tls_context() if parts.scheme == "https" else None
        # An explicit port: given none, http.client would read "::1" as host "::" and port 1.
        port = parts.port or (http.client.HTTPS_PORT if context else http.client.HTTP_PORT)
        connection = (
            http.client.HTTPSConnection(host, port, context=context)
            if context is not None
            else http.client.HTTPConnection(host, port)
        )
        sock = socket.create_connection((host, port), deadline.remaining())
        try:
            if context is not None:
                sock.settimeout(deadline.remaining())
                sock = context.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        bounded = connection.sock = _BoundedSocket(sock, deadline)
        return connection, bounded

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: _Deadline,
    ) -> _Exchange:
        headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity", **headers}
        try:
            parts = urlsplit(check_url(url, "URL"))
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            connection, sock = self._connect(parts, deadline)
        except _TRANSPORT_ERRORS as error:
            raise deadline.failure(f"{method} {url}", error) from error
        try:
            connection.request(method, target, body=body, headers=headers)
            return _Exchange(connection, connection.getresponse(), sock)
        except BaseException as error:
            connection.close()
            sock.close()
            if isinstance(error, _TRANSPORT_ERRORS):
                raise deadline.failure(f"{method} {url}", error) from error
            raise

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        headers = {"Accept": "application/json, application/jose+json"}
        if etag is not None:
            headers["If-None-Match"] = etag
        deadline = _Deadline(self._timeout)
        exchange = self._exchange("GET", url, headers, None, deadline)
        response = exchange.response
        status = response.status
        try:
            if status == http.HTTPStatus.NOT_MODIFIED:
                return FetchResult(status, b"", response.getheader("ETag"))
            if status != http.HTTPStatus.OK:
                # A redirect is not followed: a pin server that moves is configured, not obeyed.
                message = f"GET {url}: HTTP {status} {_shown(response.reason)}"
                raise FetchError(message, status=status)
            body = _read_capped(response, max_bytes, url)
            return FetchResult(status, body, response.getheader("ETag"))
        except _TRANSPORT_ERRORS as error:
            raise deadline.failure(f"GET {url}", error, status) from error
        finally:
            exchange.close()

    def post_json(self, url: str, body: bytes) -> int:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        deadline = _Deadline(self._timeout)
        exchange = self._exchange("POST", url, headers, body, deadline)
        try:
            exchange.response.read1(_MAX_REPORT_RESPONSE)
            return exchange.response.status
        except _TRANSPORT_ERRORS as error:
            raise deadline.failure(f"POST {url}", error, exchange.response.status) from error
        finally:
            exchange.close()

    def open_stream(self, url: str) -> EventStream:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        exchange = self._exchange("GET", url, headers, None, _Deadline(self._timeout))
        status = exchange.response.status
        content_type = (exchange.response.getheader("Content-Type") or "").split(";")[0].strip()
        if status != http.HTTPStatus.OK or content_type != "text/event-stream":
            exchange.close()
            raise FetchError(
                f"GET {url}: expected an event stream, got HTTP {status} {_shown(content_type)}",
                status=status,
            )
        return _HttpEventStream(exchange, self._stream_timeout)


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, url: str) -> bytes:
    """The body, refused as soon as it passes ``max_bytes`` (endless data: TUF threat model)."""
    declared = response.getheader("Content-Length") or ""
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"GET {url}: the document is {declared} bytes, over the {max_bytes} cap",
            status=response.status,
        )
    parts: list[bytes] = []
    size = 0
    while chunk := response.read1(min(_CHUNK, max_bytes + 1 - size)):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(
                f"GET {url}: the document is over the {max_bytes}-byte cap", status=response.status
            )
        parts.append(chunk)
    if response.length:
        # ``read1`` ends quietly where the connection did; ``length`` is what it still expected.
        raise FetchError(
            f"GET {url}: the body ended after {size} of {size + response.length} bytes",
            status=response.status,
        )
    return b"".join(parts)
