"""Suggestions after a host rotates or nears expiry; applying one goes through safe publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
import trustme
from sqlalchemy import select

from pinwarden._pins import spki_pin
from pinwarden.server._errors import NotFoundError, UnsafePublishError, ValidationError
from pinwarden.server._models import PublishedDocument
from pinwarden.server.alerts import AlertBook, list_alerts
from pinwarden.server.monitor import Monitor, MonitorPolicy
from pinwarden.server.suggest import ChangeKind, Suggestion, apply_suggestion, suggest
from tests.operations.operations_harness import OperationsServer, RotatingHost
from tests.support.clock import FakeClock
from tests.support.pki import backup_pin

HOST = "api.example.test"
CHANNEL = "app"
WARNING = timedelta(days=21)


@pytest.fixture
def setup(
    operations_server: Callable[..., OperationsServer],
    rotating_hosts: Callable[[str], RotatingHost],
    clock: FakeClock,
    trust_ca: tuple[trustme.CA, str],
) -> tuple[OperationsServer, RotatingHost, Monitor]:
    server = operations_server()
    host = rotating_hosts(HOST)
    monitor = Monitor(
        server.services.sessions,
        AlertBook(clock=clock),
        cafile=trust_ca[1],
        policy=MonitorPolicy(timeout=5.0, expiry_warning=WARNING),
        clock=clock,
    )
    return server, host, monitor


def _suggest(server: OperationsServer, clock: FakeClock) -> Suggestion:
    with server.session() as session:
        return suggest(session, CHANNEL, now=clock.now, expiry_warning=WARNING)


def _changes(suggestion: Suggestion) -> list[tuple[str, str | None]]:
    return sorted((change.kind.value, change.pin) for change in suggestion.changes)


def test_after_a_rotation_the_new_key_is_added_the_old_retired_and_clients_keep_working(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    server, host, monitor = setup
    old, backup = host.leaf_pin, backup_pin()
    server.add_channel(CHANNEL, {HOST: [old, backup]}, probes={HOST: ("127.0.0.1", host.port)})
    server.publish(CHANNEL)
    asyncio.run(monitor.run_once())
    assert _suggest(server, clock).changes == ()
    new = host.serve()
    asyncio.run(monitor.run_once())
    suggestion = _suggest(server, clock)
    assert _changes(suggestion) == [("add", new), ("retire", old)]
    outcome = apply_suggestion(
        server.services.sessions, server.services.publisher, suggestion, "oncall"
    )
    assert outcome.document is not None and not outcome.forced
    pins = {pin["pin"] for pin in outcome.document.rules[0]["pins"]}
    assert pins == {new, backup}
    asyncio.run(monitor.run_once())
    with server.session() as session:
        assert list_alerts(session) == []
    assert _suggest(server, clock).changes == ()


def test_an_old_key_is_not_retired_while_a_host_was_not_reached(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    """The twin: "gone from every host" is not known when a host did not answer."""
    server, host, monitor = setup
    old = host.leaf_pin
    server.add_channel(
        CHANNEL, {HOST: [old, backup_pin()]}, probes={HOST: ("127.0.0.1", host.port)}
    )
    server.publish(CHANNEL)
    asyncio.run(monitor.run_once())
    new = host.serve()
    asyncio.run(monitor.run_once())
    host.stop()
    asyncio.run(monitor.run_once())
    assert ("retire", old) not in _changes(_suggest(server, clock))
    assert ("add", new) in _changes(_suggest(server, clock))


def test_a_certificate_near_expiry_gets_its_issuer_pinned_and_safe_publishing_still_decides(
    setup: tuple[OperationsServer, RotatingHost, Monitor],
    clock: FakeClock,
    trust_ca: tuple[trustme.CA, str],
) -> None:
    server, host, monitor = setup
    host.serve(not_after=clock.now + timedelta(days=5))
    server.add_channel(CHANNEL, {HOST: [host.leaf_pin]}, probes={HOST: ("127.0.0.1", host.port)})
    server.publish(CHANNEL, force=True)
    asyncio.run(monitor.run_once())
    suggestion = _suggest(server, clock)
    ca_pin = spki_pin(trust_ca[0].cert_pem.bytes())
    assert _changes(suggestion) == [("add", ca_pin), ("note", None)]
    assert "backup key offline" in suggestion.changes[-1].reason
    with pytest.raises(UnsafePublishError, match="no backup pin"):
        apply_suggestion(server.services.sessions, server.services.publisher, suggestion, "x")
    with server.session() as session:  # not published: still version 1
        assert len(session.scalars(select(PublishedDocument)).all()) == 1


def test_a_far_expiry_with_a_backup_suggests_nothing(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock
) -> None:
    server, host, monitor = setup
    host.serve(not_after=clock.now + timedelta(days=90))
    server.add_channel(
        CHANNEL, {HOST: [host.leaf_pin, backup_pin()]}, probes={HOST: ("127.0.0.1", host.port)}
    )
    server.publish(CHANNEL)
    asyncio.run(monitor.run_once())
    suggestion = _suggest(server, clock)
    assert suggestion.changes == () and suggestion.applicable == ()
    with pytest.raises(ValidationError, match="nothing to apply"):
        apply_suggestion(server.services.sessions, server.services.publisher, suggestion, "x")


@pytest.mark.parametrize("name", ["nope", "", "\x00", "\ud800", "a" * 10_000])
def test_an_unknown_channel_is_a_not_found_error(
    setup: tuple[OperationsServer, RotatingHost, Monitor], clock: FakeClock, name: str
) -> None:
    server, _, _ = setup
    with server.session() as session, pytest.raises(NotFoundError):
        suggest(session, name, now=clock.now, expiry_warning=WARNING)


def test_a_note_is_never_applied() -> None:
    from pinwarden.server.suggest import PinChange

    note = PinChange(HOST, ChangeKind.NOTE, "make a backup key")
    assert Suggestion(CHANNEL, (note,)).applicable == ()
