"""``pinwarden check https://host[:port]``: connect with pins enforced and say what matched.

The rules are built and looked up by the client's own ``StaticPins`` (the most specific pattern
decides, wildcards included), so ``check`` answers as an app holding the same rules would.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import ssl
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from pinwarden._pins import parse_pin
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    print_json,
    printable,
    read_input_file,
)
from pinwarden.cli._tls import Target, add_target_options, open_tls, target_from_args, tls_failure
from pinwarden.client import (
    Mode,
    PinValidationError,
    SinglePinWarning,
    StaticPins,
    backup_pin_advice,
    pinned_context,
)
from pinwarden.errors import PinwardenError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="connect to a host with pins enforced; exit 1 on a mismatch",
        description="Connects with normal CA and hostname validation plus the pins, and reports "
        "which pin matched at which depth of the verified chain (0 is the leaf).",
    )
    parser.add_argument("url", help="https://host[:port][/path] (or host[:port])")
    parser.add_argument(
        "--pin", action="append", default=[], help="an accepted pin for the host (repeatable)"
    )
    parser.add_argument(
        "--pins-file",
        help="pins for the host, one per line ('#' comments), or JSON: a list of pins, or "
        "StaticPins rules {pattern: [pins] or {pins, mode}}",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_target_options(parser)
    parser.set_defaults(handler=_run)


def _json_rules(path: str, text: str, host: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise CommandError(f"{path}: JSON nested too deeply") from None
    if isinstance(loaded, list) and all(isinstance(item, str) for item in loaded):
        return {host: loaded}
    if isinstance(loaded, dict) and all(_is_rule_spec(spec) for spec in loaded.values()):
        return loaded
    raise CommandError(
        f"{path}: expected a list of pins, or a mapping of host pattern to a list of pins "
        'or to {"pins": [...], "mode": "enforce"}'
    )


def _is_rule_spec(spec: Any) -> bool:
    if isinstance(spec, list):
        return all(isinstance(pin, str) for pin in spec)
    return isinstance(spec, dict)  # StaticPins checks its keys and values


def _rules_from_file(path: str, host: str) -> dict[str, Any]:
    text = read_input_file(path, "pins file").decode("utf-8", errors="replace")
    if text.lstrip().startswith(("[", "{")):
        return _json_rules(path, text, host)
    pins = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            try:
                pins.append(parse_pin(entry))
            except PinwardenError as error:
                raise CommandError(f"{path}:{number}: {error}") from None
    if not pins:
        raise CommandError(f"{path}: no pins in the file (one pin a line, '#' comments)")
    return {host: pins}


def static_pins_of(rules: Mapping[str, Any], where: str) -> StaticPins:
    """``rules`` as the client builds them (``check``, ``preflight --bootstrap``); a rule the
    client refuses is a ``CommandError`` naming ``where`` it came from."""
    try:
        with warnings.catch_warnings():
            # _warn_single_pins prints it as pinwarden's own line, not Python's two-line warning.
            warnings.simplefilter("ignore", SinglePinWarning)
            return StaticPins(rules)
    except (PinwardenError, ValueError, TypeError) as error:
        raise CommandError(f"{where}: {printable(str(error))}") from None


def _pin_source(args: argparse.Namespace, host: str) -> StaticPins:
    """The file's rules as the client reads them, with the ``--pin`` pins added for ``host``."""
    from_file = StaticPins({})
    if args.pins_file:
        from_file = static_pins_of(_rules_from_file(args.pins_file, host), args.pins_file)
    if not args.pin:
        return from_file
    rules: dict[str, Any] = {str(rule.pattern): rule for rule in from_file.rules}
    exact = rules.get(host)
    mode = exact.mode if exact is not None else Mode.ENFORCE
    pins = [*(exact.pins if exact is not None else ()), *args.pin]
    rules[host] = {"pins": pins, "mode": mode.value}
    return static_pins_of(rules, "--pin")


def _warn_single_pins(source: StaticPins) -> None:
    """One line for each enforced rule without a backup pin (docs/security.md, "One pin")."""
    for rule in source.rules:
        advice = backup_pin_advice(rule)
        if advice is not None:
            print(f"pinwarden check: warning: {advice}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    target = target_from_args(args, args.url)
    if not args.pin and not args.pins_file:
        raise CommandError("no pins given: use --pin or --pins-file")
    source = _pin_source(args, target.host)
    if source.rule_for(target.host) is None:
        raise CommandError(f"no rule of the pins file matches {target.host}")
    _warn_single_pins(source)
    try:
        context = pinned_context(source, cafile=args.ca_file)
    except (PinwardenError, ValueError) as error:
        raise CommandError(str(error)) from None
    except (OSError, ssl.SSLError) as error:
        raise CommandError(f"cannot load --ca-file {args.ca_file!r}: {error}") from None
    try:
        with open_tls(target, context) as tls:
            check = tls.pin_check  # type: ignore[attr-defined]
    except PinValidationError as error:
        return _report_mismatch(args, target, error)
    except ssl.SSLError as error:
        raise tls_failure(target, error) from None
    result = {
        "host": target.host,
        "port": target.port,
        "connected_to": f"{target.connect_host}:{target.connect_port}",
        "ok": True,
        "rule": str(check.rule.pattern),
        "mode": check.rule.mode.value,
        "matched_pin": check.matched_pin,
        "depth": check.depth,
    }
    if args.json:
        print_json(result)
    elif check.matched_pin is None:
        print(f"OK {target.label}: rule {result['rule']} is {result['mode']}; no pin matched")
    else:
        print(f"OK {target.label}: pin {check.matched_pin} matched at depth {check.depth}")
    return EXIT_OK


def _report_mismatch(args: argparse.Namespace, target: Target, error: PinValidationError) -> int:
    if args.json:
        print_json(
            {
                "host": target.host,
                "port": target.port,
                "connected_to": f"{target.connect_host}:{target.connect_port}",
                "ok": False,
                "error": str(error),
                "expected": list(error.expected),
                "seen": list(error.seen),
                "rule": error.pattern,
                "origin": error.origin,
                "chain": [dataclasses.asdict(certificate) for certificate in error.chain],
                "next_step": error.next_step,
            }
        )
        return EXIT_FAILED
    # The error already lists the verified chain, the pins expected, their origin and a next step.
    print(f"FAIL {target.label}: {error}")
    return EXIT_FAILED
