"""``pinned_context``: one ``ssl.SSLContext`` that carries pin enforcement to every library."""

from __future__ import annotations

import _ssl
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any

from pinwarden.client._enforce import PassedChecks, PinnedSSLObject, PinnedSSLSocket
from pinwarden.client._errors import PinningUnavailableError, PinValidationError
from pinwarden.client._rules import PinSource
from pinwarden.client._stdlib_ssl import STDLIB_CONTEXT, foreign_ssl_classes

__all__ = ["PinnedSSLContext", "pinned_context"]

if TYPE_CHECKING:
    _StdlibContext = ssl.SSLContext
else:
    # Not ssl.SSLContext: truststore.inject_into_ssl() may have put its class there, whose
    # wrap_socket never reaches the pinned socket class (_stdlib_ssl.py).
    _StdlibContext = STDLIB_CONTEXT


def _setter_without_module_lookup(name: str) -> Any:
    """``ssl.SSLContext.<name>`` with a setter that writes the ``_ssl`` slot directly.

    The stdlib setter calls ``super(SSLContext, SSLContext).<name>.__set__`` with the module-global
    ``SSLContext`` (CPython Lib/ssl.py, the ``options``, ``verify_flags``, ``verify_mode``,
    ``minimum_version`` and ``maximum_version`` setters, 3.10 to 3.13:
    https://github.com/python/cpython/blob/3.12/Lib/ssl.py; tests/client/test_client_hooks.py checks
    the ``_ssl`` slots still exist). When truststore, gevent or eventlet has
    rebound ``ssl.SSLContext`` to a subclass, that lookup finds the same setter again and recurses
    (gevent's own class carries the same fix: gevent/ssl.py, "causes infinite recursion"). urllib3
    sets ``verify_mode`` on the context it is given, so this runs on every urllib3 connection.
    ``minimum_version`` loses only the stdlib's special case for SSLv3, which a TLS client
    context never negotiates.
    """
    stdlib: property = getattr(STDLIB_CONTEXT, name)
    slot = getattr(_ssl._SSLContext, name)

    def set_value(context: ssl.SSLContext, value: Any) -> None:
        slot.__set__(context, value)

    return property(stdlib.fget, set_value, doc=stdlib.__doc__)


class PinnedSSLContext(_StdlibContext):
    """An ``ssl.SSLContext`` whose sockets and memory-BIO objects enforce ``pin_source``.

    Both ``sslsocket_class`` and ``sslobject_class`` are fixed (docs/security.md rule 3): blocking
    clients use the first, asyncio and TLS-in-TLS proxies the second. They are read-only properties
    so that nothing can swap in the stdlib classes and quietly drop the check. Build one with
    ``pinned_context``.
    """

    options = _setter_without_module_lookup("options")
    verify_flags = _setter_without_module_lookup("verify_flags")
    verify_mode = _setter_without_module_lookup("verify_mode")
    minimum_version = _setter_without_module_lookup("minimum_version")
    maximum_version = _setter_without_module_lookup("maximum_version")

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

    # docs/security.md rule 5: never resume a session; a resumed handshake builds no chain to
    # check. The stdlib signatures are repeated so that ``session`` is dropped however it is passed
    # (a session set later on the socket resumes, and the check then refuses the connection).

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        _refuse_foreign_classes(server_hostname)
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
        _refuse_foreign_classes(server_hostname)
        return super().wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname
        )


def _refuse_foreign_classes(server_hostname: str | bytes | None) -> None:
    """Refuse to connect once gevent or eventlet patched ``ssl`` after the context was made."""
    problem = foreign_ssl_classes()
    if problem is not None:
        host = server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
        raise PinValidationError(host or "<no server_hostname>", problem)


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

    Hostnames are matched against the certificate's subjectAltName only, never its common name
    (``hostname_checks_common_name = False``, as urllib3 does; RFC 6125 §6.4.4).

    Raises ``PinningUnavailableError`` when something in the process (gevent or eventlet
    monkey-patching of ``ssl``) keeps pinned connections from working.
    """
    if isinstance(source, STDLIB_CONTEXT):
        raise TypeError(
            "pinned_context takes a pin source (StaticPins, DynamicPins), not an ssl.SSLContext; "
            "give the CA choice as cafile=/capath=/cadata="
        )
    if not isinstance(source, PinSource):
        raise TypeError(
            f"pinned_context takes a pin source such as StaticPins or DynamicPins, "
            f"not {type(source).__name__}"
        )
    problem = foreign_ssl_classes()
    if problem is not None:
        raise PinningUnavailableError(f"pinwarden cannot enforce pins in this process: {problem}")
    context = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.hostname_checks_common_name = False
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
