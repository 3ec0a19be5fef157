"""Counters and gauges, exposed at ``/metrics`` in the Prometheus text format (version 0.0.4).

Counters are plain integers updated on the event loop: the pin-set path pays one dictionary
increment, not a lock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

__all__ = ["Metrics"]

_Sample = tuple[dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return (
        "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items())) + "}"
    )


class Metrics:
    def __init__(self) -> None:
        self.pinset_responses: Counter[int] = Counter()
        self.keyring_responses: Counter[int] = Counter()
        self.reports: Counter[str] = Counter()
        self.publishes: Counter[str] = Counter()
        self.sse_refused = 0
        self.database_up = 1
        self._gauges: list[tuple[str, str, Callable[[], Iterable[_Sample]]]] = []

    def add_gauge(
        self, name: str, help_text: str, samples: Callable[[], Iterable[_Sample]]
    ) -> None:
        """A gauge read when ``/metrics`` is scraped."""
        self._gauges.append((name, help_text, samples))

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: Iterable[_Sample]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{_labels(labels)} {value:g}" for labels, value in samples)

        family(
            "pinwarden_pinset_responses_total",
            "counter",
            "Pin-set responses by HTTP status.",
            (({"status": str(code)}, n) for code, n in sorted(self.pinset_responses.items())),
        )
        family(
            "pinwarden_keyring_responses_total",
            "counter",
            "Keyring responses by HTTP status.",
            (({"status": str(code)}, n) for code, n in sorted(self.keyring_responses.items())),
        )
        family(
            "pinwarden_reports_total",
            "counter",
            "Violation reports by outcome.",
            (({"outcome": key}, n) for key, n in sorted(self.reports.items())),
        )
        family(
            "pinwarden_publishes_total",
            "counter",
            "Publish requests by outcome.",
            (({"outcome": key}, n) for key, n in sorted(self.publishes.items())),
        )
        family(
            "pinwarden_sse_refused_total",
            "counter",
            "Event streams refused because a stream cap was reached.",
            [({}, self.sse_refused)],
        )
        family(
            "pinwarden_database_up",
            "gauge",
            "1 when the last database access succeeded.",
            [({}, self.database_up)],
        )
        for name, help_text, samples in self._gauges:
            family(name, "gauge", help_text, samples())
        return "\n".join(lines) + "\n"
