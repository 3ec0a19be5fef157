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
    rather than letting it turn off the validation that pinning is added to.

    The trust anchors are those the pinned context was built with (``cafile``, the one CA bundle
    file this adapter knows of). urllib3 would load a bundle named per request into that shared
    context, widening it for every later connection, so a request naming any other bundle —
    ``verify="ca.pem"``, ``session.verify``, ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (which
    requests merges into ``verify``) — is refused with a ``ValueError`` that names it.

    The hooks overridden here are ``HTTPAdapter`` methods of requests/adapters.py
    (``init_poolmanager``, ``send``, ``cert_verify``, and ``build_connection_pool_key_attributes``
    since requests 2.32); tests/client/test_client_hooks.py fails when one of them disappears.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, cafile: str | None = None, **kwargs: Any
    ) -> None:
        self._pinned_context = ssl_context
        self._cafile = cafile
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
        if isinstance(verify, str) and verify != self._cafile:
            raise ValueError(self._foreign_bundle_message(verify))
        return super().send(request, stream, timeout, verify, cert, proxies)

    def _foreign_bundle_message(self, bundle: str) -> str:
        built_with = f"cafile={self._cafile!r}" if self._cafile else "the CAs of its pinned context"
        return (
            f"requests was asked to trust the CA bundle {bundle!r} (from verify=, session.verify, "
            f"REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE), but this pinned session trusts {built_with}; "
            f"build it with pinned_requests_session(pins, cafile={bundle!r}) to trust that bundle, "
            "or set session.trust_env = False to ignore the environment variables"
        )

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
