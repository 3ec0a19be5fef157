"""``pinned_context``: one ``ssl.SSLContext`` that carries pin enforcement to every library."""

from __future__ import annotations

import ssl
import sys
from typing import Any

from pinwarden.client._enforce import PinnedSSLObject, PinnedSSLSocket
from pinwarden.client._rules import PinSource

__all__ = ["PinnedSSLContext", "pinned_context"]


class PinnedSSLContext(ssl.SSLContext):
    """An ``ssl.SSLContext`` whose sockets and memory-BIO objects enforce ``pin_source``.

    Both ``sslsocket_class`` and ``sslobject_class`` are fixed (client rule 3): blocking clients use
    the first, asyncio and TLS-in-TLS proxies the second. They are read-only properties so that
    nothing can swap in the stdlib classes and quietly drop the check.
    """

    pin_source: PinSource

    @property  # type: ignore[override]
    def sslsocket_class(self) -> type[ssl.SSLSocket]:
        return PinnedSSLSocket

    @property  # type: ignore[override]
    def sslobject_class(self) -> type[ssl.SSLObject]:
        return PinnedSSLObject

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        # Client rule 5: never resume a session; a resumed handshake builds no chain to check.
        kwargs.pop("session", None)
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        kwargs.pop("session", None)
        return super().wrap_bio(*args, **kwargs)


def pinned_context(
    source: PinSource,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    cadata: str | bytes | None = None,
) -> ssl.SSLContext:
    """A client context with normal CA and hostname validation plus the pins of ``source``.

    Trust anchors are the system's, or those given by ``cafile``/``capath``/``cadata``. Pass the
    context to any stack (``requests`` through ``PinnedHTTPAdapter``, ``httpx`` as ``verify=``,
    ``urllib3`` as ``ssl_context=``, ``aiohttp`` and ``asyncio`` as ``ssl=``).
    """
    if not isinstance(source, PinSource):
        raise TypeError(f"source must be a pin source such as StaticPins, not {type(source)!r}")
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if sys.version_info >= (3, 13):
        # The flags ssl.create_default_context sets from 3.13 on.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.pin_source = source
    return context
