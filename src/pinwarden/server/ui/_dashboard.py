"""The dashboard as one ASGI app, mounted at ``/ui`` by ``create_app``: login and logout,
the pages, the forms, the stylesheet.

Login takes an admin token (any scope) and opens a session (``_sessions``); failed logins spend
from a per-address budget shared by the replicas (``_ratelimit.FailureBudget``, scope
``ui-login``: 20, then 10 a minute), as strict as the admin API's for bad bearer tokens, so the
form is no faster oracle than the API.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pinwarden.server._errors import AuthError, ServerError
from pinwarden.server._ratelimit import FailureBudget
from pinwarden.server.ui import _pages as pages
from pinwarden.server.ui._actions import ACTIONS
from pinwarden.server.ui._sessions import end_session, open_session
from pinwarden.server.ui._web import (
    COOKIE,
    LOGIN_COOKIE,
    SESSION_SECONDS,
    Page,
    Renderer,
    cookie_options,
    form_fields,
    signed_in_page,
)

if TYPE_CHECKING:
    from pinwarden.server._app import Services

__all__ = ["build_dashboard"]

_MAX_BODY = 64 * 1024
_FAILURE_BURST, _FAILURES_PER_MINUTE = 20, 10
_LOGIN_SECONDS = 3600


class _Login:
    def __init__(self, services: Services, renderer: Renderer) -> None:
        self._services, self._renderer = services, renderer
        # Shared by the replicas (as the admin API's): a guesser cannot multiply its tries by
        # spreading them over replicas.
        self._failures = FailureBudget(_FAILURE_BURST, _FAILURES_PER_MINUTE, scope="ui-login")
        self._failures.share(services.shared_limits)

    def _form(self, request: Request, message: str | None, status: int) -> Response:
        value = secrets.token_urlsafe(32)
        response = self._renderer.page(
            "login.html", {"title": "Log in", "csrf": value, "message": message}, status
        )
        response.set_cookie(LOGIN_COOKIE, value, **cookie_options(request, _LOGIN_SECONDS))
        return response

    async def show(self, request: Request) -> Response:
        return self._form(request, None, 200)

    async def submit(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if await self._failures.exhausted_anywhere(client):
            return self._form(request, "Too many failed logins; wait a minute.", 429)
        try:
            form = await form_fields(request, request.cookies.get(LOGIN_COOKIE))
        except ServerError as error:
            return self._form(request, str(error), error.status)

        def sign_in() -> tuple[str, str]:
            with self._services.sessions.begin() as session:
                secret, user = open_session(session, form.get("token").strip())
                return secret, user.principal.name

        try:
            secret, _ = await run_in_threadpool(sign_in)
        except AuthError as error:
            self._failures.spend(client)
            await self._failures.spend_shared(client)
            return self._form(request, f"Not logged in: {error}.", 401)
        response = RedirectResponse("/ui/", status_code=303)
        response.set_cookie(COOKIE, secret, **cookie_options(request, SESSION_SECONDS))
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response


def build_dashboard(services: Services) -> Starlette:
    renderer = Renderer()
    login = _Login(services, renderer)

    async def logout(page_: Page) -> Response:
        await form_fields(page_.request, page_.user.csrf)
        secret = page_.request.cookies.get(COOKIE, "")

        def forget() -> None:
            with services.sessions.begin() as session:
                end_session(session, secret, page_.actor)

        await run_in_threadpool(forget)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    routes = [
        Route("/login", login.show, methods=["GET"]),
        Route("/login", login.submit, methods=["POST"]),
        Route("/logout", signed_in_page(services, renderer, logout, scope=None), methods=["POST"]),
        Route("/", signed_in_page(services, renderer, pages.overview_page), methods=["GET"]),
        Route("/channel", signed_in_page(services, renderer, pages.channel_page)),
        Route("/reports", signed_in_page(services, renderer, pages.reports_page)),
        Route("/audit", signed_in_page(services, renderer, pages.audit_page)),
        Route("/tokens", signed_in_page(services, renderer, pages.tokens_page), methods=["GET"]),
        *(
            Route(
                f"/{path}", signed_in_page(services, renderer, action, scope=None), methods=["POST"]
            )
            for path, action in ACTIONS.items()
        ),
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestBodyLimitMiddleware, max_body_size=_MAX_BODY)],
    )
