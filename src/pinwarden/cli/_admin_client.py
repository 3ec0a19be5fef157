"""A small HTTP client for the admin API (standard library only: the client install has no httpx).

The server's URL and token come from ``--server`` / ``--token`` or ``$PINWARDEN_URL`` /
``$PINWARDEN_TOKEN``; prefer the environment for the token (the command line shows in ``ps``).

The token goes to the server named and nowhere else: redirects are refused (urllib would copy
``Authorization`` to whatever host a redirect names), plain ``http://`` is refused except to a
loopback address unless ``--insecure-http`` is given, and a plain-HTTP request never goes
through a proxy.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from typing import IO, Any

from pinwarden._hosts import is_loopback
from pinwarden.cli._common import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_NETWORK,
    CommandError,
    printable,
)

__all__ = ["AdminClient", "add_connection_options", "client_from_args", "quote_path"]

_TIMEOUT = 60.0  # for each read and write; a publish connects to every pinned host
# For the whole exchange: a server trickling its answer a byte at a time resets every per-read
# timeout, so only a deadline over the exchange bounds it.
EXCHANGE_DEADLINE = 180.0
_MAX_ANSWER_BYTES = 16 * 1024 * 1024  # far above any admin answer; a bigger one is not the API
# Where FastAPI puts a validation error (``loc``), not the name of a field.
_LOCATION_WORDS = frozenset({"body", "query", "path", "header"})


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="pin server URL (default: $PINWARDEN_URL)")
    parser.add_argument("--token", help="API token (default: $PINWARDEN_TOKEN)")
    parser.add_argument("--ca-file", help="trust these CA certificates for an https server")
    parser.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow a plain http:// server that is not on this machine (sends the token "
        "unencrypted)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def quote_path(text: str) -> str:
    """Percent-encode a channel name or pattern for a URL path, keeping a channel's '/'."""
    return urllib.parse.quote(_utf8(text), safe="/")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from undecodable bytes in argv
        raise CommandError(f"{printable(text)!r} is not valid text (undecodable bytes)") from None


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib's ``redirect_request`` copies every header of the
    request, ``Authorization`` included, to the host the ``Location`` names."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx answer as an HTTPError


class AdminClient:
    def __init__(self, base_url: str, token: str, *, cafile: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        handlers: list[urllib.request.BaseHandler] = [_RefuseRedirects()]
        if urllib.parse.urlsplit(base_url).scheme == "https":
            context = ssl.create_default_context(cafile=cafile) if cafile else None
            handlers.append(urllib.request.HTTPSHandler(context=context))
        else:
            handlers.append(urllib.request.ProxyHandler({}))  # no token in clear to a proxy
        self._opener = urllib.request.build_opener(*handlers)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer of ``method /v1/admin{path}``, or a ``CommandError``."""
        url = f"{self.base_url}/v1/admin{path}"
        if query:
            url += "?" + urllib.parse.urlencode({key: _utf8(value) for key, value in query.items()})
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s)
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        return _within_deadline(
            lambda: self._exchange(request),
            f"{self.base_url} did not answer within {EXCHANGE_DEADLINE:g} seconds",
        )

    def _exchange(self, request: urllib.request.Request) -> Any:
        try:
            with self._opener.open(request, timeout=_TIMEOUT) as answer:
                return self._decode(answer, answer.status, answer.headers)
        except urllib.error.HTTPError as error:
            raise self._refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(f"cannot reach {self.base_url}: {reason}", EXIT_NETWORK) from None
        except ValueError as error:  # http.client: a URL or header it will not send
            raise CommandError(f"cannot send the request to {self.base_url}: {error}") from None

    def _decode(self, answer: IO[bytes], status: int, headers: Message) -> Any:
        """The JSON of an answer, or one line saying what came back instead."""
        raw = answer.read(_MAX_ANSWER_BYTES + 1)
        what = f"{self.base_url} answered HTTP {status}"
        if len(raw) > _MAX_ANSWER_BYTES:
            raise CommandError(f"{what} with more than 16 MiB: not the admin API", EXIT_NETWORK)
        try:
            return json.loads(raw) if raw else None
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            content_type = printable(headers.get("Content-Type", "no Content-Type"), 80)
            raise CommandError(
                f"{what} with a body that is not JSON ({content_type}): is --server / "
                "$PINWARDEN_URL the pin server's base URL?",
                EXIT_NETWORK,
            ) from None

    def _refusal(self, error: urllib.error.HTTPError) -> CommandError:
        if 300 <= error.code < 400:
            location = printable(error.headers.get("Location", "nowhere"), 200)
            return CommandError(
                f"{self.base_url} answered HTTP {error.code}, a redirect to {location}; "
                "not followed (the token would go with it): give --server the final URL",
                EXIT_NETWORK,
            )
        try:
            answer = self._decode(error, error.code, error.headers)
        except CommandError:
            answer = None
        text = f"HTTP {error.code}: {_error_message(answer) or printable(str(error.reason), 80)}"
        if error.code == 409 and isinstance(answer, dict) and "problems" in answer:
            return CommandError(text, EXIT_FAILED)  # the safety check refused
        return CommandError(text, EXIT_NETWORK if error.code >= 500 else EXIT_INPUT)


def _within_deadline(exchange: Callable[[], Any], late: str) -> Any:
    """``exchange()``, or a ``CommandError`` saying ``late`` after ``EXCHANGE_DEADLINE``.

    It runs in a daemon thread: the command ends at the deadline and the process exits without
    waiting for a server that is still trickling.
    """
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, exchange()))
        except BaseException as error:  # handed to the caller's thread as it is
            outcome.append((False, error))

    worker = threading.Thread(target=run, name="pinwarden-admin-call", daemon=True)
    worker.start()
    worker.join(EXCHANGE_DEADLINE)
    if not outcome:
        raise CommandError(late, EXIT_NETWORK)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value


def _error_message(answer: Any) -> str | None:
    """The reason an error answer gives: pinwarden's ``{"error": …}`` or FastAPI's ``detail``."""
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("error"), str):
        return printable(answer["error"])
    detail = answer.get("detail")
    if isinstance(detail, str):
        return printable(detail)
    if isinstance(detail, list):
        return "; ".join(_validation_problems(detail)) or None
    return None


def _validation_problems(detail: list[Any]) -> Iterator[str]:
    """FastAPI's 422 ``detail``, one "field X: reason" per entry (at most ten)."""
    for entry in detail[:10]:
        if not isinstance(entry, dict):
            continue
        location = entry.get("loc")
        fields = [
            str(part)
            for part in (location if isinstance(location, list) else [])
            if part not in _LOCATION_WORDS
        ]
        reason = entry.get("msg")
        field = f"field {'.'.join(fields)}" if fields else "request"
        yield printable(f"{field}: {reason if isinstance(reason, str) else 'invalid'}", 200)


def _server_url(args: argparse.Namespace) -> str:
    base_url = args.server or os.environ.get("PINWARDEN_URL")
    if not base_url:
        raise CommandError("no server: give --server URL or set $PINWARDEN_URL")
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as error:
        raise CommandError(f"--server {printable(base_url, 200)!r}: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(
            f"--server {printable(base_url, 200)!r} is not an http(s) URL like "
            "https://pins.example.com"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not args.insecure_http:
        raise CommandError(
            f"--server {printable(base_url, 200)!r}: plain http:// would send the token "
            f"unencrypted to {parts.hostname}; use https://, or give --insecure-http if the "
            "network to it is trusted"
        )
    return base_url


def client_from_args(args: argparse.Namespace) -> AdminClient:
    base_url = _server_url(args)
    token = args.token or os.environ.get("PINWARDEN_TOKEN")
    if not token:
        raise CommandError("no token: set $PINWARDEN_TOKEN (or give --token)")
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise CommandError("the token has characters no pinwarden token has: copy it again")
    try:
        return AdminClient(base_url, token, cafile=args.ca_file)
    except (OSError, ssl.SSLError, ValueError) as error:
        raise CommandError(f"cannot load --ca-file {args.ca_file!r}: {error}") from None
