"""Freshness: a pin set never lapses because nobody ran a command (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from pinwarden.client import DynamicPins, EventKind, PinEvent, StaticPins
from pinwarden.server._models import PublishedDocument
from pinwarden.server._store import PublishedStore
from pinwarden.server._sync import FRESHNESS_ACTOR, StoreSync
from pinwarden.server.alerts import Alert, AlertBook, AlertKind, list_alerts
from pinwarden.server.freshness import Freshener, FreshnessPolicy, Lease, take_lease
from tests.operations.operations_harness import START, AppTransport, OperationsServer
from tests.support.clock import FakeClock
from tests.support.pki import backup_pin

HOST = "api.example.test"
DYNAMIC_PINS = [backup_pin(), backup_pin()]
BOOTSTRAP = StaticPins({HOST: [backup_pin(), backup_pin()]})


def _published(server: OperationsServer, channel: str) -> OperationsServer:
    server.add_channel(channel, {HOST: DYNAMIC_PINS})
    server.publish(channel, force=True)  # no live host in these tests: forced, with a reason
    return server


def _client(server: OperationsServer, clock: FakeClock, events: list[PinEvent]) -> DynamicPins:
    return DynamicPins(
        server.channel_url("app"),
        keyring=server.keyring,
        bootstrap=BOOTSTRAP,
        background=False,
        transport=AppTransport(server.http),
        clock=clock,
        on_event=events.append,
    )


def _run_days(
    server: OperationsServer,
    clock: FakeClock,
    client: DynamicPins,
    days: int,
    freshener: Freshener | None,
) -> list[int | None]:
    """Every 6 hours: a freshness round (if any), the store's reload, a client poll."""
    versions: list[int | None] = []
    for _ in range(days * 4):
        clock.advance(hours=6)
        if freshener is not None:
            freshener.run_once()
        server.refresh_store()
        client.refresh()
        versions.append(client.version)
    return versions


def test_ninety_days_unattended_the_client_never_falls_back(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    server = _published(operations_server(), "app")
    freshener = Freshener(
        server.services.sessions,
        server.services.publisher,
        AlertBook(clock=clock),
        holder="replica-a",
        clock=clock,
    )
    events: list[PinEvent] = []
    with _client(server, clock, events) as client:
        versions = _run_days(server, clock, client, 90, freshener)
        rule = client.rule_for(HOST)
    assert None not in versions
    assert rule is not None and set(rule.pins) == set(DYNAMIC_PINS)
    assert not [event for event in events if event.kind is EventKind.FELL_BACK]
    assert not [event for event in events if event.kind is EventKind.REFUSED]
    # Re-signed about every 14 * (0.5 .. 0.6) days: 90 days make 11 to 13 new versions.
    assert 11 <= freshener.resigns <= 13
    assert versions == sorted(versions)
    with server.session() as session:
        assert list_alerts(session, state="all") == []
        documents = session.scalars(select(PublishedDocument)).all()
        assert {document.published_by for document in documents[1:]} == {"pinwarden-freshness"}
        assert all(document.rules == documents[0].rules for document in documents)


def test_without_freshness_the_same_client_falls_back_after_the_ttl(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    """The negative twin: the 90-day test can fail."""
    server = _published(operations_server(), "app")
    events: list[PinEvent] = []
    with _client(server, clock, events) as client:
        versions = _run_days(server, clock, client, 20, None)
    assert versions[0] == 1 and versions[-1] is None
    assert [event for event in events if event.kind is EventKind.FELL_BACK]


def test_a_replica_without_an_online_key_opens_one_alert_days_before_expiry(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    server = _published(operations_server(), "app")
    book = AlertBook(clock=clock)
    freshener = Freshener(server.services.sessions, None, book, holder="keyless", clock=clock)
    opened_at = None
    for _ in range(14 * 4):
        clock.advance(hours=6)
        freshener.run_once()
        with server.session() as session:
            alerts = list_alerts(session, state="all")
        if alerts and opened_at is None:
            opened_at = clock.now
        assert len(alerts) <= 1
    assert opened_at is not None
    with server.session() as session:
        (alert,) = list_alerts(session, kind=AlertKind.PINSET_EXPIRING.value)
        expires = session.scalars(select(PublishedDocument)).one().expires_at
    assert timedelta(days=2) < expires - opened_at <= timedelta(days=3)
    assert "no replica with an unlocked online key" in alert.summary
    assert any("this replica has no online key" in line for line in freshener.health_lines())
    assert freshener.resigns == 0 and freshener.failures == 0


def test_a_signing_failure_is_an_alert_a_health_line_and_a_count_then_resolves(
    operations_server: Callable[..., OperationsServer],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = _published(operations_server(), "app")
    publisher = server.services.publisher
    real_resign = publisher.resign

    def locked(*args: object, **kwargs: object) -> None:
        from pinwarden.document import KeyStoreError

        raise KeyStoreError("the online key does not unlock with this passphrase")

    monkeypatch.setattr(publisher, "resign", locked)
    freshener = Freshener(
        server.services.sessions, publisher, AlertBook(clock=clock), holder="a", clock=clock
    )
    clock.advance(days=11, hours=12)
    freshener.run_once()
    assert freshener.failures == 1
    assert any("does not unlock" in line for line in freshener.health_lines())
    with server.session() as session:
        (alert,) = list_alerts(session)
        assert "does not unlock" in alert.summary
    monkeypatch.setattr(publisher, "resign", real_resign)
    clock.advance(hours=1)
    round_ = freshener.run_once()
    assert round_.channels[0].resigned_to == 2
    assert freshener.health_lines() == []
    with server.session() as session:
        assert list_alerts(session) == []
        assert session.get_one(Alert, alert.id).resolved_at == clock.now


def test_a_database_that_does_not_answer_is_a_health_line_not_a_traceback(
    operations_server: Callable[..., OperationsServer], clock: FakeClock, tmp_path: object
) -> None:
    from pinwarden.server._database import make_engine, make_session_factory

    server = _published(operations_server(), "app")
    broken = make_session_factory(make_engine("sqlite:////nonexistent/dir/pinwarden.db"))
    freshener = Freshener(
        broken, server.services.publisher, AlertBook(clock=clock), holder="a", clock=clock
    )
    result = freshener.run_once()
    assert result.error is not None and "database did not answer" in result.error
    assert freshener.health_lines() == [f"freshness: {result.error}"]
    assert freshener.failures == 1


def test_one_replica_at_a_time_resigns(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    server = _published(operations_server(), "app")
    sessions = server.services.sessions
    replicas = [
        Freshener(
            sessions, server.services.publisher, AlertBook(clock=clock), holder=name, clock=clock
        )
        for name in ("a", "b")
    ]
    clock.advance(days=9)
    rounds = [replica.run_once() for replica in replicas]
    assert [r.held_lease for r in rounds] == [True, False]
    assert sum(replica.resigns for replica in replicas) == 1
    clock.advance(minutes=11)  # a's lease lapses: a stopped; b takes over
    assert replicas[1].run_once().held_lease


def test_the_lease_is_taken_renewed_and_refused(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    server = operations_server()
    minute = timedelta(minutes=1)
    with server.session() as session:
        assert take_lease(session, "job", "a", now=clock.now, duration=minute)
        assert take_lease(session, "job", "a", now=clock.now, duration=minute)
        assert not take_lease(session, "job", "b", now=clock.now, duration=minute)
        assert take_lease(session, "job", "b", now=clock.now + minute, duration=minute)
        assert session.get_one(Lease, "job").holder == "b"


@pytest.mark.parametrize(
    "options",
    [
        {"resign_when_left": 0},
        {"resign_when_left": 1},
        {"resign_when_left": 0.5, "jitter": 0.5},
        {"jitter": -0.1},
        {"warn_within": timedelta(0)},
        {"lease": timedelta(seconds=-1)},
    ],
)
def test_a_policy_out_of_range_is_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FreshnessPolicy(**options)  # type: ignore[arg-type]


def test_the_resign_instant_is_the_same_for_every_replica_and_within_the_jitter() -> None:
    policy = FreshnessPolicy()
    ttl = timedelta(days=14)
    expires = START + ttl
    instants = {policy.resign_at(f"channel-{n}", 1, expires, ttl) for n in range(50)}
    assert len(instants) > 40
    assert all(expires - ttl * 0.6 <= at <= expires - ttl * 0.5 for at in instants)
    assert policy.resign_at("x", 3, expires, ttl) == policy.resign_at("x", 3, expires, ttl)


def test_alerts_are_not_duplicated_by_repeated_rounds(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    server = _published(operations_server(), "app")
    freshener = Freshener(
        server.services.sessions, None, AlertBook(clock=clock), holder="k", clock=clock
    )
    clock.advance(days=12)
    for _ in range(5):
        freshener.run_once()
        clock.advance(hours=1)
    with server.session() as session:
        assert len(session.scalars(select(Alert)).all()) == 1


def test_the_schedule_hands_each_new_version_to_serve_on_the_event_loop(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    import asyncio
    import threading

    from pinwarden.server._publish import PublishOutcome

    server = _published(operations_server(), "app")
    freshener = Freshener(
        server.services.sessions,
        server.services.publisher,
        AlertBook(clock=clock),
        holder="a",
        clock=clock,
    )
    clock.advance(days=9)
    served: list[tuple[int, bool]] = []

    async def run_a_while() -> None:
        loop_thread = threading.get_ident()

        def serve(outcome: PublishOutcome) -> None:
            assert outcome.document is not None
            served.append((outcome.document.version, threading.get_ident() == loop_thread))

        task = asyncio.create_task(freshener.run_forever(timedelta(seconds=0.02), serve))
        for _ in range(500):
            await asyncio.sleep(0.02)
            if served:
                break
        await asyncio.sleep(0.1)  # more rounds: nothing more to re-sign
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_a_while())
    assert served == [(2, True)]


def test_another_replica_serves_a_re_signature_without_pushing_it(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    """Replicas learn of a new version from the database; a freshness re-signature is served
    there too, but not announced on their event streams (docs/operations.md, "No push")."""
    server = _published(operations_server(), "app")
    services = server.services
    replica_store = PublishedStore()
    announced: list[tuple[str, int]] = []
    replica = StoreSync(
        server.config.database_url,
        services.sessions,
        replica_store,
        lambda channel, version: announced.append((channel, version)),
        lambda up: None,
        poll_seconds=1.0,
    )
    assert server.http.portal is not None
    server.http.portal.call(replica.refresh)
    first = replica_store.versions()["app"]
    assert announced == [("app", first)]  # the twin: a publish is pushed by every replica

    outcome = services.publisher.resign("app", FRESHNESS_ACTOR, reason="kept fresh")
    server.http.portal.call(replica.refresh)
    assert replica_store.versions()["app"] == outcome.document.version > first
    assert announced == [("app", first)]


def test_healthz_says_why_a_pin_set_may_lapse(
    operations_server: Callable[..., OperationsServer], clock: FakeClock
) -> None:
    """The freshness health line reaches ``/healthz``'s ``detail``; its twin: none when fresh."""
    server = _published(operations_server(), "app")
    assert server.http.get("/healthz").json()["detail"] == []
    keyless = Freshener(server.services.sessions, None, AlertBook(clock=clock), clock=clock,
                        holder="keyless")
    server.services.freshener = keyless
    clock.advance(days=12)
    keyless.run_once()
    detail = server.http.get("/healthz").json()["detail"]
    assert detail and any("this replica has no online key" in line for line in detail)
