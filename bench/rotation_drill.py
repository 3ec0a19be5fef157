"""The rotation drill: failed requests during planned and emergency rotations, on loopback.

Runs the scenarios of ``pinwarden.rotation._drill`` (planned rotation, emergency rotation to a
key nobody pinned, 60 days untouched on an injected clock, an attacker's certificate from a
trusted CA throughout), prints a Markdown table, and with ``--write-docs`` puts it into
docs/rotation.md with the command that made it.

Run: ``.venv/bin/python bench/rotation_drill.py --clients 100`` (clients of each kind), in
``--processes`` client processes of ``--workers`` request threads each, making ``--rate`` API
requests per second in all. ``--min-interval S`` sets the dynamic clients'
``RefreshPolicy.min_interval`` (default: the client's own, 60 s); the emergency window depends on
it (docs/rotation.md, "The fetch budget"). ``--only emergency`` runs one scenario.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from pinwarden.rotation._drill import (
    DrillSettings,
    ScenarioResult,
    emergency,
    markdown_table,
    planned,
    untouched_days,
)
from pinwarden.rotation._fleet import FleetSettings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "rotation.md"
_SECTION = re.compile(r"(<!-- drill:begin -->\n).*?(<!-- drill:end -->)", re.DOTALL)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="clients of each kind (100)")
    parser.add_argument("--processes", type=int, default=4, help="client processes (4)")
    parser.add_argument("--workers", type=int, default=4, help="request threads a process (4)")
    parser.add_argument("--rate", type=float, default=200.0, help="API requests/s in all (200)")
    parser.add_argument("--min-interval", type=float, help="dynamic clients' min_interval, s")
    parser.add_argument("--outage", type=float, default=2.0, help="emergency: s before publish")
    parser.add_argument("--observe", type=float, default=3.0, help="s each phase runs (3)")
    parser.add_argument("--days", type=int, default=60, help="the untouched scenario's days")
    parser.add_argument(
        "--only", choices=["planned", "emergency", "untouched"], help="one scenario"
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/rotation.md")
    args = parser.parse_args()
    if min(args.clients, args.processes, args.workers) < 1 or not args.rate >= 0:
        parser.error("--clients, --processes and --workers are at least 1, --rate at least 0")
    return args


def _command(args: argparse.Namespace) -> str:
    words = [
        ".venv/bin/python bench/rotation_drill.py",
        f"--clients {args.clients} --processes {args.processes} --workers {args.workers}",
        f"--rate {args.rate:g}",
    ]
    if args.min_interval is not None:
        words.append(f"--min-interval {args.min_interval:g}")
    if args.only:
        words.append(f"--only {args.only}")
    return " ".join(words)


def main() -> int:
    args = _arguments()
    fleet = FleetSettings(
        clients=args.clients,
        processes=args.processes,
        workers=args.workers,
        rate=args.rate,
        min_interval=args.min_interval,
    )
    settings = DrillSettings(fleet, outage_seconds=args.outage, observe_seconds=args.observe)
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="rotation-drill-") as directory:
        for number, scenario in enumerate((planned, emergency)):
            if args.only in (None, scenario.__name__):
                print(f"running {scenario.__name__} with {args.clients} clients of each kind…")
                results.append(scenario(Path(directory) / f"{number}", settings))
        if args.only in (None, "untouched"):
            print(f"running {args.days} days untouched…")
            results.append(untouched_days(Path(directory) / "days", args.days))
    table = markdown_table(results)
    notes = [f"- {r.name}: {note}" for r in results for note in r.notes]
    took = ", ".join(f"{r.name} {r.seconds:.0f} s" for r in results)
    report = [f"`{_command(args)}` ({took}):", "", *table, *(["", *notes] if notes else [])]
    print("\n".join(report))
    if args.write_docs:
        text = DOCS.read_text()
        if not _SECTION.search(text):
            print(f"{DOCS}: no drill:begin ... drill:end section", file=sys.stderr)
            return 1
        DOCS.write_text(_SECTION.sub(lambda m: m[1] + "\n".join(report) + "\n" + m[2], text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
