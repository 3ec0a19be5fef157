"""The standard library's own TLS classes, whatever ``ssl.SSLContext`` names today.

Other code in the process can rebind the names of the ``ssl`` module:
``truststore.inject_into_ssl()`` puts its own ``SSLContext`` there, gevent's and eventlet's
monkey-patching put theirs in place of ``ssl.SSLContext`` and ``ssl.SSLSocket``. A class built on
``ssl.SSLContext`` as found at import time would inherit truststore's ``wrap_socket``, which never
runs the pin check; a class built before the rebinding still runs stdlib code that looks the class
up by its module-global name (``super(SSLContext, SSLContext)`` in the ``verify_mode``,
``options``, … setters, and ``super(SSLSocket, self)`` in ``SSLSocket._create``; CPython
``Lib/ssl.py``, 3.10 to 3.13), which then recurses or fails.

So the pinned classes are built on the classes found here — ``_ssl._SSLContext``'s one direct
subclass defined by the ``ssl`` module, and the socket and object classes it names — and
``foreign_ssl_classes`` says when a rebinding leaves the pinned classes unable to work, so that
``pinned_context`` refuses loudly instead (docs/security.md, "Other code in the process").
"""

from __future__ import annotations

import _socket
import _ssl
import ssl
import sys

__all__ = [
    "PYOPENSSL_ADVICE",
    "STDLIB_CONTEXT",
    "STDLIB_OBJECT",
    "STDLIB_SOCKET",
    "foreign_ssl_classes",
    "urllib3_uses_pyopenssl",
]


def _stdlib_context_class() -> type[ssl.SSLContext]:
    for candidate in _ssl._SSLContext.__subclasses__():
        if candidate.__module__ == "ssl" and candidate.__qualname__ == "SSLContext":
            return candidate  # type: ignore[return-value]
    raise ImportError(
        "pinwarden.client cannot find the standard library's ssl.SSLContext class: something in "
        "this process replaced it before pinwarden was imported"
    )


def _named(cls: object, qualname: str) -> type:
    if not isinstance(cls, type) or cls.__module__ != "ssl" or cls.__qualname__ != qualname:
        raise ImportError(
            f"pinwarden.client: the standard library's ssl.SSLContext names {cls!r} as its "
            f"{qualname}; something in this process replaced it"
        )
    return cls


STDLIB_CONTEXT = _stdlib_context_class()
STDLIB_SOCKET: type[ssl.SSLSocket] = _named(STDLIB_CONTEXT.sslsocket_class, "SSLSocket")
STDLIB_OBJECT: type[ssl.SSLObject] = _named(STDLIB_CONTEXT.sslobject_class, "SSLObject")


def _class_name(cls: object) -> str:
    if isinstance(cls, type):
        return f"{cls.__module__}.{cls.__qualname__}"
    return repr(cls)


def foreign_ssl_classes() -> str | None:
    """What in this process keeps pinned connections from working, with the next step; or None.

    A rebound ``ssl.SSLContext`` alone (truststore) does no harm: the pinned context never reaches
    the stdlib code that reads that name. A rebound ``ssl.SSLSocket`` or ``ssl.SSLObject`` (gevent,
    eventlet) does: ``SSLSocket._create`` calls ``super(SSLSocket, self).__init__`` with the module
    global, and such sockets would not cooperate with the patched event loop anyway.
    """
    if not issubclass(STDLIB_SOCKET, _socket.socket):
        # ssl was first imported after socket.socket was replaced: its SSLSocket is built on the
        # replacement, which _ssl cannot wrap ("argument 'sock' must be _socket.socket").
        base = _class_name(STDLIB_SOCKET.__mro__[1])
        return (
            f"the standard library's ssl.SSLSocket is built on {base}, not on the socket module's "
            "own class: socket was monkey-patched before ssl was first imported; "
            f"{_UNPATCH_ADVICE}"
        )
    replaced = [
        f"ssl.{name} is {_class_name(getattr(ssl, name, None))}"
        for name, stdlib in (("SSLSocket", STDLIB_SOCKET), ("SSLObject", STDLIB_OBJECT))
        if getattr(ssl, name, None) is not stdlib
    ]
    if not replaced:
        return None
    return (
        f"{' and '.join(replaced)}, not the standard library's class (monkey-patching of the ssl "
        f"module); {_UNPATCH_ADVICE}"
    )


_UNPATCH_ADVICE = (
    "pinned connections need the standard library's ssl classes: import pinwarden.client before "
    "monkey-patching and leave ssl unpatched (gevent.monkey.patch_all(ssl=False); eventlet "
    "patches ssl together with socket), or make pinned connections from a process that does not "
    "monkey-patch"
)


def urllib3_uses_pyopenssl() -> bool:
    """Whether ``urllib3.contrib.pyopenssl.inject_into_urllib3()`` is in force in this process.

    urllib3 then sets ``check_hostname = False`` on every context it is given
    (``_ssl_wrap_socket_and_match_hostname`` in urllib3/connection.py, the ``IS_PYOPENSSL`` branch),
    which a pinned context refuses (docs/security.md rule 2). Read without importing urllib3.
    """
    urllib3_ssl = sys.modules.get("urllib3.util.ssl_")
    return bool(getattr(urllib3_ssl, "IS_PYOPENSSL", False))


PYOPENSSL_ADVICE = (
    "urllib3 was switched to pyOpenSSL (urllib3.contrib.pyopenssl.inject_into_urllib3()) and then "
    "turns hostname checking off on every context it is given, which pinning never replaces; "
    "call urllib3.contrib.pyopenssl.extract_from_urllib3() before making pinned clients"
)
