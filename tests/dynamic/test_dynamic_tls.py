"""The dynamic client's scenarios through a real TLS stack: urllib3 and plain ``ssl`` connections to
app servers on 127.0.0.1, pinned by ``DynamicPins`` (pin server: the in-memory simulator).

Server A serves leaf key A, server B leaf key B, both for "localhost" under one CA the client
trusts: only the pins decide which one the client accepts.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from pinwarden.client import (
    DynamicPins,
    EventKind,
    PinEvent,
    PinValidationError,
    RefreshPolicy,
    StaticPins,
    pinned_context,
    pinned_pool_manager,
)
from tests.dynamic.dynamic_harness import (
    Recorder,
    Waiter,
    cached_document,
    raw_https_get,
    with_payload,
    without_signatures,
    write_cached_document,
)
from tests.dynamic.pin_server_simulator import PinServerSimulator
from tests.support.clock import FakeClock
from tests.support.pki import AppPKI
from tests.support.tls_servers import TLSServer

HOST = "localhost"


@pytest.fixture
def bootstrap(app_pki: AppPKI) -> StaticPins:
    """The app was built pinning key A (and a backup key)."""
    return StaticPins({HOST: [app_pki.pin_a, app_pki.backup_pin]})


@pytest.fixture
def events() -> Recorder:
    return Recorder()


def make(
    sim: PinServerSimulator,
    bootstrap: StaticPins,
    events: Callable[[PinEvent], None],
    **options: Any,
) -> DynamicPins:
    return sim.client(bootstrap, on_event=events, **options)


def accepts(source: DynamicPins, pki: AppPKI, server: TLSServer) -> bool:
    """One request over plain ``ssl``: True if it went through, False if the pins refused it."""
    context = pinned_context(source, cafile=pki.ca_file)
    try:
        return raw_https_get(context, server.port) == b"ok"
    except PinValidationError:
        return False


@pytest.fixture
def pool(app_pki: AppPKI) -> Iterator[list[urllib3.PoolManager]]:
    made: list[urllib3.PoolManager] = []
    yield made
    for manager in made:
        manager.clear()


def test_cold_start_connects_on_bootstrap_pins_while_the_first_fetch_is_held(
    sim: PinServerSimulator, bootstrap: StaticPins, app_pki: AppPKI,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    """The background fetch starts at once and the pin server holds its answer: the first pinned
    connections are decided on the bootstrap pins meanwhile, without waiting for it. The twin:
    once the answer is released, the next connection is decided on v1."""
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    sim.hold()
    waiter = Waiter()
    with make(sim, bootstrap, waiter, background=True) as source:
        try:
            assert sim.wait_until_held()  # the background fetch is waiting on the pin server
            assert accepts(source, app_pki, server_a)
            assert not accepts(source, app_pki, server_b)
            assert server_b.count() == 0  # refused before a request byte
            assert sim.held == 1 and source.version is None  # the fetch is still pending
        finally:
            sim.release()
        assert waiter.wait_for(EventKind.FETCHED, version=1)
        assert accepts(source, app_pki, server_b) and not accepts(source, app_pki, server_a)
    # Each mismatch brought a fetch forward, within the fetch budget (docs/dynamic.md).
    assert 1 <= sim.count("/pinset") <= RefreshPolicy().burst


def test_an_update_is_applied_to_new_connections(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    source = make(sim, bootstrap, events)
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    source.refresh()
    assert accepts(source, app_pki, server_b)
    assert not accepts(source, app_pki, server_a)


def pooled_get(manager: urllib3.PoolManager, server: TLSServer) -> int:
    response = manager.request("GET", server.url("/"), retries=False)
    return response.status


def test_a_pooled_connection_made_under_the_old_pins_is_not_reused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer, pool: list[urllib3.PoolManager],
) -> None:
    source = make(sim, bootstrap, events)
    manager = pinned_pool_manager(source, cafile=app_pki.ca_file)
    pool.append(manager)
    assert pooled_get(manager, server_a) == 200
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})  # key A is no longer pinned
    source.refresh()
    with pytest.raises(urllib3.exceptions.SSLError, match="pinning failed"):
        pooled_get(manager, server_a)
    assert server_a.count() == 1  # the second request never left the client


def test_a_pooled_connection_still_pinned_after_an_update_is_reused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer, pool: list[urllib3.PoolManager],
) -> None:
    source = make(sim, bootstrap, events)
    manager = pinned_pool_manager(source, cafile=app_pki.ca_file)
    pool.append(manager)
    assert pooled_get(manager, server_a) == 200
    sim.publish({HOST: [app_pki.pin_a, app_pki.pin_b]})  # key A still pinned
    source.refresh()
    assert pooled_get(manager, server_a) == 200
    assert len(set(server_a.state["ports"])) == 1  # one connection, checked again, reused


def test_a_replayed_older_document_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_a, app_pki.backup_pin]})
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    source = make(sim, bootstrap, events)
    source.refresh()
    sim.serve(sim.documents[1])  # an attacker replays v1, which pinned key A
    assert source.refresh().kind is EventKind.REFUSED
    assert not accepts(source, app_pki, server_a)
    assert accepts(source, app_pki, server_b)


def test_a_freeze_ends_on_the_bootstrap_pins(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    clock: FakeClock, server_a: TLSServer, server_b: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]}, expires_in=timedelta(days=3))
    source = make(sim, bootstrap, events)
    source.refresh()
    assert accepts(source, app_pki, server_b)
    for _ in range(3):  # the server keeps serving v1, long past its expiry
        clock.advance(days=1)
        source.refresh()
    assert source.version is None
    assert not accepts(source, app_pki, server_b)
    assert accepts(source, app_pki, server_a)  # bootstrap pins, not "no pinning"


def test_the_server_down_for_hours_keeps_the_last_good_set_until_its_expiry(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    clock: FakeClock, server_a: TLSServer, server_b: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]}, expires_in=timedelta(hours=12))
    source = make(sim, bootstrap, events)
    source.refresh()
    sim.down = True
    clock.advance(hours=11)
    assert source.refresh().kind is EventKind.FETCH_FAILED
    assert accepts(source, app_pki, server_b) and not accepts(source, app_pki, server_a)
    clock.advance(hours=1)
    assert not accepts(source, app_pki, server_b) and accepts(source, app_pki, server_a)


def damage_cache(directory: Path, damage: str, pki: AppPKI) -> None:
    """Damage the cached v1, which pins key B: so that, if it were trusted, key B would pass."""
    if damage == "corrupted base64":
        cache = directory / "pinset.json"
        cache.write_bytes(cache.read_bytes().replace(b'"document": "', b'"document": "AAAA'))
        return
    raw = cached_document(directory)
    if damage == "edited payload":
        # The attacker's edit: the backup pin becomes key A's, so the edited v1 pins A and B.
        def add_key_a(payload: dict[str, Any]) -> None:
            payload["rules"][0]["pins"] = [pki.pin_b, pki.pin_a]

        write_cached_document(directory, with_payload(raw, add_key_a))
    else:
        write_cached_document(directory, without_signatures(raw))


@pytest.mark.parametrize("damage", ["corrupted base64", "edited payload", "dropped signatures"])
def test_a_corrupted_or_edited_cache_is_recovered_from(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    tmp_path: Path, server_a: TLSServer, server_b: TLSServer, damage: str,
) -> None:
    """Key B passes only on v1 as signed and key A only on the bootstrap pins; the edited v1
    would let both pass. After the restart: the bootstrap pins; after a fetch: v1 as signed."""
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    assert accepts(make(sim, bootstrap, events, cache_dir=str(tmp_path)), app_pki, server_b)
    damage_cache(sim.cache_of(tmp_path), damage, app_pki)
    before = len(events.snapshot())
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert accepts(restarted, app_pki, server_a) and not accepts(restarted, app_pki, server_b)
    assert [event.kind for event in events.snapshot()[before:]] == [EventKind.CACHE_RECOVERED]
    assert restarted.refresh().kind is EventKind.FETCHED
    assert accepts(restarted, app_pki, server_b) and not accepts(restarted, app_pki, server_a)


def test_a_keyring_rotation_is_followed(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    source = make(sim, bootstrap, events)
    sim.rotate_online_key()
    sim.rotate_root_keys()
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    source.refresh()
    assert source.keyring_version == 3
    assert accepts(source, app_pki, server_b) and not accepts(source, app_pki, server_a)


def test_one_report_per_host_and_chain_per_interval(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    clock: FakeClock, server_a: TLSServer,
) -> None:
    sim.publish(
        {HOST: {"pins": [app_pki.pin_b, app_pki.backup_pin], "mode": "report-only"}},
        report_uri=sim.report_url,
    )
    source = make(sim, bootstrap, events, app_id="com.example.app", app_version="4.2",
                  report_interval=timedelta(hours=1))
    source.refresh()
    for _ in range(3):
        assert accepts(source, app_pki, server_a)  # report-only: let through, reported
    assert source.flush_reports()
    assert len(sim.reports) == 1
    clock.advance(minutes=59)
    assert accepts(source, app_pki, server_a)
    assert source.flush_reports() and len(sim.reports) == 1
    clock.advance(minutes=1)
    assert accepts(source, app_pki, server_a)
    assert source.flush_reports() and len(sim.reports) == 2
    report = sim.reports[0]
    assert report["hostname"] == HOST and report["port"] == server_a.port
    assert report["noted-hostname"] == HOST and report["include-subdomains"] is False
    assert sorted(report["known-pins"]) == sorted(
        f'pin-sha256="{pin.removeprefix("sha256/")}"' for pin in (app_pki.pin_b, app_pki.backup_pin)
    )
    assert report["validated-certificate-chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    assert report["app-id"] == "com.example.app" and report["app-version"] == "4.2"
    assert report["pinset-version"] == 1 and report["enforce-pinning"] is False
    assert report["channel"] == sim.channel
    assert report["effective-expiration-date"].endswith("Z")
    assert [e.kind for e in events.snapshot()].count(EventKind.REPORT_SENT) == 2


def test_an_enforced_mismatch_is_reported_too_and_a_rule_without_uri_is_not(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]}, report_uri=sim.report_url)
    source = make(sim, bootstrap, events)
    source.refresh()
    assert not accepts(source, app_pki, server_a)
    assert source.flush_reports() and len(sim.reports) == 1
    assert sim.reports[0]["enforce-pinning"] is True
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})  # v2: no report URI
    source.refresh()
    assert not accepts(source, app_pki, server_a)
    assert source.flush_reports() and len(sim.reports) == 1


def test_a_report_uri_that_fails_never_breaks_the_connection(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, app_pki: AppPKI,
    server_a: TLSServer,
) -> None:
    sim.publish(
        {HOST: {"pins": [app_pki.pin_b, app_pki.backup_pin], "mode": "report-only"}},
        report_uri="http://reports.example.com/plain-http",  # refused: not https
    )
    source = make(sim, bootstrap, events)
    source.refresh()
    assert accepts(source, app_pki, server_a)
    assert source.flush_reports()
    assert sim.reports == []
    dropped = [e for e in events.snapshot() if e.kind is EventKind.REPORT_DROPPED]
    assert len(dropped) == 1 and "https" in dropped[0].message


def test_the_bootstrap_callback_still_hears_every_violation(
    sim: PinServerSimulator, events: Recorder, app_pki: AppPKI, server_b: TLSServer,
) -> None:
    heard = Recorder()
    bootstrap = StaticPins({HOST: [app_pki.pin_a, app_pki.backup_pin]}, on_violation=heard)
    source = make(sim, bootstrap, events)
    assert not accepts(source, app_pki, server_b)
    assert [violation.hostname for violation in heard.snapshot()] == [HOST]


def test_an_ssl_context_that_does_not_validate_is_refused_for_the_pin_server(
    sim: PinServerSimulator, bootstrap: StaticPins,
) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    with pytest.raises(ValueError, match="must validate"):
        DynamicPins(sim.url, keyring=sim.shipped_keyring, bootstrap=bootstrap,
                    ssl_context=context, background=False)
