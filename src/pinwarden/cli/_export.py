"""``pinwarden export``: a channel's published pin set in a platform's own pinning format
(docs/export.md).

The pin set comes from the pin server (a read token; the newest version or ``--version N``, its
pins' chain roles from the published record) or from a signed pin-set file (``--pinset``; roles
from ``--role PIN=ROLE``). With ``--keyring`` its signatures are verified; without, only its
structure is, and a warning says so. Warnings go to stderr; a rule the platform cannot express is
never dropped without one. Exit status: 0 exported; 1 refused (the export would make an app
refuse chains pinwarden accepts), or warnings under ``--strict``; 2 bad input; 3 the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden._pins import parse_pin
from pinwarden.cli._admin_client import (
    AdminClient,
    add_connection_options,
    client_from_args,
    quote_path,
)
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_NETWORK,
    EXIT_OK,
    CommandError,
    printable,
    read_input_file,
)
from pinwarden.document import (
    MAX_PINSET_BYTES,
    DocumentError,
    PinSet,
    load_keyring,
    update_keyring,
    verify_pinset,
)
from pinwarden.document._envelope import parse_envelope
from pinwarden.errors import InvalidPinError
from pinwarden.export import (
    FORMATS,
    IOS_IDENTITIES,
    ROLES,
    UNSPECIFIED_ROLE,
    ExportChannel,
    Exported,
    ExportRefused,
    ExportSettings,
    channel_from_pinset,
    export,
)

__all__ = ["register"]

_HISTORY_LIMIT = 500  # the most the admin API's history gives in one answer
_MAX_VERSION = 2**31 - 1
_MAX_LIFETIME_DAYS = 5 * 366
# ATS files a pin by its chain role; the roles are not in the signed pin set (docs/export.md).
_UNSIGNED_ROLES = (
    "chain roles are the pin server's records, not part of the signed pin set: check that each "
    "NSPinnedLeafIdentities key is a leaf or backup key and each NSPinnedCAIdentities key a CA's"
)


def _positive(limit: int, what: str) -> Any:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= limit:
            raise argparse.ArgumentTypeError(f"{what} {text[:20]!r} is not a number 1-{limit}")
        return int(text)

    return parse


def _role_assignment(text: str) -> tuple[str, str]:
    pin, _, role = text.rpartition("=")
    if role not in ROLES:
        raise argparse.ArgumentTypeError(
            f"{text[:80]!r}: give PIN=ROLE, ROLE one of {', '.join(ROLES)}"
        )
    try:
        return parse_pin(pin), role
    except InvalidPinError as error:
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: {error}") from None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a channel's pins in a platform's own pinning format",
        description="The newest published pin set of CHANNEL (or --version N) from the pin "
        "server, or a signed pin-set file (--pinset), as Android's network security config, "
        "iOS's NSPinnedDomains, TrustKit (iOS or Android), an OkHttp CertificatePinner, the "
        "react-native-ssl-public-key-pinning options, or plain JSON. See docs/export.md.",
    )
    parser.add_argument("channel", metavar="CHANNEL", help="e.g. com.example.app/prod")
    parser.add_argument("--format", required=True, choices=tuple(FORMATS), dest="format_name")
    parser.add_argument(
        "--version", type=_positive(_MAX_VERSION, "--version"), metavar="N",
        help="this published version (default: the newest)",
    )  # fmt: skip
    parser.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    parser.add_argument("--pinset", metavar="FILE", help="a signed pin-set file, no server")
    parser.add_argument(
        "--keyring", metavar="FILE", help="verify the pin set's signatures with this keyring"
    )
    parser.add_argument(
        "--next-keyring", action="append", default=[], metavar="FILE",
        help="a later keyring to walk to first (N+1, then N+2, ...); repeat",
    )  # fmt: skip
    parser.add_argument(
        "--role", action="append", default=[], type=_role_assignment, metavar="PIN=ROLE",
        dest="roles", help=f"with --pinset: a pin's chain role ({', '.join(ROLES)}); repeat",
    )  # fmt: skip
    parser.add_argument(
        "--ios-identities", choices=IOS_IDENTITIES, default="auto",
        help="ios-plist, for a rule with leaf and CA pins: which ATS checks (default: refuse)",
    )  # fmt: skip
    parser.add_argument(
        "--lifetime-days", type=_positive(_MAX_LIFETIME_DAYS, "--lifetime-days"), default=365,
        metavar="DAYS", help="pins expire this long after the export, or with their rule (365)",
    )  # fmt: skip
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) on any warning")
    add_connection_options(parser)
    parser.set_defaults(handler=_run)


def _verified(raw: bytes, args: argparse.Namespace, now: datetime) -> tuple[PinSet, list[str]]:
    """The pin set of ``raw``: verified with ``--keyring``, else checked for structure only."""
    try:
        if args.keyring is None:
            envelope = parse_envelope(raw, MAX_PINSET_BYTES, "pin set")
            note = "signatures not verified (give --keyring): the rules are exported as read"
            return PinSet.from_payload(envelope.payload), [note]
        trusted = load_keyring(read_input_file(args.keyring, "keyring"))
        for path in args.next_keyring:
            trusted = update_keyring(trusted, read_input_file(path, "keyring"))
        return verify_pinset(raw, keyring=trusted, now=now), []
    except DocumentError as error:
        raise CommandError(f"{type(error).__name__}: {error}", EXIT_FAILED) from None


def _from_file(args: argparse.Namespace, now: datetime) -> tuple[ExportChannel, list[str]]:
    pinset, notes = _verified(read_input_file(args.pinset, "pin set"), args, now)
    held = {pin for rule in pinset.rules for pin in rule.pins}
    unknown = sorted({pin for pin, _ in args.roles} - held)
    if unknown:
        raise CommandError(f"--role names pins the pin set does not have: {', '.join(unknown)}")
    given = dict(args.roles)
    roles = {
        (rule.pattern, pin): given[pin]
        for rule in pinset.rules
        for pin in rule.pins
        if pin in given
    }
    return channel_from_pinset(pinset, roles), notes


def _published_roles(
    record: dict[str, Any], pinset: PinSet, server: str
) -> dict[tuple[str, str], str]:
    """The chain roles of the published record, after checking that it holds the same rules
    and pins as the signed pin set."""
    stored = {rule["pattern"]: rule["pins"] for rule in record["rules"]}
    signed = {rule.pattern: rule.pins for rule in pinset.rules}
    if {pattern: tuple(pin["pin"] for pin in pins) for pattern, pins in stored.items()} != signed:
        raise CommandError(
            f"{server} holds other rules for v{pinset.version} than it signed", EXIT_NETWORK
        )
    roles: dict[tuple[str, str], str] = {}
    for pattern, pins in stored.items():
        for pin in pins:
            role = pin.get("role", UNSPECIFIED_ROLE)
            if role not in (*ROLES, UNSPECIFIED_ROLE):
                raise CommandError(f"{server} named a chain role {role!r}", EXIT_NETWORK)
            roles[(pattern, pin["pin"])] = role
    return roles


def _from_server(args: argparse.Namespace, now: datetime) -> tuple[ExportChannel, list[str]]:
    client = client_from_args(args)
    try:
        return _read_published(client, args, now)
    except (KeyError, IndexError, TypeError, AttributeError) as error:
        raise CommandError(
            f"{client.base_url} answered with JSON of another shape than this version of "
            "pinwarden knows: is it a pinwarden server of the same version?",
            EXIT_NETWORK,
        ) from error


def _read_published(
    client: AdminClient, args: argparse.Namespace, now: datetime
) -> tuple[ExportChannel, list[str]]:
    """The published record (newest, or ``--version``) and its signed bytes, checked against
    each other."""
    base = f"/channels/{quote_path(args.channel)}"
    records = client.call("GET", f"{base}/history", query={"limit": str(_HISTORY_LIMIT)})
    wanted = [r for r in records if args.version is None or r["version"] == args.version][:1]
    if not wanted:
        which = f"v{args.version} among its {_HISTORY_LIMIT} newest" if args.version else "none"
        raise CommandError(f"channel {args.channel!r} has no published version: {which}")
    version = wanted[0]["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CommandError(f"{client.base_url} named a version {version!r}", EXIT_NETWORK)
    envelope = client.call("GET", f"{base}/pinset/{version}")
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    pinset, notes = _verified(raw, args, now)
    if (pinset.channel, pinset.version) != (args.channel, version):
        raise CommandError(
            f"{client.base_url} sent another channel's or version's pin set", EXIT_NETWORK
        )
    roles = _published_roles(wanted[0], pinset, client.base_url)
    return channel_from_pinset(pinset, roles), notes


def _role_hint(args: argparse.Namespace) -> Any:
    if args.pinset is not None:
        return lambda pattern, pin: f"give it with --role {pin}=ROLE"
    channel = shlex.quote(args.channel)

    def hint(pattern: str, pin: str) -> str:
        return (
            f"set it with `pinwarden pins set-role {channel} {shlex.quote(pattern)} {pin} "
            f"--role ROLE`, then `pinwarden publish {channel}`"
        )

    return hint


def _write(path: str, text: str) -> None:
    """Through a temporary file and a rename: a build never picks up half a configuration."""
    target = Path(path)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, target)
    except (OSError, ValueError) as error:
        staging.unlink(missing_ok=True)
        reason = getattr(error, "strerror", None) or error
        raise CommandError(f"cannot write {path!r}: {reason}") from None


def _warn(lines: list[str] | tuple[str, ...], kind: str = "warning") -> None:
    for line in lines:
        print(f"pinwarden export: {kind}: {printable(line, 1000)}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if args.pinset is None and args.roles:
        raise CommandError("--role is for --pinset (the server keeps roles: pins set-role)")
    if args.next_keyring and args.keyring is None:
        raise CommandError("--next-keyring walks from a trusted --keyring: give it too")
    if args.pinset is not None and args.version is not None:
        raise CommandError("--version is for the server; a --pinset file is one version")
    channel, notes = (_from_file if args.pinset else _from_server)(args, now)
    if args.pinset is None and args.format_name == "ios-plist":
        notes.append(_UNSIGNED_ROLES)
    if channel.name != args.channel:
        raise CommandError(f"the pin set is of channel {channel.name!r}, not {args.channel!r}")
    settings = ExportSettings(
        now=now,
        lifetime=timedelta(days=args.lifetime_days),
        ios_identities=args.ios_identities,
        role_hint=_role_hint(args),
    )
    try:
        exported: Exported = export(args.format_name, channel, settings)
    except ExportRefused as refused:
        _warn([*notes, *refused.warnings])
        _warn(refused.problems, "refused")
        raise CommandError(
            f"{len(refused.problems)} rule problem(s) above: nothing written", EXIT_FAILED
        ) from None
    warnings = [*notes, *exported.warnings]
    _warn(warnings)
    if args.strict and warnings:
        raise CommandError("--strict: warnings above; nothing written", EXIT_FAILED)
    text = (
        json.dumps({"text": exported.text, "warnings": warnings}, indent=2) + "\n"
        if args.json
        else exported.text
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write(args.out, text)
    return EXIT_OK
