"""Fixtures of the dynamic-client tests: the clock, the app PKI and its TLS servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dynamic.dynamic_harness import app_server
from tests.dynamic.pin_server_simulator import PinServerSimulator
from tests.support.clock import FakeClock
from tests.support.pki import AppPKI, make_app_pki
from tests.support.tls_servers import TLSServer


@pytest.fixture(scope="session")
def app_pki(tmp_path_factory: pytest.TempPathFactory) -> AppPKI:
    return make_app_pki(tmp_path_factory.mktemp("dynamic-pki"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> PinServerSimulator:
    """An in-memory pin server on the test's clock (channel ``pin_server_simulator.CHANNEL``)."""
    return PinServerSimulator(clock)


@pytest.fixture
def server_a(app_pki: AppPKI) -> Iterator[TLSServer]:
    """The app host, serving leaf A."""
    server = app_server(app_pki, app_pki.leaf_a).start()
    yield server
    server.stop()


@pytest.fixture
def server_b(app_pki: AppPKI) -> Iterator[TLSServer]:
    """The app host after a key change, serving leaf B."""
    server = app_server(app_pki, app_pki.leaf_b).start()
    yield server
    server.stop()
