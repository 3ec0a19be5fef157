"""``pinned_context``: one ``ssl.SSLContext`` that carries pin enforcement to every library."""

from __future__ import annotations

import socket
import ssl
import sys

from pinwarden.client._enforce import PassedChecks, PinnedSSLObject, PinnedSSLSocket
from pinwarden.client._rules import PinSource

__all__ = ["PinnedSSLContext", "pinned_context"]


class PinnedSSLContext(ssl.SSLContext):
    """An ``ssl.SSLContext`` whose sockets and memory-BIO objects enforce ``pin_source``.

    Both ``sslsocket_class`` and ``sslobject_class`` are fixed (client rule 3): blocking clients use
    the first, asyncio and TLS-in-TLS proxies the second. They are read-only properties so that
    nothing can swap in the stdlib classes and quietly drop the check.
    """

    _pin_source: PinSource
    passed_checks: PassedChecks

    @property
    def pin_source(self) -> PinSource:
        """The rules this context enforces."""
        return self._pin_source

    @pin_source.setter
    def pin_source(self, source: PinSource) -> None:
        # What passed under another source proves nothing under this one.
        self.passed_checks = {}
        self._pin_source = source

    @property
    def sslsocket_class(self) -> type[ssl.SSLSocket]:  # type: ignore[override]
        return PinnedSSLSocket

    @property
    def sslobject_class(self) -> type[ssl.SSLObject]:  # type: ignore[override]
        return PinnedSSLObject

    # Client rule 5: never resume a session; a resumed handshake builds no chain to check. The
    # stdlib signatures are repeated so that ``session`` is dropped however it is passed (a session
    # set later on the socket resumes, and the check then refuses the connection).

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname
        )


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
