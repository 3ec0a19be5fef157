"""The promises of docs/dynamic.md that a user cannot see failing: status and warnings, where a
rule came from, which rule wins, and what ``close()`` guarantees. Against the simulator (no
sockets); the TLS twins of the mismatch refresh and the report trust are in
test_dynamic_tls_promises.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pinwarden.client import (
    ChannelError,
    DynamicPins,
    EventKind,
    Mode,
    PinEvent,
    PinRule,
    PinStatus,
    PinViolation,
    RefreshPolicy,
    StaticPins,
)
from pinwarden.client._dynamic import CLOSE_TIMEOUT
from pinwarden.document import SignatureError
from tests.dynamic.dynamic_harness import PIN_A, PIN_B, PIN_C, PIN_D, Recorder, Waiter
from tests.dynamic.pin_server_simulator import CHANNEL, PinServerSimulator
from tests.support.clock import FakeClock
from tests.support.waiting import WAIT

HOST = "api.example.com"
OTHER = "static.example.com"
BOOTSTRAP = "the shipped bootstrap pins"
REPORTS = "https://pins.simulator.test/v1/reports"


@pytest.fixture
def bootstrap() -> StaticPins:
    return StaticPins({HOST: [PIN_A, PIN_B], OTHER: {"pins": [PIN_A, PIN_B],
                                                     "report_uri": REPORTS}})


@pytest.fixture
def events() -> Recorder:
    return Recorder()


def kinds(events: Recorder) -> list[EventKind]:
    return [event.kind for event in events.snapshot()]


def violation_of(rule: PinRule, host: str = HOST) -> PinViolation:
    return PinViolation(
        hostname=host, port=443, rule=rule, verified_pins=(PIN_D,), validated_chain_pem=(),
        served_chain_pem=(), enforced=True, reason="no pinned key in the verified chain",
    )


# -- status and warnings -----------------------------------------------------------------------


def test_status_on_bootstrap_pins_then_on_a_pin_set(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    source = sim.client(bootstrap, on_event=events)
    status = source.status
    assert isinstance(status, PinStatus) and status.on_bootstrap
    assert (status.source, status.channel, status.since) == (BOOTSTRAP, CHANNEL, clock())
    assert status.last_success is status.last_attempt is status.last_error is None
    clock.advance(minutes=5)
    sim.publish({HOST: [PIN_C, PIN_D]})
    source.refresh()
    status = source.status
    assert status.source == f"pin set v1 of channel {CHANNEL}" and status.version == 1
    assert status.since == status.last_success == status.last_attempt == clock()
    assert status.failures == 0 and not status.stale and status.last_error is None


def test_the_source_goes_back_to_bootstrap_when_the_pin_set_expires(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(hours=1))
    source = sim.client(bootstrap, on_event=events)
    source.refresh()
    expiry = clock.advance(hours=1)
    assert source.status.source == BOOTSTRAP and source.status.since == expiry


def test_a_404_is_a_warning_an_event_and_a_status(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing published under this channel (or a wrong URL): the server answers 404. The twin:
    an outage is an ordinary ``fetch-failed``, logged at INFO."""
    source = sim.client(bootstrap, on_event=events)
    with caplog.at_level(logging.INFO, logger="pinwarden.client"):
        event = source.refresh()
    assert event.kind is EventKind.MISCONFIGURED
    assert "HTTP 404" in event.message and CHANNEL in event.message
    assert "check the URL" in event.message
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    status = source.status
    assert status.last_error is event and status.failures == 1 and status.on_bootstrap
    caplog.clear()
    sim.down = True
    with caplog.at_level(logging.INFO, logger="pinwarden.client"):
        assert source.refresh().kind is EventKind.FETCH_FAILED
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert source.status.failures == 2


def test_a_url_naming_an_unknown_channel_is_misconfigured(
    clock: FakeClock, bootstrap: StaticPins, events: Recorder
) -> None:
    served = PinServerSimulator(clock)
    served.publish({HOST: [PIN_C, PIN_D]})
    source = DynamicPins(
        f"{served.base}/v1/channels/com.example.app/typo", keyring=served.shipped_keyring,
        bootstrap=bootstrap, transport=served, clock=clock, background=False, on_event=events,
    )
    event = source.refresh()
    assert event.kind is EventKind.MISCONFIGURED and "'com.example.app/typo'" in event.message


def test_a_keyring_the_server_does_not_have_is_misconfigured(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.keyrings.pop(2)
    event = sim.client(bootstrap, on_event=events).refresh()
    assert event.kind is EventKind.MISCONFIGURED and "no keyring" in event.message


def test_a_keyring_of_another_deployment_is_refused_with_a_next_step(
    clock: FakeClock, sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    elsewhere = PinServerSimulator(clock)
    source = DynamicPins(sim.url, keyring=elsewhere.shipped_keyring, bootstrap=bootstrap,
                         transport=sim, clock=clock, background=False, on_event=events)
    with caplog.at_level(logging.INFO, logger="pinwarden.client"):
        event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, SignatureError)
    assert "shipped keyring" in event.message
    assert caplog.records[-1].levelno == logging.WARNING
    assert source.status.last_error is event


def test_a_channel_mismatch_is_a_warning_and_a_status(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.serve(sim.make_pinset({HOST: [PIN_C, PIN_D]}, channel="com.example.app/dev"))
    source = sim.client(bootstrap, on_event=events)
    event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, ChannelError)
    assert "check the channel" in event.message
    assert isinstance(source.status.last_error.error, ChannelError)  # type: ignore[union-attr]


def test_pins_that_stay_stale_are_a_warning_once_and_a_status(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    """refresh_after one hour: after two hours without an answer, one ``stale`` event; the twin:
    an answer clears it."""
    sim.publish({HOST: [PIN_C, PIN_D]}, refresh_after=3600)
    source = sim.client(bootstrap, on_event=events)
    source.refresh()
    sim.down = True
    for _ in range(3):
        clock.advance(minutes=30)
        source.refresh()
    assert EventKind.STALE not in kinds(events) and not source.status.stale
    for _ in range(4):
        clock.advance(minutes=30)
        source.refresh()
    stale = [event for event in events.snapshot() if event.kind is EventKind.STALE]
    assert len(stale) == 1 and "pin set v1" in stale[0].message
    assert source.status.stale and source.status.failures == 7
    sim.down = False
    assert source.refresh().kind is EventKind.NOT_MODIFIED
    assert not source.status.stale and source.status.failures == 0


def test_bootstrap_pins_that_never_reach_the_server_go_stale(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    """The client pointed at nothing: the default interval (1 h) counts from its start."""
    sim.down = True
    source = sim.client(bootstrap, on_event=events)
    for _ in range(5):
        clock.advance(minutes=30)
        source.refresh()
    assert source.status.stale and EventKind.STALE in kinds(events)


# -- where a rule came from ----------------------------------------------------------------------


def test_rules_say_where_they_came_from(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = sim.client(bootstrap, on_event=events)
    assert source.rule_for(HOST).origin == BOOTSTRAP  # type: ignore[union-attr]
    sim.publish({HOST: [PIN_C, PIN_D]})
    source.refresh()
    assert source.rule_for(HOST).origin == f"pin set v1 of channel {CHANNEL}"  # type: ignore[union-attr]
    assert source.rule_for(OTHER).origin == BOOTSTRAP  # type: ignore[union-attr]
    assert bootstrap.rule_for(HOST).origin == "static pins"  # type: ignore[union-attr]


def test_a_bootstrap_violation_is_not_reported_as_one_of_the_signed_set(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    """v1 signs a rule for HOST only; OTHER's rule is the bootstrap's: its report names no
    channel and no pin-set version. The twin: a violation of the signed rule names both."""
    sim.publish({HOST: [PIN_C, PIN_D]}, report_uri=REPORTS)
    source = sim.client(bootstrap, on_event=events)
    source.refresh()
    for host in (OTHER, HOST):
        rule = source.rule_for(host)
        assert rule is not None
        source.report(violation_of(rule, host))
    assert source.flush_reports(WAIT)
    by_host = {report["hostname"]: report for report in sim.reports}
    assert by_host[OTHER]["rule-source"] == BOOTSTRAP
    assert "channel" not in by_host[OTHER] and "pinset-version" not in by_host[OTHER]
    assert "effective-expiration-date" not in by_host[OTHER]
    assert by_host[HOST]["rule-source"] == f"pin set v1 of channel {CHANNEL}"
    assert (by_host[HOST]["channel"], by_host[HOST]["pinset-version"]) == (CHANNEL, 1)


# -- which rule wins -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shipped", "signed", "winner"),
    [
        ("api.example.com", "**.example.com", "shipped"),  # more specific shipped rule
        ("api.example.com", "api.example.com", "signed"),  # a tie: the signed rule
        ("**.example.com", "api.example.com", "signed"),  # more specific signed rule
        ("*.example.com", "**.example.com", "shipped"),  # one label beats any depth
        ("**.example.com", "*.example.com", "signed"),
    ],
)
def test_the_most_specific_pattern_of_either_set_decides(
    sim: PinServerSimulator, events: Recorder, shipped: str, signed: str, winner: str
) -> None:
    """A signed ``disabled`` wildcard cannot switch off a host the app ships a more specific
    rule for; a signed rule at least as specific can."""
    bootstrap = StaticPins({shipped: [PIN_A, PIN_B]})
    sim.publish({signed: {"pins": [], "mode": "disabled"}})
    source = sim.client(bootstrap, on_event=events)
    source.refresh()
    rule = source.rule_for(HOST)
    assert rule is not None
    assert rule.mode is (Mode.ENFORCE if winner == "shipped" else Mode.DISABLED)
    assert rule.origin == (BOOTSTRAP if winner == "shipped" else f"pin set v1 of channel {CHANNEL}")


def test_a_signed_wildcard_still_decides_hosts_the_app_ships_no_rule_for(
    sim: PinServerSimulator, events: Recorder
) -> None:
    sim.publish({"**.example.com": {"pins": [], "mode": "disabled"}})
    source = sim.client(StaticPins({HOST: [PIN_A, PIN_B]}), on_event=events)
    source.refresh()
    assert source.rule_for("www.example.com").mode is Mode.DISABLED  # type: ignore[union-attr]
    assert source.rule_for(HOST).mode is Mode.ENFORCE  # type: ignore[union-attr]


# -- a mismatch brings the next fetch forward ----------------------------------------------------


class RecordingRefresher:
    def __init__(self) -> None:
        self.wakes: list[float] = []

    def start(self) -> None: ...

    def wake(self, delay: float = 0.0) -> None:
        self.wakes.append(delay)

    def stop(self, timeout: float = 0.0) -> None: ...


@pytest.mark.parametrize("mode", ["enforce", "report-only"])
def test_a_mismatch_wakes_the_refresher_within_the_budget(
    sim: PinServerSimulator, events: Recorder, clock: FakeClock, mode: str
) -> None:
    """Every violation, enforced or reported, with or without a report URI, wakes the refresh
    loop: at once while the budget lasts, then when a token comes back."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    shipped = StaticPins({"*.example.com": [PIN_A, PIN_B]}, mode=mode)
    source = sim.client(shipped, on_event=events)
    source._refresher = refresher = RecordingRefresher()
    rule = source.rule_for(OTHER)
    assert rule is not None and rule.mode is Mode(mode)
    for _ in range(4):
        source.report(violation_of(rule))  # a burst of 3 at once, then the budget is spent
    clock.advance(seconds=60)
    source.report(violation_of(rule))
    assert refresher.wakes == [0.0, 0.0, 0.0, 60.0, 0.0]


def test_refused_connections_cannot_delay_the_announcement_of_the_fix(
    sim: PinServerSimulator, events: Recorder, clock: FakeClock
) -> None:
    """An emergency rotation: connections refused before the new pins are published spend the
    mismatch budget; the push announcement of the new pin set draws on its own and is followed
    at once (docs/rotation.md, "The fetch budget")."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = sim.client(StaticPins({"*.example.com": [PIN_A, PIN_B]}), on_event=events)
    source._refresher = refresher = RecordingRefresher()
    rule = source.rule_for(OTHER)
    assert rule is not None
    for _ in range(10):
        source.report(violation_of(rule))
    assert refresher.wakes[3:] == [60.0] * 7  # the mismatch budget is spent
    source._announced(2)
    assert refresher.wakes[-1] == 0.0


def test_without_a_refresh_loop_a_mismatch_fetches_nothing(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    """``background=False``: only ``refresh()`` fetches, never the handshake thread."""
    source = sim.client(bootstrap, on_event=events)
    rule = source.rule_for(HOST)
    assert rule is not None
    source.report(violation_of(rule))
    assert sim.count("/pinset") == 0


def test_a_mismatch_does_not_wait_for_a_pin_server_that_hangs(
    sim: PinServerSimulator, bootstrap: StaticPins
) -> None:
    """report() runs inside the TLS handshake: it returns while the fetch it asked for waits."""
    sim.publish({HOST: [PIN_C, PIN_D]}, refresh_after=3600)
    waiter = Waiter()
    with sim.client(bootstrap, on_event=waiter, background=True) as source:
        assert waiter.wait_for(EventKind.FETCHED, version=1)
        sim.hold()
        try:
            rule = source.rule_for(HOST)
            assert rule is not None
            source.report(violation_of(rule))
            assert sim.wait_until_held()  # the woken fetch is under way, report() has returned
        finally:
            sim.release()
        assert waiter.wait_for(EventKind.NOT_MODIFIED, version=1)


# -- close() and threads -------------------------------------------------------------------------


def test_close_returns_promptly_while_the_pin_server_hangs(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    """The background fetch is held by the server: close() does not wait for it, and the answer
    that arrives afterwards changes nothing and says nothing."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.hold()
    source = sim.client(bootstrap, on_event=events, background=True)
    try:
        assert sim.wait_until_held()
        started = time.monotonic()
        source.close()
        elapsed = time.monotonic() - started
    finally:
        sim.release()
    assert elapsed < CLOSE_TIMEOUT + 2.0
    deadline = time.monotonic() + WAIT
    while sim.held and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the abandoned fetch's thread finishes its step
    assert source.version is None and EventKind.FETCHED not in kinds(events)


def test_refresh_after_close_fetches_nothing_and_says_so(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = sim.client(bootstrap, on_event=events)
    source.close()
    source.close()  # idempotent
    event = source.refresh()
    assert event.kind is EventKind.CLOSED and sim.count("/pinset") == 0
    source._announced(5)  # an announcement after close starts nothing either
    assert sim.count("/pinset") == 0
    assert source.rule_for(HOST).pins == (PIN_A, PIN_B)  # type: ignore[union-attr]


def test_refresh_close_and_rule_for_from_many_threads(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    """Readers never fail, and once close() has returned every refresh() says ``closed``, the
    version no longer changes, and at most the one fetch already under way (refreshes run one
    at a time) still reaches the server."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = sim.client(bootstrap, on_event=events)
    errors: list[BaseException] = []
    stop, closed = threading.Event(), threading.Event()
    after_close: list[EventKind] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # the test reports every escape
                errors.append(error)
        return run

    def read() -> None:
        while not stop.is_set():
            rule = source.rule_for(HOST)
            assert rule is not None and rule.pins in ((PIN_A, PIN_B), (PIN_C, PIN_D))
            assert source.status.channel == CHANNEL and source.generation >= 0

    def refresh() -> None:
        seen_closed = 0
        while seen_closed < 5:  # ends: close() below, and every refresh() since says closed
            was_closed = closed.is_set()
            event = source.refresh()
            if was_closed:
                after_close.append(event.kind)
                seen_closed += 1

    threads = [threading.Thread(target=guarded(work)) for work in [read] * 3 + [refresh] * 3]
    for thread in threads:
        thread.start()
    time.sleep(0.02)
    sim.publish({HOST: [PIN_C, PIN_D]})
    time.sleep(0.02)
    source.close()
    closed.set()
    fetches, version = sim.count("/pinset"), source.version
    for thread in threads[3:]:
        thread.join(WAIT)
    stop.set()
    for thread in threads[:3]:
        thread.join(WAIT)
    assert errors == []
    assert after_close and set(after_close) == {EventKind.CLOSED}
    assert sim.count("/pinset") <= fetches + 1 and source.version == version


def test_a_callback_may_close_the_client_while_an_answer_is_applied(
    sim: PinServerSimulator, bootstrap: StaticPins, tmp_path: Path
) -> None:
    """``cache-write-failed`` is told while the answer is applied; close() from the callback then
    does not deadlock, the answer stands, and the next refresh() says ``closed``."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    holder: list[DynamicPins] = []

    def close_on_write_failure(event: PinEvent) -> None:
        if event.kind is EventKind.CACHE_WRITE_FAILED:
            holder[0].close()

    source = sim.client(bootstrap, on_event=close_on_write_failure, cache_dir=str(tmp_path))
    holder.append(source)
    cache = sim.cache_of(tmp_path)
    cache.rmdir()
    cache.write_bytes(b"a file where the cache directory was")
    assert source.refresh().kind is EventKind.FETCHED and source.version == 1
    assert source.refresh().kind is EventKind.CLOSED


def test_the_policy_refuses_a_burst_below_one() -> None:
    with pytest.raises(ValueError, match="burst"):
        RefreshPolicy(burst=0)


def test_on_event_is_not_called_once_close_has_returned(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    """The pin set still expires after close() (the pins stay usable), but the app is not told;
    the twin: before close() it is."""
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(hours=1))
    source = sim.client(bootstrap, on_event=events)
    source.refresh()
    clock.advance(hours=1)
    assert source.version is None and EventKind.FELL_BACK in kinds(events)
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(hours=1))
    source.refresh()
    told = len(events.snapshot())
    source.close()
    clock.advance(hours=1)
    assert source.version is None and len(events.snapshot()) == told
