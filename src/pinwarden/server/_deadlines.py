"""Deadlines for slow clients under uvicorn: the request head and the request body.

uvicorn bounds only the wait between two requests on a kept-alive connection
(``timeout_keep_alive``). A connection that sends nothing, or trickles its request head a byte
at a time (slowloris), or its body, is held for as long as the client likes: measured on this
machine, an idle connection and a trickled head were both still open after 120 s
(docs/reliability.md, "Slow clients"). Each held connection costs a file descriptor and memory,
and enough of them exhaust the process's descriptors for everyone.

``DeadlineProtocol`` is uvicorn's httptools protocol with two deadlines: the head of each request
must be complete ``HEAD_SECONDS`` after the connection opens or the previous response ends,
and its body ``BODY_SECONDS`` after the head (the bodies here are at most 64 KiB). Past one, the
connection is closed: before the head, with a ``408 Request Timeout`` (RFC 9110 §15.5.9);
during the body the route sees the client gone. Responses are not bounded: an event stream lives
as long as its reader, within the broker's caps on streams. granian bounds the head by itself
(``header_read_timeout``, 30 s).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BODY_SECONDS", "HEAD_SECONDS", "DeadlineProtocol"]

HEAD_SECONDS = 10.0
BODY_SECONDS = 30.0
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 44\r\n\r\n"
    b'{"error": "the request was not sent in time"}'
)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on each request's head and body."""

    _deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float, answer: bytes) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, answer)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, answer: bytes) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(HEAD_SECONDS, _TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(BODY_SECONDS, b"")  # the route is running: no response of ours mid-body

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # its head is in: super() starts it
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm(HEAD_SECONDS, _TIMEOUT)
