"""Hostile input from the admin API's own OpenAPI (schemathesis, stateless) and against the
public report endpoint (hypothesis): never a 5xx, never a false "database down" (issue 13,
"Figures", hostile input).

Bounded: ``FUZZ_EXAMPLES`` cases per operation (``make test``), or ``PINWARDEN_FUZZ_EXAMPLES``
(``make test-reliability`` sets 100). The routes that make this server connect to the hosts it
is told about (publish, rollback, the monitor, applying a suggestion) are left out: tests never
leave 127.0.0.1, and their bodies are covered by ``test_hostile_input.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.server.server_harness import (
    SERVER_PASSPHRASE,
    exposed_samples,
    make_data_dir,
    run_uvicorn_in_thread,
)

FUZZ_EXAMPLES = int(os.environ.get("PINWARDEN_FUZZ_EXAMPLES", "20"))
# They connect to the hosts named in the request or in the rules (tests stay on loopback).
_OUTBOUND = r"/(publish|rollback|run|apply|resign)$"
_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
)


class FuzzedServer:
    def __init__(self, url: str, token: str, services: Any) -> None:
        self.url, self.token, self.services = url, token, services

    def assert_database_up(self) -> None:
        assert self.services.database_up, "a request made the server report its database down"
        health = httpx.get(f"{self.url}/healthz", timeout=10).json()
        assert health["database"] == "ok"
        samples = exposed_samples(httpx.get(f"{self.url}/metrics", timeout=10).text)
        assert samples[("pinwarden_database_up", ())] == 1


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzzed_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    template_key_dir: Path,
) -> Iterator[FuzzedServer]:
    """One server per backend for the module (no background operations: nothing connects out)."""
    from pinwarden.server import ServerConfig, create_app

    data_dir = tmp_path_factory.mktemp("fuzzed") / "data"
    database_url = (
        None if request.param == "sqlite" else str(request.getfixturevalue("postgres_database"))
    )
    initialized = make_data_dir(data_dir, database_url, template_key_dir)
    config = ServerConfig(
        database_url=initialized.database_url,
        key_dir=initialized.data.key_dir,
        passphrase=SERVER_PASSPHRASE,
        operations=False,
        poll_seconds=0.2,
        # Every fuzzed report reaches the parser and the database, not the rate limit.
        report_burst=1_000_000,
        report_total_burst=1_000_000,
    )
    app = create_app(config)
    url, stop = run_uvicorn_in_thread(app)
    try:
        yield FuzzedServer(url, initialized.admin_token, app.services)
    finally:
        stop()


def test_no_admin_operation_answers_a_5xx(fuzzed_server: FuzzedServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/v1/admin/openapi.json")
    schema.config.update(
        base_url=f"{fuzzed_server.url}/v1/admin",
        headers={"authorization": f"Bearer {fuzzed_server.token}"},
    )
    schema = schema.exclude(path_regex=_OUTBOUND)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @_SETTINGS
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error], timeout=30)

        try:
            call()
        except Exception as error:  # every operation runs; the failures are listed at the end
            failures.append(f"{operation.label}: {str(error)[:600]}")
    assert not failures, "\n".join(failures)
    fuzzed_server.assert_database_up()


# Any text, and the strings databases choke on (hypothesis' text never holds a lone surrogate).
_TEXT = st.text(max_size=40) | st.sampled_from(["\ud800", "a\udfffb", "\x00", "x" * 400])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)
_REPORT_MEMBERS = ["port", "noted-hostname", "known-pins", "app-id", "pinset-version"]
_REPORTS = st.fixed_dictionaries(
    {"hostname": _TEXT}, optional={member: _TEXT | _JSON for member in _REPORT_MEMBERS}
) | st.dictionaries(_TEXT, _JSON, max_size=4)
_BODIES = (
    _REPORTS.map(lambda report: json.dumps(report).encode())
    | _JSON.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=200)
    | st.integers(1, 20_000).map(lambda depth: b"[" * depth + b"]" * depth)
)


def test_no_report_answers_a_5xx(fuzzed_server: FuzzedServer) -> None:
    """Any body under the cap: a 202 or a 4xx."""
    with httpx.Client(base_url=fuzzed_server.url, timeout=30) as client:

        @_SETTINGS
        @given(body=_BODIES)
        def post(body: bytes) -> None:
            answer = client.post(
                "/v1/reports", content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code < 500, (body[:200], answer.text[:300])
            assert answer.status_code != 429  # the limits are lifted for this server

        post()
    fuzzed_server.assert_database_up()
