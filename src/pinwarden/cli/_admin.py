"""Admin commands over the server's HTTP API: channel, rule, pins, publish, history, rollback,
token, audit, reports, resign, alerts, suggest.

(``pinwarden pin`` already computes pins, so a rule's pins are managed with ``pinwarden pins``.)
Exit status: 0 done; 1 publishing refused as unsafe; 2 bad input or refused by the server;
3 the server cannot be reached or failed.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pinwarden._pins import spki_pin
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
    print_json,
    printable,
    read_input_file,
)
from pinwarden.errors import UnsupportedKeyMaterial
from pinwarden.export import ROLES, UNSPECIFIED_ROLE

Handler = Callable[[AdminClient, argparse.Namespace], Any]
Formatter = Callable[[Any], list[str]]


def _command(
    group: Any,
    name: str,
    help_text: str,
    handler: Handler,
    formatter: Formatter,
    arguments: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = group.add_parser(name, help=help_text, description=help_text)
    arguments(parser)
    add_connection_options(parser)

    def run(args: argparse.Namespace) -> int:
        client = client_from_args(args)
        try:
            answer = handler(client, args)
            lines = [] if args.json else formatter(answer)
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise CommandError(
                f"{client.base_url} answered with JSON of another shape than this version of "
                "pinwarden knows: is it a pinwarden server of the same version? (--json shows it)",
                EXIT_NETWORK,
            ) from error
        if args.json:
            print_json(answer)
        for line in lines:
            print(printable(line, 10_000))  # the server's text: no terminal control sequences
        if isinstance(answer, dict) and answer.get("dry_run") and not answer.get("safe", True):
            return EXIT_FAILED  # a dry run that would be refused fails, for deploy pipelines
        return EXIT_OK

    parser.set_defaults(handler=run)


def _probe(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    try:
        return {"probe_host": host, "probe_port": int(port)} if port else {"probe_host": text}
    except ValueError:
        raise CommandError(f"--probe {text!r} is not HOST[:PORT]") from None


def _channel_lines(channel: dict[str, Any]) -> list[str]:
    lines = [
        f"{channel['name']}  refresh={channel['refresh_seconds']}s  ttl={channel['ttl_seconds']}s"
        + (
            f"  published=v{channel['published_version']}"
            if channel.get("published_version")
            else ""
        )
    ]
    for rule in channel.get("rules", []):
        lines.extend(_rule_lines(rule))
    return lines


def _rule_lines(rule: dict[str, Any]) -> list[str]:
    probe = f"  probe={rule['probe_host']}:{rule['probe_port']}" if rule.get("probe_host") else ""
    lines = [f"  {rule['pattern']}  [{rule['mode']}]{probe}"]
    lines.extend(f"    {_pin_text(pin)}" for pin in rule["pins"])
    return lines


def _pin_text(pin: dict[str, Any]) -> str:
    """A pin, its chain role when known (``[leaf]``) and its label."""
    role = f"  [{pin['role']}]" if pin.get("role") not in (None, UNSPECIFIED_ROLE) else ""
    return f"{pin['pin']}{role}  {pin['label']}".rstrip()


def _publish_lines(outcome: dict[str, Any]) -> list[str]:
    if outcome["published"]:
        forced = "  (FORCED past the safety checks)" if outcome["forced"] else ""
        head = f"published {outcome['channel']} v{outcome['version']}{forced}"
    else:
        verdict = "safe" if outcome["safe"] else "UNSAFE: publish would be refused"
        head = f"dry run of {outcome['channel']}: {verdict}"
    lines = [head]
    if outcome.get("republished_from"):
        lines.append(f"  republishes the rules of v{outcome['republished_from']}")
    for change in outcome["changes"] or []:
        lines.append(f"  {change['change']:8} {change['pattern']}  [{change['mode']}]")
        lines.extend(f"    + {pin}" for pin in change["pins_added"])
        lines.extend(f"    - {pin}" for pin in change["pins_removed"])
        if "note" in change:
            lines.append(f"    note: {change['note']}")
    if not outcome["changes"]:
        lines.append("  no rule changes for clients (a new version re-signs the same rules)")
    lines.extend(line for check in outcome["checks"] for line in _check_lines(check))
    return lines


def _check_lines(check: dict[str, Any]) -> list[str]:
    """The safety checks' verdict on one rule, what it was judged against, and its problems."""
    verdict = "safe" if check["ok"] else "UNSAFE"
    live = check.get("live_chain")
    if live:
        seen = f"by {live['source']}" + (f", {live['fallback']}" if live.get("fallback") else "")
        verdict += f" (live chain of {live['host']}:{live['port']} seen {seen})"
    return [f"  check    {check['pattern']}: {verdict}"] + [
        f"  problem: {check['pattern']}: {problem}" for problem in check["problems"]
    ]


def _history_lines(documents: list[dict[str, Any]]) -> list[str]:
    lines = []
    for doc in documents:
        notes = []
        if doc["republished_from"]:
            notes.append(f"rollback to v{doc['republished_from']}")
        if doc["forced"]:
            notes.append(f"forced: {doc['reason']}")
        suffix = f"  ({'; '.join(notes)})" if notes else ""
        lines.append(f"v{doc['version']}  {doc['created_at']}  {doc['published_by']}{suffix}")
    return lines


def _token_lines(token: dict[str, Any]) -> list[str]:
    state = f"  revoked {token['revoked_at']}" if token.get("revoked_at") else ""
    if token.get("expires_at"):
        state += f"  expires {token['expires_at']}"
    lines = [f"{token['token_id']}  {token['name']}  scopes={','.join(token['scopes'])}{state}"]
    if "token" in token:
        lines += [token["token"], "Store it now: it is shown once and only its hash is kept."]
    return lines


def _each(format_one: Formatter, *, empty: str | None = None) -> Formatter:
    """Lines for each item of a list answer; ``empty``, if given, is the line for no items."""

    def lines(items: Any) -> list[str]:
        formatted = [line for item in items for line in format_one(item)]
        return formatted if formatted or empty is None else [empty]

    return lines


def _audit_lines(entry: dict[str, Any]) -> list[str]:
    reason = f"  reason: {entry['reason']}" if entry.get("reason") else ""
    return [f"{entry['at']}  {entry['actor']}  {entry['action']}  {entry['target']}{reason}"]


def _report_lines(row: dict[str, Any]) -> list[str]:
    app = f"  app={row.get('app_id')} {row.get('app_version') or ''}".rstrip()
    return [f"{row['count']:6}  {row['hostname']}  noted={row.get('noted_hostname')}{app}"]


def _nothing(parser: argparse.ArgumentParser) -> None:
    pass


def _channel_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channel", help="channel name, e.g. com.example.app/prod")


def _rule_args(parser: argparse.ArgumentParser) -> None:
    _channel_arg(parser)
    parser.add_argument(
        "pattern", help="host pattern: api.example.com, *.example.com, **.example.com"
    )


def _channel_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description")
    parser.add_argument("--refresh", type=int, dest="refresh_seconds", help="refresh hint, seconds")
    parser.add_argument("--ttl", type=int, dest="ttl_seconds", help="pin-set lifetime, seconds")
    parser.add_argument("--report-uri", help="where clients send violation reports")


def _rule_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("enforce", "report-only", "disabled"))
    parser.add_argument(
        "--probe",
        metavar="HOST[:PORT]",
        help="where safe publishing connects to see the live chain (default: the pattern, 443)",
    )


def _publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would change; change nothing"
    )
    parser.add_argument("--force", action="store_true", help="publish despite failed safety checks")
    parser.add_argument("--reason", help="why (required with --force; recorded in the audit log)")


def _settings(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _publish_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.force and not args.reason:
        raise CommandError("--force needs --reason: it is recorded in the audit log")
    return {"dry_run": args.dry_run, "force": args.force, "reason": args.reason}


_CHANNEL_FIELDS = ("description", "refresh_seconds", "ttl_seconds", "report_uri")


def _register_channel(subparsers: Any) -> None:
    group = subparsers.add_parser("channel", help="create, list, show, update channels")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def create_args(parser: argparse.ArgumentParser) -> None:
        _channel_arg(parser)
        _channel_settings(parser)

    _command(
        commands,
        "create",
        "create a channel",
        lambda c, a: c.call(
            "POST", "/channels", {"name": a.channel, **_settings(a, _CHANNEL_FIELDS)}
        ),
        _channel_lines,
        create_args,
    )
    _command(
        commands,
        "list",
        "list channels",
        lambda c, a: c.call("GET", "/channels"),
        _each(_channel_lines),
        _nothing,
    )
    _command(
        commands,
        "show",
        "show a channel with its rules and pins",
        lambda c, a: c.call("GET", f"/channels/{quote_path(a.channel)}"),
        _channel_lines,
        _channel_arg,
    )
    _command(
        commands,
        "update",
        "change a channel's settings",
        lambda c, a: c.call(
            "PATCH", f"/channels/{quote_path(a.channel)}", _settings(a, _CHANNEL_FIELDS)
        ),
        _channel_lines,
        create_args,
    )


def _rule_body(args: argparse.Namespace) -> dict[str, Any]:
    return {**_settings(args, ("mode",)), **_probe(args.probe)}


def _rule_path(args: argparse.Namespace) -> str:
    return f"/channels/{quote_path(args.channel)}/rules/{quote_path(args.pattern)}"


def _register_rule(subparsers: Any) -> None:
    group = subparsers.add_parser("rule", help="add, update, remove a channel's host rules")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def rule_args(parser: argparse.ArgumentParser) -> None:
        _rule_args(parser)
        _rule_settings(parser)

    _command(
        commands,
        "add",
        "add a host rule to a channel",
        lambda c, a: c.call(
            "POST",
            f"/channels/{quote_path(a.channel)}/rules",
            {"pattern": a.pattern, **_rule_body(a)},
        ),
        _rule_lines,
        rule_args,
    )
    _command(
        commands,
        "update",
        "change a rule's mode or probe",
        lambda c, a: c.call("PATCH", _rule_path(a), _rule_body(a)),
        _rule_lines,
        rule_args,
    )
    _command(
        commands,
        "remove",
        "remove a rule (clients then stop pinning the host; prefer --mode disabled)",
        lambda c, a: c.call("DELETE", _rule_path(a)),
        lambda r: [f"removed {r['removed']}"],
        _rule_args,
    )
    _command(
        commands,
        "list",
        "list a channel's rules and pins",
        lambda c, a: c.call("GET", f"/channels/{quote_path(a.channel)}")["rules"],
        _each(_rule_lines),
        _channel_arg,
    )


def _pin_to_add(args: argparse.Namespace) -> str:
    """The pin given, or the pin of ``--from-key`` (pinwarden.spki_pin, on this machine)."""
    if (args.pin is None) == (args.from_key is None):
        raise CommandError("give either a pin or --from-key FILE, not both or neither")
    if args.pin is not None:
        return str(args.pin)
    try:
        return spki_pin(read_input_file(args.from_key, "key file"))
    except (UnsupportedKeyMaterial, ValueError) as error:
        raise CommandError(f"--from-key {args.from_key!r}: {error}") from None


def _role_option(parser: argparse.ArgumentParser, *, required: bool, help_text: str) -> None:
    parser.add_argument("--role", choices=ROLES, required=required, help=help_text)


def _pin_body(args: argparse.Namespace) -> dict[str, Any]:
    """A pin computed from a key file is a backup key unless ``--role`` says otherwise; the
    server gives a pin without a role its place in the live chain, if it saw it there."""
    body: dict[str, Any] = {"pin": _pin_to_add(args), "label": args.label}
    role = args.role or ("backup" if args.from_key is not None else None)
    return body if role is None else {**body, "role": role}


def _register_pins(subparsers: Any) -> None:
    group = subparsers.add_parser("pins", help="add or remove the pins of a rule")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def pin_args(parser: argparse.ArgumentParser) -> None:
        _rule_args(parser)
        parser.add_argument("pin", help='sha256/<base64> (or pin-sha256="…", or bare base64)')

    def add_args(parser: argparse.ArgumentParser) -> None:
        _rule_args(parser)
        parser.add_argument("pin", nargs="?", help="sha256/<base64>; or give --from-key")
        parser.add_argument(
            "--from-key",
            metavar="FILE",
            help="add the pin of this key, certificate or CSR file (acme.sh's <key>.next), "
            "computed here: the file never leaves this machine",
        )
        parser.add_argument("--label", default="", help='e.g. "leaf key", "backup key"')
        _role_option(
            parser,
            required=False,
            help_text="the key's place in the chain (default: backup with --from-key, else "
            "its position in the live chain the server last saw, if it saw the key)",
        )

    def role_args(parser: argparse.ArgumentParser) -> None:
        pin_args(parser)
        _role_option(parser, required=True, help_text="the key's place in the chain")

    _command(
        commands,
        "add",
        "add a pin to a rule",
        lambda c, a: c.call("POST", _rule_path(a) + "/pins", _pin_body(a)),
        lambda p: [f"added {_pin_text(p)}"],
        add_args,
    )
    _command(
        commands,
        "set-role",
        "set the chain role of a rule's pin (exports need it; the next publish carries it)",
        lambda c, a: c.call(
            "PATCH", _rule_path(a) + "/pins", {"role": a.role}, query={"pin": a.pin}
        ),
        lambda p: [f"set {_pin_text(p)}"],
        role_args,
    )
    _command(
        commands,
        "remove",
        "remove a pin from a rule",
        lambda c, a: c.call("DELETE", _rule_path(a) + "/pins", query={"pin": a.pin}),
        lambda r: [f"removed {r['removed']}"],
        pin_args,
    )


def _register_publishing(subparsers: Any) -> None:
    def publish_args(parser: argparse.ArgumentParser) -> None:
        _channel_arg(parser)
        _publish_options(parser)

    _command(
        subparsers,
        "publish",
        "sign the channel's rules and publish them as the next version, after the safety checks",
        lambda c, a: c.call("POST", f"/channels/{quote_path(a.channel)}/publish", _publish_body(a)),
        _publish_lines,
        publish_args,
    )

    def history_args(parser: argparse.ArgumentParser) -> None:
        _channel_arg(parser)
        parser.add_argument("--limit", type=int, default=50)

    _command(
        subparsers,
        "history",
        "list a channel's published versions, newest first",
        lambda c, a: c.call(
            "GET", f"/channels/{quote_path(a.channel)}/history", query={"limit": str(a.limit)}
        ),
        _history_lines,
        history_args,
    )

    def rollback_args(parser: argparse.ArgumentParser) -> None:
        publish_args(parser)
        parser.add_argument("--to", type=int, required=True, dest="to_version", metavar="VERSION")

    _command(
        subparsers,
        "rollback",
        "republish the rules of an earlier version as a new version (versions only increase)",
        lambda c, a: c.call(
            "POST",
            f"/channels/{quote_path(a.channel)}/rollback",
            {**_publish_body(a), "to_version": a.to_version},
        ),
        _publish_lines,
        rollback_args,
    )


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration_seconds(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``45s``: whole seconds, for ``--expires-in``."""
    number, unit = text[:-1], text[-1:].lower()
    digits = number.isascii() and number.isdigit() and len(number) <= 12
    if unit not in _DURATION_UNITS or not digits:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 90m or 45s")
    seconds = int(number) * _DURATION_UNITS[unit]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a token expires after at least 1 second")
    return seconds


def _register_tokens(subparsers: Any) -> None:
    group = subparsers.add_parser("token", help="create, list, revoke API tokens (admin scope)")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def create_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("name")
        parser.add_argument(
            "--scope",
            action="append",
            required=True,
            dest="scopes",
            choices=("read", "write", "publish", "admin"),
            help="repeatable",
        )
        parser.add_argument(
            "--expires-in",
            type=_duration_seconds,
            metavar="DURATION",
            help="refuse the token after this long (30d, 12h, 90m, 45s); default: never",
        )

    def revoke_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("token_id")
        parser.add_argument("--reason")

    _command(
        commands,
        "create",
        "create a token; it is printed once",
        lambda c, a: c.call(
            "POST",
            "/tokens",
            {"name": a.name, "scopes": a.scopes, "expires_in_seconds": a.expires_in},
        ),
        _token_lines,
        create_args,
    )
    _command(
        commands,
        "list",
        "list tokens (never their secrets)",
        lambda c, a: c.call("GET", "/tokens"),
        _each(_token_lines),
        _nothing,
    )
    _command(
        commands,
        "revoke",
        "revoke a token",
        lambda c, a: c.call(
            "POST", f"/tokens/{quote_path(a.token_id)}/revoke", {"reason": a.reason}
        ),
        _token_lines,
        revoke_args,
    )


def _register_views(subparsers: Any) -> None:
    def audit_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--target", help="only entries whose target starts with this")
        parser.add_argument("--limit", type=int, default=100)

    _command(
        subparsers,
        "audit",
        "show the audit log, newest first",
        lambda c, a: c.call(
            "GET",
            "/audit",
            query={"limit": str(a.limit), **({"target": a.target} if a.target else {})},
        ),
        _each(_audit_lines),
        audit_args,
    )
    _command(
        subparsers,
        "reports",
        "violation reports aggregated by host and app",
        lambda c, a: c.call("GET", "/reports/summary"),
        _each(_report_lines, empty="no violation reports"),
        _nothing,
    )


def _register_resign(subparsers: Any) -> None:
    def reason_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reason", help="recorded in the audit log")

    _command(
        subparsers,
        "resign",
        "sign every published channel again with the server's current online keys, after an "
        "online-key rotation done offline (pinwarden keys rotate-online, then export-online)",
        lambda c, a: c.call("POST", "/resign", {"reason": a.reason}),
        lambda r: (
            [f"keyring v{r['keyring_version']}"]
            + [f"  re-signed {channel} as v{version}" for channel, version in r["resigned"].items()]
        ),
        reason_args,
    )


def _alert_lines(alert: dict[str, Any]) -> list[str]:
    state = alert["state"] if alert["state"] == "open" else f"resolved {alert['resolved_at']}"
    acked = f"  acked by {alert['acked_by']}" if alert.get("acked_by") else ""
    return [
        f"#{alert['id']}  {alert['kind']}  {state}  since {alert['opened_at']}{acked}",
        f"  {alert['summary']}",
    ]


def _suggestion_lines(suggestion: dict[str, Any]) -> list[str]:
    changes = suggestion["changes"]
    if not changes:
        return [f"{suggestion['channel']}: no change suggested"]
    lines = [f"{suggestion['channel']}: {suggestion['applicable']} change(s) to apply"]
    for change in changes:
        pin = f" {change['pin']}" if change.get("pin") else ""
        lines.append(f"  {change['change']:6} {change['pattern']}{pin}")
        lines.append(f"    why: {change['reason']}")
    return lines


def _applied_lines(answer: dict[str, Any]) -> list[str]:
    return _suggestion_lines(answer["suggestion"]) + _publish_lines(answer["publish"])


def _register_operations(subparsers: Any) -> None:
    group = subparsers.add_parser("alerts", help="list or acknowledge alerts (docs/operations.md)")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def list_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state", choices=("open", "resolved", "all"), default="open")
        parser.add_argument("--kind", help="only alerts of this kind, e.g. no-pin-match")
        parser.add_argument("--limit", type=int, default=100)

    def ack_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", type=int, help="the alert's number (alerts list shows it)")

    _command(
        commands,
        "list",
        "list alerts, newest first",
        lambda c, a: c.call(
            "GET",
            "/alerts",
            query={
                "state": a.state,
                "limit": str(a.limit),
                **({"kind": a.kind} if a.kind else {}),
            },
        ),
        _each(_alert_lines),
        list_args,
    )
    _command(
        commands,
        "ack",
        "acknowledge an alert (a key change closes; a condition stays open until it clears)",
        lambda c, a: c.call("POST", "/alerts/ack", {"id": a.id}),
        _alert_lines,
        ack_args,
    )

    def suggest_args(parser: argparse.ArgumentParser) -> None:
        _channel_arg(parser)
        parser.add_argument(
            "--apply", action="store_true", help="make the changes and publish (safe publishing)"
        )

    def suggestion(client: AdminClient, args: argparse.Namespace) -> Any:
        if args.apply:
            return client.call("POST", "/suggestions/apply", {"channel": args.channel})
        return client.call("GET", "/suggestions", query={"channel": args.channel})

    _command(
        subparsers,
        "suggest",
        "the rule change that keeps clients working after a host's key or certificate changed",
        suggestion,
        lambda answer: _applied_lines(answer) if "publish" in answer else _suggestion_lines(answer),
        suggest_args,
    )


# A channel name as the server makes them (segments joined by "/", none "." or ".."): a name
# of any other shape from a server is refused, never a path to write to.
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63})*")
_MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
_MAX_KEYRING_VERSION = 10_000


def _public_bytes(base_url: str, path: str, cafile: str | None) -> bytes | None:
    """What the public route ``path`` serves, byte for byte (no token goes with it); ``None``
    for a 404."""
    context = ssl.create_default_context(cafile=cafile) if base_url.startswith("https") else None
    request = urllib.request.Request(base_url + path)  # noqa: S310 - the http(s) --server
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as answer:  # noqa: S310
            body: bytes = answer.read(_MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise CommandError(f"{base_url}{path}: HTTP {error.code}", EXIT_NETWORK) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CommandError(f"cannot reach {base_url}: {reason}", EXIT_NETWORK) from None
    if len(body) > _MAX_DOCUMENT_BYTES:
        raise CommandError(f"{base_url}{path} is larger than any pin set or keyring", EXIT_NETWORK)
    return body


def _write_replacing(path: Path, body: bytes) -> None:
    """Through a temporary file and a rename: a web server never serves half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_bytes(body)
    os.replace(staging, path)


def _newest_keyring(client: AdminClient, quoted: str) -> int:
    newest = client.call("GET", f"/channels/{quoted}/history", query={"limit": "1"})
    version = newest[0]["keyring_version"] if newest else None
    if isinstance(version, bool) or not isinstance(version, int):
        raise CommandError(f"{client.base_url} named no keyring version", EXIT_NETWORK)
    if not 1 <= version <= _MAX_KEYRING_VERSION:
        raise CommandError(f"{client.base_url} named keyring version {version}", EXIT_NETWORK)
    return version


def export_static_from_server(
    client: AdminClient, out_dir: Path, *, cafile: str | None = None
) -> list[Path]:
    """What ``pinwarden export-static`` writes from the database, from a running server: the
    channels and keyring versions with a read token, the bytes from the public routes, exactly
    as served. The newest pin set is read before the keyring version, so the keyring it is
    signed under is always written too."""
    written: list[Path] = []
    for channel in client.call("GET", "/channels"):
        name = channel["name"]
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise CommandError(f"{client.base_url} named a channel {name!r}", EXIT_NETWORK)
        public = f"/v1/channels/{quote_path(name)}"
        pinset = _public_bytes(client.base_url, f"{public}/pinset", cafile)
        if pinset is None:
            continue  # nothing published
        base = out_dir / "v1" / "channels" / name
        keyrings = range(1, _newest_keyring(client, quote_path(name)) + 1)
        for version in keyrings:
            keyring = _public_bytes(client.base_url, f"{public}/keyring/{version}", cafile)
            if keyring is not None:
                _write_replacing(base / "keyring" / str(version), keyring)
                written.append(base / "keyring" / str(version))
        _write_replacing(base / "pinset", pinset)
        written.append(base / "pinset")
    return written


def register(subparsers: Any) -> None:
    _register_channel(subparsers)
    _register_rule(subparsers)
    _register_pins(subparsers)
    _register_publishing(subparsers)
    _register_tokens(subparsers)
    _register_views(subparsers)
    _register_resign(subparsers)
    _register_operations(subparsers)
