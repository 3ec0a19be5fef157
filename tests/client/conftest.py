"""Fixtures of the client tests: the PKIs, the recording HTTPS servers and the CONNECT proxy.

The servers live for the whole session (starting them is most of the cost); each test starts with
empty records. Nothing here imports server code: the client must stand on its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client._tls_harness import Servers
from tests.support.pki import PKI, make_pki
from tests.support.tls_servers import running


def pytest_configure(config: pytest.Config) -> None:
    # Many tests pin one key on purpose; test_client_errors.py checks the warning itself.
    config.addinivalue_line("filterwarnings", "ignore::pinwarden.client.SinglePinWarning")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def _running_servers(pki: PKI) -> Iterator[Servers]:
    servers = Servers(pki)
    with running(*servers.all, servers.proxy):
        yield servers


@pytest.fixture
def servers(_running_servers: Servers) -> Servers:
    for server in (*_running_servers.all, _running_servers.proxy):
        server.reset()
    return _running_servers
