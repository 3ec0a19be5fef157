"""The CT watch's samples for ``/metrics`` (read when scraped, kept by the watcher)."""

from __future__ import annotations

from pinwarden.server._metrics import Metrics
from pinwarden.server.ct._watch import CtWatcher

__all__ = ["add_ct_metrics"]


def add_ct_metrics(metrics: Metrics, watcher: CtWatcher) -> None:
    metrics.add_counter(
        "pinwarden_ct_entries_total",
        "CT log entries read by the watch, by result (read, matched, unparsable).",
        lambda: [({"result": r}, n) for r, n in sorted(watcher.entries.items())],
    )
    metrics.add_counter(
        "pinwarden_ct_rounds_total",
        "CT watch rounds by outcome (ok, failed).",
        lambda: [({"outcome": o}, n) for o, n in sorted(watcher.rounds.items())],
    )
    metrics.add_gauge(
        "pinwarden_ct_log_position",
        "Entries of each CT log read and verified (its tree size at the last good round).",
        lambda: [({"log": log}, size) for log, size in sorted(watcher.positions.items())],
    )
