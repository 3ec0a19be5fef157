"""``pinwarden ct``: the Certificate Transparency watch from the command line (docs/ct.md).

- ``ct watch --once``: one round over every followed log against the server's database (for
  cron, where ``serve`` does not run the watch): what is new since the last round, verified,
  matched against the published rules, recorded and alerted as the server would.
- ``ct logs``: the logs the lists name and the watch follows, with the position reached.
- ``ct sightings``: the certificates seen for pinned hosts, unpinned keys first.

Exit status of ``watch``: 0 nothing new needs attention; 1 a certificate with an unpinned key or
a misbehaving log; 2 bad input; 3 a log or log list could not be read, or another process holds
the ``ct-watch`` lease (the server's watch, or another ``ct watch --once``).
"""

from __future__ import annotations

import argparse
import os
import socket
from datetime import timedelta
from typing import Any

from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    print_json,
    printable,
)
from pinwarden.cli._server import (
    data_dir,
    data_option,
    database_errors,
    require_server_packages,
)

__all__ = ["register"]

_MAX_SOURCES = 20
_LEASE = timedelta(minutes=30)  # renewed every 10 minutes of the round, released at its end


def _positive(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    parse.__name__ = f"integer from {low} to {high}"
    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not 0.5 <= value <= 600:
        raise ValueError(text)
    return value


_seconds.__name__ = "number of seconds from 0.5 to 600"


def _log_list_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-list",
        action="append",
        default=[],
        metavar="FILE_OR_URL",
        help="a v3 log list (repeatable; default: Chrome's and Apple's, fetched)",
    )
    parser.add_argument("--ca-file", help="extra CA certificates for reaching the logs")
    parser.add_argument(
        "--timeout", type=_seconds, default=20.0, help="per request to a log, seconds"
    )


def register(subparsers: Any) -> None:
    ct = subparsers.add_parser(
        "ct",
        help="Certificate Transparency: watch the logs for certificates of pinned hosts",
        description="Watch Certificate Transparency logs for certificates of pinned hosts "
        "whose key is not pinned (docs/ct.md).",
    )
    commands = ct.add_subparsers(dest="ct_command", required=True, metavar="COMMAND")

    watch = commands.add_parser(
        "watch", help="one round of the watch now (cron); exit 1 if something needs attention"
    )
    watch.add_argument("--once", action="store_true", help="run one round and exit")
    data_option(watch)
    _log_list_option(watch)
    watch.add_argument(
        "--from-start",
        action="store_true",
        help="a log seen for the first time is read from its first entry (default: its end)",
    )
    watch.add_argument(
        "--batch-size",
        type=_positive(1, 1000),
        default=256,
        help="entries per get-entries request (RFC 6962 logs)",
    )
    watch.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="NAME",
        help="queue the alerts for this webhook endpoint of the server (repeatable)",
    )
    watch.add_argument("--json", action="store_true", help="print JSON")
    watch.set_defaults(handler=_run_watch)

    logs = commands.add_parser("logs", help="the logs the log lists name and the watch follows")
    _log_list_option(logs)
    logs.add_argument("--json", action="store_true", help="print JSON")
    logs.set_defaults(handler=_run_logs)

    sightings = commands.add_parser(
        "sightings", help="certificates logged for pinned hosts, unpinned keys first"
    )
    data_option(sightings)
    sightings.add_argument("--channel", help="only this channel")
    sightings.add_argument(
        "--limit", type=_positive(1, 10_000), default=100, help="at most this many"
    )
    sightings.add_argument("--json", action="store_true", help="print JSON")
    sightings.set_defaults(handler=_run_sightings)


def _sources(args: argparse.Namespace) -> list[str]:
    from pinwarden.server.ct import APPLE_LOG_LIST, CHROME_LOG_LIST

    given: list[str] = args.log_list or [CHROME_LOG_LIST, APPLE_LOG_LIST]
    if len(given) > _MAX_SOURCES:
        raise CommandError(f"--log-list: at most {_MAX_SOURCES} lists")
    for source in given:
        _check_text("--log-list", source)
    return given


def _check_text(option: str, text: str) -> None:
    """Command-line text the database or a path can hold: no NUL, no lone surrogate."""
    if not text or "\0" in text or len(text) > 4096:
        raise CommandError(f"{option}: 1 to 4096 characters without NUL")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise CommandError(f"{option}: not valid Unicode") from None


def _run_watch(args: argparse.Namespace) -> int:
    if not args.once:
        raise CommandError("the watch's schedule runs inside pinwarden serve; give --once")
    require_server_packages()
    from pinwarden.server import make_engine
    from pinwarden.server._database import make_session_factory
    from pinwarden.server.alerts import AlertBook
    from pinwarden.server.ct import CtWatcher, LogFetchError

    sources = _sources(args)
    data = data_dir(args, initialized=True)
    with database_errors():
        engine = make_engine(data.database_url(args.database_url))
        try:
            watcher = CtWatcher(
                make_session_factory(engine),
                AlertBook(args.webhook),
                sources,
                cafile=args.ca_file,
                timeout=args.timeout,
                batch_size=args.batch_size,
                start_at_end=not args.from_start,
            )
            holder = f"pinwarden ct watch {socket.gethostname()[:100]} {os.getpid()}"
            try:
                leased = watcher.run_leased(holder, _LEASE, release=True)
            except LogFetchError as error:
                raise CommandError(str(error), EXIT_NETWORK) from None
        finally:
            engine.dispose()
    if leased is None:
        raise CommandError(
            "another pinwarden (a server or ct watch) is running the CT watch now (lease "
            "ct-watch); try again later",
            EXIT_NETWORK,
        )
    found = leased
    if args.json:
        print_json(found.view())
    else:
        _print_round(found)
    if found.needs_attention:
        return EXIT_FAILED
    return EXIT_NETWORK if any(log.error for log in found.logs) else EXIT_OK


def _print_round(found: Any) -> None:
    for log in found.logs:
        state = (
            f"MISBEHAVES: {log.misbehaved}"
            if log.misbehaved
            else f"error: {log.error}"
            if log.error
            else f"{log.end - log.start} new entries"
        )
        print(printable(f"{log.description}: {log.start}..{log.end} {state}", 400))
    for sighting in found.sightings:
        mark = "pinned" if sighting["pinned"] else "UNPINNED KEY"
        names = ", ".join(sighting["names"][:5])
        print(printable(f"{mark} {sighting['channel']} {sighting['pattern']}: {names}", 400))
    for note in found.notes:
        print(printable(f"note: {note}", 400))
    print(f"{found.alerts_opened} alert(s) opened")


def _run_logs(args: argparse.Namespace) -> int:
    require_server_packages()
    from datetime import datetime, timezone

    from pinwarden.server.ct import Fetcher, LogListError, load_log_lists

    with Fetcher(timeout=args.timeout, cafile=args.ca_file) as fetcher:
        try:
            logs, notes = load_log_lists(_sources(args), fetcher, datetime.now(timezone.utc))
        except LogListError as error:
            raise CommandError(str(error), EXIT_NETWORK) from None
    if args.json:
        print_json({"logs": [log.view() for log in logs], "notes": notes})
        return EXIT_OK
    for log in logs:
        print(printable(f"{log.name}  {log.api:8} {log.state:9} {log.description}  {log.url}", 400))
    for note in notes:
        print(printable(f"note: {note}", 400))
    return EXIT_OK


def _run_sightings(args: argparse.Namespace) -> int:
    require_server_packages()
    from sqlalchemy import select

    from pinwarden.server import make_engine
    from pinwarden.server._database import make_session_factory
    from pinwarden.server.ct import CtSighting

    data = data_dir(args, initialized=True)
    with database_errors():
        engine = make_engine(data.database_url(args.database_url))
        try:
            query = (
                select(CtSighting)
                .order_by(CtSighting.pinned, CtSighting.id.desc())
                .limit(args.limit)
            )
            if args.channel is not None:
                _check_text("--channel", args.channel)
                query = query.where(CtSighting.channel == args.channel)
            with make_session_factory(engine)() as session:
                rows = [row.view() for row in session.scalars(query)]
        finally:
            engine.dispose()
    if args.json:
        print_json({"sightings": rows})
        return EXIT_OK
    for row in rows:
        mark = "pinned  " if row["pinned"] else "UNPINNED"
        print(
            printable(
                f"{mark} {row['channel']} {row['pattern']} {', '.join(row['names'][:5])} "
                f"key {row['leaf_pin']} seen {row['seen_at']}",
                500,
            )
        )
    return EXIT_OK
