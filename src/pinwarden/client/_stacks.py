"""One-line pinned clients for the common HTTP stacks.

Each helper builds one ``pinned_context`` and hands it to the stack the way that stack expects;
the stacks are imported only when their helper is called, so none of them is a dependency.

A helper takes a pin source, or a context that ``pinned_context`` made; anything else (a plain
``ssl.SSLContext``, a subclass, truststore's or pyOpenSSL's context) carries no pins and is a
``TypeError``. Without ``cafile``/``capath``/``cadata``, each helper trusts what its stack trusts by
default: requests the bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's;
httpx certifi's bundle; urllib3 and aiohttp the system's CAs.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any

from pinwarden.client._context import PinnedSSLContext, pinned_context
from pinwarden.client._errors import PinningUnavailableError
from pinwarden.client._rules import PinSource
from pinwarden.client._stdlib_ssl import (
    PYOPENSSL_ADVICE,
    STDLIB_CONTEXT,
    urllib3_uses_pyopenssl,
)

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


def _context(helper: str, source: PinSource | ssl.SSLContext, ca: dict[str, Any]) -> ssl.SSLContext:
    """The pinned context of ``source``; refuse what would carry no pins (docs/security.md)."""
    if _is_pin_source(source):
        return pinned_context(source, **ca)  # type: ignore[arg-type]
    if type(source) is not PinnedSSLContext or getattr(source, "_pin_source", None) is None:
        raise TypeError(
            f"{helper} takes a pin source (StaticPins, DynamicPins) or a context made by "
            f"pinned_context(), not {type(source).__module__}.{type(source).__qualname__}, which "
            f"carries no pins: pass the pins themselves, with cafile= for a private CA"
        )
    if ca:
        raise TypeError(
            f"{helper}: give cafile/capath/cadata to pinned_context, not with a ready context"
        )
    return source


def _refuse_pyopenssl() -> None:
    """urllib3 with pyOpenSSL injected switches hostname checks off on the pinned context."""
    if urllib3_uses_pyopenssl():
        raise PinningUnavailableError(
            f"pinwarden cannot pin urllib3 connections: {PYOPENSSL_ADVICE}"
        )


def _is_pin_source(source: object) -> bool:
    # Not ssl.SSLContext: truststore may have rebound that name to a class of its own.
    return isinstance(source, PinSource) and not isinstance(source, STDLIB_CONTEXT)


def _default_ca(
    source: PinSource | ssl.SSLContext, *, environment: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The first of the ``environment`` variables set, else certifi's bundle, for a pin source.

    That is what requests (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``: requests/sessions.py,
    ``merge_environment_settings``) and httpx trust when given no CA of their own. A ready context
    keeps the CAs it was made with.
    """
    if not _is_pin_source(source):
        return {}
    for name in environment:
        if os.environ.get(name):
            return {"cafile": os.environ[name]}
    import certifi

    return {"cafile": certifi.where()}


def pinned_requests_adapter(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **adapter_kwargs: Any,
) -> requests.adapters.HTTPAdapter:
    """A ``requests`` transport adapter that enforces ``source``; mount it for ``https://``.

    Trust anchors are ``cafile``/``capath``/``cadata``; without them, what plain requests trusts:
    the bundle ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` names when the adapter is made, else
    certifi's. A request that names another CA bundle (``verify="ca.pem"``, ``session.verify``, or
    one of those variables set to another file) is refused with a ``ValueError`` naming it.
    """
    return _requests_adapter(
        "pinned_requests_adapter", source, _ca(cafile, capath, cadata), adapter_kwargs
    )


def _requests_adapter(
    helper: str, source: PinSource | ssl.SSLContext, ca: dict[str, Any], kwargs: dict[str, Any]
) -> requests.adapters.HTTPAdapter:
    from pinwarden.client._requests import PinnedHTTPAdapter

    _refuse_pyopenssl()
    if ca:
        context = _context(helper, source, ca)
    else:
        ca = _default_ca(source, environment=("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))
        try:
            context = _context(helper, source, ca)
        except (OSError, ValueError, ssl.SSLError) as error:
            # Only a bundle named by the environment can fail here: say which variable.
            raise ValueError(
                f"{helper}: cannot load the CA bundle {ca.get('cafile')!r} that "
                f"REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE names ({error}); fix the variable, or "
                "pass cafile= explicitly"
            ) from None
    return PinnedHTTPAdapter(context, cafile=ca.get("cafile"), **kwargs)


def pinned_requests_session(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
) -> requests.Session:
    """A ``requests.Session`` whose HTTPS requests are pinned; see ``pinned_requests_adapter``."""
    import requests

    adapter = _requests_adapter("pinned_requests_session", source, _ca(cafile, capath, cadata), {})
    session = requests.Session()
    session.mount("https://", adapter)
    return session


def pinned_httpx_client(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **client_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose every HTTPS request is pinned (proxies included).

    Trust anchors are ``cafile``/``capath``/``cadata``, or certifi's bundle as for plain httpx.
    """
    import httpx

    _refuse_verify(client_kwargs)
    ca = _ca(cafile, capath, cadata) or _default_ca(source)
    context = _context("pinned_httpx_client", source, ca)
    return httpx.Client(verify=context, **client_kwargs)


def pinned_httpx_async_client(
    source: PinSource | ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every HTTPS request is pinned (proxies included).

    Trust anchors are ``cafile``/``capath``/``cadata``, or certifi's bundle as for plain httpx.
    """
    import httpx

    _refuse_verify(client_kwargs)
    ca = _ca(cafile, capath, cadata) or _default_ca(source)
    context = _context("pinned_httpx_async_client", source, ca)
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
    _refuse_pyopenssl()
    context = _context("pinned_pool_manager", source, _ca(cafile, capath, cadata))
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
    _refuse_pyopenssl()
    context = _context("pinned_proxy_manager", source, _ca(cafile, capath, cadata))
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
    context = _context("pinned_aiohttp_connector", source, _ca(cafile, capath, cadata))
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
