"""The ``requests`` adapter; imported only when requests is used."""

from __future__ import annotations

import ssl
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

from pinwarden.client._errors import PinValidationError

__all__ = ["PinnedHTTPAdapter"]


class PinnedHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that connects with a pinned context, for direct and proxied requests.

    requests builds its own pool settings per request (``verify=``, ``ca_certs``, its preloaded
    context); this adapter puts the pinned context back every time, and refuses ``verify=False``
    rather than letting it turn off the validation that pinning is added to. A CA bundle named by
    ``verify="path"`` or ``REQUESTS_CA_BUNDLE`` is ignored: the pinned context's trust anchors are
    the ones given to ``pinned_context``, and urllib3 would otherwise load the bundle into that
    shared context on every new connection.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._pinned_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._pinned_context
        super().init_poolmanager(*args, **pool_kwargs)

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        if verify is False:
            raise PinValidationError(
                str(request.url), "verify=False would turn off the validation pinning relies on"
            )
        return super().send(request, stream, timeout, verify, cert, proxies)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        # requests sets the pool's CA bundle here; the pinned context already holds its anchors.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, True, cert
        )
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ssl_context"] = self._pinned_context
        return host_params, pool_kwargs
