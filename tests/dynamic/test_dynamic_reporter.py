"""The report sender on its own: the RFC 7469 §3 payload, the bounded queue, never raising."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from pinwarden.client import EventKind, PinRule, PinViolation
from pinwarden.client._fetch import EventStream, FetchError, FetchResult
from pinwarden.client._reporter import ReportSender, report_payload
from tests.dynamic.dynamic_harness import Recorder
from tests.support.clock import FakeClock

PIN = "sha256/" + "q" * 42 + "Q="
URI = "https://reports.example.com/v1/reports"


def violation(
    host: str = "api.example.com", chain: tuple[str, ...] = ("sha256/leaf",)
) -> PinViolation:
    rule = PinRule.create("**.example.com", [PIN], "report-only", URI)
    return PinViolation(
        hostname=host,
        port=443,
        rule=rule,
        verified_pins=chain,
        validated_chain_pem=("-----BEGIN CERTIFICATE-----\nverified\n",),
        served_chain_pem=("-----BEGIN CERTIFICATE-----\nserved\n",),
        enforced=False,
        reason="no pinned key",
        date_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )


class BlockingTransport:
    """Holds every POST until released; records what it was given."""

    def __init__(self, status: int = 201) -> None:
        self.release = threading.Event()
        self.posted: list[tuple[str, bytes]] = []
        self.status = status

    def post_json(self, url: str, body: bytes) -> int:
        self.release.wait(5)
        self.posted.append((url, body))
        if self.status == 0:
            raise FetchError("connection refused")
        return self.status

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> FetchResult:
        raise AssertionError("a report sender never GETs")

    def open_stream(self, url: str) -> EventStream:
        raise AssertionError("a report sender never streams")


def test_the_payload_has_the_rfc_7469_fields_and_who_sent_it() -> None:
    payload = report_payload(
        violation(), expires=datetime(2030, 2, 1, tzinfo=timezone.utc), pinset_version=9,
        channel="com.example.app/prod", app_id="com.example.app", app_version="1.0",
    )
    assert payload == {
        "date-time": "2030-01-02T03:04:05Z",
        "hostname": "api.example.com",
        "port": 443,
        "effective-expiration-date": "2030-02-01T00:00:00Z",
        "include-subdomains": True,
        "noted-hostname": "**.example.com",
        "served-certificate-chain": ["-----BEGIN CERTIFICATE-----\nserved\n"],
        "validated-certificate-chain": ["-----BEGIN CERTIFICATE-----\nverified\n"],
        "known-pins": [f'pin-sha256="{PIN.removeprefix("sha256/")}"'],
        "enforce-pinning": False,
        "reason": "no pinned key",
        "app-id": "com.example.app",
        "app-version": "1.0",
        "rule-source": "static pins",
        "channel": "com.example.app/prod",
        "pinset-version": 9,
    }


def test_fields_without_a_value_are_left_out_not_null() -> None:
    """A report from a bootstrap rule on an asyncio connection: no port, no expiry, no app."""
    bare = PinViolation(
        hostname="api.example.com",
        port=None,
        rule=violation().rule,
        verified_pins=("sha256/leaf",),
        validated_chain_pem=(),
        served_chain_pem=(),
        enforced=True,
        reason="no pinned key",
    )
    payload = report_payload(bare, expires=None, pinset_version=None, channel=None,
                             app_id=None, app_version=None)
    assert None not in payload.values()
    assert {"port", "effective-expiration-date", "app-id", "pinset-version"}.isdisjoint(payload)
    assert payload["enforce-pinning"] is True


def test_a_full_queue_drops_and_says_so_without_blocking() -> None:
    transport = BlockingTransport()
    events = Recorder()
    sender = ReportSender(transport, interval=timedelta(hours=1), clock=FakeClock(),
                          on_event=events, max_queue=2)
    try:
        for n in range(5):  # the first is taken by the thread, two wait, two are dropped
            sender.submit(URI, violation(chain=(f"sha256/{n}",)), {"n": n})
        dropped = [e for e in events.snapshot() if e.kind is EventKind.REPORT_DROPPED]
        assert 1 <= len(dropped) <= 2 and "queue full" in dropped[0].message
    finally:
        transport.release.set()
        assert sender.flush(5)
        sender.close()
    assert 3 <= len(transport.posted) <= 4


def test_distinct_chains_are_each_reported() -> None:
    transport = BlockingTransport()
    transport.release.set()
    sender = ReportSender(transport, interval=timedelta(hours=1), clock=FakeClock(),
                          on_event=None)
    for chain in [("sha256/1",), ("sha256/2",), ("sha256/1",)]:
        sender.submit(URI, violation(chain=chain), {})
    sender.submit(URI, violation(host="other.example.com"), {})
    assert sender.flush(5)
    sender.close()
    assert len(transport.posted) == 3


def test_a_failing_endpoint_is_an_event_not_an_exception() -> None:
    events = Recorder()
    for status in (0, 500):
        transport = BlockingTransport(status=status)
        transport.release.set()
        sender = ReportSender(transport, interval=timedelta(hours=1), clock=FakeClock(),
                              on_event=events)
        sender.submit(URI, violation(), {})
        assert sender.flush(5)
        sender.close()
    messages = [e.message for e in events.snapshot() if e.kind is EventKind.REPORT_DROPPED]
    assert len(messages) == 2 and "refused" in messages[0] and "HTTP 500" in messages[1]


def test_a_closed_sender_takes_no_more_reports() -> None:
    transport = BlockingTransport()
    transport.release.set()
    sender = ReportSender(transport, interval=timedelta(hours=1), clock=FakeClock(),
                          on_event=None)
    sender.close()
    sender.submit(URI, violation(), {})
    assert sender.flush(1)
    assert transport.posted == []
