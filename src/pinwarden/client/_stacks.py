"""One-line pinned clients for the common HTTP stacks.

Each helper builds one ``pinned_context`` and hands it to the stack the way that stack expects;
the stacks are imported only when their helper is called, so none of them is a dependency.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from pinwarden.client._context import pinned_context
from pinwarden.client._rules import PinSource

if TYPE_CHECKING:
    import aiohttp
    import httpx
    import requests
    import urllib3

__all__ = [
    "pinned_aiohttp_connector",
    "pinned_httpx_async_client",
    "pinned_httpx_client",
    "pinned_pool_manager",
    "pinned_proxy_manager",
    "pinned_requests_adapter",
    "pinned_requests_session",
]


def _context(source: PinSource | ssl.SSLContext, ca: dict[str, Any]) -> ssl.SSLContext:
    if isinstance(source, ssl.SSLContext):
        if ca:
            raise TypeError("give the CA options to pinned_context, not with a ready context")
        return source
    return pinned_context(source, **ca)


def pinned_requests_adapter(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **adapter_kwargs: Any,
) -> requests.adapters.HTTPAdapter:
    """A ``requests`` transport adapter that enforces ``source``; mount it for ``https://``."""
    from pinwarden.client._requests import PinnedHTTPAdapter

    context = _context(source, _ca(cafile, capath, cadata))
    return PinnedHTTPAdapter(context, **adapter_kwargs)


def pinned_requests_session(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
) -> requests.Session:
    """A ``requests.Session`` whose every HTTPS request is pinned."""
    import requests

    session = requests.Session()
    session.mount(
        "https://", pinned_requests_adapter(source, cafile=cafile, capath=capath, cadata=cadata)
    )
    return session


def pinned_httpx_client(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **client_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose every HTTPS request is pinned (proxies included)."""
    import httpx

    _refuse_verify(client_kwargs)
    context = _context(source, _ca(cafile, capath, cadata))
    return httpx.Client(verify=context, **client_kwargs)


def pinned_httpx_async_client(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every HTTPS request is pinned (proxies included)."""
    import httpx

    _refuse_verify(client_kwargs)
    context = _context(source, _ca(cafile, capath, cadata))
    return httpx.AsyncClient(verify=context, **client_kwargs)


def pinned_pool_manager(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **pool_kwargs: Any,
) -> urllib3.PoolManager:
    """A ``urllib3.PoolManager`` whose every HTTPS connection is pinned."""
    import urllib3

    _refuse_verify(pool_kwargs)
    context = _context(source, _ca(cafile, capath, cadata))
    return urllib3.PoolManager(ssl_context=context, **pool_kwargs)


def pinned_proxy_manager(
    proxy_url: str,
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **pool_kwargs: Any,
) -> urllib3.ProxyManager:
    """A ``urllib3.ProxyManager`` that tunnels through ``proxy_url`` and pins the origin servers."""
    import urllib3

    _refuse_verify(pool_kwargs)
    context = _context(source, _ca(cafile, capath, cadata))
    return urllib3.ProxyManager(proxy_url, ssl_context=context, **pool_kwargs)


def pinned_aiohttp_connector(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **connector_kwargs: Any,
) -> aiohttp.TCPConnector:
    """An ``aiohttp.TCPConnector`` whose every HTTPS connection is pinned (needs a running loop).

    A request that passes its own ``ssl=`` (``False``, a context, a fingerprint) is refused.
    """
    from pinwarden.client._aiohttp import PinnedTCPConnector

    _refuse_verify(connector_kwargs)
    context = _context(source, _ca(cafile, capath, cadata))
    return PinnedTCPConnector(ssl=context, **connector_kwargs)


_VERIFY_OPTIONS = ("verify", "ssl", "ssl_context", "cert_reqs", "ca_certs", "ca_cert_dir")


def _refuse_verify(kwargs: dict[str, Any]) -> None:
    given = sorted(set(kwargs) & set(_VERIFY_OPTIONS))
    if given:
        raise TypeError(
            f"{', '.join(given)}: the pinned context decides validation; pass cafile/capath/cadata"
        )


def _ca(cafile: str | None, capath: str | None, cadata: str | bytes | None) -> dict[str, Any]:
    given = {"cafile": cafile, "capath": capath, "cadata": cadata}
    return {name: value for name, value in given.items() if value is not None}
