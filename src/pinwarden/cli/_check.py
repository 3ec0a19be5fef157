"""``pinwarden check https://host[:port]``: connect with pins enforced and say what matched."""

from __future__ import annotations

import argparse
import json
import ssl
from typing import Any

from pinwarden._hosts import normalize_host
from pinwarden._pins import parse_pin
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    print_json,
    read_input_file,
)
from pinwarden.cli._tls import open_tls, parse_host_port
from pinwarden.client import PinValidationError, StaticPins, pinned_context
from pinwarden.errors import PinwardenError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="connect to a host with pins enforced; exit 1 on a mismatch",
        description="Connects with normal CA and hostname validation plus the pins, and reports "
        "which pin matched at which depth of the verified chain (0 is the leaf).",
    )
    parser.add_argument("url", help="https://host[:port] (or host[:port])")
    parser.add_argument("--pin", action="append", default=[], help="an accepted pin (repeatable)")
    parser.add_argument(
        "--pins-file",
        help="pins, one per line ('#' comments), or JSON: a list of pins or StaticPins rules",
    )
    parser.add_argument("--ca-file", help="trust these CA certificates instead of the system's")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=_run)


def _rules_from_file(path: str, host: str) -> dict[str, Any]:
    text = read_input_file(path, "pins file").decode("utf-8", errors="replace")
    if text.lstrip().startswith(("[", "{")):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{path}: invalid JSON at line {error.lineno}: {error.msg}"
            ) from None
        if isinstance(loaded, dict):
            return loaded
        if isinstance(loaded, list) and all(isinstance(item, str) for item in loaded):
            return {host: loaded}
        raise CommandError(f"{path}: expected a list of pins or a mapping of pattern to pins")
    pins = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                pins.append(parse_pin(entry))
            except PinwardenError as error:
                raise CommandError(f"{path}:{number}: {error}") from None
    return {host: pins}


def _run(args: argparse.Namespace) -> int:
    host, port = parse_host_port(args.url)
    try:
        name = normalize_host(host)
        rules: dict[str, Any] = {name: [parse_pin(pin) for pin in args.pin]}
    except PinwardenError as error:
        raise CommandError(str(error)) from None
    if args.pins_file:
        from_file = _rules_from_file(args.pins_file, name)
        if args.pin and name in from_file:
            from_file[name] = [*from_file[name], *args.pin]
        rules = {**rules, **from_file}
    if not any(rules.values()):
        raise CommandError("no pins given: use --pin or --pins-file")
    try:
        source = StaticPins(rules)
        context = pinned_context(source, cafile=args.ca_file)
    except (PinwardenError, ValueError) as error:
        raise CommandError(str(error)) from None
    except (OSError, ssl.SSLError) as error:
        raise CommandError(f"cannot load --ca-file {args.ca_file!r}: {error}") from None
    if source.rule_for(name) is None:
        raise CommandError(f"no rule of the pins file matches {host}")
    try:
        with open_tls(host, port, context) as tls:
            check = tls.pin_check  # type: ignore[attr-defined]
    except PinValidationError as error:
        return _report_mismatch(args, host, port, error)
    except ssl.SSLError as error:
        raise CommandError(f"TLS with {host}:{port} failed: {error}", EXIT_NETWORK) from None
    result = {
        "host": host,
        "port": port,
        "ok": True,
        "rule": str(check.rule.pattern),
        "mode": check.rule.mode.value,
        "matched_pin": check.matched_pin,
        "depth": check.depth,
    }
    if args.json:
        print_json(result)
    elif check.matched_pin is None:
        print(f"OK {host}:{port}: rule {result['rule']} is {result['mode']}; no pin matched")
    else:
        print(f"OK {host}:{port}: pin {check.matched_pin} matched at depth {check.depth}")
    return EXIT_OK


def _report_mismatch(
    args: argparse.Namespace, host: str, port: int, error: PinValidationError
) -> int:
    if args.json:
        print_json(
            {
                "host": host,
                "port": port,
                "ok": False,
                "error": str(error),
                "expected": list(error.expected),
                "seen": list(error.seen),
            }
        )
        return EXIT_FAILED
    print(f"FAIL {host}:{port}: {error}")
    print("expected one of:")
    for pin in error.expected:
        print(f"  {pin}")
    print("verified chain (leaf first):")
    for depth, pin in enumerate(error.seen):
        print(f"  {depth}: {pin}")
    return EXIT_FAILED
