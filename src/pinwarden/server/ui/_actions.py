"""The dashboard's changes (POST forms). Each calls the service function its admin-API route
calls, with the same scope and the same actor, so the audit log cannot tell them apart except
by nothing at all; then it redirects (303) to the page that shows the result."""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from pinwarden.server import _channels as channels
from pinwarden.server._audit import record
from pinwarden.server._errors import ConflictError, ValidationError
from pinwarden.server._models import Token, utc_now
from pinwarden.server._tokens import MAX_TOKEN_LIFETIME_SECONDS, create_token, revoke_token
from pinwarden.server.monitor import checked_channel_name
from pinwarden.server.suggest import Suggestion, apply_suggestion, suggest
from pinwarden.server.ui._pages import tokens_page_with
from pinwarden.server.ui._views import suggestion_fingerprint
from pinwarden.server.ui._web import (
    LONG_CHARS,
    SHORT_CHARS,
    URL_CHARS,
    Form,
    Page,
    form_fields,
)

__all__ = ["ACTIONS"]


def _back(channel: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/channel?{urlencode({'name': channel, 'done': done})}", 303)


def _number(form: Form, name: str, low: int, high: int) -> int:
    text = form.get(name).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}")
    return int(text)


async def _form(page: Page, scope: str) -> Form:
    form = await form_fields(page.request, page.user.csrf)
    page.user.principal.require(scope)
    return form


async def create_channel(page: Page) -> Response:
    form = await _form(page, "write")
    services, name = page.services, form.get("name").strip()

    def change() -> None:
        with services.sessions.begin() as session:
            channel = channels.create_channel(
                session,
                name,
                page.actor,
                description=form.get("description", limit=LONG_CHARS),
                report_uri=form.optional("report_uri", limit=URL_CHARS),
            )
            services.notify_replicas(session, channel.name, 0)  # as the admin API does
        services.store.add_channel(name)

    await run_in_threadpool(change)
    return _back(name, "channel-created")


async def add_rule(page: Page) -> Response:
    form = await _form(page, "write")
    name = form.get("channel")
    port = _number(form, "probe_port", 1, 65535) if form.optional("probe_port") else 443

    def change() -> None:
        with page.services.sessions.begin() as session:
            channels.add_rule(
                session,
                name,
                form.get("pattern", limit=SHORT_CHARS),
                page.actor,
                mode=form.get("mode", "enforce"),
                probe_host=form.optional("probe_host", limit=SHORT_CHARS),
                probe_port=port,
            )

    await run_in_threadpool(change)
    return _back(name, "rule-added")


async def add_pin(page: Page) -> Response:
    form = await _form(page, "write")
    name = form.get("channel")

    def change() -> None:
        with page.services.sessions.begin() as session:
            channels.add_pin(
                session,
                name,
                form.get("pattern", limit=SHORT_CHARS),
                form.get("pin").strip(),
                page.actor,
                label=form.get("label"),
                role=form.optional("role"),
            )

    await run_in_threadpool(change)
    return _back(name, "pin-added")


async def remove_pin(page: Page) -> Response:
    form = await _form(page, "write")
    name = form.get("channel")

    def change() -> None:
        with page.services.sessions.begin() as session:
            channels.remove_pin(
                session, name, form.get("pattern", limit=SHORT_CHARS), form.get("pin"), page.actor
            )

    await run_in_threadpool(change)
    return _back(name, "pin-removed")


async def publish(page: Page) -> Response:
    """``check`` (a dry run) shows the safe-publish verdict first; ``publish`` signs, refused
    like the API when unsafe unless forced with a reason."""
    form = await _form(page, "publish")
    name, services = form.get("channel"), page.services
    dry_run = form.get("step") == "check"
    outcome = await services.run_publish(
        services.publisher.publish,
        name,
        page.actor,
        dry_run=dry_run,
        force=form.get("force") == "yes",
        reason=form.optional("reason", limit=LONG_CHARS),
    )
    if dry_run:
        return page.render(
            "check.html", title=f"Publish {name}?", channel=name, outcome=outcome.view()
        )
    return _back(name, "published")


async def rollback(page: Page) -> Response:
    form = await _form(page, "publish")
    name, services = form.get("channel"), page.services
    await services.run_publish(
        services.publisher.rollback,
        name,
        _number(form, "to_version", 1, 2**31 - 1),
        page.actor,
        force=form.get("force") == "yes",
        reason=form.optional("reason", limit=LONG_CHARS),
    )
    return _back(name, "rolled-back")


async def apply(page: Page) -> Response:
    """Apply the suggestion computed now (never one sent in), through safe publishing, if it is
    the one the page showed (``shown``: its fingerprint)."""
    form = await _form(page, "publish")
    name, services = checked_channel_name(form.get("channel")), page.services
    shown = form.get("shown")

    def current() -> Suggestion:
        with services.sessions() as session:
            return suggest(
                session, name, now=utc_now(), expiry_warning=services.monitor.policy.expiry_warning
            )

    found = await run_in_threadpool(current)
    if not hmac.compare_digest(
        shown.encode(errors="surrogatepass"), suggestion_fingerprint(found).encode()
    ):
        raise ConflictError(
            "the suggestion changed since the page was shown: reload the page and check it again"
        )
    await services.run_publish(
        apply_suggestion, services.sessions, services.publisher, found, page.actor
    )
    return _back(name, "applied")


async def acknowledge(page: Page) -> Response:
    form = await _form(page, "write")
    alert_id = _number(form, "id", 1, 2**31 - 1)

    def change() -> None:
        with page.services.sessions.begin() as session:
            page.services.alerts.acknowledge(session, alert_id, page.actor)
            record(session, page.actor, "alert.ack", f"alert:{alert_id}", {})

    await run_in_threadpool(change)
    back = form.optional("channel")
    return _back(back, "acked") if back else RedirectResponse("/ui/?done=acked", 303)


async def check_hosts(page: Page) -> Response:
    """Run the monitor now (one channel, or all), as ``POST /v1/admin/monitor/run``."""
    form = await _form(page, "write")
    name = form.optional("channel")
    if name is not None:

        def known() -> None:
            with page.services.sessions() as session:
                channels.get_channel(session, checked_channel_name(name))

        await run_in_threadpool(known)
    await page.services.monitor.run_once(name)
    return _back(name, "checked") if name else RedirectResponse("/ui/?done=checked", 303)


async def new_token(page: Page) -> Response:
    form = await _form(page, "admin")
    lifetime = (
        _number(form, "expires_in_days", 1, MAX_TOKEN_LIFETIME_SECONDS // 86400) * 86400
        if form.optional("expires_in_days")
        else None
    )

    def change() -> tuple[Token, str]:
        with page.services.sessions.begin() as session:
            row, token = create_token(
                session,
                form.get("name").strip(),
                form.all("scopes"),
                page.actor,
                expires_in_seconds=lifetime,
            )
            session.flush()
            session.expunge(row)
            return row, token

    return await tokens_page_with(page, await run_in_threadpool(change))


async def revoke(page: Page) -> Response:
    form = await _form(page, "admin")

    def change() -> None:
        with page.services.sessions.begin() as session:
            revoke_token(session, form.get("token_id"), page.actor, form.optional("reason"))

    await run_in_threadpool(change)
    return RedirectResponse("/ui/tokens?done=revoked", 303)


ACTIONS = {
    "channels": create_channel,
    "rules": add_rule,
    "pins": add_pin,
    "pins/remove": remove_pin,
    "publish": publish,
    "rollback": rollback,
    "suggestions/apply": apply,
    "alerts/ack": acknowledge,
    "monitor/run": check_hosts,
    "tokens": new_token,
    "tokens/revoke": revoke,
}
