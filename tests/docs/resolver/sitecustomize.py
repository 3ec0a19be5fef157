"""One host name resolved to a local test server, in every Python process a docs test starts.

Python imports ``sitecustomize`` at start-up from ``sys.path`` (the ``site`` module), so a child
process whose ``PYTHONPATH`` names this directory and whose environment has
``PINWARDEN_DOCS_RESOLVE=NAME=ADDRESS:PORT`` resolves NAME, at any port, to ADDRESS:PORT. The
README's commands (``pinwarden pin api.example.com``) and the pin server's live-chain check then
reach the test's TLS server as written. Every other name resolves as usual.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

ENVIRONMENT_VARIABLE = "PINWARDEN_DOCS_RESOLVE"


def resolving(name: str, address: str, port: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """A ``socket.getaddrinfo`` that answers for ``name`` with ``address`` and ``port``."""

    def getaddrinfo(host: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (name, name.encode()):
            return real(address, port, *args, **kwargs)
        return real(host, service, *args, **kwargs)

    return getaddrinfo


def _install() -> None:
    setting = os.environ.get(ENVIRONMENT_VARIABLE)
    if setting:
        name, _, target = setting.partition("=")
        address, _, port = target.rpartition(":")
        socket.getaddrinfo = resolving(name, address, int(port), socket.getaddrinfo)


_install()
