"""Run by test_client_class_swaps.py in a fresh interpreter: patch ``ssl``, then try pinned clients.

    python _patched_process.py PATCH WHEN CAFILE LEGIT_URL ROGUE_URL PIN [PIN ...]

PATCH is what replaces the ssl classes (``truststore``, ``gevent``, ``gevent-without-ssl``,
``eventlet``); WHEN is ``before`` or ``after`` importing pinwarden.client (``after`` patches after
the pinned clients are built). Prints one JSON object: how building went, and for each stack what
the legitimate and the rogue server gave ("ok:legit", "pin: <message>", or "<Error>: <message>").
Monkey-patching cannot be undone, which is why this runs in a process of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def _patch(patch: str) -> None:
    if patch == "truststore":
        import truststore

        truststore.inject_into_ssl()
    elif patch == "gevent":
        from gevent import monkey

        monkey.patch_all()
    elif patch == "gevent-without-ssl":
        from gevent import monkey

        monkey.patch_all(ssl=False)
    elif patch == "eventlet":
        import eventlet

        eventlet.monkey_patch()
    else:
        raise SystemExit(f"unknown patch {patch!r}")


def _outcome(get: Callable[[str], str], url: str) -> str:
    from pinwarden.client import pin_error

    try:
        return get(url)
    except Exception as error:
        found = pin_error(error)
        if found is not None:
            return f"pin: {found}"
        return f"{type(error).__name__}: {error}"


def main(patch: str, when: str, cafile: str, legit: str, rogue: str, *pins: str) -> dict[str, Any]:
    if when == "before":
        _patch(patch)
    import socket
    import ssl
    from urllib.parse import urlsplit

    from pinwarden.client import StaticPins, pinned_context, pinned_requests_session

    source = StaticPins({"localhost": list(pins)})
    report: dict[str, Any] = {}
    try:
        context = pinned_context(source, cafile=cafile)
        session = pinned_requests_session(source, cafile=cafile)
        session.trust_env = False  # no CA bundle or proxy from the environment
    except Exception as error:
        report["built"] = f"{type(error).__name__}: {error}"
        return report
    report["built"] = "ok"
    if when == "after":
        _patch(patch)

    def get_ssl(url: str) -> str:
        port = urlsplit(url).port or 443
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return tls.recv(4096).rpartition(b"\r\n\r\n")[2].decode()

    def get_requests(url: str) -> str:
        return str(session.get(url, timeout=5).text)

    for name, get in (("ssl", get_ssl), ("requests", get_requests)):
        report[name] = {"legit": _outcome(get, legit), "rogue": _outcome(get, rogue)}
    report["ssl.SSLContext"] = f"{ssl.SSLContext.__module__}.{ssl.SSLContext.__qualname__}"
    return report


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
