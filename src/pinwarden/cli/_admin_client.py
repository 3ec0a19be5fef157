"""A small HTTP client for the admin API (standard library only: the client install has no httpx).

The server's URL and token come from ``--server`` / ``--token`` or ``$PINWARDEN_URL`` /
``$PINWARDEN_TOKEN``; prefer the environment for the token (the command line shows in ``ps``).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pinwarden.cli._common import EXIT_FAILED, EXIT_INPUT, EXIT_NETWORK, CommandError

__all__ = ["AdminClient", "add_connection_options", "client_from_args", "quote_path"]

_TIMEOUT = 60.0  # a publish connects to every pinned host


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="pin server URL (default: $PINWARDEN_URL)")
    parser.add_argument("--token", help="API token (default: $PINWARDEN_TOKEN)")
    parser.add_argument("--ca-file", help="trust these CA certificates for an https server")
    parser.add_argument("--json", action="store_true", help="print JSON")


def quote_path(text: str) -> str:
    """Percent-encode a channel name or pattern for a URL path, keeping a channel's '/'."""
    return urllib.parse.quote(text, safe="/")


class AdminClient:
    def __init__(self, base_url: str, token: str, *, cafile: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._context = ssl.create_default_context(cafile=cafile) if cafile else None

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
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT, context=self._context) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _command_error(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(f"cannot reach {self.base_url}: {reason}", EXIT_NETWORK) from None


def _command_error(error: urllib.error.HTTPError) -> CommandError:
    try:
        answer = json.loads(error.read())
    except ValueError:
        answer = {}
    message = answer.get("error") if isinstance(answer, dict) else None
    if message is None and isinstance(answer, dict) and "detail" in answer:
        message = json.dumps(answer["detail"])  # FastAPI's validation errors
    text = f"HTTP {error.code}: {message or error.reason}"
    if error.code == 409 and isinstance(answer, dict) and "problems" in answer:
        return CommandError(text, EXIT_FAILED)  # the safety check refused
    return CommandError(text, EXIT_NETWORK if error.code >= 500 else EXIT_INPUT)


def client_from_args(args: argparse.Namespace) -> AdminClient:
    base_url = args.server or os.environ.get("PINWARDEN_URL")
    token = args.token or os.environ.get("PINWARDEN_TOKEN")
    if not base_url:
        raise CommandError("no server: give --server URL or set $PINWARDEN_URL")
    if not base_url.startswith(("http://", "https://")):
        raise CommandError(f"--server {base_url!r} is not an http(s) URL")
    if not token:
        raise CommandError("no token: set $PINWARDEN_TOKEN (or give --token)")
    return AdminClient(base_url, token, cafile=args.ca_file)
