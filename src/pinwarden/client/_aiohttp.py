"""The aiohttp connector; imported only when aiohttp is used."""

from __future__ import annotations

import ssl

import aiohttp
from aiohttp.client_reqrep import ClientRequest

from pinwarden.client._errors import PinValidationError

__all__ = ["PinnedTCPConnector"]


class PinnedTCPConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` whose every HTTPS connection is made with its pinned context.

    aiohttp lets a single request replace the connector's context: ``ssl=False`` (no validation at
    all), another ``SSLContext``, or a ``Fingerprint`` (which turns CA validation off). Each would
    drop the pins, so such a request is refused, as ``PinnedHTTPAdapter`` refuses ``verify=False``
    (client rule 2).
    """

    def _get_ssl_context(self, req: ClientRequest) -> ssl.SSLContext | None:
        if req.is_ssl() and req.ssl is not True and req.ssl is not self._ssl:
            raise PinValidationError(
                req.host, f"a per-request ssl={req.ssl!r} would replace the pinned context"
            )
        return super()._get_ssl_context(req)
