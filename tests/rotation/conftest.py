"""Fixtures of the rotation tests: a lab (API host, its CA, the pin server with a published
channel) on loopback, made by the product's own ``pinwarden.rotation._lab``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pinwarden.rotation._lab import Lab
from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    database_url,
    postgres_database,
    postgres_url,
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab per test module; tests that change the channel or the host use ``fresh_lab``."""
    with Lab(tmp_path_factory.mktemp("lab")) as shared:
        yield shared


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(tmp_path / "lab") as own:
        yield own
