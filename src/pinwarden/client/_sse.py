"""Server-sent events from the pin server: parse the stream, follow it, say which version is new.

The server announces each published version on ``{channel URL}/events`` as ``event: pinset`` with
``data: {"version": N}`` and keeps the connection open with comment lines (heartbeats). Parsing
follows the WHATWG HTML "event stream interpretation" rules. An announcement only wakes the
refresher: the document is still fetched and verified the normal way, so nothing a stream says
changes the pins by itself.

A stream is untrusted input of unbounded length (TUF "endless data"): the data of one event is
capped at ``MAX_EVENT_CHARS`` and one connection at ``MAX_STREAM_CHARS``; past either, the
connection is dropped (``FetchError``) and reopened after the back-off. The silence timeout cannot
do this job: a steady stream is never silent. The connection cap is far above what an honest
server sends (an announcement is ~40 characters; a heartbeat, 13 every 15 s: twelve days a MiB).
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from pinwarden.client._fetch import EventStream, FetchError, PinServerTransport
from pinwarden.client._refresh import RefreshPolicy

__all__ = [
    "MAX_EVENT_CHARS",
    "MAX_STREAM_CHARS",
    "PushSubscription",
    "ServerEvent",
    "announced_version",
    "parse_events",
]

MAX_EVENT_CHARS = 64 * 1024
MAX_STREAM_CHARS = 1024 * 1024

logger = logging.getLogger("pinwarden.client")


@dataclass(frozen=True)
class ServerEvent:
    type: str
    data: str
    id: str | None = None


def parse_events(
    lines: Iterable[str],
    *,
    max_event: int = MAX_EVENT_CHARS,
    max_stream: int = MAX_STREAM_CHARS,
) -> Iterator[ServerEvent]:
    """The events of a stream given line by line (line endings included or not).

    ``FetchError`` as soon as the data of the event being built passes ``max_event`` characters
    or the stream passes ``max_stream``: nothing piles up without bound (other fields replace
    their value, comments are dropped).
    """
    event_type = ""
    data: list[str] = []
    data_size = stream_size = 0
    last_id: str | None = None
    for raw in lines:
        stream_size += len(raw)
        if stream_size > max_stream:
            raise FetchError(f"the event stream sent more than {max_stream} characters")
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerEvent(event_type or "message", "\n".join(data), last_id)
            event_type, data, data_size = "", [], 0
            continue
        if line.startswith(":"):
            continue  # a comment: the server's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data_size += len(value) + 1
            if data_size > max_event:
                raise FetchError(f"the event stream sent an event over {max_event} characters")
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value
        # "retry" and unknown fields are ignored: reconnection follows our own back-off.


def announced_version(event: ServerEvent) -> int | None:
    """The version a ``pinset`` event announces; ``None`` for any other or malformed event."""
    if event.type != "pinset":
        return None
    try:
        payload = json.loads(event.data)
    except ValueError:
        return None
    version = payload.get("version") if isinstance(payload, dict) else None
    return version if type(version) is int and version > 0 else None


class PushSubscription:
    """Holds the event stream open in a daemon thread and calls ``on_version`` per announcement.

    A dropped or refused stream is opened again after an exponential back-off (the refresh
    policy's); ``stop()`` closes the stream from any thread.
    """

    def __init__(
        self,
        transport: PinServerTransport,
        url: str,
        on_version: Callable[[int], None],
        policy: RefreshPolicy,
        rng: random.Random,
    ) -> None:
        self._transport = transport
        self._url = url
        self._on_version = on_version
        self._policy = policy
        self._rng = rng
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._stream: EventStream | None = None
        self._thread = threading.Thread(target=self._run, name="pinwarden-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the stream and wait at most ``timeout`` seconds for the thread. A stream still
        being opened (a pin server that hangs) cannot be interrupted: the thread then ends on its
        own, within the transport's time budget, and never calls ``on_version`` again."""
        self._stopped.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def _follow(self) -> bool:
        """Read one connection to its end; whether it carried a line (then back-off restarts)."""
        stream = self._transport.open_stream(self._url)
        with self._lock:
            self._stream = stream
        if self._stopped.is_set():
            stream.close()
            return False
        heard = [False]

        def lines() -> Iterator[str]:
            for line in stream.lines():
                heard[0] = True
                yield line

        try:
            for event in parse_events(lines()):
                version = announced_version(event)
                if version is not None and not self._stopped.is_set():
                    self._on_version(version)
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return heard[0]

    def _run(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                failures = 0 if self._follow() else failures
            except (FetchError, OSError, ValueError) as error:
                if not self._stopped.is_set():
                    logger.info("pinwarden: the pin event stream failed: %s", error)
            except Exception:
                logger.exception("pinwarden: the pin event stream failed unexpectedly")
            failures += 1
            self._stopped.wait(self._policy.after_failure(failures, self._rng))

