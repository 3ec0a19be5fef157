"""Fixtures of the CT watch tests: test logs on 127.0.0.1 (tests/ct/ct_log.py) and the server
in this process (tests/operations/operations_harness.py), each over a copy of one data directory
made once: making one costs seconds of scrypt, a copy milliseconds."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from pinwarden.server import DataDirectory, ServerConfig
from pinwarden.server._database import sqlite_url
from tests.ct.ct_log import TestLog
from tests.operations.operations_harness import OperationsServer
from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    SERVER_PASSPHRASE,
    InitializedData,
    make_data_dir,
    template_key_dir,
    trust_ca,
)


@pytest.fixture(scope="session")
def template_data(
    tmp_path_factory: pytest.TempPathFactory,
    template_key_dir: Path,  # noqa: F811
) -> InitializedData:
    return make_data_dir(tmp_path_factory.mktemp("ct") / "data", None, template_key_dir)


@pytest.fixture
def operations_server(
    tmp_path: Path,
    template_data: InitializedData,
    trust_ca: tuple[trustme.CA, str],  # noqa: F811
) -> Iterator[Callable[..., OperationsServer]]:
    """The operations harness's in-process server (its rounds run by the tests) over a fresh
    copy of the template data directory; ``config`` overrides settings."""
    servers: list[OperationsServer] = []

    def start(**config: Any) -> OperationsServer:
        path = tmp_path / f"data{len(servers)}"
        shutil.copytree(template_data.data.path, path)
        data = DataDirectory(path)
        url = sqlite_url(data.database_file)
        initialized = InitializedData(
            data, url, template_data.admin_token, template_data.offline_key_dir
        )
        settings: dict[str, Any] = {
            "database_url": url,
            "key_dir": data.key_dir,
            "passphrase": SERVER_PASSPHRASE,
            "ca_file": trust_ca[1],
            "poll_seconds": 3600.0,
            "operations": False,
            **config,
        }
        server = OperationsServer(initialized, ServerConfig(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def test_logs() -> Iterator[Callable[..., TestLog]]:
    """Start a test log (``TestLog.start`` arguments); all are stopped at the end."""
    started: list[TestLog] = []

    def start(**kwargs: Any) -> TestLog:
        log = TestLog()
        log.start(**kwargs)
        started.append(log)
        return log

    yield start
    for log in started:
        log.stop()


def write_list(path: Path, *lists: dict[str, Any]) -> list[str]:
    """Each log list written to a file under ``path``; their paths, as sources."""
    sources = []
    for index, document in enumerate(lists):
        target = path / f"log_list_{index}.json"
        target.write_text(json.dumps(document))
        sources.append(str(target))
    return sources
