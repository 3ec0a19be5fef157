"""The ``requests`` adapter; imported only when requests is used."""

from __future__ import annotations

import ssl
from typing import Any

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

from pinwarden.client._errors import PinValidationError

__all__ = ["PinnedHTTPAdapter"]


class PinnedHTTPAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that connects with a pinned context, for direct and proxied requests.

    requests builds its own pool settings per request (``verify=``, ``ca_certs``, its preloaded
    context); this adapter puts the pinned context back every time, and refuses ``verify=False``
    rather than letting it turn off the validation that pinning is added to.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs: Any) -> None:
        self._pinned_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self._pinned_context
        super().init_poolmanager(*args, **pool_kwargs)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if verify is False:
            raise PinValidationError(
                str(request.url), "verify=False would turn off the validation pinning relies on"
            )
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, True, cert
        )
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ssl_context"] = self._pinned_context
        return host_params, pool_kwargs
