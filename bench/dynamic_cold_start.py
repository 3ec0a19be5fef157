"""What dynamic pinning costs the first request of an app that just started.

Two questions, one run, real TLS on 127.0.0.1 (an app server, and the pin-server simulator of
tests/dynamic served over HTTPS):

1. With a cache: how much later does the first request finish when the app builds ``DynamicPins``
   (load the cached pin set and keyrings, verify them again) instead of ``StaticPins``? Each round
   builds both sources from scratch and makes one request on a new connection with each, in
   alternating order; the figure is the difference of the medians. Goal: <= 5 ms.
2. Without a cache: does the first request wait for the pin server? The pin server holds every
   pin-set response until released; the app builds ``DynamicPins`` with its background refresh and
   makes its first request. It must finish while the pin-server request is still held, so no pin
   server round trip happened before it. With ``wait_for_first_fetch=True`` (the opt-in) exactly
   one must.

Run: ``.venv/bin/python bench/dynamic_cold_start.py [--rounds 200]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

# The repository root, so that the test harness imports as the package ``tests`` (what pytest's
# ``pythonpath = ["."]`` does for the suites); a script's own sys.path starts at bench/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dynamic.dynamic_harness import app_server, raw_https_get
from tests.dynamic.pin_server_simulator import (
    PinServerSimulator,
    Response,
    server_url,
    simulator_server,
)
from tests.support.clock import FakeClock
from tests.support.pki import AppPKI, make_app_pki
from tests.support.tls_servers import TLSServer

from pinwarden.client import (
    DynamicPins,
    EventKind,
    PinEvent,
    PinSource,
    StaticPins,
    pinned_context,
)

HOST = "localhost"


def first_request(make_source: Callable[[], PinSource], pki: AppPKI, app: TLSServer) -> float:
    """Milliseconds from building the source to the end of the first request."""
    started = time.perf_counter()
    source = make_source()
    body = raw_https_get(pinned_context(source, cafile=pki.ca_file), app.port)
    elapsed = (time.perf_counter() - started) * 1000
    if body != b"ok":
        raise SystemExit(f"the first request failed: {body!r}")
    close = getattr(source, "close", None)
    if close is not None:
        close()
    return elapsed


def with_cache(
    pki: AppPKI, app: TLSServer, sim: PinServerSimulator, pin_server: TLSServer, rounds: int
) -> None:
    bootstrap = StaticPins({HOST: [pki.pin_a, pki.backup_pin]})
    cache = tempfile.mkdtemp(prefix="pinwarden-bench-")
    sim.rotate_online_key()  # the cache holds a followed keyring too: the walk is re-verified
    sim.publish({HOST: [pki.pin_a, pki.pin_b, pki.backup_pin]}, refresh_after=24 * 3600)
    url = server_url(pin_server, sim)

    def dynamic() -> DynamicPins:
        return DynamicPins(
            url,
            keyring=sim.shipped_keyring,
            bootstrap=bootstrap,
            cache_dir=cache,
            cafile=pki.ca_file,
            clock=sim.clock,
        )

    warm = DynamicPins(
        url,
        keyring=sim.shipped_keyring,
        bootstrap=bootstrap,
        cache_dir=cache,
        cafile=pki.ca_file,
        clock=sim.clock,
        background=False,
    )
    if warm.refresh().version != 1:
        raise SystemExit("could not fill the cache")
    requests_before = pin_server.count("/pinset")

    static_ms: list[float] = []
    dynamic_ms: list[float] = []
    build_ms: list[float] = []
    for round_number in range(rounds):
        order: list[tuple[str, Callable[[], PinSource]]] = [
            ("static", lambda: bootstrap),
            ("dynamic", dynamic),
        ]
        for name, make in order if round_number % 2 == 0 else order[::-1]:
            (static_ms if name == "static" else dynamic_ms).append(first_request(make, pki, app))
        started = time.perf_counter()
        dynamic().close()
        build_ms.append((time.perf_counter() - started) * 1000)
    static_median = statistics.median(static_ms)
    dynamic_median = statistics.median(dynamic_ms)
    print(f"1. cold start with a cache ({rounds} rounds, one new TLS connection each)")
    print(f"   first request, StaticPins:               median {static_median:7.2f} ms")
    print(f"   first request, DynamicPins from cache:   median {dynamic_median:7.2f} ms")
    print(
        f"   added by DynamicPins:                    {dynamic_median - static_median:+7.2f} ms"
        "  (goal <= 5 ms)"
    )
    build_median = statistics.median(build_ms)
    print(f"   DynamicPins(...) alone (load + verify):  median {build_median:7.2f} ms")
    print(
        f"   pin-server requests during the rounds:   "
        f"{pin_server.count('/pinset') - requests_before} (the cache is fresh)"
    )


class HeldPinServer:
    """Holds each pin-set response until ``release`` is set; counts answered responses."""

    def __init__(self, sim: PinServerSimulator) -> None:
        self.release = threading.Event()
        self.answered = 0
        self._respond = sim.respond
        sim.respond = self.respond  # type: ignore[method-assign]

    def respond(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        if path.endswith("/pinset"):
            self.release.wait(30)
            self.answered += 1
        return self._respond(method, path, headers, body)


def without_cache(
    pki: AppPKI, app: TLSServer, sim: PinServerSimulator, pin_server: TLSServer
) -> None:
    bootstrap = StaticPins({HOST: [pki.pin_a, pki.backup_pin]})
    url = server_url(pin_server, sim)
    held = HeldPinServer(sim)
    fetched = threading.Event()

    def on_event(event: PinEvent) -> None:
        if event.kind in (EventKind.FETCHED, EventKind.NOT_MODIFIED):
            fetched.set()

    asked = pin_server.count("/pinset")
    source = DynamicPins(
        url,
        keyring=sim.shipped_keyring,
        bootstrap=bootstrap,
        cafile=pki.ca_file,
        clock=sim.clock,
        on_event=on_event,
    )
    started = time.perf_counter()
    body = raw_https_get(pinned_context(source, cafile=pki.ca_file), app.port)
    elapsed = (time.perf_counter() - started) * 1000
    answered_before = held.answered
    held.release.set()
    if not fetched.wait(10):
        raise SystemExit("the background fetch never completed")
    source.close()
    print("2. cold start without a cache (the pin server holds its answers)")
    print(f"   first request: {body!r} in {elapsed:.2f} ms on the bootstrap pins")
    print(f"   pin-server answers before the first request finished: {answered_before}  (goal 0)")
    print(
        f"   pin-server requests in all: {pin_server.count('/pinset') - asked} "
        f"(the background fetch, answered after release: version {source.version})"
    )

    held.release.clear()
    released = threading.Timer(0.2, held.release.set)
    released.start()
    answered = held.answered
    started = time.perf_counter()
    waited = DynamicPins(
        url,
        keyring=sim.shipped_keyring,
        bootstrap=bootstrap,
        cafile=pki.ca_file,
        clock=sim.clock,
        wait_for_first_fetch=True,
        background=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    print(
        f"   with wait_for_first_fetch=True: {held.answered - answered} answer before the "
        f"first request (version {waited.version}, {elapsed:.0f} ms incl. a 200 ms hold)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        pki = make_app_pki(Path(directory))
        clock = FakeClock()
        sim = PinServerSimulator(clock)
        app = app_server(pki, pki.leaf_a).start()
        pin_server = simulator_server(sim, pki.server_context(pki.leaf_b)).start()
        try:
            with_cache(pki, app, sim, pin_server, args.rounds)
            without_cache(pki, app, sim, pin_server)
        finally:
            sim.close_streams()
            pin_server.stop()
            app.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
