"""The private CPython, aiohttp, requests and urllib3 hooks the client depends on are still there.

Each is named in a comment at the code that uses it, with the upstream source it depends on. When a
new release renames or removes one, these tests fail with a message saying what stops working and
where to look, instead of the client quietly losing a check.
"""

from __future__ import annotations

import _ssl
import inspect
import ssl
import sys

import aiohttp
import pytest
import requests.adapters
import urllib3.util.ssl_

from pinwarden.client import StaticPins, pinned_aiohttp_connector
from pinwarden.client._stdlib_ssl import STDLIB_CONTEXT, STDLIB_OBJECT, STDLIB_SOCKET


def _require(owner: object, name: str, consequence: str) -> None:
    assert callable(getattr(owner, name, None)) or isinstance(
        getattr(owner, name, None), property
    ), f"{owner!r} has no {name} any more: {consequence}"


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.13+ reads the public method")
def test_private_verified_chain_method_of_python_3_10_to_3_12() -> None:
    for name in ("get_verified_chain", "get_unverified_chain"):
        _require(
            _ssl._SSLSocket,
            name,
            "pinwarden/_tls.py cannot read the chain pins are checked against "
            "(docs/security.md rule 1)",
        )


@pytest.mark.skipif(sys.version_info < (3, 13), reason="the public method exists from 3.13")
def test_public_verified_chain_method_from_python_3_13() -> None:
    for cls in (ssl.SSLSocket, ssl.SSLObject):
        for name in ("get_verified_chain", "get_unverified_chain"):
            _require(cls, name, "update pinwarden/_tls.py")


def test_ssl_socket_hooks_the_refusal_relies_on() -> None:
    """PinnedSSLSocket answers every later call with its refusal through ``_checkClosed``."""
    for name in ("_checkClosed", "_real_close"):
        _require(
            ssl.SSLSocket,
            name,
            "a refused socket no longer raises its refusal on each later call "
            "(docs/security.md rule 9; pinwarden/client/_enforce.py PinnedSSLSocket)",
        )
    read_source = inspect.getsource(ssl.SSLSocket.read)
    assert "_checkClosed" in read_source, "ssl.SSLSocket.read no longer calls _checkClosed"


def test_the_standard_library_classes_are_found_in_an_unpatched_process() -> None:
    assert STDLIB_CONTEXT is ssl.SSLContext
    assert STDLIB_SOCKET is ssl.SSLSocket
    assert STDLIB_OBJECT is ssl.SSLObject


def test_the_setters_reached_without_the_module_global_still_exist() -> None:
    """``_context.py`` writes these ``_ssl`` slots directly (the stdlib setters recurse once
    truststore or gevent rebinds ``ssl.SSLContext``)."""
    for name in ("options", "verify_flags", "verify_mode", "minimum_version", "maximum_version"):
        slot = getattr(_ssl._SSLContext, name, None)
        assert slot is not None and hasattr(slot, "__set__"), f"_ssl._SSLContext.{name} changed"
        assert isinstance(getattr(ssl.SSLContext, name), property), f"ssl.SSLContext.{name}"


def test_aiohttp_context_hook() -> None:
    _require(
        aiohttp.TCPConnector,
        "_get_ssl_context",
        "per-request ssl= overrides are no longer refused (pinwarden/client/_aiohttp.py)",
    )
    parameters = list(inspect.signature(aiohttp.TCPConnector._get_ssl_context).parameters)
    assert parameters == ["self", "req"], f"_get_ssl_context takes {parameters} now"


def test_the_connector_refuses_to_start_without_the_aiohttp_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should aiohttp drop the hook, making a connector fails loudly instead of silently."""
    import asyncio

    monkeypatch.delattr(aiohttp.TCPConnector, "_get_ssl_context")

    async def make() -> object:
        return pinned_aiohttp_connector(StaticPins({}))

    with pytest.raises(RuntimeError, match=r"has no TCPConnector\._get_ssl_context"):
        asyncio.run(make())


def test_requests_adapter_hooks() -> None:
    expected = {
        "init_poolmanager": ["self", "connections", "maxsize", "block", "pool_kwargs"],
        "send": ["self", "request", "stream", "timeout", "verify", "cert", "proxies"],
        "cert_verify": ["self", "conn", "url", "verify", "cert"],
        "build_connection_pool_key_attributes": ["self", "request", "verify", "cert"],
    }
    for name, parameters in expected.items():
        method = getattr(requests.adapters.HTTPAdapter, name, None)
        assert method is not None, (
            f"requests.adapters.HTTPAdapter.{name} is gone: PinnedHTTPAdapter "
            "(pinwarden/client/_requests.py) no longer keeps the pinned context on every pool"
        )
        assert list(inspect.signature(method).parameters) == parameters, name


def test_urllib3_pyopenssl_flag() -> None:
    assert hasattr(urllib3.util.ssl_, "IS_PYOPENSSL"), (
        "urllib3.util.ssl_.IS_PYOPENSSL is gone: _stdlib_ssl.urllib3_uses_pyopenssl cannot tell "
        "when pyOpenSSL was injected"
    )
