"""Other code in the process replacing the classes a pinned context is built on.

truststore, gevent and eventlet rebind names of the ``ssl`` module; urllib3's pyOpenSSL injection
changes what urllib3 does with a context; an app can hand a helper a context pinwarden did not make.
Each case must either enforce the pins (a legitimate server answers, a rogue one is refused) or be
refused loudly when the client is made, with a message that says what to do (docs/security.md,
"Other code in the process"). Monkey-patching cannot be undone, so gevent, eventlet and "truststore
before the import" run in a fresh interpreter (``_patched_process.py``).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from pinwarden.client import (
    PinnedSSLContext,
    PinningUnavailableError,
    StaticPins,
    pin_error,
    pinned_aiohttp_connector,
    pinned_context,
    pinned_httpx_async_client,
    pinned_httpx_client,
    pinned_pool_manager,
    pinned_proxy_manager,
    pinned_requests_adapter,
    pinned_requests_session,
)
from tests.client._stack_table import tcp_to, tls_get
from tests.client._tls_harness import Servers
from tests.support.pki import PKI

pytestmark = pytest.mark.network

_PATCHED_PROCESS = Path(__file__).with_name("_patched_process.py")


def _pins(pki: PKI) -> StaticPins:
    return StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})


def _run_patched(patch: str, when: str, pki: PKI, servers: Servers) -> dict[str, Any]:
    arguments = [patch, when, pki.ca_bundle, servers.legit.url(), servers.rogue.url()]
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", str(_PATCHED_PROCESS), *arguments,
         pki.intermediate_pin, pki.backup_pin],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def _assert_enforced(report: dict[str, Any]) -> None:
    """Each stack reached the legitimate server and was refused by the rogue one's pins."""
    assert report["built"] == "ok"
    for stack in ("ssl", "requests"):
        assert report[stack]["legit"] == "ok:legit", report[stack]
        assert report[stack]["rogue"].startswith("pin: certificate pinning failed"), report[stack]
        assert "no key of the verified chain is pinned" in report[stack]["rogue"]


@pytest.mark.parametrize("when", ["before", "after"])
def test_truststore_injected_before_or_after_the_import_still_enforces(
    when: str, pki: PKI, servers: Servers
) -> None:
    """Before the fix: injected before the import, a wrong pin got a 200; after it, the context
    could not be built (RecursionError)."""
    pytest.importorskip("truststore", reason="truststore is not installed")
    report = _run_patched("truststore", when, pki, servers)
    assert report["ssl.SSLContext"] == "truststore._api.SSLContext"
    _assert_enforced(report)


@pytest.mark.parametrize("patch", ["gevent", "gevent-without-ssl", "eventlet"])
def test_monkey_patching_before_the_import_is_refused_when_the_client_is_made(
    patch: str, pki: PKI, servers: Servers
) -> None:
    pytest.importorskip(patch.split("-")[0], reason=f"{patch.split('-')[0]} is not installed")
    report = _run_patched(patch, "before", pki, servers)
    assert report["built"].startswith("PinningUnavailableError: pinwarden cannot enforce pins")
    assert "import pinwarden.client before monkey-patching" in report["built"]
    assert servers.legit.connections == servers.rogue.connections == []


@pytest.mark.parametrize("patch", ["gevent", "eventlet"])
def test_ssl_monkey_patched_after_the_clients_were_made_refuses_every_connection(
    patch: str, pki: PKI, servers: Servers
) -> None:
    pytest.importorskip(patch, reason=f"{patch} is not installed")
    report = _run_patched(patch, "after", pki, servers)
    assert report["built"] == "ok"
    for stack in ("ssl", "requests"):
        for server in ("legit", "rogue"):
            outcome = report[stack][server]
            assert outcome.startswith("pin: certificate pinning failed"), outcome
            assert f"ssl.SSLSocket is {patch}." in outcome
    assert servers.legit.received == servers.rogue.received == b""


def test_gevent_without_ssl_after_the_import_enforces(pki: PKI, servers: Servers) -> None:
    """The twin of the refusals above: gevent's socket patch alone leaves pinning working."""
    pytest.importorskip("gevent", reason="gevent is not installed")
    _assert_enforced(_run_patched("gevent-without-ssl", "after", pki, servers))


def _get_with(session: requests.Session, url: str) -> str:
    return session.get(url, timeout=5).text


def _session(pki: PKI) -> requests.Session:
    session = pinned_requests_session(_pins(pki), cafile=pki.ca_bundle)
    session.trust_env = False
    return session


def _assert_session_enforces(session: requests.Session, servers: Servers) -> None:
    assert _get_with(session, servers.legit.url()) == "ok:legit"
    with pytest.raises(requests.exceptions.SSLError) as raised:
        _get_with(session, servers.rogue.url())
    assert pin_error(raised.value) is not None, repr(raised.value)


def test_truststore_toggled_while_pinned_clients_exist(pki: PKI, servers: Servers) -> None:
    truststore = pytest.importorskip("truststore", reason="truststore is not installed")
    made_before = _session(pki)
    context = pinned_context(_pins(pki), cafile=pki.ca_bundle)
    truststore.inject_into_ssl()
    try:
        made_while_injected = _session(pki)
        for session in (made_before, made_while_injected):
            _assert_session_enforces(session, servers)
        with context.wrap_socket(tcp_to(servers.legit.port), server_hostname="localhost") as tls:
            assert tls_get(tls, "localhost", servers.legit.port) == "ok:legit"
        context.verify_mode = ssl.CERT_REQUIRED  # a stdlib setter recursed here before the fix
    finally:
        truststore.extract_from_ssl()
    for session in (made_before, made_while_injected):
        _assert_session_enforces(session, servers)


def test_urllib3_pyopenssl_injection_is_refused(pki: PKI, servers: Servers) -> None:
    pytest.importorskip("OpenSSL", reason="pyOpenSSL is not installed")
    from urllib3.contrib import pyopenssl

    made_before = pinned_pool_manager(_pins(pki), cafile=pki.ca_bundle)
    pyopenssl.inject_into_urllib3()
    try:
        for make in (pinned_requests_session, pinned_pool_manager):
            with pytest.raises(PinningUnavailableError, match="extract_from_urllib3"):
                make(_pins(pki), cafile=pki.ca_bundle)
        with pytest.raises(Exception) as raised:  # urllib3 wraps it: MaxRetryError
            made_before.request("GET", servers.legit.url(), retries=False, timeout=5)
    finally:
        pyopenssl.extract_from_urllib3()
    refusal = pin_error(raised.value)
    assert refusal is not None, repr(raised.value)
    assert "check_hostname is False" in str(refusal)
    assert "extract_from_urllib3" in str(refusal)
    assert servers.legit.received == b""  # refused before the handshake


def test_urllib3_twin_without_pyopenssl_enforces(pki: PKI, servers: Servers) -> None:
    with pinned_pool_manager(_pins(pki), cafile=pki.ca_bundle) as manager:
        response = manager.request("GET", servers.legit.url(), retries=False, timeout=5)
        assert response.data == b"ok:legit"
        with pytest.raises(Exception) as raised:
            manager.request("GET", servers.rogue.url(), retries=False, timeout=5)
    assert pin_error(raised.value) is not None


# --- A helper takes a pin source or a context that pinwarden made -------------------------------

_HELPERS: dict[str, Callable[[Any], Any]] = {
    "pinned_requests_session": pinned_requests_session,
    "pinned_requests_adapter": pinned_requests_adapter,
    "pinned_httpx_client": pinned_httpx_client,
    "pinned_httpx_async_client": pinned_httpx_async_client,
    "pinned_pool_manager": pinned_pool_manager,
    "pinned_proxy_manager": lambda source: pinned_proxy_manager("http://127.0.0.1:9", source),
    "pinned_aiohttp_connector": pinned_aiohttp_connector,
}


class _SubclassedContext(PinnedSSLContext):
    """A subclass can override anything, the socket classes too: not pinwarden's to vouch for."""


def _foreign_contexts() -> dict[str, Callable[[], object]]:
    def subclass() -> object:
        context = _SubclassedContext(ssl.PROTOCOL_TLS_CLIENT)
        context.pin_source = StaticPins({})
        return context

    def truststore_context() -> object:
        truststore = pytest.importorskip("truststore", reason="truststore is not installed")
        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    def pyopenssl_context() -> object:
        pytest.importorskip("OpenSSL", reason="pyOpenSSL is not installed")
        from urllib3.contrib.pyopenssl import PyOpenSSLContext

        return PyOpenSSLContext(ssl.PROTOCOL_TLS_CLIENT)

    return {
        "create_default_context": ssl.create_default_context,
        "pinned-class-without-pins": lambda: PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT),
        "subclass": subclass,
        "truststore": truststore_context,
        "pyopenssl": pyopenssl_context,
        "none": lambda: None,
        "string": lambda: "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }


async def _make_in_a_loop(make: Callable[[Any], Any], given: object) -> Any:
    return make(given)  # aiohttp's connector wants a running loop


def _call(helper: str, given: object) -> Any:
    import asyncio

    if helper == "pinned_aiohttp_connector":
        return asyncio.run(_make_in_a_loop(_HELPERS[helper], given))
    return _HELPERS[helper](given)


@pytest.mark.parametrize("foreign", list(_foreign_contexts()))
@pytest.mark.parametrize("helper", list(_HELPERS))
def test_helpers_refuse_what_carries_no_pins(helper: str, foreign: str) -> None:
    given = _foreign_contexts()[foreign]()
    with pytest.raises(TypeError, match=rf"{helper} takes a pin source .* or a context made by"):
        _call(helper, given)


@pytest.mark.parametrize("helper", list(_HELPERS))
def test_helpers_twin_accept_a_pinned_context(helper: str, pki: PKI) -> None:
    client = _call(helper, pinned_context(_pins(pki), cafile=pki.ca_bundle))
    assert client is not None


def test_pinned_context_refuses_a_context_for_its_source() -> None:
    with pytest.raises(TypeError, match=r"takes a pin source .* not an ssl\.SSLContext"):
        pinned_context(ssl.create_default_context())  # type: ignore[arg-type]
