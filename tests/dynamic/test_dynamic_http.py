"""End to end over real sockets: the simulator's routes served over HTTPS on 127.0.0.1, the default
``HttpTransport``, the background refresh thread, the asyncio task, push over a real event stream,
and violation reports POSTed over HTTPS."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pinwarden.client import (
    DynamicPins,
    EventKind,
    PinValidationError,
    StaticPins,
    pinned_context,
)
from tests.dynamic.dynamic_harness import Waiter, raw_https_get
from tests.dynamic.pin_server_simulator import (
    PinServerSimulator,
    report_url,
    server_url,
    simulator_server,
)
from tests.support.pki import AppPKI
from tests.support.tls_servers import TLSServer
from tests.support.waiting import WAIT

HOST = "localhost"


@pytest.fixture
def pin_server(sim: PinServerSimulator, app_pki: AppPKI) -> Iterator[TLSServer]:
    server = simulator_server(sim, app_pki.server_context(app_pki.leaf_a)).start()
    yield server
    sim.close_streams()
    server.stop()


@pytest.fixture
def bootstrap(app_pki: AppPKI) -> StaticPins:
    return StaticPins({HOST: [app_pki.pin_a, app_pki.backup_pin]})


def make(sim: PinServerSimulator, server: TLSServer, pki: AppPKI, bootstrap: StaticPins,
         **options: Any) -> DynamicPins:
    return DynamicPins(
        server_url(server, sim), keyring=sim.shipped_keyring, bootstrap=bootstrap,
        cafile=pki.ca_file, clock=sim.clock, timeout=5.0, **options,
    )


def accepts(source: DynamicPins, pki: AppPKI, server: TLSServer) -> bool:
    try:
        return raw_https_get(pinned_context(source, cafile=pki.ca_file), server.port) == b"ok"
    except PinValidationError:
        return False


def test_the_background_thread_fetches_over_https(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    waiter = Waiter()
    with make(sim, pin_server, app_pki, bootstrap, on_event=waiter) as source:
        assert waiter.wait_for(EventKind.FETCHED, 1)
        assert pin_server.count("/pinset") == 1  # before the refusal below asks for a refresh
        assert accepts(source, app_pki, server_b) and not accepts(source, app_pki, server_a)


def test_the_pin_server_certificate_must_validate(
    sim: PinServerSimulator, pin_server: TLSServer, bootstrap: StaticPins, app_pki: AppPKI,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    source = DynamicPins(
        server_url(pin_server, sim), keyring=sim.shipped_keyring, bootstrap=bootstrap,
        ssl_context=ssl.create_default_context(), background=False,  # system CAs only
    )
    event = source.refresh()
    assert event.kind is EventKind.FETCH_FAILED and "CERTIFICATE_VERIFY_FAILED" in event.message
    assert source.version is None


def test_push_over_a_real_event_stream_refreshes_at_once(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
    tmp_path: Path,
) -> None:
    sim.publish({HOST: [app_pki.pin_a, app_pki.backup_pin]}, refresh_after=24 * 3600)
    make(sim, pin_server, app_pki, bootstrap, background=False, cache_dir=str(tmp_path)).refresh()
    waiter = Waiter()
    # A fresh cache: the schedule alone would not fetch for a day.
    with make(sim, pin_server, app_pki, bootstrap, push=True, on_event=waiter,
              cache_dir=str(tmp_path)) as source:
        for _ in range(int(WAIT / 0.01)):
            if sim.streams:
                break
            threading.Event().wait(0.01)
        fetches = pin_server.count("/pinset")
        sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
        assert waiter.wait_for(EventKind.FETCHED, 2)
        assert source.version == 2
        assert pin_server.count("/pinset") == fetches + 1
        assert waiter.wait_for(EventKind.PUSH_ANNOUNCED, 2)


@pytest.mark.parametrize("etag", ['"x"\r\nInjected: 1', "\u2603"])
def test_a_tampered_cached_etag_does_not_freeze_the_client(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
    tmp_path: Path, etag: str,
) -> None:
    """http.client refuses such a header value on every request: the client would stay on the
    cached v1 for good, and wait_for_first_fetch would raise."""
    sim.publish({HOST: [app_pki.pin_a, app_pki.backup_pin]})
    make(sim, pin_server, app_pki, bootstrap, background=False, cache_dir=str(tmp_path)).refresh()
    cached = sim.cache_of(tmp_path) / "pinset.json"
    stored = json.loads(cached.read_text())
    stored["etag"] = etag
    cached.write_text(json.dumps(stored))
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    source = make(sim, pin_server, app_pki, bootstrap, background=False, cache_dir=str(tmp_path),
                  wait_for_first_fetch=True)
    assert source.version == 2
    assert source.refresh().kind is EventKind.NOT_MODIFIED


def test_reports_are_posted_over_https(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
    server_a: TLSServer,
) -> None:
    sim.publish(
        {HOST: {"pins": [app_pki.pin_b, app_pki.backup_pin], "mode": "report-only"}},
        report_uri=report_url(pin_server, sim),
    )
    with make(sim, pin_server, app_pki, bootstrap, background=False) as source:
        source.refresh()
        assert accepts(source, app_pki, server_a)
        assert source.flush_reports(WAIT)
    assert pin_server.count("/v1/reports") == 1
    assert sim.reports[0]["hostname"] == HOST


def test_under_asyncio_the_refresh_runs_as_a_task(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    waiter = Waiter()

    async def scenario() -> bool:
        async with make(sim, pin_server, app_pki, bootstrap, on_event=waiter) as source:
            in_task = "pinwarden-refresh" in {task.get_name() for task in asyncio.all_tasks()}
            fetched = await asyncio.to_thread(waiter.wait_for, EventKind.FETCHED, 1)
            return in_task and fetched and source.version == 1

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT))
    assert not any(t.name == "pinwarden-refresh" for t in threading.enumerate())


def test_open_waits_for_the_first_fetch_without_blocking_the_loop(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
    server_b: TLSServer,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def scenario() -> bytes:
        ticking = asyncio.create_task(ticker())
        source = await DynamicPins.open(
            server_url(pin_server, sim), keyring=sim.shipped_keyring, bootstrap=bootstrap,
            cafile=app_pki.ca_file, clock=sim.clock, wait_for_first_fetch=True,
        )
        async with source:
            assert source.version == 1
            context = pinned_context(source, cafile=app_pki.ca_file)
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server_b.port, ssl=context, server_hostname=HOST
            )
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            body = (await reader.read()).partition(b"\r\n\r\n")[2]
            writer.close()
        ticking.cancel()
        return body

    assert asyncio.run(asyncio.wait_for(scenario(), WAIT)) == b"ok"
    assert ticks > 1  # the loop ran while the fetch was in its worker thread


def test_wait_for_first_fetch_in_the_constructor_under_a_loop_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins,
) -> None:
    async def scenario() -> None:
        DynamicPins(sim.url, keyring=sim.shipped_keyring, bootstrap=bootstrap,
                    wait_for_first_fetch=True, transport=sim)

    with pytest.raises(RuntimeError, match=r"await DynamicPins\.open"):
        asyncio.run(scenario())


def test_close_stops_the_background_work(
    sim: PinServerSimulator, pin_server: TLSServer, app_pki: AppPKI, bootstrap: StaticPins,
) -> None:
    sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]})
    waiter = Waiter()
    source = make(sim, pin_server, app_pki, bootstrap, on_event=waiter, push=True,
                  policy=None, report_interval=timedelta(hours=1))
    assert waiter.wait_for(EventKind.FETCHED, 1)
    before = {thread.name for thread in threading.enumerate()}
    assert {"pinwarden-refresh", "pinwarden-push"} <= before
    source.close()
    after = {thread.name for thread in threading.enumerate()}
    assert not {"pinwarden-refresh", "pinwarden-push"} & after
    assert source.version == 1  # closing stops the work, not the pins
