"""The server runs the operations loop itself: an alert opened in the database reaches the
webhook receiver without anyone calling a function, and the loop stops with the app."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from pinwarden.server import _app
from pinwarden.server.alerts import AlertKind, Condition, WebhookEndpoint
from pinwarden.server.freshness import FreshnessRound
from tests.operations.operations_harness import WEBHOOK_SECRET, OperationsServer, WebhookReceiver


def test_the_app_delivers_alerts_by_itself_and_stops_cleanly(
    operations_server: Callable[..., OperationsServer], webhook_receiver: WebhookReceiver
) -> None:
    server = operations_server(
        operations=True,
        freshness_interval=timedelta(seconds=1),
        webhooks=(WebhookEndpoint("hooks", webhook_receiver.url, WEBHOOK_SECRET),),
    )
    condition = Condition(AlertKind.HOST_UNREACHABLE, "app h 127.0.0.1:1", "down")
    with server.session() as session:
        server.services.alerts.observe(session, condition.kind, condition.subject, condition)
    deadline = time.monotonic() + 20
    while not webhook_receiver.ids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert webhook_receiver.ids() == ["msg_alert1_opened"]
    assert server.services.freshener.last_round is not None  # the freshness loop ran too
    server.stop()  # the lifespan cancels the loop; nothing is left running
    assert server.services.webhooks.totals.delivered == 1


def test_a_background_loop_that_raises_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """One failing loop neither stops itself for good nor the others (freshness must outlive
    any error, or pin sets lapse); cancelling still stops it."""
    monkeypatch.setattr(_app, "_RESTART_AFTER", 0.0)
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("one bad round")
        await asyncio.sleep(3600)

    async def scenario() -> None:
        task = asyncio.create_task(_app._supervised("test", flaky))
        for _ in range(100):
            if len(runs) == 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert runs == [0, 1]


def test_a_re_signature_that_cannot_be_served_does_not_stop_freshness(
    operations_server: Callable[..., OperationsServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    freshener = operations_server().services.freshener
    resigned: Any = SimpleNamespace(channel="app")
    rounds: list[FreshnessRound] = []

    def run_once() -> FreshnessRound:
        now = datetime.now(timezone.utc)
        rounds.append(FreshnessRound(now, resigned=[] if rounds else [resigned]))
        return rounds[-1]

    def serve(outcome: object) -> None:
        raise RuntimeError("the store refused it")

    monkeypatch.setattr(freshener, "run_once", run_once)

    async def scenario() -> None:
        task = asyncio.create_task(freshener.run_forever(timedelta(seconds=0.01), serve))
        for _ in range(500):
            if len(rounds) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(rounds) >= 2  # the round after the one whose outcome could not be served ran
