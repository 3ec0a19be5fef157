"""``/metrics`` as prometheus-client writes it, read back by prometheus-client's parsers."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from pinwarden.server._metrics import Metrics
from tests.server.server_harness import LiveServer, exposed_samples

_OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


def _text(metrics: Metrics, accept: str = "*/*") -> str:
    body, _ = metrics.exposition(accept)
    return body.decode()


def test_a_counter_past_a_million_is_exact() -> None:
    """The defect: ``%g`` wrote 1_234_567 as ``1.23457e+06``, a value off by 33."""
    metrics = Metrics()
    metrics.pinset_responses[200] = 1_234_567
    metrics.reports["stored"] = 10**15 + 1  # still exact in a float
    samples = exposed_samples(_text(metrics))
    assert samples[("pinwarden_pinset_responses_total", (("status", "200"),))] == 1_234_567
    assert samples[("pinwarden_reports_total", (("outcome", "stored"),))] == 10**15 + 1


def test_every_family_has_help_and_type_and_parses() -> None:
    metrics = Metrics()
    metrics.sse_refused = 3
    text = _text(metrics)
    for name in (
        "pinwarden_pinset_responses_total",
        "pinwarden_keyring_responses_total",
        "pinwarden_reports_total",
        "pinwarden_publishes_total",
        "pinwarden_sse_refused_total",
    ):
        assert f"# TYPE {name} counter" in text and f"# HELP {name} " in text
    assert "# TYPE pinwarden_database_up gauge" in text
    samples = exposed_samples(text)
    assert samples[("pinwarden_sse_refused_total", ())] == 3
    assert samples[("pinwarden_database_up", ())] == 1


def test_hostile_label_values_are_escaped() -> None:
    hostile = 'a"b\\c\nd\u2028\u00e9}{=,'
    metrics = Metrics()
    metrics.add_gauge("pinwarden_test_version", "A gauge.", lambda: [({"channel": hostile}, 7)])
    samples = exposed_samples(_text(metrics))
    assert samples[("pinwarden_test_version", (("channel", hostile),))] == 7


def test_non_finite_and_huge_gauge_values_parse() -> None:
    metrics = Metrics()
    metrics.add_gauge(
        "pinwarden_test_values",
        "A gauge.",
        lambda: [({"k": "inf"}, math.inf), ({"k": "nan"}, math.nan), ({"k": "big"}, 1e300)],
    )
    samples = exposed_samples(_text(metrics))
    assert samples[("pinwarden_test_values", (("k", "inf"),))] == math.inf
    assert math.isnan(samples[("pinwarden_test_values", (("k", "nan"),))])
    assert samples[("pinwarden_test_values", (("k", "big"),))] == 1e300


def test_a_scraper_that_asks_for_openmetrics_gets_it() -> None:
    metrics = Metrics()
    metrics.pinset_responses[304] = 2_000_001
    body, content_type = metrics.exposition(_OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    parsed = openmetrics_families(body.decode())  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    [sample] = families["pinwarden_pinset_responses"].samples
    assert sample.labels == {"status": "304"} and sample.value == 2_000_001


_HOSTILE_ACCEPT = (
    "",
    "*/*",
    "text/plain",
    "garbage;;;\0",
    "x" * 100_000,
    # prometheus-client's negotiation raises TypeError on these: they must not become a 500.
    "application/openmetrics-text; version=abc",
    "text/plain; version=x.y",
    "text/plain; version=1.0.0x",
)


def test_a_plain_or_hostile_accept_header_gets_the_0_0_4_text_format() -> None:
    for accept in _HOSTILE_ACCEPT:
        body, content_type = Metrics().exposition(accept)
        assert content_type == "text/plain; version=0.0.4; charset=utf-8", accept
        assert exposed_samples(body.decode())[("pinwarden_database_up", ())] == 1


def test_metrics_over_http_answer_every_accept_header_with_200(live_server: LiveServer) -> None:
    sendable = [accept for accept in _HOSTILE_ACCEPT if "\0" not in accept and len(accept) < 8000]
    for accept in (*sendable, "y" * 7_000, _OPENMETRICS):
        answer = httpx.get(f"{live_server.url}/metrics", headers={"accept": accept})
        assert answer.status_code == 200, accept


def test_apps_in_one_process_keep_their_own_numbers() -> None:
    first, second = Metrics(), Metrics()
    first.publishes["published"] = 5
    assert ("pinwarden_publishes_total", (("outcome", "published"),)) not in exposed_samples(
        _text(second)
    )
    default_registry = prometheus_client.generate_latest().decode()
    assert "pinwarden_" not in default_registry  # nothing registered globally
