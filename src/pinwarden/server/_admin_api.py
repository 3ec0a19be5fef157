"""The admin API (FastAPI, with its OpenAPI): channels, rules, pins, publishing, tokens, audit,
alerts, the monitor and suggestions (docs/operations.md).

Every route needs a bearer token with a scope, named in the OpenAPI operation as
``x-required-scope`` (read, write, publish or admin; admin holds them all). A missing or wrong
token is 401 (from ``AdminGate``, before the body is read), a token without the scope 403. Every
change is audited by the service it calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from pinwarden.document import KeyStoreError
from pinwarden.server import _channels as channels
from pinwarden.server._admin_gate import AdminRefusals, authenticated_principal
from pinwarden.server._audit import list_audit, record
from pinwarden.server._database import is_connection_failure
from pinwarden.server._errors import AuthError, ScopeError, ServerError, UnsafePublishError
from pinwarden.server._fetch_counts import FETCH_RETENTION_SECONDS, fetch_report
from pinwarden.server._fields import (
    INT32_MAX,
    Count32,
    LongText,
    NameText,
    Port,
    Positive32,
    ShortText,
    StoredText,
    UrlText,
    text_problem,
)
from pinwarden.server._livechain import list_observations, record_observation
from pinwarden.server._models import AuditEntry, Observation, PublishedDocument, Token, utc_now
from pinwarden.server._publish import history, published_rules, published_version
from pinwarden.server._reports import list_reports, summarize_reports
from pinwarden.server._tokens import (
    MAX_TOKEN_LIFETIME_SECONDS,
    SCOPES,
    Principal,
    create_token,
    list_tokens,
    revoke_token,
)
from pinwarden.server.alerts import AlertKind, list_alerts
from pinwarden.server.monitor import (
    MAX_CA_BUNDLE_CHARS,
    MonitoredHost,
    checked_channel_name,
    probe_settings_view,
    rule_targets,
    set_probe_settings,
)
from pinwarden.server.suggest import apply_suggestion, suggest

if TYPE_CHECKING:
    from pinwarden.server._app import Services

__all__ = ["build_admin_api"]

logger = logging.getLogger("pinwarden.server")

_bearer = HTTPBearer(auto_error=False, description="pwt_… token; scopes read/write/publish/admin")


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _principal_with(scope: str) -> Callable[..., Principal]:
    def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        """The token was authenticated by ``AdminGate`` before the body was read; the
        ``Security`` parameter declares the bearer scheme in the OpenAPI document."""
        principal = authenticated_principal(request.scope)
        principal.require(scope)
        return principal

    return dependency


# The principal of a request whose token holds the scope (admin holds them all).
ReadScope = Annotated[Principal, Depends(_principal_with("read"))]
WriteScope = Annotated[Principal, Depends(_principal_with("write"))]
PublishScope = Annotated[Principal, Depends(_principal_with("publish"))]
AdminScope = Annotated[Principal, Depends(_principal_with("admin"))]
ServicesDep = Annotated["Services", Depends(_services)]


def _storable_parameters(request: Request) -> None:
    """Path and query parameters follow the rule of the body fields (``_fields``): one the
    database cannot hold is a 422 naming it, never a query the database refuses."""
    located = [
        *(("path", name, value) for name, value in request.path_params.items()),
        *(("query", name, value) for name, value in request.query_params.multi_items()),
    ]
    problems = [
        {"loc": (where, name), "msg": problem, "type": "value_error"}
        for where, name, value in located
        if (problem := text_problem(str(value))) is not None
    ]
    if problems:
        raise RequestValidationError(problems)


def _scope(name: str) -> dict[str, Any]:
    return {"openapi_extra": {"x-required-scope": name}}


def _links(**links: dict[str, Any]) -> dict[str, Any]:
    """Where a response leads: OpenAPI Link Objects (OpenAPI 3.1, section 4.8.20), keyed by
    name. They document the main flows (create, then read, change, remove) and let a stateful
    fuzzer chain the operations (tests/reliability/test_schemathesis_stateful.py)."""
    return {"links": links}


def _link(
    operation_id: str, body: dict[str, str] | None = None, **parameters: str
) -> dict[str, Any]:
    """One Link Object: the target's operation id (FastAPI's, from the function, path and
    method) and runtime expressions for its parameters and body (section 4.8.20.4)."""
    link: dict[str, Any] = {"operationId": operation_id, "parameters": parameters}
    if body is not None:
        link["requestBody"] = body
    return link


# The expressions for the channel and rule a request named in its own path.
_SAME_CHANNEL = "$request.path.channel"
_SAME_RULE = "$request.path.pattern"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Every text and integer field is one of ``_fields``' types: a value its column cannot hold is a
# 422 naming the field, before any query.
_Pins = Annotated[list[ShortText], Field(max_length=50)]


class ChannelCreate(_Body):
    name: NameText
    description: LongText = ""
    refresh_seconds: Count32 = channels.DEFAULT_REFRESH_SECONDS
    ttl_seconds: Count32 = channels.DEFAULT_TTL_SECONDS
    report_uri: UrlText | None = None


class ChannelUpdate(_Body):
    description: LongText | None = None
    refresh_seconds: Count32 | None = None
    ttl_seconds: Count32 | None = None
    report_uri: UrlText | None = None


class RuleCreate(_Body):
    pattern: ShortText
    mode: NameText = "enforce"
    probe_host: ShortText | None = None
    probe_port: Port = 443


class RuleUpdate(_Body):
    mode: NameText | None = None
    probe_host: ShortText | None = None
    probe_port: Port | None = None


class PinCreate(_Body):
    pin: NameText
    label: NameText = ""
    role: NameText | None = None  # leaf, intermediate, root, backup; default: from the live chain


class PinRole(_Body):
    role: NameText


class PublishBody(_Body):
    dry_run: bool = False
    force: bool = False
    reason: LongText | None = None


class RollbackBody(PublishBody):
    to_version: Positive32


class TokenCreate(_Body):
    name: NameText
    scopes: Annotated[list[NameText], Field(max_length=len(SCOPES))]
    expires_in_seconds: Annotated[int, Field(ge=1, le=MAX_TOKEN_LIFETIME_SECONDS)] | None = None


class Reason(_Body):
    reason: LongText | None = None


class ObservationCreate(_Body):
    host: ShortText
    port: Port = 443
    pins: _Pins


def _document_view(document: PublishedDocument) -> dict[str, Any]:
    return {
        "version": document.version,
        "etag": document.etag,
        "created_at": document.created_at.isoformat(),
        "expires_at": document.expires_at.isoformat(),
        "published_by": document.published_by,
        "forced": document.forced,
        "reason": document.reason,
        "republished_from": document.republished_from,
        "keyring_version": document.keyring_version,
        "rules": [rule.view() for rule in published_rules(document)],
    }


def _token_view(token: Token) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at.isoformat(),
        "created_by": token.created_by,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def _audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail,
        "reason": entry.reason,
    }


def _observation_view(row: Observation) -> dict[str, Any]:
    return {
        "host": row.host,
        "port": row.port,
        "pins": row.chain_pins,
        "seen_at": row.seen_at.isoformat(),
        "source": row.source,
    }


# A rule, added or changed, leads to changing it again, removing it, or pinning it.
_RULE_LINKS = _links(
    UpdateRule=_link(
        "update_rule_channels__channel__rules__pattern__patch",
        channel=_SAME_CHANNEL,
        pattern="$response.body#/pattern",
    ),
    RemoveRule=_link(
        "remove_rule_channels__channel__rules__pattern__delete",
        channel=_SAME_CHANNEL,
        pattern="$response.body#/pattern",
    ),
    AddPin=_link(
        "add_pin_channels__channel__rules__pattern__pins_post",
        channel=_SAME_CHANNEL,
        pattern="$response.body#/pattern",
    ),
)


def _channel_routes(router: APIRouter) -> None:
    # Routes with a suffix come before /channels/{channel:path}, which would swallow them.
    @router.get("/channels", **_scope("read"))
    def list_all(services: ServicesDep, principal: ReadScope) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [channels.channel_view(c, rules=False) for c in channels.list_channels(session)]

    @router.post(
        "/channels",
        status_code=201,
        responses={
            201: _links(
                ShowChannel=_link("show_channels__channel__get", channel="$response.body#/name"),
                UpdateChannel=_link(
                    "update_channels__channel__patch", channel="$response.body#/name"
                ),
                AddRule=_link(
                    "add_rule_channels__channel__rules_post", channel="$response.body#/name"
                ),
            )
        },
        **_scope("write"),
    )
    def create(body: ChannelCreate, services: ServicesDep, principal: WriteScope) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channel = channels.create_channel(
                session, body.name, principal.actor, **body.model_dump(exclude={"name"})
            )
            services.notify_replicas(session, channel.name, 0)  # other replicas learn the name
            view = channels.channel_view(channel, rules=False)
        services.store.add_channel(channel.name)
        return view

    @router.get(
        "/channels/{channel:path}/history",
        responses={
            200: _links(
                SignedNewest=_link(
                    "signed_version_channels__channel__pinset__version__get",
                    channel=_SAME_CHANNEL,
                    version="$response.body#/0/version",
                )
            )
        },
        **_scope("read"),
    )
    def get_history(
        channel: str,
        services: ServicesDep,
        principal: ReadScope,
        limit: int = Query(50, ge=1, le=500),
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_document_view(doc) for doc in history(session, channel, limit=limit)]

    @router.get("/channels/{channel:path}/fetches", **_scope("read"))
    async def fetches(
        channel: str,
        services: ServicesDep,
        principal: ReadScope,
        window: int = Query(3600, ge=60, le=FETCH_RETENTION_SECONDS),
    ) -> dict[str, Any]:
        """Pin-set fetches by version over the last ``window`` seconds, summed over replicas
        (this one's counts stored first; the others' are at most a flush behind)."""
        await services.fetch_counter.flush(services.sessions, services.config.replica_id)

        def read() -> dict[str, Any]:
            with services.sessions() as session:
                return fetch_report(session, channel, window)

        return await asyncio.to_thread(read)

    @router.get(
        "/channels/{channel:path}/pinset/{version}",
        response_class=Response,
        responses={
            200: {
                "content": {"application/jose+json": {}},
                **_links(
                    RollbackToIt=_link(
                        "rollback_channels__channel__rollback_post",
                        {"to_version": "$request.path.version"},
                        channel=_SAME_CHANNEL,
                    )
                ),
            }
        },
        **_scope("read"),
    )
    def signed_version(
        channel: str,
        services: ServicesDep,
        principal: ReadScope,
        version: int = Path(ge=1, le=INT32_MAX),
    ) -> Response:
        """The signed bytes of a published version, exactly as they were served (an old version
        for an audit or a static mirror; the public pin-set route serves only the newest)."""
        with services.sessions() as session:
            document = published_version(session, channels.get_channel(session, channel), version)
        return Response(
            document.body,
            media_type="application/jose+json",
            headers={"etag": document.etag, "cache-control": "private, max-age=86400, immutable"},
        )

    @router.post(
        "/channels/{channel:path}/publish",
        responses={
            200: _links(
                History=_link(
                    "get_history_channels__channel__history_get", channel="$response.body#/channel"
                ),
                SignedVersion=_link(
                    "signed_version_channels__channel__pinset__version__get",
                    channel="$response.body#/channel",
                    version="$response.body#/version",
                ),
                RollbackToPrevious=_link(
                    "rollback_channels__channel__rollback_post",
                    {"to_version": "$response.body#/previous_version"},
                    channel="$response.body#/channel",
                ),
            )
        },
        **_scope("publish"),
    )
    async def publish(
        channel: str, body: PublishBody, services: ServicesDep, principal: PublishScope
    ) -> dict[str, Any]:
        outcome = await services.run_publish(
            services.publisher.publish,
            channel,
            principal.actor,
            dry_run=body.dry_run,
            force=body.force,
            reason=body.reason,
        )
        return outcome.view()

    @router.post("/channels/{channel:path}/rollback", **_scope("publish"))
    async def rollback(
        channel: str, body: RollbackBody, services: ServicesDep, principal: PublishScope
    ) -> dict[str, Any]:
        outcome = await services.run_publish(
            services.publisher.rollback,
            channel,
            body.to_version,
            principal.actor,
            dry_run=body.dry_run,
            force=body.force,
            reason=body.reason,
        )
        return outcome.view()

    @router.post(
        "/channels/{channel:path}/rules",
        status_code=201,
        responses={201: _RULE_LINKS},
        **_scope("write"),
    )
    def add_rule(
        channel: str, body: RuleCreate, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            rule = channels.add_rule(
                session,
                channel,
                body.pattern,
                principal.actor,
                **body.model_dump(exclude={"pattern"}),
            )
            return channels.rule_view(rule)

    @router.patch(
        "/channels/{channel:path}/rules/{pattern}",
        responses={200: _RULE_LINKS},
        **_scope("write"),
    )
    def update_rule(
        channel: str, pattern: str, body: RuleUpdate, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            rule = channels.update_rule(
                session, channel, pattern, principal.actor, body.model_dump(exclude_unset=True)
            )
            return channels.rule_view(rule)

    @router.delete("/channels/{channel:path}/rules/{pattern}", **_scope("write"))
    def remove_rule(
        channel: str, pattern: str, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channels.remove_rule(session, channel, pattern, principal.actor)
        return {"removed": pattern}

    @router.post(
        "/channels/{channel:path}/rules/{pattern}/pins",
        status_code=201,
        responses={
            201: _links(
                SetPinRole=_link(
                    "set_pin_role_channels__channel__rules__pattern__pins_patch",
                    channel=_SAME_CHANNEL,
                    pattern=_SAME_RULE,
                    pin="$response.body#/pin",
                ),
                RemovePin=_link(
                    "remove_pin_channels__channel__rules__pattern__pins_delete",
                    channel=_SAME_CHANNEL,
                    pattern=_SAME_RULE,
                    pin="$response.body#/pin",
                ),
                Publish=_link("publish_channels__channel__publish_post", channel=_SAME_CHANNEL),
            )
        },
        **_scope("write"),
    )
    def add_pin(
        channel: str, pattern: str, body: PinCreate, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            pin = channels.add_pin(
                session,
                channel,
                pattern,
                body.pin,
                principal.actor,
                label=body.label,
                role=body.role,
            )
            return {"pin": pin.pin, "label": pin.label, "role": pin.role}

    @router.patch("/channels/{channel:path}/rules/{pattern}/pins", **_scope("write"))
    def set_pin_role(
        channel: str,
        pattern: str,
        body: PinRole,
        services: ServicesDep,
        principal: WriteScope,
        pin: str = Query(description="the pin whose chain role to set, sha256/…"),
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            entry = channels.set_pin_role(
                session, channel, pattern, pin, body.role, principal.actor
            )
            return {"pin": entry.pin, "label": entry.label, "role": entry.role}

    @router.delete("/channels/{channel:path}/rules/{pattern}/pins", **_scope("write"))
    def remove_pin(
        channel: str,
        pattern: str,
        services: ServicesDep,
        principal: WriteScope,
        pin: str = Query(description="the pin to remove, sha256/…"),
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channels.remove_pin(session, channel, pattern, pin, principal.actor)
        return {"removed": pin}

    @router.get("/channels/{channel:path}", **_scope("read"))
    def show(channel: str, services: ServicesDep, principal: ReadScope) -> dict[str, Any]:
        with services.sessions() as session:
            view = channels.channel_view(channels.get_channel(session, channel))
        served = services.store.pinset(channel)
        view["published_version"] = served.version if served else None
        return view

    @router.patch("/channels/{channel:path}", **_scope("write"))
    def update(
        channel: str, body: ChannelUpdate, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            updated = channels.update_channel(
                session, channel, principal.actor, body.model_dump(exclude_unset=True)
            )
            return channels.channel_view(updated, rules=False)


def _other_routes(router: APIRouter) -> None:
    @router.get("/tokens", **_scope("admin"))
    def tokens(services: ServicesDep, principal: AdminScope) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_token_view(token) for token in list_tokens(session)]

    @router.post(
        "/tokens",
        status_code=201,
        responses={
            201: _links(
                Revoke=_link(
                    "revoke_tokens__token_id__revoke_post",
                    token_id="$response.body#/token_id",  # noqa: S106 (an expression, no secret)
                )
            )
        },
        **_scope("admin"),
    )
    def new_token(
        body: TokenCreate, services: ServicesDep, principal: AdminScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            row, token = create_token(
                session,
                body.name,
                body.scopes,
                principal.actor,
                expires_in_seconds=body.expires_in_seconds,
            )
            return {**_token_view(row), "token": token}

    @router.post("/tokens/{token_id}/revoke", **_scope("admin"))
    def revoke(
        token_id: str, body: Reason, services: ServicesDep, principal: AdminScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            return _token_view(revoke_token(session, token_id, principal.actor, body.reason))

    @router.post("/resign", **_scope("publish"))
    async def resign(
        body: Reason, services: ServicesDep, principal: PublishScope
    ) -> dict[str, Any]:
        """Re-sign every published channel with the key directory's current online keys (after
        an online-key rotation done offline and exported to this server)."""
        return await services.resign_channels(principal.actor, body.reason)

    @router.get("/audit", **_scope("read"))
    def audit(
        services: ServicesDep,
        principal: ReadScope,
        target: str | None = Query(None, max_length=500),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            entries = list_audit(session, target_prefix=target, limit=limit)
            return [_audit_view(entry) for entry in entries]

    @router.post("/observations", status_code=201, **_scope("publish"))
    def observe(
        body: ObservationCreate, services: ServicesDep, principal: PublishScope
    ) -> dict[str, Any]:
        """Record a chain the monitor saw. A record for alerts and dashboards only: safe
        publishing never takes it as proof of the live chain."""
        pins = [channels.normal_pin(pin) for pin in body.pins]
        with services.sessions.begin() as session:
            row = record_observation(session, body.host, body.port, pins, "api", principal.actor)
            return _observation_view(row)

    @router.get("/observations", **_scope("read"))
    def observations(
        services: ServicesDep, principal: ReadScope, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_observation_view(row) for row in list_observations(session, limit=limit)]

    @router.get("/reports", **_scope("read"))
    def reports(
        services: ServicesDep, principal: ReadScope, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [
                {"received_at": row.received_at.isoformat(), "client": row.client, **row.payload}
                for row in list_reports(session, limit=limit)
            ]

    @router.get("/reports/summary", **_scope("read"))
    def report_summary(services: ServicesDep, principal: ReadScope) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return summarize_reports(session)


class AlertAck(_Body):
    id: Positive32


class MonitorRun(_Body):
    channel: NameText | None = None


class ProbeSettingsBody(_Body):
    channel: NameText
    pattern: ShortText
    connect_to: ShortText | None = None
    ca_bundle_pem: Annotated[StoredText, Field(max_length=MAX_CA_BUNDLE_CHARS)] | None = None


class SuggestionApply(_Body):
    channel: NameText


_ChannelQuery = Query(None, max_length=200, description="one channel (default: all)")


def _operations_routes(router: APIRouter) -> None:
    """Alerts, the monitor and suggestions (docs/operations.md). Channel names travel in the
    query or the body: a literal after ``{channel:path}`` would be one more reserved word."""

    @router.get("/alerts", **_scope("read"))
    def alerts(
        services: ServicesDep,
        principal: ReadScope,
        state: Literal["open", "resolved", "all"] = "open",
        kind: AlertKind | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            found = list_alerts(
                session, state=state, kind=kind.value if kind else None, limit=limit
            )
            return [alert.view() for alert in found]

    @router.post("/alerts/ack", **_scope("write"))
    def acknowledge(body: AlertAck, services: ServicesDep, principal: WriteScope) -> dict[str, Any]:
        with services.sessions.begin() as session:
            alert = services.alerts.acknowledge(session, body.id, principal.actor)
            record(session, principal.actor, "alert.ack", f"alert:{body.id}", {})
            return alert.view()

    @router.get("/monitor/targets", **_scope("read"))
    def monitor_targets(
        services: ServicesDep, principal: ReadScope, channel: str | None = _ChannelQuery
    ) -> dict[str, Any]:
        """What ``pinwarden monitor --once`` checks: each enabled rule's host, its published
        pins and probe settings."""
        with services.sessions() as session:
            if channel is not None:
                channels.get_channel(session, checked_channel_name(channel))
            targets, skipped = rule_targets(session, channel)
        return {
            "targets": [target.view() for target in targets],
            "skipped": [vars(rule) for rule in skipped],
            "expiry_warning_days": services.monitor.policy.expiry_warning.days,
        }

    @router.get("/monitor/hosts", **_scope("read"))
    def monitor_hosts(
        services: ServicesDep, principal: ReadScope, channel: str | None = _ChannelQuery
    ) -> list[dict[str, Any]]:
        """The last check of each host, as the server's monitor recorded it."""
        with services.sessions() as session:
            query = select(MonitoredHost).order_by(MonitoredHost.channel, MonitoredHost.pattern)
            if channel is not None:
                query = query.where(MonitoredHost.channel == checked_channel_name(channel))
            return [_host_view(row) for row in session.scalars(query)]

    @router.post("/monitor/run", **_scope("write"))
    async def monitor_run(
        body: MonitorRun, services: ServicesDep, principal: WriteScope
    ) -> dict[str, Any]:
        """Check now (one channel, or all), record, and open or resolve alerts."""
        if body.channel is not None:
            with services.sessions() as session:
                channels.get_channel(session, checked_channel_name(body.channel))
        return (await services.monitor.run_once(body.channel)).view()

    # admin, not write: a probe address and CA bundle make the server connect anywhere and report
    # what it found, a port scanner for whoever may set them.
    @router.put("/monitor/probe-settings", **_scope("admin"))
    def probe_settings(
        body: ProbeSettingsBody, services: ServicesDep, principal: AdminScope
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            row = set_probe_settings(
                session,
                body.channel,
                body.pattern,
                principal.actor,
                connect_to=body.connect_to,
                ca_bundle_pem=body.ca_bundle_pem,
            )
            return probe_settings_view(row)

    @router.get("/suggestions", **_scope("read"))
    def suggestion(
        services: ServicesDep,
        principal: ReadScope,
        channel: str = Query(max_length=200),
    ) -> dict[str, Any]:
        with services.sessions() as session:
            found = suggest(
                session,
                channel,
                now=utc_now(),
                expiry_warning=services.monitor.policy.expiry_warning,
            )
        return found.view()

    @router.post("/suggestions/apply", **_scope("publish"))
    async def apply(
        body: SuggestionApply, services: ServicesDep, principal: PublishScope
    ) -> dict[str, Any]:
        """Apply the suggestion computed now, through safe publishing (never one sent in)."""
        with services.sessions() as session:
            found = suggest(
                session,
                body.channel,
                now=utc_now(),
                expiry_warning=services.monitor.policy.expiry_warning,
            )
        outcome = await services.run_publish(
            apply_suggestion, services.sessions, services.publisher, found, principal.actor
        )
        return {"suggestion": found.view(), "publish": outcome.view()}


def _host_view(row: MonitoredHost) -> dict[str, Any]:
    return {
        "channel": row.channel,
        "pattern": row.pattern,
        "host": row.host,
        "port": row.port,
        "checked_at": row.checked_at.isoformat(),
        "consecutive_failures": row.consecutive_failures,
        "chain": row.chain,
        "error": row.last_error,
    }


def _encodable(value: object) -> str | int:
    """An index as is; any other value as text that encodes to UTF-8 (surrogates escaped)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _error_body(error: ServerError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(error)}
    if isinstance(error, UnsafePublishError):
        body["problems"] = error.problems
    return body


def build_admin_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="pinwarden admin API",
        version="1",
        description="Channels, rules, pins, safe publishing, tokens and audit. Bearer tokens.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        dependencies=[Depends(_storable_parameters)],
    )
    api.state.services = services
    api.state.refusals = refusals = AdminRefusals()  # shared with ``AdminGate``
    services.metrics.add_counter(
        "pinwarden_admin_refused_total",
        "Refused admin requests by reason (missing, invalid, revoked, expired, scope, "
        "rate_limited).",
        refusals.samples,
    )
    # Declared on the app's own router, in order: ``api.routes`` is the table requests are
    # matched against, top to bottom (tests/server/test_routes.py walks it).
    _channel_routes(api.router)
    _other_routes(api.router)
    _operations_routes(api.router)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """FastAPI's own 422 echoes each input, and one holding a lone surrogate cannot be
        encoded (a 500). Say where and what was wrong, never the input."""
        problems = [
            {
                "loc": [_encodable(part) for part in problem.get("loc", ())],
                "msg": _encodable(problem.get("msg", "")),
                "type": _encodable(problem.get("type", "")),
            }
            for problem in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @api.exception_handler(ServerError)
    async def server_error(request: Request, error: ServerError) -> JSONResponse:
        if isinstance(error, (AuthError, ScopeError)):
            refusals.refuse(request.scope, error.reason)
        headers = {"www-authenticate": "Bearer"} if isinstance(error, AuthError) else None
        return JSONResponse(_error_body(error), status_code=error.status, headers=headers)

    @api.exception_handler(KeyStoreError)
    async def key_store(request: Request, error: KeyStoreError) -> JSONResponse:
        # E.g. a keyring exported here names online keys the passphrase does not open, or the
        # key directory holds a root key: nothing is signed.
        return JSONResponse({"error": f"cannot sign: {error}"}, status_code=503)

    @api.exception_handler(IntegrityError)
    async def conflict(request: Request, error: IntegrityError) -> JSONResponse:
        return JSONResponse({"error": "conflicting change; try again"}, status_code=409)

    @api.exception_handler(StatementError)
    @api.exception_handler(DataError)
    async def refused_value(request: Request, error: StatementError) -> JSONResponse:
        """The backstop behind ``_fields``: a value the database or its driver refused (a NUL, an
        integer past its column) is the request's fault, and the database is fine."""
        message = (
            "the database refused a value of this request (a character or a number out of "
            "range); check the fields and send it again"
        )
        return JSONResponse({"error": message}, status_code=422)

    @api.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        """Only a failed connection is "database down" (``/healthz``, ``pinwarden_database_up``);
        any other refusal is this server's bug, a 500 that leaves the database state alone."""
        if is_connection_failure(error):
            services.database_state(False)
            return JSONResponse({"error": "the database is unavailable"}, status_code=503)
        logger.error("pinwarden: the database refused a statement: %s", error.orig)
        return JSONResponse({"error": "internal error"}, status_code=500)

    return api
