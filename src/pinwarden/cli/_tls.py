"""Open a TLS connection for the commands that look at live servers."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from pinwarden.cli._common import EXIT_INPUT, EXIT_NETWORK, CommandError

DEFAULT_TIMEOUT = 10.0


def parse_host_port(text: str, default_port: int = 443) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or ``https://host[:port]/…`` as ``(host, port)``."""
    candidate = text if "://" in text else f"https://{text}"
    try:
        parts = urlsplit(candidate)
        port = parts.port or default_port
    except ValueError as error:
        raise CommandError(f"{text!r} is not host[:port]: {error}", EXIT_INPUT) from None
    if parts.scheme != "https":
        raise CommandError(f"{text!r}: only https:// can be pinned", EXIT_INPUT)
    if not parts.hostname:
        raise CommandError(f"{text!r} names no host", EXIT_INPUT)
    return parts.hostname, port


def open_tls(
    host: str, port: int, context: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT
) -> ssl.SSLSocket:
    """Connect and handshake; ``ssl.SSLError`` propagates, other failures become CommandError."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise CommandError(f"cannot connect to {host}:{port}: {error}", EXIT_NETWORK) from None
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except ssl.SSLError:
        raw.close()
        raise
    except OSError as error:
        raw.close()
        raise CommandError(f"TLS with {host}:{port} failed: {error}", EXIT_NETWORK) from None
