"""``pinwarden preflight``: refuse a certificate, chain or key before it goes live.

Exit status: 0 every population of clients would accept it (the matching pin is printed); 1 some
would refuse it (the reason and the pin to publish first are printed); 2 bad input; 3 the pin
server could not be reached. Meant for deploy pipelines and ACME deploy hooks (docs/rotation.md).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pinwarden._hosts import normalize_host
from pinwarden.cli._check import static_pins_of
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    print_json,
    printable,
    read_input_file,
)
from pinwarden.client import StaticPins
from pinwarden.errors import InvalidHostError
from pinwarden.rotation import (
    Candidate,
    ChannelPinsError,
    MaterialError,
    RuleBook,
    Verdict,
    candidate_from_bytes,
    fetch_published,
    judge,
    rulebook_of_pinset,
    verify_local_pinset,
)

BOOTSTRAP_POPULATION = "clients on the shipped bootstrap pins"
MAX_TIMEOUT = 300.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "preflight",
        help="would clients of a channel accept this certificate, chain or key? exit 1 if not",
        description="Judges each file against the channel's published pin set (verified with "
        "--keyring) and, with --bootstrap, the pins the app ships, as the client would. Exit 0: "
        "accepted; 1: some clients would refuse it (publish the printed pin first); 2: bad "
        "input; 3: the pin server could not be reached.",
    )
    parser.add_argument("files", nargs="+", metavar="CERT_OR_CHAIN_OR_KEY")
    parser.add_argument("--channel", required=True, help="e.g. com.example.app/prod")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--server", help="pin server base URL (default: $PINWARDEN_URL)")
    source.add_argument("--pinset", metavar="FILE", help="a signed pin-set file instead")
    parser.add_argument(
        "--keyring", required=True, metavar="FILE", help="the keyring the app ships (signed JSON)"
    )
    parser.add_argument(
        "--bootstrap",
        metavar="FILE",
        help='the pins the app ships: JSON {"pattern": [pins] or {"pins": [...], "mode": ...}}',
    )
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="judge for this host (repeatable); required for a key or CSR, which names none",
    )
    parser.add_argument("--ca-file", help="trust these CA certificates for an https pin server")
    add_timeout_option(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_run)


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds for each exchange with the pin server or a host, start to end (10)",
    )


def checked_timeout(seconds: float) -> float:
    if not 0 < seconds <= MAX_TIMEOUT:  # NaN fails this test too
        raise CommandError(f"--timeout {seconds} is not between 0 and {MAX_TIMEOUT:g} seconds")
    return seconds


def _bootstrap(path: str) -> StaticPins:
    text = read_input_file(path, "bootstrap file").decode("utf-8", errors="replace")
    try:
        rules = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise CommandError(f"{path}: JSON nested too deeply") from None
    if not isinstance(rules, dict):
        raise CommandError(
            f'{path}: expected a JSON object {{"host pattern": [pins], ...}}, as StaticPins takes'
        )
    return static_pins_of(rules, path)


def _hosts(args: argparse.Namespace, candidate: Candidate) -> list[str]:
    if not args.host:
        if not candidate.names:
            raise CommandError(
                f"{candidate.source} is a {candidate.kind} and names no host: give --host NAME"
            )
        return list(candidate.names)
    try:
        return [normalize_host(host) for host in args.host]
    except InvalidHostError as error:
        raise CommandError(f"--host: {error}") from None


def _published_book(args: argparse.Namespace, shipped: StaticPins) -> RuleBook:
    keyring = read_input_file(args.keyring, "keyring")
    try:
        if args.pinset:
            pinset = verify_local_pinset(
                read_input_file(args.pinset, "pin set"), args.channel, keyring
            )
        else:
            server = args.server or os.environ.get("PINWARDEN_URL")
            if not server:
                raise CommandError("no pin set to judge against: give --server URL or --pinset")
            pinset = fetch_published(
                server, args.channel, keyring, cafile=args.ca_file, timeout=args.timeout
            )
    except ChannelPinsError as error:
        raise CommandError(str(error), EXIT_NETWORK if error.network else EXIT_FAILED) from None
    return rulebook_of_pinset(pinset, shipped.rules)


def _line(verdict: Verdict, channel: str) -> str:
    head = f"{'OK  ' if verdict.accepted else 'FAIL'} {verdict.host} ({verdict.population})"
    if verdict.matched_pin:
        return f"{head}: {verdict.matched_pin} matched; {verdict.reason}"
    text = f"{head}: {verdict.reason}"
    if not verdict.accepted and verdict.pin_to_publish and verdict.rule:
        text += (
            f"; publish its pin first: pinwarden pins add {channel} {verdict.rule} "
            f"{verdict.pin_to_publish} && pinwarden publish {channel}, then wait until clients "
            "have fetched it (docs/rotation.md)"
        )
    return text


def _run(args: argparse.Namespace) -> int:
    checked_timeout(args.timeout)
    candidates = []
    for path in args.files:
        try:
            candidates.append(candidate_from_bytes(read_input_file(path, "file"), path))
        except MaterialError as error:
            raise CommandError(str(error)) from None
    shipped = _bootstrap(args.bootstrap) if args.bootstrap else StaticPins({})
    books = [_published_book(args, shipped)]
    if args.bootstrap:
        books.append(RuleBook(BOOTSTRAP_POPULATION, shipped.rules))
    verdicts = [
        verdict
        for candidate in candidates
        for verdict in judge(candidate, _hosts(args, candidate), books)
    ]
    accepted = all(verdict.accepted for verdict in verdicts)
    if args.json:
        print_json({"accepted": accepted, "verdicts": [verdict.view() for verdict in verdicts]})
    else:
        for verdict in verdicts:
            print(printable(_line(verdict, args.channel), 2000))
    return EXIT_OK if accepted else EXIT_FAILED
