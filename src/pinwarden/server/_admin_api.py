"""The admin API (FastAPI, with its OpenAPI): channels, rules, pins, publishing, tokens, audit.

Every route needs a bearer token with a scope, named in the OpenAPI operation as
``x-required-scope`` (read, write, publish or admin; admin holds them all). A missing or wrong
token is 401 (from ``AdminGate``, before the body is read), a token without the scope 403. Every
change is audited by the service it calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, IntegrityError

from pinwarden.document import KeyStoreError
from pinwarden.server import _channels as channels
from pinwarden.server._admin_gate import authenticated_principal
from pinwarden.server._audit import list_audit
from pinwarden.server._errors import AuthError, ServerError, UnsafePublishError
from pinwarden.server._livechain import list_observations, record_observation
from pinwarden.server._models import AuditEntry, Observation, PublishedDocument, Token
from pinwarden.server._publish import history
from pinwarden.server._reports import list_reports, summarize_reports
from pinwarden.server._tokens import (
    Principal,
    create_token,
    list_tokens,
    revoke_token,
)

if TYPE_CHECKING:
    from pinwarden.server._app import Services

__all__ = ["build_admin_api"]

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


Reader = Annotated[Principal, Depends(_principal_with("read"))]
Writer = Annotated[Principal, Depends(_principal_with("write"))]
Publisher = Annotated[Principal, Depends(_principal_with("publish"))]
Admin = Annotated[Principal, Depends(_principal_with("admin"))]
ServicesDep = Annotated["Services", Depends(_services)]


def _scope(name: str) -> dict[str, Any]:
    return {"openapi_extra": {"x-required-scope": name}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelCreate(_Body):
    name: str
    description: str = ""
    refresh_seconds: int = channels.DEFAULT_REFRESH_SECONDS
    ttl_seconds: int = channels.DEFAULT_TTL_SECONDS
    report_uri: str | None = None


class ChannelUpdate(_Body):
    description: str | None = None
    refresh_seconds: int | None = None
    ttl_seconds: int | None = None
    report_uri: str | None = None


class RuleCreate(_Body):
    pattern: str
    mode: str = "enforce"
    probe_host: str | None = None
    probe_port: int = 443


class RuleUpdate(_Body):
    mode: str | None = None
    probe_host: str | None = None
    probe_port: int | None = None


class PinCreate(_Body):
    pin: str
    label: str = ""


class PublishBody(_Body):
    dry_run: bool = False
    force: bool = False
    reason: str | None = None


class RollbackBody(PublishBody):
    to_version: int = Field(ge=1)


class TokenCreate(_Body):
    name: str
    scopes: list[str]


class Reason(_Body):
    reason: str | None = None


class ObservationCreate(_Body):
    host: str
    port: int = 443
    pins: list[str]


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
        "rules": document.rules,
    }


def _token_view(token: Token) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at.isoformat(),
        "created_by": token.created_by,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
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


def _channel_routes(router: APIRouter) -> None:
    # Routes with a suffix come before /channels/{channel:path}, which would swallow them.
    @router.get("/channels", **_scope("read"))
    def list_all(services: ServicesDep, principal: Reader) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [channels.channel_view(c, rules=False) for c in channels.list_channels(session)]

    @router.post("/channels", status_code=201, **_scope("write"))
    def create(body: ChannelCreate, services: ServicesDep, principal: Writer) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channel = channels.create_channel(
                session, body.name, principal.actor, **body.model_dump(exclude={"name"})
            )
            services.announce(session, channel.name, 0)  # other replicas learn the name
            view = channels.channel_view(channel, rules=False)
        services.store.add_channel(channel.name)
        return view

    @router.get("/channels/{channel:path}/history", **_scope("read"))
    def get_history(
        channel: str, services: ServicesDep, principal: Reader, limit: int = Query(50, ge=1, le=500)
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_document_view(doc) for doc in history(session, channel, limit=limit)]

    @router.post("/channels/{channel:path}/publish", **_scope("publish"))
    async def publish(
        channel: str, body: PublishBody, services: ServicesDep, principal: Publisher
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
        channel: str, body: RollbackBody, services: ServicesDep, principal: Publisher
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

    @router.post("/channels/{channel:path}/rules", status_code=201, **_scope("write"))
    def add_rule(
        channel: str, body: RuleCreate, services: ServicesDep, principal: Writer
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

    @router.patch("/channels/{channel:path}/rules/{pattern}", **_scope("write"))
    def update_rule(
        channel: str, pattern: str, body: RuleUpdate, services: ServicesDep, principal: Writer
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            rule = channels.update_rule(
                session, channel, pattern, principal.actor, body.model_dump(exclude_unset=True)
            )
            return channels.rule_view(rule)

    @router.delete("/channels/{channel:path}/rules/{pattern}", **_scope("write"))
    def remove_rule(
        channel: str, pattern: str, services: ServicesDep, principal: Writer
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channels.remove_rule(session, channel, pattern, principal.actor)
        return {"removed": pattern}

    @router.post(
        "/channels/{channel:path}/rules/{pattern}/pins", status_code=201, **_scope("write")
    )
    def add_pin(
        channel: str, pattern: str, body: PinCreate, services: ServicesDep, principal: Writer
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            pin = channels.add_pin(
                session, channel, pattern, body.pin, principal.actor, label=body.label
            )
            return {"pin": pin.pin, "label": pin.label}

    @router.delete("/channels/{channel:path}/rules/{pattern}/pins", **_scope("write"))
    def remove_pin(
        channel: str,
        pattern: str,
        services: ServicesDep,
        principal: Writer,
        pin: str = Query(description="the pin to remove, sha256/…"),
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            channels.remove_pin(session, channel, pattern, pin, principal.actor)
        return {"removed": pin}

    @router.get("/channels/{channel:path}", **_scope("read"))
    def show(channel: str, services: ServicesDep, principal: Reader) -> dict[str, Any]:
        with services.sessions() as session:
            view = channels.channel_view(channels.get_channel(session, channel))
        served = services.store.pinset(channel)
        view["published_version"] = served.version if served else None
        return view

    @router.patch("/channels/{channel:path}", **_scope("write"))
    def update(
        channel: str, body: ChannelUpdate, services: ServicesDep, principal: Writer
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            updated = channels.update_channel(
                session, channel, principal.actor, body.model_dump(exclude_unset=True)
            )
            return channels.channel_view(updated, rules=False)


def _other_routes(router: APIRouter) -> None:
    @router.get("/tokens", **_scope("admin"))
    def tokens(services: ServicesDep, principal: Admin) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_token_view(token) for token in list_tokens(session)]

    @router.post("/tokens", status_code=201, **_scope("admin"))
    def new_token(body: TokenCreate, services: ServicesDep, principal: Admin) -> dict[str, Any]:
        with services.sessions.begin() as session:
            row, token = create_token(session, body.name, body.scopes, principal.actor)
            return {**_token_view(row), "token": token}

    @router.post("/tokens/{token_id}/revoke", **_scope("admin"))
    def revoke(
        token_id: str, body: Reason, services: ServicesDep, principal: Admin
    ) -> dict[str, Any]:
        with services.sessions.begin() as session:
            return _token_view(revoke_token(session, token_id, principal.actor, body.reason))

    @router.post("/resign", **_scope("publish"))
    async def resign(body: Reason, services: ServicesDep, principal: Publisher) -> dict[str, Any]:
        """Re-sign every published channel with the key directory's current online keys (after
        an online-key rotation done offline and exported to this server)."""
        return await services.resign_channels(principal.actor, body.reason)

    @router.get("/audit", **_scope("read"))
    def audit(
        services: ServicesDep,
        principal: Reader,
        target: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            entries = list_audit(session, target_prefix=target, limit=limit)
            return [_audit_view(entry) for entry in entries]

    @router.post("/observations", status_code=201, **_scope("publish"))
    def observe(
        body: ObservationCreate, services: ServicesDep, principal: Publisher
    ) -> dict[str, Any]:
        """Record a chain the monitor saw. A record for alerts and dashboards only: safe
        publishing never takes it as proof of the live chain."""
        pins = [channels.normal_pin(pin) for pin in body.pins]
        with services.sessions.begin() as session:
            row = record_observation(session, body.host, body.port, pins, "api", principal.actor)
            return _observation_view(row)

    @router.get("/observations", **_scope("read"))
    def observations(
        services: ServicesDep, principal: Reader, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [_observation_view(row) for row in list_observations(session, limit=limit)]

    @router.get("/reports", **_scope("read"))
    def reports(
        services: ServicesDep, principal: Reader, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return [
                {"received_at": row.received_at.isoformat(), "client": row.client, **row.payload}
                for row in list_reports(session, limit=limit)
            ]

    @router.get("/reports/summary", **_scope("read"))
    def report_summary(services: ServicesDep, principal: Reader) -> list[dict[str, Any]]:
        with services.sessions() as session:
            return summarize_reports(session)


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
    )
    api.state.services = services
    router = APIRouter()
    _channel_routes(router)
    _other_routes(router)
    api.include_router(router)

    @api.exception_handler(ServerError)
    async def server_error(request: Request, error: ServerError) -> JSONResponse:
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

    @api.exception_handler(DBAPIError)
    async def database_down(request: Request, error: DBAPIError) -> JSONResponse:
        services.database_state(False)
        return JSONResponse({"error": "the database is unavailable"}, status_code=503)

    return api
