"""Alerts: opened once, resolved once, delivered as Standard Webhooks exactly once across a
restart (the outbox), retried with back-off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from pinwarden.server._errors import NotFoundError
from pinwarden.server.alerts import (
    AlertBook,
    AlertEvent,
    AlertKind,
    Condition,
    DeliveryRound,
    OutboxMessage,
    RetryPolicy,
    WebhookDispatcher,
    WebhookEndpoint,
    list_alerts,
)
from tests.operations.operations_harness import WEBHOOK_SECRET, OperationsServer, WebhookReceiver
from tests.support.clock import FakeClock

MISMATCH = Condition(AlertKind.NO_PIN_MATCH, "app api.example.test 127.0.0.1:443", "no match")
EXPIRING = Condition(AlertKind.PINSET_EXPIRING, "app", "pin set expiring", channel="app")


@pytest.fixture
def wall_clock() -> FakeClock:
    """Starts at the real time: receivers check ``webhook-timestamp`` against their own clock."""
    return FakeClock(datetime.now(timezone.utc))


def _dispatcher(
    server: OperationsServer,
    receiver: WebhookReceiver,
    clock: FakeClock,
    secret: str = WEBHOOK_SECRET,
) -> WebhookDispatcher:
    return WebhookDispatcher(
        server.services.sessions,
        [WebhookEndpoint("hooks", receiver.url, secret)],
        clock=clock,
        policy=RetryPolicy(max_attempts=3),
        timeout=5.0,
    )


def _observe(
    server: OperationsServer, book: AlertBook, condition: Condition, present: bool
) -> AlertEvent | None:
    with server.session() as session:
        return book.observe(
            session, condition.kind, condition.subject, condition if present else None
        )


def _deliver(dispatcher: WebhookDispatcher) -> DeliveryRound:
    return asyncio.run(dispatcher.deliver_due())


def test_each_alert_edge_reaches_the_receiver_exactly_once_across_a_restart(
    operations_server: Callable[..., OperationsServer],
    webhook_receiver: WebhookReceiver,
    wall_clock: FakeClock,
) -> None:
    server = operations_server()
    book = AlertBook(["hooks"], clock=wall_clock)
    assert _observe(server, book, MISMATCH, True) is AlertEvent.OPENED
    assert _observe(server, book, MISMATCH, True) is None  # the next scan: no second alert
    assert _observe(server, book, EXPIRING, True) is AlertEvent.OPENED
    webhook_receiver.fail_next = 1
    first = _deliver(_dispatcher(server, webhook_receiver, wall_clock))
    assert (first.delivered, first.retried) == (1, 1)

    server.restart()  # what the outbox holds survives; nothing is sent twice
    dispatcher = _dispatcher(server, webhook_receiver, wall_clock)
    assert _deliver(dispatcher) == DeliveryRound()  # the retry is not due yet (back-off)
    wall_clock.advance(seconds=11)
    assert _deliver(dispatcher).delivered == 1
    assert _observe(server, book, MISMATCH, False) is AlertEvent.RESOLVED
    assert _observe(server, book, MISMATCH, False) is None
    assert _deliver(dispatcher).delivered == 1

    server.restart()
    wall_clock.advance(hours=2)
    assert _deliver(_dispatcher(server, webhook_receiver, wall_clock)) == DeliveryRound()
    ids = webhook_receiver.ids()
    assert sorted(ids) == ["msg_alert1_opened", "msg_alert1_resolved", "msg_alert2_opened"]
    payloads = {message_id: payload for message_id, payload in webhook_receiver.deliveries}
    assert payloads["msg_alert1_resolved"]["type"] == "alert.resolved"
    assert payloads["msg_alert2_opened"]["data"]["kind"] == "pinset-expiring"
    assert webhook_receiver.refused == []


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried_then_given_up(
    operations_server: Callable[..., OperationsServer],
    webhook_receiver: WebhookReceiver,
    wall_clock: FakeClock,
) -> None:
    """The negative twin: the receiver's check of the signature does fail."""
    server = operations_server()
    _observe(server, AlertBook(["hooks"], clock=wall_clock), MISMATCH, True)
    dispatcher = _dispatcher(server, webhook_receiver, wall_clock, "whsec_" + "A" * 32)
    results = []
    for _ in range(3):
        results.append(_deliver(dispatcher))
        wall_clock.advance(minutes=5)
    assert [(r.retried, r.failed) for r in results] == [(1, 0), (1, 0), (0, 1)]
    assert len(webhook_receiver.refused) == 3 and webhook_receiver.deliveries == []
    with server.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.failed_at is not None and row.last_error == "HTTP 400"


def test_two_dispatchers_at_once_send_each_message_once(
    operations_server: Callable[..., OperationsServer],
    webhook_receiver: WebhookReceiver,
    wall_clock: FakeClock,
) -> None:
    """Two replicas: a message is claimed by compare-and-set before it is sent."""
    server = operations_server()
    book = AlertBook(["hooks"], clock=wall_clock)
    for n in range(10):
        condition = Condition(AlertKind.HOST_UNREACHABLE, f"host-{n}", "down")
        _observe(server, book, condition, True)

    async def both() -> list[DeliveryRound]:
        return list(
            await asyncio.gather(
                _dispatcher(server, webhook_receiver, wall_clock).deliver_due(),
                _dispatcher(server, webhook_receiver, wall_clock).deliver_due(),
            )
        )

    rounds = asyncio.run(both())
    assert sum(r.delivered for r in rounds) == 10
    assert len(webhook_receiver.ids()) == len(set(webhook_receiver.ids())) == 10


def test_an_unreachable_receiver_is_retried_with_back_off(
    operations_server: Callable[..., OperationsServer], wall_clock: FakeClock
) -> None:
    server = operations_server()
    _observe(server, AlertBook(["hooks"], clock=wall_clock), MISMATCH, True)
    dispatcher = WebhookDispatcher(
        server.services.sessions,
        [WebhookEndpoint("hooks", "http://127.0.0.1:1/hooks/T0KEN-IN-PATH", WEBHOOK_SECRET)],
        clock=wall_clock,
        timeout=2.0,
    )
    assert _deliver(dispatcher).retried == 1
    with server.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.attempts == 1 and row.last_error and "ConnectError" in row.last_error
        assert "127.0.0.1" in row.last_error and "T0KEN" not in row.last_error  # no URL path
        assert (row.next_attempt_at - wall_clock.now).total_seconds() == 10
    assert RetryPolicy().delay(5).total_seconds() == 160
    assert RetryPolicy().delay(40) == RetryPolicy().cap


def test_acknowledging_keeps_a_condition_open_and_closes_a_key_change(
    operations_server: Callable[..., OperationsServer], wall_clock: FakeClock
) -> None:
    server = operations_server()
    book = AlertBook(clock=wall_clock)
    changed = Condition(AlertKind.KEY_CHANGED, "app h 127.0.0.1:443", "new key")
    _observe(server, book, MISMATCH, True)
    _observe(server, book, changed, True)
    with server.session() as session:
        for alert in list_alerts(session):
            book.acknowledge(session, alert.id, "oncall")
    with server.session() as session:
        (still_open,) = list_alerts(session)
        assert still_open.kind == "no-pin-match" and still_open.acked_by == "oncall"
        with pytest.raises(NotFoundError, match="no alert #999"):
            book.acknowledge(session, 999, "oncall")
        with pytest.raises(ValueError, match="unknown alert state"):
            list_alerts(session, state="\x00")


def test_a_condition_must_name_what_is_observed(
    operations_server: Callable[..., OperationsServer], wall_clock: FakeClock
) -> None:
    server = operations_server()
    with pytest.raises(ValueError, match="not the one named"):
        with server.session() as session:
            AlertBook(clock=wall_clock).observe(session, AlertKind.KEY_CHANGED, "x", MISMATCH)


@pytest.mark.parametrize(
    "name, url, secret",
    [
        ("", "https://example.test/", WEBHOOK_SECRET),
        ("x" * 201, "https://example.test/", WEBHOOK_SECRET),
        ("a\x00b", "https://example.test/", WEBHOOK_SECRET),
        ("hooks", "ftp://example.test/", WEBHOOK_SECRET),
        ("hooks", "https:///nohost", WEBHOOK_SECRET),
        ("hooks", "https://example.test/", ""),
        ("hooks", "https://example.test/", "whsec_\ud800"),
        ("hooks", "https://example.test/", "whsec_!!!not base64"),
    ],
)
def test_a_bad_webhook_endpoint_is_one_clear_error(name: str, url: str, secret: str) -> None:
    with pytest.raises(ValueError) as raised:
        WebhookEndpoint(name, url, secret)
    assert "\n" not in str(raised.value)
    assert secret not in str(raised.value) or not secret
