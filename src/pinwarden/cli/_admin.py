"""Admin commands over the server's HTTP API: channel, rule, pins, publish, history, rollback,
token, audit, reports, resign.

(``pinwarden pin`` already computes pins, so a rule's pins are managed with ``pinwarden pins``.)
Exit status: 0 done; 1 publishing refused as unsafe; 2 bad input or refused by the server;
3 the server cannot be reached or failed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pinwarden.cli._admin_client import (
    AdminClient,
    add_connection_options,
    client_from_args,
    quote_path,
)
from pinwarden.cli._common import EXIT_FAILED, EXIT_OK, CommandError, print_json

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
        answer = handler(client_from_args(args), args)
        if args.json:
            print_json(answer)
        else:
            for line in formatter(answer):
                print(line)
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
    lines.extend(f"    {pin['pin']}  {pin['label']}" for pin in rule["pins"])
    return lines


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
    for check in outcome["checks"]:
        for problem in check["problems"]:
            lines.append(f"  problem: {check['pattern']}: {problem}")
    return lines


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
    lines = [f"{token['token_id']}  {token['name']}  scopes={','.join(token['scopes'])}{state}"]
    if "token" in token:
        lines += [token["token"], "Store it now: it is shown once and only its hash is kept."]
    return lines


def _each(format_one: Formatter) -> Formatter:
    return lambda items: [line for item in items for line in format_one(item)]


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


def _register_pins(subparsers: Any) -> None:
    group = subparsers.add_parser("pins", help="add or remove the pins of a rule")
    commands = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    def pin_args(parser: argparse.ArgumentParser) -> None:
        _rule_args(parser)
        parser.add_argument("pin", help='sha256/<base64> (or pin-sha256="…", or bare base64)')

    def add_args(parser: argparse.ArgumentParser) -> None:
        pin_args(parser)
        parser.add_argument("--label", default="", help='e.g. "leaf key", "backup key"')

    _command(
        commands,
        "add",
        "add a pin to a rule",
        lambda c, a: c.call("POST", _rule_path(a) + "/pins", {"pin": a.pin, "label": a.label}),
        lambda p: [f"added {p['pin']}  {p['label']}"],
        add_args,
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

    def revoke_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("token_id")
        parser.add_argument("--reason")

    _command(
        commands,
        "create",
        "create a token; it is printed once",
        lambda c, a: c.call("POST", "/tokens", {"name": a.name, "scopes": a.scopes}),
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
        _each(_report_lines),
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


def register(subparsers: Any) -> None:
    _register_channel(subparsers)
    _register_rule(subparsers)
    _register_pins(subparsers)
    _register_publishing(subparsers)
    _register_tokens(subparsers)
    _register_views(subparsers)
    _register_resign(subparsers)
