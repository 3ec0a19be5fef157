"""The public endpoints, outside the admin auth.

``GET /v1/channels/{channel}/pinset`` is a raw ASGI endpoint behind a plain Starlette route: it
answers from precomputed bytes and headers, without building a ``Request`` or a ``Response``
(FastAPI's per-route cost halves the throughput of this path). The keyring route works the same
way; ``/events`` is a server-sent-events stream; ``/v1/reports`` takes violation reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pinwarden.server._errors import ValidationError
from pinwarden.server._events import EventBroker, Subscription, pinset_event
from pinwarden.server._fetch_counts import FetchCounter
from pinwarden.server._metrics import Metrics
from pinwarden.server._ratelimit import RateLimiter
from pinwarden.server._reports import MAX_REPORT_BYTES, parse_report
from pinwarden.server._store import PublishedStore

__all__ = ["PublicEndpoints"]

_NOT_FOUND = b'{"error": "not found"}'
_STREAMS_FULL = b'{"error": "too many event streams; retry later"}'
_RETRY_STREAMS = [
    (b"retry-after", b"30"),
    (b"content-length", str(len(_STREAMS_FULL)).encode()),
]
_JSON = (b"content-type", b"application/json")


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _not_found(send: Send) -> None:
    await _send(send, 404, [_JSON, (b"content-length", str(len(_NOT_FOUND)).encode())], _NOT_FOUND)


class PublicEndpoints:
    """The public routes over one store, broker and metrics."""

    def __init__(
        self,
        store: PublishedStore,
        broker: EventBroker,
        metrics: Metrics,
        save_report: Callable[[dict[str, Any], str], None],
        limiter: RateLimiter,
        *,
        heartbeat_seconds: float,
        database_state: Callable[[], bool],
        health_detail: Callable[[], list[str]] = list,
        fetches: FetchCounter | None = None,
    ) -> None:
        self.store, self.broker, self.metrics = store, broker, metrics
        self.fetches = fetches or FetchCounter()
        self._save_report, self._limiter = save_report, limiter
        self._heartbeat = heartbeat_seconds
        self._database_state = database_state
        self._health_detail = health_detail

    def routes(self) -> list[Route]:
        return [
            Route(
                "/v1/channels/{channel:path}/pinset",
                PinsetEndpoint(self.store, self.metrics, self.fetches),
                methods=["GET"],
            ),
            Route(
                "/v1/channels/{channel:path}/keyring/{version:int}",
                _Asgi(self.keyring),
                methods=["GET"],
            ),
            Route("/v1/channels/{channel:path}/events", _Asgi(self.events), methods=["GET"]),
            Route("/v1/reports", self.report, methods=["POST"], max_body_size=MAX_REPORT_BYTES),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.render_metrics, methods=["GET"]),
        ]

    async def keyring(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope["path_params"]
        body = self.store.keyring(params["version"])
        if body is None or not self.store.has_channel(params["channel"]):
            self.metrics.keyring_responses[404] += 1
            await _not_found(send)
            return
        self.metrics.keyring_responses[200] += 1
        headers = [
            (b"content-type", b"application/jose+json"),
            (b"content-length", str(len(body)).encode()),
            # A keyring version never changes once signed.
            (b"cache-control", b"public, max-age=86400, immutable"),
        ]
        await _send(send, 200, headers, b"" if scope["method"] == "HEAD" else body)

    async def events(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One ``pinset`` event per new version; a comment heartbeat keeps proxies from closing.

        503 with ``Retry-After`` when the broker's stream caps (total, per client address) are
        reached: the client polls the pin set meanwhile.

        On connect the current version is sent unless ``Last-Event-ID`` says the client has it,
        so a client that reconnects after missing an event still learns of the new version.
        """
        channel = scope["path_params"]["channel"]
        if not self.store.has_channel(channel):
            await _not_found(send)
            return
        try:
            seen = int(_header(scope, b"last-event-id") or b"0")
        except ValueError:
            seen = 0
        client = scope["client"][0] if scope.get("client") else "unknown"
        subscription = self.broker.subscribe(channel, client)
        if subscription is None:
            self.metrics.sse_refused += 1
            await _send(send, 503, [_JSON, *_RETRY_STREAMS], _STREAMS_FULL)
            return
        current = self.store.pinset(channel)
        if current is not None and current.version > seen:
            subscription.offer(current.version)
        disconnected = asyncio.Event()

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            subscription.wakeup.set()

        watcher = asyncio.create_task(watch_disconnect())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache, no-store"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            await self._stream(send, subscription, disconnected, seen)
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.broker.unsubscribe(subscription)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _stream(
        self, send: Send, subscription: Subscription, disconnected: asyncio.Event, seen: int
    ) -> None:
        chunk = b"retry: 3000\n: connected\n\n"
        while not disconnected.is_set():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            try:
                await asyncio.wait_for(subscription.wakeup.wait(), self._heartbeat)
            except asyncio.TimeoutError:
                chunk = b": heartbeat\n\n"
                continue
            version = subscription.take()
            if version is not None and version > seen:
                seen, chunk = version, pinset_event(version)
            else:
                chunk = b""

    async def report(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not await self._limiter.acquire(client):  # this replica's buckets, then all's
            self.metrics.reports["rate_limited"] += 1
            return JSONResponse(
                {"error": "too many reports"},
                status_code=429,
                headers={"retry-after": str(self._limiter.retry_after())},
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "application/csp-report"):
            self.metrics.reports["invalid"] += 1
            return JSONResponse({"error": "send the report as application/json"}, 415)
        try:
            report = parse_report(await request.body())
        except ClientDisconnect:  # gone mid-body, or cut at the body deadline (_deadlines)
            self.metrics.reports["invalid"] += 1
            return Response(status_code=400)
        except ValidationError as error:
            self.metrics.reports["invalid"] += 1
            return JSONResponse({"error": str(error)}, status_code=422)
        try:
            await run_in_threadpool(self._save_report, report, client)
        except DataError:  # past parse_report's checks; the report's fault, not the database's
            self.metrics.reports["invalid"] += 1
            return JSONResponse({"error": "the database refused a value of this report"}, 422)
        except SQLAlchemyError:
            self.metrics.reports["unavailable"] += 1
            return JSONResponse({"error": "reports cannot be stored now"}, status_code=503)
        self.metrics.reports["stored"] += 1
        return JSONResponse({"stored": True}, status_code=202)

    async def healthz(self, request: Request) -> Response:
        """200 while this process serves; the body says whether the database answers, and in
        ``detail`` what may make a pin set lapse (freshness failing: docs/operations.md)."""
        database = "ok" if self._database_state() else "unreachable"
        body = {
            "status": "ok",
            "database": database,
            "channels": self.store.versions(),
            "detail": self._health_detail(),
        }
        return JSONResponse(body)

    async def render_metrics(self, request: Request) -> Response:
        body, content_type = self.metrics.exposition(request.headers.get("accept", ""))
        return Response(body, headers={"content-type": content_type})


class PinsetEndpoint:
    """``GET /v1/channels/{channel}/pinset``: the hot path, a raw ASGI app (no Request/Response).

    A 200 and a 304 both leave the client holding the served version: both are counted for it
    (``FetchCounter``), which is how ``rotate plan`` knows clients have a new pin.
    """

    __slots__ = ("_fetches", "_metrics", "_store")

    def __init__(self, store: PublishedStore, metrics: Metrics, fetches: FetchCounter) -> None:
        self._store, self._metrics, self._fetches = store, metrics, fetches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        channel = scope["path_params"]["channel"]
        document = self._store.pinset(channel)
        if document is None:
            self._metrics.pinset_responses[404] += 1
            await _not_found(send)
            return
        if scope["method"] == "GET":  # a HEAD leaves the client holding nothing new
            client = scope.get("client")
            self._fetches.count(channel, document.version, client[0] if client else "")
        if_none_match = _header(scope, b"if-none-match")
        if if_none_match is not None and document.matches(if_none_match):
            self._metrics.pinset_responses[304] += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 304,
                    "headers": document.headers_not_modified,
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        self._metrics.pinset_responses[200] += 1
        await send({"type": "http.response.start", "status": 200, "headers": document.headers_ok})
        body = b"" if scope["method"] == "HEAD" else document.body
        await send({"type": "http.response.body", "body": body})


class _Asgi:
    """Marks a bound coroutine as a raw ASGI app, so ``Route`` does not wrap it in a Request."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)
