"""The admin API's front door: the bearer token is checked before a byte of the body is read, and
the body is capped.

FastAPI reads and validates a route's body before its dependencies run, so with the token checked
in a dependency an anonymous client could make the server read a body of any size, and learn from
a 422 that it reached the route. ``AdminGate`` runs first: it authenticates from the headers alone
and answers 401 without calling ``receive``; only an authenticated request goes on, with a body
of at most ``MAX_ADMIN_BODY_BYTES`` (413 past it, whether declared by ``Content-Length`` or
streamed). The routes' dependencies then check the scope of the principal the gate found.

Every refusal (401 here, 403 in the API, 429) goes to ``AdminRefusals``: counted in ``/metrics``,
logged without the token, and a client address that presents too many bad tokens is answered
429 for a while without a lookup. The bad tokens are counted in this process and in the buckets
the replicas share (``Services.shared_limits``), so guessing through every replica of a
deployment buys no more tries than guessing through one.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import Receive, Scope, Send

from pinwarden.server._database import is_connection_failure
from pinwarden.server._errors import AuthError
from pinwarden.server._ratelimit import FailureBudget
from pinwarden.server._tokens import Principal, authenticate

__all__ = ["MAX_ADMIN_BODY_BYTES", "AdminGate", "AdminRefusals", "authenticated_principal"]

logger = logging.getLogger("pinwarden.server")

MAX_ADMIN_BODY_BYTES = 64 * 1024
_PRINCIPAL = "pinwarden.principal"
# The API's description is public (docs/server.md, "Limits"): no data, no token needed.
_PUBLIC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json"})
# Bad tokens one client address may present at once, then per minute (docs/reliability.md).
_FAILURE_BURST, _FAILURES_PER_MINUTE = 200, 30
# The refusals that spend from the budget: a token was shown, and it was not a valid one.
_GUESSES = frozenset({"invalid", "revoked", "expired"})


class AdminRefusals:
    """Refused admin requests, by reason: ``missing``, ``invalid``, ``revoked``, ``expired``
    (401), ``scope`` (403), ``rate_limited`` (429).

    A presented token that fails spends from its client address's ``FailureBudget`` (a missing
    one does not: that is no guess); past it, the address gets 429 until the budget refills.
    Behind a reverse proxy every client has the proxy's address, so the budget is the proxy's,
    unless ``serve --trusted-proxy`` names the proxy (then ``X-Forwarded-For`` gives the client's).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures = FailureBudget(_FAILURE_BURST, _FAILURES_PER_MINUTE)

    def refuse(self, scope: Scope, reason: str) -> None:
        """Count and log one refusal (method, path, client and reason: never the token)."""
        self.counts[reason] += 1
        client = _client(scope)
        if reason in _GUESSES:
            self.failures.spend(client)
        logger.warning(
            "pinwarden: refused admin request %s %r from %s: %s",
            scope.get("method", "?"),
            scope.get("path", ""),
            client,
            reason,
        )

    def samples(self) -> list[tuple[dict[str, str], float]]:
        """For ``pinwarden_admin_refused_total``: one sample per reason seen."""
        return [({"reason": reason}, n) for reason, n in sorted(self.counts.items())]


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def authenticated_principal(scope: Scope) -> Principal:
    """The principal ``AdminGate`` authenticated for this request; ``AuthError`` without one."""
    principal = scope.get(_PRINCIPAL)
    if not isinstance(principal, Principal):
        raise AuthError("a bearer token is required", "missing")
    return principal


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer_token(scope: Scope) -> str | None:
    scheme, token = get_authorization_scheme_param(_header(scope, b"authorization"))
    return token if scheme.lower() == "bearer" and token else None


def _declared_length(scope: Scope) -> int | None:
    try:
        return int(_header(scope, b"content-length") or "")
    except ValueError:
        return None


async def _answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A JSON error; ``connection: close`` so an unread request body is not read after it."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()  # as the API's own
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AdminGate:
    """Wraps the admin API: authenticate first, then cap the body."""

    def __init__(
        self,
        app: FastAPI,
        sessions: sessionmaker[Session],
        database_state: Callable[[bool], None],
    ) -> None:
        self._app = RequestBodyLimitMiddleware(app, max_body_size=MAX_ADMIN_BODY_BYTES)
        self._sessions, self._database_state = sessions, database_state
        # The admin API's own record (``build_admin_api``), so that 401s here, 403s there and
        # the one ``/metrics`` counter agree.
        self._refusals: AdminRefusals = app.state.refusals
        self._refusals.failures.share(app.state.services.shared_limits)

    def _authenticate(self, token: str | None) -> Principal:
        with self._sessions() as session:
            return authenticate(session, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(scope):
            await self._app(scope, receive, send)
            return
        client = _client(scope)
        if await self._refusals.failures.exhausted_anywhere(client):
            self._refusals.refuse(scope, "rate_limited")
            retry = str(self._refusals.failures.retry_after()).encode()
            await _answer(send, 429, "too many failed authentications", [(b"retry-after", retry)])
            return
        try:
            principal = await run_in_threadpool(self._authenticate, _bearer_token(scope))
        except AuthError as error:
            self._refusals.refuse(scope, error.reason)
            if error.reason in _GUESSES:
                await self._refusals.failures.spend_shared(client)
            await _answer(send, 401, str(error), [(b"www-authenticate", b"Bearer")])
            return
        except DBAPIError as error:
            if not is_connection_failure(error):
                raise
            self._database_state(False)
            await _answer(send, 503, "the database is unavailable")
            return
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_ADMIN_BODY_BYTES:
            await _answer(
                send, 413, f"an admin request body is at most {MAX_ADMIN_BODY_BYTES} bytes"
            )
            return
        scope[_PRINCIPAL] = principal
        await self._app(scope, receive, send)

    @staticmethod
    def _is_public(scope: Scope) -> bool:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        route = path[len(root) :] if root and path.startswith(root) else path
        return scope["method"] in ("GET", "HEAD") and route in _PUBLIC_PATHS
