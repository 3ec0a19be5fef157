"""Violation reports: queued from the TLS path, sent in the background, never in the app's way.

A report is the JSON of RFC 7469 §3 (``date-time``, ``hostname``, ``port``,
``effective-expiration-date``, ``include-subdomains``, ``noted-hostname``,
``served-certificate-chain``, ``validated-certificate-chain``, ``known-pins``) plus TrustKit's
``enforce-pinning`` and pinwarden's ``reason``, ``app-id``, ``app-version``, ``rule-source`` (where
the violated rule came from: ``PinRule.origin``) and, for a rule of a signed pin set only,
``channel`` and ``pinset-version``; a field with no value is left out, not sent as ``null``. It
holds nothing of the app's request and is sent with no cookies and no redirects followed
(``HttpTransport``).

A report URI is not the pin server: ``ReportRoute`` sends a report to the pin server's own origin
with the pin server's trust (its ``cafile``/``ssl_context``), and to any other origin with the
trust given for reports, by default the system trust store, as any HTTPS client would.

``submit`` costs a dictionary lookup and a non-blocking queue put: one report per host, port and
chain per interval (RFC 7469 §3 asks reporters to limit themselves; TrustKit does the same), a
bounded queue whose overflow is dropped, and one daemon thread that sends.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

from pinwarden._hosts import PatternKind
from pinwarden.client._events import EventCallback, EventKind, PinEvent, emit
from pinwarden.client._fetch import FetchError, check_url
from pinwarden.client._rules import PinViolation

__all__ = ["ReportPoster", "ReportRoute", "ReportSender", "report_payload"]

logger = logging.getLogger("pinwarden.client")

Clock = Callable[[], datetime]
_MAX_REMEMBERED = 1024


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def report_payload(
    violation: PinViolation,
    *,
    expires: datetime | None,
    pinset_version: int | None,
    channel: str | None,
    app_id: str | None,
    app_version: str | None,
) -> dict[str, Any]:
    """The report for ``violation`` (RFC 7469 §3 field names, plus who sent it)."""
    rule = violation.rule
    report = {
        "date-time": _rfc3339(violation.date_time),
        "hostname": violation.hostname,
        "port": violation.port,
        "effective-expiration-date": _rfc3339(expires) if expires is not None else None,
        "include-subdomains": rule.pattern.kind is not PatternKind.EXACT,
        "noted-hostname": violation.noted_hostname,
        "served-certificate-chain": list(violation.served_chain_pem),
        "validated-certificate-chain": list(violation.validated_chain_pem),
        "known-pins": [f'pin-sha256="{pin.removeprefix("sha256/")}"' for pin in rule.pins],
        "enforce-pinning": violation.enforced,
        "reason": violation.reason,
        "app-id": app_id,
        "app-version": app_version,
        "rule-source": rule.origin,
        "channel": channel,
        "pinset-version": pinset_version,
    }
    return {name: value for name, value in report.items() if value is not None}


class ReportPoster(Protocol):
    """What the report sender needs from the network: ``PinServerTransport.post_json``."""

    def post_json(self, url: str, body: bytes) -> int: ...


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port


class ReportRoute:
    """Reports to the pin server's origin go with its trust; all others with ``elsewhere``'s.

    The pin server's ``cafile`` says whom to trust for the pin server, not for a report URI on
    another host: a report URI with a public certificate must not be refused because the pin
    server has a private CA, nor a private CA be trusted for a host it was not given for.
    """

    def __init__(self, pin_server_url: str, pin_server: ReportPoster, elsewhere: ReportPoster):
        self._origin = _origin(pin_server_url)
        self._pin_server = pin_server
        self._elsewhere = elsewhere

    def post_json(self, url: str, body: bytes) -> int:
        same_origin = _origin(url) == self._origin
        return (self._pin_server if same_origin else self._elsewhere).post_json(url, body)


@dataclass(frozen=True)
class _Report:
    url: str
    hostname: str
    payload: dict[str, Any]


_STOP = object()


class ReportSender:
    """The bounded queue, the per-interval limit and the sending thread."""

    def __init__(
        self,
        transport: ReportPoster,
        *,
        interval: timedelta,
        clock: Clock,
        on_event: EventCallback | None,
        max_queue: int = 64,
    ) -> None:
        self._transport = transport
        self._interval = interval
        self._clock = clock
        self._on_event = on_event
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._last_sent: OrderedDict[tuple[object, ...], datetime] = OrderedDict()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, url: str, violation: PinViolation, payload: dict[str, Any]) -> None:
        """Queue a report unless the same host and chain was reported within the interval."""
        key = (url, violation.hostname, violation.port, violation.verified_pins)
        now = self._clock()
        with self._lock:
            if self._closed or self._reported_recently(key, now):
                return
            try:
                self._queue.put_nowait(_Report(url, violation.hostname, payload))
            except queue.Full:
                dropped = True
            else:
                dropped = False
                self._remember(key, now)
                self._pending += 1
                self._start_worker()
        if dropped:
            self._emit(EventKind.REPORT_DROPPED, f"report for {violation.hostname}: queue full")

    def _reported_recently(self, key: tuple[object, ...], now: datetime) -> bool:
        last = self._last_sent.get(key)
        return last is not None and now - last < self._interval

    def _remember(self, key: tuple[object, ...], now: datetime) -> None:
        self._last_sent[key] = now
        self._last_sent.move_to_end(key)
        while len(self._last_sent) > _MAX_REMEMBERED:
            self._last_sent.popitem(last=False)

    def _start_worker(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="pinwarden-reports", daemon=True
            )
            self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queued reports; whether all were handled."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking reports; wait at most ``timeout`` seconds for the thread, which ends after
        the report it is sending (if any: that one ends within the transport's time budget)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the thread is busy and sees ``_closed`` after its current report
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or not isinstance(item, _Report):
                return
            try:
                if not self._closed:
                    self._send(item)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _send(self, report: _Report) -> None:
        try:
            check_url(report.url, "report URI")
            body = json.dumps(report.payload, separators=(",", ":")).encode("utf-8")
            status = self._transport.post_json(report.url, body)
        except (FetchError, OSError, ValueError) as error:
            self._emit(EventKind.REPORT_DROPPED, f"report for {report.hostname}: {error}", error)
            return
        except Exception as error:
            logger.exception("pinwarden: sending a violation report failed unexpectedly")
            self._emit(EventKind.REPORT_DROPPED, f"report for {report.hostname}: {error}", error)
            return
        if 200 <= status < 300:
            self._emit(EventKind.REPORT_SENT, f"report for {report.hostname} sent to {report.url}")
        else:
            self._emit(
                EventKind.REPORT_DROPPED,
                f"report for {report.hostname}: {report.url} answered HTTP {status}",
            )

    def _emit(self, kind: EventKind, message: str, error: Exception | None = None) -> None:
        emit(self._on_event, PinEvent(kind, message, error=error))
