"""The aiohttp connector; imported only when aiohttp is used."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
from aiohttp.client_reqrep import ClientRequest

from pinwarden.client._errors import PinValidationError

__all__ = ["PinnedTCPConnector"]

# The private hook every aiohttp connection asks for its context: aiohttp/connector.py,
# TCPConnector._get_ssl_context (called from _create_direct_connection and
# _create_proxy_connection; https://github.com/aio-libs/aiohttp/blob/master/aiohttp/connector.py).
_HOOK = "_get_ssl_context"


class PinnedTCPConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose every HTTPS connection is made with its pinned context.

    aiohttp lets a single request replace the connector's context: ``ssl=False`` (no validation at
    all), another ``SSLContext``, or a ``Fingerprint`` (which turns CA validation off). Each would
    drop the pins, so such a request is refused, as ``PinnedHTTPAdapter`` refuses ``verify=False``
    (docs/security.md rule 2). The refusal lives in aiohttp's private ``_get_ssl_context``; should
    a new aiohttp rename it, making the connector fails instead of silently losing the refusal.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not callable(getattr(aiohttp.TCPConnector, _HOOK, None)):
            raise RuntimeError(
                f"aiohttp {aiohttp.__version__} has no TCPConnector.{_HOOK}, through which "
                "pinwarden refuses per-request ssl= overrides; use an aiohttp version that "
                "pinwarden supports (see its pyproject.toml) and report this at pinwarden"
            )
        super().__init__(*args, **kwargs)

    def _get_ssl_context(self, req: ClientRequest) -> ssl.SSLContext | None:
        if req.is_ssl() and req.ssl is not True and req.ssl is not self._ssl:
            raise PinValidationError(
                req.host, f"a per-request ssl={req.ssl!r} would replace the pinned context",
                next_step="leave ssl= out of the request: the connector's pinned context applies",
            )
        return super()._get_ssl_context(req)
