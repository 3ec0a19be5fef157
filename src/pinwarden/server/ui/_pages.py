"""The dashboard's pages (GET): overview, channel, reports, audit log, tokens. They read only;
every change is a form posted to ``_actions``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pinwarden.export import ROLES, chain_role
from pinwarden.server import _channels as channels
from pinwarden.server._audit import list_audit
from pinwarden.server._fetch_counts import fetches_by_version
from pinwarden.server._models import Channel, Token, utc_now
from pinwarden.server._publish import latest_document, published_rules
from pinwarden.server._tokens import SCOPES, list_tokens
from pinwarden.server.monitor import checked_channel_name
from pinwarden.server.suggest import suggest
from pinwarden.server.ui import _views as views
from pinwarden.server.ui._charts import bar_chart, expiry_timeline
from pinwarden.server.ui._web import Page, query_text

__all__ = [
    "audit_page",
    "channel_page",
    "overview_page",
    "reports_page",
    "tokens_page",
    "tokens_page_with",
]

# Messages a redirect after a change may show (by key: a URL carries no text to display).
NOTICES = {
    "channel-created": "Channel created.",
    "rule-added": "Rule added to the draft.",
    "pin-added": "Pin added to the draft.",
    "pin-removed": "Pin removed from the draft.",
    "published": "Published: the new version is served now.",
    "rolled-back": "Rolled back: the old rules are published as a new version.",
    "applied": "Suggestion applied and published.",
    "acked": "Alert acknowledged.",
    "checked": "Hosts checked.",
    "revoked": "Token revoked.",
}


def _notice(page: Page) -> str | None:
    return NOTICES.get(page.request.query_params.get("done", ""))


async def overview_page(page: Page) -> Response:
    services = page.services

    def read() -> dict[str, Any]:
        now = utc_now()
        with services.sessions() as session:
            return {
                "channels": views.channel_rows(session, now, services.freshener.last_round),
                "hosts": views.host_rows(session),
                "alerts": views.open_alerts(session),
                "reports": views.reports_since(session, now - timedelta(hours=24)),
            }

    return page.render(
        "overview.html", title="Overview", notice=_notice(page), **await run_in_threadpool(read)
    )


def _live_positions(channel: Channel, hosts: list[views.HostRow]) -> dict[tuple[str, str], str]:
    """Where each pin of each rule sits in its hosts' live chains (``chain_role``), "backup"
    when in none of them, "not checked" before the monitor saw a host of the rule."""
    positions: dict[tuple[str, str], str] = {}
    for rule in channel.rules:
        chains = [host.chain_pins for host in hosts if host.pattern == rule.pattern]
        for pin in rule.pins:
            position = "backup" if chains else "not checked"
            for pins in chains:
                if pin.pin in pins:
                    position = chain_role(pins.index(pin.pin), len(pins))
            positions[(rule.pattern, pin.pin)] = position
    return positions


def _timeline(
    hosts: list[views.HostRow], expires_at: datetime | None, now: datetime, warning: timedelta
) -> tuple[list[tuple[str, datetime]], Any]:
    items = []
    for host in hosts:
        for certificate in host.chain:
            subject = str(certificate.get("subject", ""))
            name = subject.split("CN=", 1)[-1].split(",", 1)[0] if "CN=" in subject else subject
            items.append((f"{host.host}: {name}", datetime.fromisoformat(certificate["not_after"])))
    if expires_at is not None:
        items.append(("pin set (published)", expires_at))
    chart = expiry_timeline("Expiry of certificates and of the pin set", items, now, warning)
    return items, chart


def _channel_context(page: Page, session: Session, name: str) -> dict[str, Any]:
    services, now = page.services, utc_now()
    warning = services.monitor.policy.expiry_warning
    channel = channels.get_channel(session, checked_channel_name(name))
    latest = latest_document(session, channel)
    hosts = views.host_rows(session, channel.name)
    draft, changes = views.draft_changes(channel, latest)
    published = {rule.pattern: rule for rule in published_rules(latest)} if latest else {}
    pinned = {(rule.pattern, pin.pin): pin for rule in channel.rules for pin in rule.pins}
    items, chart = _timeline(hosts, latest.expires_at if latest else None, now, warning)
    served = services.store.pinset(channel.name)
    suggestion = suggest(session, channel.name, now=now, expiry_warning=warning)
    return {
        "channel": channel,
        "latest": latest,
        "served_version": served.version if served else None,
        "published": published,
        "hosts": hosts,
        "pinned": pinned,
        "positions": _live_positions(channel, hosts),
        "roles": ("", *ROLES),
        "draft": draft,
        "changes": changes,
        "suggestion": suggestion,
        "suggestion_fingerprint": views.suggestion_fingerprint(suggestion),
        "versions": views.version_rows(session, channel.name),
        "fetches": fetches_by_version(session, channel.name),
        "alerts": views.open_alerts(session, channel.name),
        "sightings": views.ct_sightings(session, channel.name),
        "timeline": items,
        "timeline_chart": chart,
        "modes": ("enforce", "report-only", "disabled"),
    }


async def channel_page(page: Page) -> Response:
    name = query_text(page.request, "name", 200) or ""

    def read() -> dict[str, Any]:
        with page.services.sessions() as session:
            return _channel_context(page, session, name)

    context = await run_in_threadpool(read)
    return page.render("channel.html", title=name, notice=_notice(page), **context)


async def reports_page(page: Page) -> Response:
    def read() -> dict[str, Any]:
        now = utc_now()
        with page.services.sessions() as session:
            summary, recent = views.report_tables(session)
            buckets = views.report_buckets(session, now)
            return {
                "summary": summary,
                "recent": [(row, views.served_chain(row.payload)) for row in recent],
                "buckets": buckets,
                "chart": bar_chart("Violation reports per hour, last 24 hours", buckets, "reports"),
                "last_day": views.reports_since(session, now - timedelta(hours=24)),
            }

    return page.render("reports.html", title="Reports", **await run_in_threadpool(read))


async def audit_page(page: Page) -> Response:
    target = query_text(page.request, "target", 500)

    def read() -> list[Any]:
        with page.services.sessions() as session:
            return list_audit(session, target_prefix=target, limit=200)

    entries = await run_in_threadpool(read)
    return page.render("audit.html", title="Audit log", entries=entries, target=target or "")


async def tokens_page(page: Page) -> Response:
    return await tokens_page_with(page, None)


async def tokens_page_with(page: Page, created: tuple[Token, str] | None) -> Response:
    """The tokens; ``created``: a token just made, its secret shown this once."""
    page.user.principal.require("admin")

    def read() -> list[Token]:
        with page.services.sessions() as session:
            return list_tokens(session)

    tokens = await run_in_threadpool(read)
    return page.render(
        "tokens.html",
        status=201 if created else 200,
        title="Tokens",
        tokens=tokens,
        scopes=SCOPES,
        notice=_notice(page),
        created=created,
    )
