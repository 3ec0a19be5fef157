"""``pinwarden rotate plan HOST --channel C``: the steps of a planned key rotation, checked live.

Exit status: 0 the plan is printed; 1 the host's live chain matches no published pin (clients
refuse it now); 2 bad input; 3 the pin server or the host could not be reached.
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import datetime, timezone
from typing import Any

from pinwarden._hosts import normalize_host
from pinwarden._pins import parse_pin, spki_pin
from pinwarden.cli._admin_client import add_connection_options, client_from_args
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    print_json,
    printable,
    read_input_file,
)
from pinwarden.cli._preflight import add_timeout_option, checked_timeout
from pinwarden.document import PinSet
from pinwarden.errors import InvalidHostError, PinwardenError
from pinwarden.rotation import (
    DEFAULT_THRESHOLD,
    ChannelPinsError,
    LiveChainError,
    RotationPlan,
    Uptake,
    UptakeError,
    fetch_published,
    live_chain_pins,
    plan_rotation,
    poll_window,
    read_uptake,
)

MIN_WINDOW = 60  # seconds: the counts are kept per minute
# The server keeps 14 days of counts (pinwarden.server._fetch_counts; not imported: the client
# install has no server extra).
FETCH_RETENTION_SECONDS = 14 * 24 * 3600


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("rotate", help="plan a key rotation without downtime")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    plan = commands.add_parser(
        "plan",
        help="the ordered steps of a planned key rotation, each checked against the live state",
        description="Reads the channel's published pin set (verified with --keyring), the "
        "chain HOST serves now and, with a read-scope token, the server's fetch counts by "
        "version, and says which of the four steps (publish the new pin, wait for clients, "
        "deploy, retire the old pin) is done, which is next, and the command for it.",
    )
    plan.add_argument("host", help="the host name whose key rotates, e.g. api.example.com")
    plan.add_argument("--channel", required=True)
    plan.add_argument("--keyring", required=True, metavar="FILE", help="the keyring apps ship")
    new = plan.add_mutually_exclusive_group()
    new.add_argument("--new-key", metavar="FILE", help="the next key (or its certificate, CSR)")
    new.add_argument("--new-pin", help="the next key's pin")
    plan.add_argument("--port", type=int, default=443, help="the host's TLS port (443)")
    plan.add_argument(
        "--connect-to", metavar="ADDRESS", help="connect here instead of resolving HOST"
    )
    plan.add_argument("--host-ca-file", help="CA certificates to validate the host's chain with")
    plan.add_argument(
        "--window",
        type=int,
        metavar="SECONDS",
        help="judge the fetch counts over this many seconds (default: the polling interval)",
    )
    plan.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD * 100,
        metavar="PERCENT",
        help="share of those fetches that must carry the new pin before deploying (99)",
    )
    add_timeout_option(plan)
    # --server, --token (read scope: the fetch counts; without one they are not checked),
    # --ca-file, --insecure-http, --json.
    add_connection_options(plan)
    plan.set_defaults(handler=_run)


def _new_pin(args: argparse.Namespace) -> str | None:
    try:
        if args.new_key:
            return spki_pin(read_input_file(args.new_key, "key file"))
        return parse_pin(args.new_pin) if args.new_pin else None
    except (PinwardenError, ValueError) as error:
        where = f"--new-key {args.new_key!r}" if args.new_key else "--new-pin"
        raise CommandError(f"{where}: {error}") from None


def _lines(plan: RotationPlan) -> list[str]:
    lines = [
        f"rotation of {plan.host} in {plan.channel} (pin set v{plan.version}, rule {plan.rule})",
        f"  published pins: {', '.join(plan.published_pins) or 'none'}",
        f"  live chain:     {', '.join(plan.live_pins)}",
    ]
    lines += [f"  problem: {problem}" for problem in plan.problems]
    for step in plan.steps:
        lines.append(f"{step.number}. [{step.state}] {step.title}: {step.detail}")
        if step.command and step.state != "done":
            lines.append(f"   $ {step.command}")
    return lines


def _checked_options(args: argparse.Namespace) -> None:
    if not 0 < args.port < 65536:
        raise CommandError(f"--port {args.port} is not a TCP port")
    if args.window is not None and not MIN_WINDOW <= args.window <= FETCH_RETENTION_SECONDS:
        raise CommandError(
            f"--window {args.window} is not between {MIN_WINDOW} and {FETCH_RETENTION_SECONDS}"
        )
    if not 0 < args.threshold <= 100:  # NaN fails this test too
        raise CommandError(f"--threshold {args.threshold} is not a percentage above 0")


def _uptake(args: argparse.Namespace, plan: RotationPlan, pinset: PinSet) -> Uptake | None:
    """The server's fetch counts for the plan's new pin, when a token lets us read them and
    step 2 is the step to judge."""
    if not (args.token or os.environ.get("PINWARDEN_TOKEN")) or plan.new_pin is None:
        return None
    if len(plan.steps) < 2 or plan.steps[1].state == "blocked":
        return None
    client = client_from_args(args)
    window = args.window or min(
        max(MIN_WINDOW, math.ceil(poll_window(pinset).total_seconds())), FETCH_RETENTION_SECONDS
    )
    try:
        return read_uptake(
            lambda path: client.call("GET", path), args.channel, plan.host, plan.new_pin, window
        )
    except UptakeError as error:
        raise CommandError(str(error), EXIT_NETWORK) from None


def _run(args: argparse.Namespace) -> int:
    _checked_options(args)
    try:
        host = normalize_host(args.host)
    except InvalidHostError as error:
        raise CommandError(f"HOST: {error}") from None
    new_pin = _new_pin(args)
    server = args.server or os.environ.get("PINWARDEN_URL")
    if not server:
        raise CommandError("no pin server: give --server URL or set $PINWARDEN_URL")
    keyring = read_input_file(args.keyring, "keyring")
    timeout = checked_timeout(args.timeout)
    try:
        pinset = fetch_published(
            server, args.channel, keyring, cafile=args.ca_file, timeout=timeout
        )
        live = live_chain_pins(
            host,
            args.port,
            connect_host=args.connect_to,
            cafile=args.host_ca_file,
            timeout=timeout,
        )
    except ChannelPinsError as error:
        raise CommandError(str(error), EXIT_NETWORK if error.network else EXIT_FAILED) from None
    except LiveChainError as error:
        raise CommandError(str(error), EXIT_NETWORK) from None
    now = datetime.now(timezone.utc)
    plan = plan_rotation(host, pinset, live, new_pin=new_pin, now=now)
    uptake = _uptake(args, plan, pinset)
    if uptake is not None:
        plan = plan_rotation(
            host,
            pinset,
            live,
            new_pin=new_pin,
            now=now,
            uptake=uptake,
            threshold=args.threshold / 100,
        )
    if args.json:
        print_json(plan.view())
    else:
        for line in _lines(plan):
            print(printable(line, 2000))
    return EXIT_FAILED if plan.problems else EXIT_OK
