"""Counters and gauges, exposed at ``/metrics`` by ``prometheus-client``.

Counters are plain integers updated on the event loop: the pin-set path pays one dictionary
increment, not a lock. ``Metrics`` is a custom collector over them, rendered on its own, never
through prometheus-client's global default registry: each app (tests make many in one process)
has its own numbers. prometheus-client writes every value exactly (``1.234567e+06``, not
``%g``'s ``1.23457e+06``), escapes label values, and answers a scraper that asks for
OpenMetrics in OpenMetrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

# The labels and the value of one sample of a gauge.
_Sample = tuple[dict[str, str], float]


def _family(
    kind: type[CounterMetricFamily | GaugeMetricFamily],
    name: str,
    help_text: str,
    samples: Iterable[_Sample],
) -> Metric:
    """One metric family; every sample of a family has the same label names."""
    samples = list(samples)
    label_names = sorted(samples[0][0]) if samples else []
    family = kind(name, help_text, labels=label_names)
    for labels, value in samples:
        family.add_metric([labels[label] for label in label_names], value)
    return family


def _by(label: str, counts: Counter[int] | Counter[str]) -> list[_Sample]:
    return [({label: str(key)}, count) for key, count in sorted(counts.items())]


class Metrics(Collector):
    def __init__(self) -> None:
        self.pinset_responses: Counter[int] = Counter()
        self.keyring_responses: Counter[int] = Counter()
        self.reports: Counter[str] = Counter()
        self.publishes: Counter[str] = Counter()
        self.sse_refused = 0
        self.database_up = 1
        self._gauges: list[tuple[str, str, Callable[[], Iterable[_Sample]]]] = []
        self._counters: list[tuple[str, str, Callable[[], Iterable[_Sample]]]] = []

    def add_gauge(
        self, name: str, help_text: str, samples: Callable[[], Iterable[_Sample]]
    ) -> None:
        """A gauge read when ``/metrics`` is scraped."""
        self._gauges.append((name, help_text, samples))

    def add_counter(
        self, name: str, help_text: str, samples: Callable[[], Iterable[_Sample]]
    ) -> None:
        """A counter kept elsewhere (an operations room), read when ``/metrics`` is scraped."""
        self._counters.append((name, help_text, samples))

    def collect(self) -> Iterator[Metric]:
        """The ``Collector`` protocol of prometheus-client: every family, read now."""
        counter, gauge = CounterMetricFamily, GaugeMetricFamily
        yield _family(
            counter,
            "pinwarden_pinset_responses_total",
            "Pin-set responses by HTTP status.",
            _by("status", self.pinset_responses),
        )
        yield _family(
            counter,
            "pinwarden_keyring_responses_total",
            "Keyring responses by HTTP status.",
            _by("status", self.keyring_responses),
        )
        yield _family(
            counter,
            "pinwarden_reports_total",
            "Violation reports by outcome.",
            _by("outcome", self.reports),
        )
        yield _family(
            counter,
            "pinwarden_publishes_total",
            "Publish requests by outcome.",
            _by("outcome", self.publishes),
        )
        yield _family(
            counter,
            "pinwarden_sse_refused_total",
            "Event streams refused because a stream cap was reached.",
            [({}, self.sse_refused)],
        )
        yield _family(
            gauge,
            "pinwarden_database_up",
            "1 when the last database access succeeded.",
            [({}, self.database_up)],
        )
        for name, help_text, samples in self._gauges:
            yield _family(gauge, name, help_text, samples())
        for name, help_text, samples in self._counters:
            yield _family(counter, name, help_text, samples())

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The body and content type for a scraper's ``Accept`` header: the Prometheus text
        format 0.0.4 unless it asks for OpenMetrics or text 1.0.0."""
        try:
            encode, content_type = choose_encoder(accept)
        except (TypeError, ValueError):  # it compares an unparsable "version=abc" with ints
            encode, content_type = choose_encoder("")
        return encode(self), content_type
