"""``pinwarden monitor --once``: check every pinned host now, from here (cron, CI).

The server says what to check (``GET /v1/admin/monitor/targets``: each enabled rule's host, its
published pins and probe settings); this machine connects with the scanner the server's own
monitor uses and judges each chain the same way, with no memory of earlier checks (so no
"key changed" and an unreachable host counts at once). A progress bar on a terminal (stderr), a
table at the end (stdout). docs/operations.md says what each finding means.

Exit status: 0 nothing needs attention; 1 something does; 2 bad input; 3 the server cannot be
reached or answered something else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pinwarden.cli._admin_client import add_connection_options, client_from_args
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    print_json,
    printable,
)

if TYPE_CHECKING:
    from pinwarden.server.monitor import HostReport, MonitorRound, RuleTarget, ScanResult

_MAX_TARGETS = 100_000


def _bounded(low: float, high: float, kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    parse.__name__ = f"{kind.__name__} from {low:g} to {high:g}"  # argparse's message names it
    return parse


def register(subparsers: Any) -> None:
    help_text = "check every pinned host now and say what needs attention (exit 1 if anything)"
    parser = subparsers.add_parser("monitor", help=help_text, description=help_text)
    parser.add_argument(
        "--once", action="store_true", help="check once and exit (the schedule runs in serve)"
    )
    parser.add_argument("--channel", help="only this channel (default: every channel)")
    parser.add_argument(
        "--hosts-ca-file", help="trust these CA certificates for the checked hosts too"
    )
    parser.add_argument(
        "--concurrency", type=_bounded(1, 1000, int), default=100, help="connections at once"
    )
    parser.add_argument(
        "--timeout", type=_bounded(0.1, 120, float), default=10.0, help="per host, seconds"
    )
    add_connection_options(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.once:
        raise CommandError(
            "the monitor's schedule runs inside pinwarden serve; give --once to check now"
        )
    try:
        from pinwarden.server.monitor import MonitorPolicy, check_targets
    except ImportError:
        raise CommandError(
            "the monitor needs the server's packages: pip install 'pinwarden[server]'",
            EXIT_INPUT,
        ) from None
    client = client_from_args(args)
    query = {"channel": args.channel} if args.channel is not None else None
    answer = client.call("GET", "/monitor/targets", query=query)
    targets, warning_days, skipped = _targets_of(answer, client.base_url)
    policy = MonitorPolicy(
        expiry_warning=timedelta(days=warning_days),
        unreachable_after=1,
        concurrency=args.concurrency,
        timeout=args.timeout,
    )
    with _progress(len(targets), enabled=sys.stderr.isatty() and not args.json) as advance:
        found = asyncio.run(
            check_targets(targets, cafile=args.hosts_ca_file, policy=policy, on_result=advance)
        )
    if args.json:
        print_json({**found.view(), "skipped": skipped})
    else:
        _print_table(found, skipped)
    return EXIT_FAILED if found.needs_attention else EXIT_OK


def _targets_of(answer: Any, server: str) -> tuple[list[RuleTarget], int, list[str]]:
    """The targets, the expiry warning in days and the skipped rules, checked: the answer came
    over the network."""
    from pinwarden.server.monitor import RuleTarget

    def refuse(why: str) -> CommandError:
        return CommandError(
            f"{server} answered monitor targets of another shape ({why}): is it a pinwarden "
            "server of the same version?",
            EXIT_NETWORK,
        )

    if not isinstance(answer, dict) or not isinstance(answer.get("targets"), list):
        raise refuse("no list of targets")
    if len(answer["targets"]) > _MAX_TARGETS:
        raise refuse(f"over {_MAX_TARGETS} targets")
    days = answer.get("expiry_warning_days")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise refuse("no expiry warning of 1 to 3650 days")
    skipped = answer.get("skipped")
    if not isinstance(skipped, list) or not all(isinstance(s, dict) for s in skipped):
        raise refuse("no list of skipped rules")
    try:
        targets = [RuleTarget.from_view(target) for target in answer["targets"]]
    except ValueError as error:
        raise refuse(str(error)) from None
    notes = [
        printable(f"{s.get('channel')} {s.get('pattern')}: {s.get('reason')}", 300)
        for s in skipped[:1000]
    ]
    return targets, days, notes


@contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[ScanResult], None] | None]:
    """A ``rich`` progress bar on stderr while hosts are checked (a terminal only)."""
    if not enabled or total == 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("checking hosts", total=total)
        yield lambda result: progress.advance(task)


def _print_table(found: MonitorRound, skipped: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"pinwarden monitor, {found.at.isoformat(timespec='seconds')}")
    for column in ("channel", "rule", "host", "leaf expires", "matched", "status"):
        table.add_column(column, overflow="fold")  # folded, never cut: a log must say it all
    for report in found.reports:
        # Text(), never markup: every value here came from a server or a host.
        table.add_row(*(Text(printable(cell, 200)) for cell in _row(report)))
    # A terminal's own width; a pipe or a cron log gets wide lines rather than folded ones.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(table)
    for note in skipped:
        console.print(Text(f"not checked: {note}"))
    needing = sum(report.needs_attention for report in found.reports)
    console.print(Text(f"{needing} of {len(found.reports)} hosts need attention"))


def _row(report: HostReport) -> list[str]:
    target, result = report.target, report.result
    host = f"{target.scan.server_name}:{target.scan.port}"
    if result.error is not None:
        return [target.channel, target.pattern, host, "", "", f"unreachable: {result.error}"]
    matched = ", ".join(
        f"{match.position}{' (backup)' if match.backup else ''}" for match in report.matches
    )
    status = "; ".join(c.kind.value for c in report.conditions) or "ok"
    if target.published is None:
        status = f"{status} (rule not published)"
    expires = result.chain[0].not_after.date().isoformat()
    return [target.channel, target.pattern, host, expires, matched or "none", status]
