"""The bypasses of the enforcement rules of docs/security.md, each tried against the engine.

Each test would pass an unguarded client through, so each fails if the code behind its rule goes.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3

from pinwarden import HostPattern, InvalidPinError
from pinwarden._tls import served_chain_der
from pinwarden.client import (
    Mode,
    PinnedSSLContext,
    PinnedSSLObject,
    PinnedSSLSocket,
    PinRule,
    PinValidationError,
    PinViolation,
    StaticPins,
    _enforce,
    pinned_aiohttp_connector,
    pinned_context,
    pinned_httpx_client,
    pinned_pool_manager,
    pinned_requests_session,
)
from tests.client._pin_sources import BrokenSource, ChangingPins, FixedRule
from tests.client._stack_table import (
    STACKS,
    BioConnection,
    Stack,
    fetch_error,
    find_pin_error,
    tcp_to,
    tls_get,
)
from tests.client._tls_harness import Servers
from tests.support.pki import PKI
from tests.support.tls_servers import RecordingTLSServer, assert_no_request_byte, running

pytestmark = pytest.mark.network


def _pins(pki: PKI, *pins: str) -> StaticPins:
    return StaticPins({"localhost": [*pins, pki.backup_pin]})


# --- Rule 1: the verified chain, never the one the server sent (OkHttp CVE-2016-2402) ------------


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_appended_pinned_intermediate_is_refused(stack: Stack, pki: PKI, servers: Servers) -> None:
    pins = _pins(pki, pki.intermediate_pin)

    error = fetch_error(stack, pins, pki.ca_bundle, servers.appended.url())

    pin_error = find_pin_error(error)
    assert pin_error is not None, repr(error)
    assert pki.intermediate_pin not in pin_error.seen
    assert pin_error.seen == (pki.rogue_leaf_pin, pki.rogue_root_pin)
    assert_no_request_byte(servers.appended)


def test_the_appended_server_really_sends_the_pinned_intermediate(
    pki: PKI, servers: Servers
) -> None:
    """The attack of the test above is real: the pinned key is in the chain the server sends."""
    context = ssl.create_default_context(cafile=pki.ca_bundle)
    with context.wrap_socket(tcp_to(servers.appended.port), server_hostname="localhost") as tls:
        served = served_chain_der(tls)
    assert len(served) == 2
    assert ssl.DER_cert_to_PEM_cert(served[1]).strip() == (
        pki.intermediate.cert_pem.bytes().decode().strip()
    )


def test_a_violation_reports_the_served_chain_apart_from_the_verified_one(
    pki: PKI, servers: Servers
) -> None:
    """RFC 7469 §3 reports both chains: the appended intermediate shows only in the served one."""
    violations: list[PinViolation] = []
    pins = StaticPins(
        {"localhost": [pki.intermediate_pin, pki.backup_pin]}, on_violation=violations.append
    )
    context = pinned_context(pins, cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError):
        context.wrap_socket(tcp_to(servers.appended.port), server_hostname="localhost")
    (violation,) = violations
    intermediate = pki.intermediate.cert_pem.bytes().decode().strip()
    assert [pem.strip() for pem in violation.served_chain_pem][1] == intermediate
    assert intermediate not in [pem.strip() for pem in violation.validated_chain_pem]
    assert violation.verified_pins == (pki.rogue_leaf_pin, pki.rogue_root_pin)


# --- Rule 2: pinning is in addition to CA and hostname validation --------------------------------


def _no_hostname_check(context: ssl.SSLContext) -> None:
    context.check_hostname = False


def _cert_none(context: ssl.SSLContext) -> None:
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE


def _cert_optional(context: ssl.SSLContext) -> None:
    context.verify_mode = ssl.CERT_OPTIONAL


@pytest.mark.parametrize(
    "weaken", [_no_hostname_check, _cert_none, _cert_optional], ids=lambda f: f.__name__[1:]
)
@pytest.mark.parametrize("host_has_rule", [True, False], ids=["pinned-host", "unpinned-host"])
def test_weakened_context_refused_before_the_handshake(
    weaken: Callable[[ssl.SSLContext], None], host_has_rule: bool, pki: PKI, servers: Servers
) -> None:
    """The pins would match the legitimate server; the weakened context is refused all the same."""
    rules = {"localhost" if host_has_rule else "other.pinwarden.test": [pki.intermediate_pin]}
    context = pinned_context(StaticPins(rules), cafile=pki.ca_bundle)
    weaken(context)

    with pytest.raises(PinValidationError, match="pinning never replaces it"):
        context.wrap_socket(tcp_to(servers.legit.port), server_hostname="localhost")

    assert servers.legit.wait_closed()
    assert servers.legit.handshakes == 0
    assert servers.legit.received == b""


def test_unweakened_twin_connects(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    with context.wrap_socket(tcp_to(servers.legit.port), server_hostname="localhost") as tls:
        assert tls_get(tls, "localhost", servers.legit.port) == "ok:legit"


def test_requests_verify_false_is_refused(pki: PKI, servers: Servers) -> None:
    pins = _pins(pki, pki.intermediate_pin)
    with pinned_requests_session(pins, cafile=pki.ca_bundle) as session:
        session.trust_env = False
        with pytest.raises(PinValidationError, match="verify=False"):
            session.get(servers.rogue.url(), verify=False, timeout=5)
    assert servers.rogue.connections == []


@pytest.mark.parametrize("bundle_from", ["environment", "verify-argument"])
def test_requests_ca_bundle_does_not_widen_the_pinned_trust(
    bundle_from: str, pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests would load REQUESTS_CA_BUNDLE (or verify="path") into the shared pinned context.

    It is refused, naming the bundle, before any connection; the context's anchors stay as built.
    """
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.untrusted_root_file)
    verify: bool | str = pki.untrusted_root_file if bundle_from == "verify-argument" else True
    context = pinned_context(
        StaticPins({"other.pinwarden.test": [pki.intermediate_pin, pki.backup_pin]}),
        cafile=pki.ca_bundle,
    )
    anchors = context.cert_store_stats()["x509_ca"]
    with pinned_requests_session(context) as session:
        with pytest.raises(ValueError, match=r"untrusted-root\.pem.*cafile="):
            session.get(servers.untrusted.url(), verify=verify, timeout=5)
    assert context.cert_store_stats()["x509_ca"] == anchors == 2
    assert servers.untrusted.connections == []


def test_aiohttp_per_request_ssl_override_is_refused(pki: PKI, servers: Servers) -> None:
    """aiohttp lets one request swap the connector's context (ssl=False): that drops the pins."""
    import asyncio

    import aiohttp

    async def get(ssl_option: Any) -> str:
        connector = pinned_aiohttp_connector(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(servers.rogue.url(), ssl=ssl_option, timeout=5) as response:
                return await response.text()

    for option in (False, ssl.create_default_context(cafile=pki.ca_bundle)):
        with pytest.raises(OSError) as raised:
            asyncio.run(get(option))
        pin_error = find_pin_error(raised.value)
        assert pin_error is not None and "per-request" in str(pin_error)
    assert servers.rogue.connections == []


@pytest.mark.parametrize(
    "make",
    [
        lambda pins: pinned_httpx_client(pins, verify=False),
        lambda pins: pinned_pool_manager(pins, cert_reqs="CERT_NONE"),
    ],
    ids=["httpx-verify", "urllib3-cert_reqs"],
)
def test_helpers_refuse_validation_options(make: Callable[[StaticPins], Any], pki: PKI) -> None:
    with pytest.raises(TypeError, match="the pinned context decides validation"):
        make(_pins(pki, pki.intermediate_pin))


def test_urllib3_turning_hostname_checks_off_is_refused(pki: PKI, servers: Servers) -> None:
    """urllib3 switches ``check_hostname`` off on the shared context for ``assert_hostname``."""
    with pinned_pool_manager(
        _pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle, assert_hostname="localhost"
    ) as manager:
        with pytest.raises(urllib3.exceptions.SSLError) as raised:
            manager.request("GET", servers.legit.url(), retries=False, timeout=5)
    assert find_pin_error(raised.value) is not None
    assert servers.legit.received == b""


# --- Rule 3: one context carries enforcement to sockets and memory-BIO objects -------------------


def test_context_classes_are_the_pinned_ones_and_cannot_be_replaced(pki: PKI) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    assert isinstance(context, PinnedSSLContext)
    assert context.sslsocket_class is PinnedSSLSocket
    assert context.sslobject_class is PinnedSSLObject
    with pytest.raises(AttributeError):
        context.sslsocket_class = ssl.SSLSocket  # type: ignore[misc]
    with pytest.raises(AttributeError):
        context.sslobject_class = ssl.SSLObject  # type: ignore[misc]
    context.__dict__["sslobject_class"] = ssl.SSLObject
    bio = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    assert isinstance(bio, PinnedSSLObject)


def test_memory_bio_connection_refuses_rogue_chain(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    connection = BioConnection(context, servers.rogue.port, "localhost")
    try:
        with pytest.raises(PinValidationError):
            connection.run(connection.tls.do_handshake)
    finally:
        connection.close()
    assert_no_request_byte(servers.rogue)


def test_memory_bio_twin_accepts_pinned_chain(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    connection = BioConnection(context, servers.legit.port, "localhost")
    try:
        assert connection.get() == "ok:legit"
        check = connection.tls.pin_check  # type: ignore[attr-defined]
        assert (check.matched_pin, check.depth) == (pki.intermediate_pin, 1)
    finally:
        connection.close()


# --- Rule 4: no application byte before the check (implicit handshake) ---------------------------


def _lazy_socket(context: ssl.SSLContext, server: RecordingTLSServer) -> ssl.SSLSocket:
    return context.wrap_socket(
        tcp_to(server.port), server_hostname="localhost", do_handshake_on_connect=False
    )


@pytest.mark.parametrize(
    "first_use",
    [
        lambda tls: tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        lambda tls: tls.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        lambda tls: tls.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        lambda tls: tls.makefile("wb", buffering=0).write(b"GET / HTTP/1.1\r\n\r\n"),
        lambda tls: tls.recv(100),
        lambda tls: tls.read(100),
    ],
    ids=["sendall", "send", "write", "makefile", "recv", "read"],
)
def test_implicit_handshake_is_checked_before_data(
    first_use: Callable[[ssl.SSLSocket], object], pki: PKI, servers: Servers
) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    tls = _lazy_socket(context, servers.rogue)

    with pytest.raises(PinValidationError):
        first_use(tls)

    assert tls.fileno() == -1, "the refused socket was left open"
    assert_no_request_byte(servers.rogue)


def test_implicit_handshake_twin_sends_to_pinned_server(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    with _lazy_socket(context, servers.legit) as tls:
        assert tls_get(tls, "localhost", servers.legit.port) == "ok:legit"
        assert tls.pin_check.depth == 1  # type: ignore[attr-defined]


def test_memory_bio_write_before_handshake_is_checked(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    connection = BioConnection(context, servers.rogue.port, "localhost")
    try:
        with pytest.raises(PinValidationError):
            connection.run(lambda: connection.tls.write(b"GET / HTTP/1.1\r\n\r\n"))
        # Asking again does not let the data out either.
        with pytest.raises(PinValidationError):
            connection.run(lambda: connection.tls.write(b"GET / HTTP/1.1\r\n\r\n"))
    finally:
        connection.close()
    assert_no_request_byte(servers.rogue)


def test_memory_bio_write_twin_reaches_pinned_server(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    connection = BioConnection(context, servers.legit.port, "localhost")
    try:
        assert connection.get() == "ok:legit"  # write first: the handshake happens inside it
    finally:
        connection.close()


# --- Rule 5: a resumed session has no verified chain ---------------------------------------------


def _first_session(context: ssl.SSLContext, server: RecordingTLSServer) -> ssl.SSLSession:
    with context.wrap_socket(tcp_to(server.port), server_hostname="localhost") as tls:
        tls_get(tls, "localhost", server.port)  # the TLS 1.3 tickets arrive with the response
        assert tls.session is not None
        return tls.session


def test_the_server_does_resume_sessions(pki: PKI, servers: Servers) -> None:
    """Without pinning, the session of the tests below is resumed: the attack is real."""
    context = ssl.create_default_context(cafile=pki.ca_bundle)
    session = _first_session(context, servers.legit)
    with context.wrap_socket(
        tcp_to(servers.legit.port), server_hostname="localhost", session=session
    ) as tls:
        assert tls.session_reused


@pytest.mark.parametrize("spelling", ["keyword", "positional"])
def test_session_argument_is_not_resumed(spelling: str, pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    session = _first_session(context, servers.legit)
    sock = tcp_to(servers.legit.port)
    if spelling == "keyword":
        tls = context.wrap_socket(sock, server_hostname="localhost", session=session)
    else:
        tls = context.wrap_socket(sock, False, True, True, "localhost", session)
    with tls:
        assert not tls.session_reused
        assert tls.pin_check.matched_pin == pki.intermediate_pin  # type: ignore[attr-defined]


def test_memory_bio_session_argument_is_not_resumed(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    session = _first_session(context, servers.legit)
    connection = BioConnection(context, servers.legit.port, "localhost", session=session)
    try:
        assert connection.get() == "ok:legit"
        assert not connection.tls.session_reused
    finally:
        connection.close()


def test_session_set_on_the_socket_is_refused(pki: PKI, servers: Servers) -> None:
    """Setting ``tls.session`` before the handshake resumes it; the resumed handshake is refused."""
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    session = _first_session(context, servers.legit)
    tls = _lazy_socket(context, servers.legit)
    tls.session = session

    with pytest.raises(PinValidationError, match="resumed"):
        tls.do_handshake()

    assert tls.fileno() == -1
    assert servers.legit.received.count(b"GET /") == 1  # the first connection's request only


# --- Rule 6: rules are looked up by the normalised name TLS verified -----------------------------


def _connect(context: ssl.SSLContext, server: RecordingTLSServer, host: str) -> ssl.SSLSocket:
    return context.wrap_socket(tcp_to(server.port), server_hostname=host)


@pytest.mark.parametrize("rule_host", ["localhost", "LocalHost.", "LOCALHOST"])
@pytest.mark.parametrize("server_hostname", ["localhost", "LOCALHOST", "LocalHost"])
def test_odd_case_and_trailing_dot(
    rule_host: str, server_hostname: str, pki: PKI, servers: Servers
) -> None:
    context = pinned_context(StaticPins({rule_host: [pki.intermediate_pin]}), cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError):
        _connect(context, servers.rogue, server_hostname)
    with _connect(context, servers.legit, server_hostname) as tls:
        assert tls.pin_check.matched_pin == pki.intermediate_pin  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "rule_host",
    ["bücher.example", "BÜCHER.example", "xn--bcher-kva.example", "XN--BCHER-KVA.example."],
)
@pytest.mark.parametrize(
    "server_hostname", ["bücher.example", "Bücher.Example", "xn--bcher-kva.example"]
)
def test_international_names(
    rule_host: str, server_hostname: str, pki: PKI, servers: Servers
) -> None:
    """The leaves carry the A-label; rules and names in either form meet on it."""
    context = pinned_context(StaticPins({rule_host: [pki.intermediate_pin]}), cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError) as raised:
        _connect(context, servers.rogue, server_hostname)
    assert raised.value.host == "xn--bcher-kva.example"
    with _connect(context, servers.legit, server_hostname) as tls:
        assert tls.pin_check.host == "xn--bcher-kva.example"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pattern", "host", "pinned"),
    [
        ("*.pinwarden.test", "api.pinwarden.test", True),
        ("*.pinwarden.test", "deep.api.pinwarden.test", False),  # one label only
        ("*.pinwarden.test", "pinwarden.test", False),
        ("**.pinwarden.test", "api.pinwarden.test", True),
        ("**.pinwarden.test", "deep.api.pinwarden.test", True),  # any depth
        ("**.pinwarden.test", "pinwarden.test", True),  # and the base itself
        ("*.api.pinwarden.test", "deep.api.pinwarden.test", True),
        ("*.api.pinwarden.test", "api.pinwarden.test", False),
    ],
)
def test_wildcard_patterns(
    pattern: str, host: str, pinned: bool, pki: PKI, servers: Servers
) -> None:
    """OkHttp semantics; a host outside the pattern is unpinned, so the trusted rogue CA passes."""
    context = pinned_context(StaticPins({pattern: [pki.intermediate_pin]}), cafile=pki.ca_bundle)
    if pinned:
        with pytest.raises(PinValidationError):
            _connect(context, servers.rogue, host)
    else:
        with _connect(context, servers.rogue, host) as tls:
            assert tls.pin_check.rule is None  # type: ignore[attr-defined]
    with _connect(context, servers.legit, host) as tls:
        assert (tls.pin_check.rule is not None) is pinned  # type: ignore[attr-defined]


_DOTTED_HOST = "api.pinwarden.test."
# Case and Unicode never reach pinwarden from a URL: every stack lower-cases the URL host, and
# Python's ssl turns a U-label into its A-label. A trailing dot does, from these five stacks;
# requests and urllib3 strip it before the handshake (urllib3 passes ``host.rstrip(".")`` as
# server_hostname), so from them pinwarden sees the normal form and they are not tried here.
_STACKS_KEEPING_THE_DOT = tuple(s for s in STACKS if s.name not in ("requests", "urllib3"))


@dataclass
class _DottedServers:
    """Servers whose leaves are valid for ``api.pinwarden.test.`` itself (OpenSSL matches a
    trailing-dot server_hostname only against a SAN spelt with the dot), and the SNI they saw."""

    legit: RecordingTLSServer
    rogue: RecordingTLSServer
    server_names: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="module")
def _dotted_servers_running(
    pki: PKI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_DottedServers]:
    directory = tmp_path_factory.mktemp("dotted")
    started: dict[str, RecordingTLSServer] = {}
    server_names: list[str | None] = []
    for name, issuer in (("legit", pki.intermediate), ("rogue", pki.rogue_root)):
        chain = directory / f"{name}.pem"
        chain.write_bytes(issuer.issue_cert(_DOTTED_HOST).private_key_and_cert_chain_pem.bytes())
        server = RecordingTLSServer(f"dotted-{name}", str(chain))
        server.context.sni_callback = lambda _tls, sni, _context: server_names.append(sni)
        started[name] = server
    with running(*started.values()):
        yield _DottedServers(started["legit"], started["rogue"], server_names)


@pytest.fixture
def dotted(_dotted_servers_running: _DottedServers) -> _DottedServers:
    _dotted_servers_running.legit.reset()
    _dotted_servers_running.rogue.reset()
    _dotted_servers_running.server_names.clear()
    return _dotted_servers_running


@pytest.mark.parametrize("stack", _STACKS_KEEPING_THE_DOT, ids=str)
def test_stacks_hand_over_a_trailing_dot_host_that_still_meets_its_rule(
    stack: Stack, pki: PKI, servers: Servers, dotted: _DottedServers
) -> None:
    """``https://api.pinwarden.test.:port/`` (tunnelled to 127.0.0.1 by the proxy): the stack
    hands TLS the name with its trailing dot, as the SNI shows, and the rule written
    ``api.pinwarden.test`` still applies, because the name is normalised before the lookup."""
    pins = StaticPins({"api.pinwarden.test": [pki.intermediate_pin, pki.backup_pin]})

    proxy = servers.proxy.url

    error = fetch_error(stack, pins, pki.ca_bundle, dotted.rogue.url(_DOTTED_HOST), proxy)

    pin_error = find_pin_error(error)
    assert pin_error is not None, repr(error)
    assert pin_error.host == "api.pinwarden.test"
    assert_no_request_byte(dotted.rogue)
    assert stack.fetch(pins, pki.ca_bundle, dotted.legit.url(_DOTTED_HOST), proxy) == (
        "ok:dotted-legit"
    )
    assert dotted.server_names == [_DOTTED_HOST, _DOTTED_HOST]  # what pinwarden was handed


# --- Rule 7: fail closed -------------------------------------------------------------------------


def test_rule_without_pins_fails_closed(pki: PKI, servers: Servers) -> None:
    """A source may hand over a rule built without ``PinRule.create``: no pins, no connection."""
    empty = PinRule(HostPattern.parse("localhost"), ())
    context = pinned_context(FixedRule(empty), cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError, match="no pins"):
        _connect(context, servers.legit, "localhost")
    assert_no_request_byte(servers.legit)


@pytest.mark.parametrize("mode", ["enforce", "report-only"])
def test_empty_pin_list_cannot_be_built(mode: str) -> None:
    with pytest.raises(InvalidPinError, match="needs pins"):
        PinRule.create("localhost", [], mode)
    with pytest.raises(InvalidPinError, match="needs pins"):
        StaticPins({"localhost": []}, mode=mode)


def test_disabled_rule_needs_no_pins() -> None:
    assert PinRule.create("localhost", [], "disabled").mode is Mode.DISABLED


@pytest.mark.parametrize(
    "pin",
    [
        "sha1/" + "A" * 27 + "=",  # another hash algorithm
        "sha256/" + "A" * 40,  # not 32 bytes
        "sha256/not base64!",
    ],
)
def test_pins_that_are_not_sha256_digests_are_refused(pin: str) -> None:
    with pytest.raises(InvalidPinError):
        StaticPins({"localhost": [pin]})


def _unknown_key_algorithm(pki: PKI) -> bytes:
    """The legitimate leaf with its key algorithm OID changed to one nobody knows."""
    der = ssl.PEM_cert_to_DER_cert(pki.legit_leaf.cert_chain_pems[0].bytes().decode())
    ec_public_key = bytes.fromhex("06072A8648CE3D0201")  # 1.2.840.10045.2.1
    assert der.count(ec_public_key) == 1
    return der.replace(ec_public_key, bytes.fromhex("06072A8648CE3D027F"))


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        (lambda pki: [], "no verified chain"),
        (lambda pki: [b"not a certificate"], "cannot be read"),
        (lambda pki: [_unknown_key_algorithm(pki)], "cannot be read"),
    ],
    ids=["no-chain", "unparsable-certificate", "unknown-key-algorithm"],
)
def test_unreadable_verified_chain_fails_closed(
    chain: Callable[[PKI], list[bytes]],
    message: str,
    pki: PKI,
    servers: Servers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real server cannot make OpenSSL verify such a chain, so the chain reader is replaced."""
    monkeypatch.setattr(_enforce, "verified_chain_der", lambda tls: chain(pki))
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    tls = _lazy_socket(context, servers.legit)
    with pytest.raises(PinValidationError, match=message):
        tls.do_handshake()
    assert tls.fileno() == -1
    assert_no_request_byte(servers.legit)


@pytest.mark.parametrize("fails_in", ["generation", "rule_for"])
def test_failing_pin_source_fails_closed(fails_in: str, pki: PKI, servers: Servers) -> None:
    rule = PinRule.create("localhost", [pki.intermediate_pin])
    source = BrokenSource(rule)
    context = pinned_context(source, cafile=pki.ca_bundle)
    source.fails_in = fails_in
    tls = _lazy_socket(context, servers.legit)
    with pytest.raises(PinValidationError, match="pin source"):
        tls.do_handshake()
    assert tls.fileno() == -1
    assert_no_request_byte(servers.legit)


def test_failing_report_does_not_turn_a_refusal_into_another_error(
    pki: PKI, servers: Servers
) -> None:
    rule = PinRule.create("localhost", [pki.backup_pin])
    source = BrokenSource(rule)
    context = pinned_context(source, cafile=pki.ca_bundle)
    source.fails_in = "report"
    with pytest.raises(PinValidationError, match="no key of the verified chain is pinned"):
        _connect(context, servers.legit, "localhost")
    assert_no_request_byte(servers.legit)


# --- Rule 8: pooled connections made under old pins are not reused -------------------------------


@contextmanager
def _requests_client(source: ChangingPins, pki: PKI) -> Iterator[Callable[[str], str]]:
    with pinned_requests_session(source, cafile=pki.ca_bundle) as session:
        session.trust_env = False
        yield lambda url: session.get(url, timeout=5).text


@contextmanager
def _urllib3_client(source: ChangingPins, pki: PKI) -> Iterator[Callable[[str], str]]:
    with pinned_pool_manager(source, cafile=pki.ca_bundle) as manager:
        yield lambda url: manager.request("GET", url, timeout=5).data.decode()


@contextmanager
def _httpx_client(source: ChangingPins, pki: PKI) -> Iterator[Callable[[str], str]]:
    with pinned_httpx_client(source, cafile=pki.ca_bundle, trust_env=False, timeout=5) as client:
        yield lambda url: client.get(url).text


POOLED_CLIENTS = {"requests": _requests_client, "urllib3": _urllib3_client, "httpx": _httpx_client}


@pytest.mark.parametrize("client", POOLED_CLIENTS.values(), ids=POOLED_CLIENTS.keys())
def test_pooled_connection_is_checked_again_when_pins_change(
    client: Callable[..., Any], pki: PKI, servers: Servers
) -> None:
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    with client(source, pki) as get:
        assert get(servers.legit.url()) == "ok:legit"
        assert len(servers.legit.connections) == 1
        sent_before = servers.legit.received

        source.replace({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
        with pytest.raises(Exception) as raised:  # each stack wraps the error its own way
            get(servers.legit.url())

    assert find_pin_error(raised.value) is not None, repr(raised.value)
    assert servers.legit.received == sent_before, "the request went out on the old connection"


@pytest.mark.parametrize("client", POOLED_CLIENTS.values(), ids=POOLED_CLIENTS.keys())
def test_pooled_connection_twin_is_kept_when_new_pins_still_match(
    client: Callable[..., Any], pki: PKI, servers: Servers
) -> None:
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    with client(source, pki) as get:
        assert get(servers.legit.url()) == "ok:legit"
        source.replace({"localhost": [pki.leaf_pin, pki.backup_pin]})
        assert get(servers.legit.url()) == "ok:legit"
    assert len(servers.legit.connections) == 1, "the pooled connection was not reused"
    assert servers.legit.received.count(b"GET /") == 2


def test_pooled_memory_bio_connection_is_checked_again(pki: PKI, servers: Servers) -> None:
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    connection = BioConnection(
        pinned_context(source, cafile=pki.ca_bundle), servers.legit.port, "localhost"
    )
    try:
        assert connection.get() == "ok:legit"
        sent_before = servers.legit.received
        source.replace({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
        with pytest.raises(PinValidationError):
            connection.get()
    finally:
        connection.close()
    assert servers.legit.received == sent_before


def test_remembered_passes_are_keyed_by_chain_host_and_generation(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A context remembers passed checks (for speed); nothing else may pass on their strength."""
    decided: list[str] = []
    real_decide = _enforce._decide

    def counting_decide(tls: Any, source: Any, raw_host: str, generation: int) -> Any:
        decided.append(raw_host)
        return real_decide(tls, source, raw_host, generation)

    monkeypatch.setattr(_enforce, "_decide", counting_decide)
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    context = pinned_context(source, cafile=pki.ca_bundle)

    for _ in range(2):
        _connect(context, servers.legit, "localhost").close()
    assert decided == ["localhost"], "the second connection was checked again in full"
    for server in (servers.rogue, servers.appended):  # another chain, same host and rules
        with pytest.raises(PinValidationError):
            _connect(context, server, "localhost")
    _connect(context, servers.legit, "LOCALHOST").close()  # another spelling: checked in full
    source.replace({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
    with pytest.raises(PinValidationError):  # new rules: the earlier pass is not reused
        _connect(context, servers.legit, "localhost")
    assert decided == ["localhost", "localhost", "localhost", "LOCALHOST", "localhost"]
    # Another source whose generation is the one the first pass was remembered under.
    context.pin_source = ChangingPins({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
    with pytest.raises(PinValidationError):
        _connect(context, servers.legit, "localhost")


# --- Rule 9: constant-time comparison; the socket is closed on any failure -----------------------


def test_every_pin_is_compared_in_constant_time(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each (chain key, pin) pair goes through ``hmac.compare_digest``, with no early exit."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording_compare(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(_enforce.hmac, "compare_digest", recording_compare)
    # The leaf matches at depth 0; the chain has 3 keys and the rule 3 pins.
    pins = StaticPins({"localhost": [pki.leaf_pin, pki.backup_pin, pki.rogue_root_pin]})
    context = pinned_context(pins, cafile=pki.ca_bundle)
    with _connect(context, servers.legit, "localhost") as tls:
        assert tls.pin_check.depth == 0  # type: ignore[attr-defined]
    assert len(compared) == 9
    assert len(set(compared)) == 9


@pytest.mark.parametrize(
    ("server_name", "error"),
    [
        ("rogue", PinValidationError),
        ("untrusted", ssl.SSLCertVerificationError),
        ("wrong_host", ssl.SSLCertVerificationError),
    ],
)
def test_socket_closed_on_any_handshake_failure(
    server_name: str, error: type[Exception], pki: PKI, servers: Servers
) -> None:
    server: RecordingTLSServer = getattr(servers, server_name)
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    tls = _lazy_socket(context, server)
    with pytest.raises(error):
        tls.do_handshake()
    assert tls.fileno() == -1
    assert_no_request_byte(server)


def test_socket_closed_when_a_pooled_connection_is_refused(pki: PKI, servers: Servers) -> None:
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    tls = _connect(pinned_context(source, cafile=pki.ca_bundle), servers.legit, "localhost")
    assert tls_get(tls, "localhost", servers.legit.port) == "ok:legit"
    source.replace({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
    with pytest.raises(PinValidationError):
        tls_get(tls, "localhost", servers.legit.port)
    assert tls.fileno() == -1
    assert servers.legit.wait_closed()


def test_refused_connection_stays_refused(pki: PKI, servers: Servers) -> None:
    """Catching the error and writing again does not get a byte through."""
    context = pinned_context(_pins(pki, pki.intermediate_pin), cafile=pki.ca_bundle)
    tls = _lazy_socket(context, servers.rogue)
    with pytest.raises(PinValidationError):
        tls.do_handshake()
    with pytest.raises((OSError, ValueError)):
        tls.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert_no_request_byte(servers.rogue)


def test_socket_closed_when_the_re_check_of_a_pooled_connection_fails_unexpectedly(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 9 holds for any failure of the re-check, not only a refusal: here the chain cannot
    be described for the error message."""
    source = ChangingPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})
    tls = _connect(pinned_context(source, cafile=pki.ca_bundle), servers.legit, "localhost")
    assert tls_get(tls, "localhost", servers.legit.port) == "ok:legit"

    def unreadable(chain: object) -> object:
        raise ValueError("a certificate the message cannot describe")

    monkeypatch.setattr("pinwarden.client._enforce.describe_chain", unreadable)
    source.replace({"localhost": [pki.rogue_root_pin, pki.backup_pin]})
    with pytest.raises(ValueError, match="cannot describe"):
        tls_get(tls, "localhost", servers.legit.port)
    assert tls.fileno() == -1
    assert servers.legit.wait_closed()
