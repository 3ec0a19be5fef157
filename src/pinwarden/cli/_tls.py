"""Open a TLS connection for the commands that look at live servers (``pin``, ``check``)."""

from __future__ import annotations

import argparse
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from pinwarden._hosts import normalize_host
from pinwarden.cli._common import EXIT_INPUT, EXIT_NETWORK, CommandError, printable
from pinwarden.errors import PinwardenError

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """The host TLS is for (SNI, hostname check, pin lookup) and the address dialled."""

    host: str
    port: int
    connect_host: str
    connect_port: int

    @property
    def label(self) -> str:
        """``host:port``, and where it was reached when that is another address."""
        named = f"{self.host}:{self.port}"
        dialled = f"{self.connect_host}:{self.connect_port}"
        return named if dialled == named else f"{named} (via {dialled})"


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connect-to",
        metavar="HOST[:PORT]",
        help="dial this address instead of the URL's host (SNI and the hostname check stay the "
        "URL's host): check a new server before its DNS points at it",
    )
    parser.add_argument("--ca-file", help="trust these CA certificates instead of the system's")


def parse_host_port(text: str, default_port: int = 443, option: str = "") -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or ``https://host[:port]/…`` as ``(host, port)``.

    The host comes back normalised (IDNA, case, trailing dot), so that an invalid name is an
    error here rather than a DNS lookup.
    """
    where = f"{option} {printable(text, 100)!r}" if option else repr(printable(text, 100))
    candidate = text if "://" in text else f"https://{text}"
    try:
        parts = urlsplit(candidate)
        port = parts.port or default_port
    except ValueError as error:
        raise CommandError(f"{where} is not host[:port]: {error}", EXIT_INPUT) from None
    if parts.scheme != "https":
        raise CommandError(f"{where}: only https:// can be pinned", EXIT_INPUT)
    if not parts.hostname:
        raise CommandError(f"{where} names no host", EXIT_INPUT)
    try:
        return normalize_host(parts.hostname), port
    except PinwardenError as error:
        raise CommandError(f"{where}: {error}", EXIT_INPUT) from None


def target_from_args(args: argparse.Namespace, text: str) -> Target:
    host, port = parse_host_port(text)
    if args.connect_to is None:
        return Target(host, port, host, port)
    connect_host, connect_port = parse_host_port(args.connect_to, port, "--connect-to")
    return Target(host, port, connect_host, connect_port)


def open_tls(
    target: Target, context: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT
) -> ssl.SSLSocket:
    """Connect and handshake; ``ssl.SSLError`` propagates, other failures become CommandError."""
    try:
        raw = socket.create_connection((target.connect_host, target.connect_port), timeout=timeout)
    except OSError as error:
        raise CommandError(f"cannot connect to {target.label}: {error}", EXIT_NETWORK) from None
    try:
        return context.wrap_socket(raw, server_hostname=target.host)
    except ssl.SSLError:
        raw.close()
        raise
    except OSError as error:
        raw.close()
        raise CommandError(f"TLS with {target.label} failed: {error}", EXIT_NETWORK) from None


def tls_failure(target: Target, error: ssl.SSLError) -> CommandError:
    """A failed handshake as one line, with the likely cause where OpenSSL's words hide it."""
    if error.reason == "WRONG_VERSION_NUMBER":
        # The first bytes back were not a TLS record: most often an HTTP answer to the hello.
        return CommandError(
            f"{target.label} speaks plain HTTP, not TLS: is the port right? (443 is HTTPS)",
            EXIT_NETWORK,
        )
    return CommandError(f"TLS with {target.label} failed: {error}", EXIT_NETWORK)
