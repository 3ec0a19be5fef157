"""Fixtures of the dashboard tests: the server's harness (a real app under uvicorn), on SQLite
only: the dashboard reads through the server's modules, whose PostgreSQL behaviour their own
suites test; the ``ui_sessions`` migration is checked on both in tests/operations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dynamic.dynamic_harness import app_server
from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    live_server_factory,
    pin_server_factory,
    template_key_dir,
    tls_host_factory,
    trust_ca,
)
from tests.support.pki import AppPKI, make_app_pki
from tests.support.tls_servers import TLSServer
from tests.ui.browser_harness import browser  # noqa: F401 - one Chromium per module


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


@pytest.fixture(scope="session")
def app_pki(tmp_path_factory: pytest.TempPathFactory) -> AppPKI:
    """A CA, the app host's two leaf keys (A, then B after a rotation) and a backup pin."""
    return make_app_pki(tmp_path_factory.mktemp("ui-pki"))


@pytest.fixture
def app_host(app_pki: AppPKI) -> Iterator[TLSServer]:
    """The app host (``localhost`` on 127.0.0.1), serving leaf A until a test swaps its key."""
    server = app_server(app_pki, app_pki.leaf_a).start()
    yield server
    server.stop()


@pytest.fixture
def rotated_host(app_pki: AppPKI) -> Iterator[TLSServer]:
    """Another instance of the app host already on leaf B: what a client reaching it refuses."""
    server = app_server(app_pki, app_pki.leaf_b).start()
    yield server
    server.stop()
