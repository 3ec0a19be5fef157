"""Every HTTP stack, direct and through an HTTP CONNECT proxy: pins accepted, rogue chains refused.

The rogue CA is trusted by the client, so only the pins stand between it and the request: each
refusal test also shows that not one request byte reached the rogue server. Each accept test has its
negative twins: a wrong pin, a CA the client does not trust, a certificate for another host.
"""

from __future__ import annotations

import pytest

from pinwarden.client import StaticPins
from tests.client._stack_table import STACKS, Stack, fetch_error, find_cert_error, find_pin_error
from tests.client._tls_harness import Servers
from tests.support.pki import PKI
from tests.support.tls_servers import RecordingTLSServer, assert_no_request_byte

pytestmark = [
    pytest.mark.network,
    pytest.mark.parametrize("stack", STACKS, ids=str),
    pytest.mark.parametrize("via_proxy", [False, True], ids=["direct", "proxy"]),
]


def _proxy(servers: Servers, via_proxy: bool) -> str | None:
    return servers.proxy.url if via_proxy else None


def _assert_tunnelled(servers: Servers, server: RecordingTLSServer, via_proxy: bool) -> None:
    """The request really went through the proxy when the test says so (and not otherwise)."""
    expected = [f"localhost:{server.port}"] if via_proxy else []
    assert servers.proxy.targets == expected


@pytest.mark.parametrize("pinned", ["leaf", "intermediate", "legit_root"])
def test_pinned_chain_accepted(
    stack: Stack, via_proxy: bool, pinned: str, pki: PKI, servers: Servers
) -> None:
    pin = {
        "leaf": pki.leaf_pin,
        "intermediate": pki.intermediate_pin,
        "legit_root": pki.legit_root_pin,
    }[pinned]
    pins = StaticPins({"localhost": [pin, pki.backup_pin]})

    body = stack.fetch(pins, pki.ca_bundle, servers.legit.url(), _proxy(servers, via_proxy))

    assert body == "ok:legit"
    assert servers.legit.received.startswith(b"GET / HTTP/1.1\r\n")
    _assert_tunnelled(servers, servers.legit, via_proxy)


def test_rogue_chain_refused_before_a_request_byte(
    stack: Stack, via_proxy: bool, pki: PKI, servers: Servers
) -> None:
    pins = StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})

    error = fetch_error(stack, pins, pki.ca_bundle, servers.rogue.url(), _proxy(servers, via_proxy))

    pin_error = find_pin_error(error)
    assert pin_error is not None, f"{stack} raised {error!r}, not a PinValidationError"
    assert pin_error.host == "localhost"
    assert pin_error.expected == (pki.intermediate_pin, pki.backup_pin)
    assert pin_error.seen == (pki.rogue_leaf_pin, pki.rogue_root_pin)
    assert_no_request_byte(servers.rogue)
    _assert_tunnelled(servers, servers.rogue, via_proxy)


def test_wrong_pin_refused(stack: Stack, via_proxy: bool, pki: PKI, servers: Servers) -> None:
    pins = StaticPins({"localhost": [pki.rogue_root_pin, pki.backup_pin]})

    error = fetch_error(stack, pins, pki.ca_bundle, servers.legit.url(), _proxy(servers, via_proxy))

    assert find_pin_error(error) is not None, repr(error)
    assert_no_request_byte(servers.legit)


def test_untrusted_ca_is_refused_by_normal_validation(
    stack: Stack, via_proxy: bool, pki: PKI, servers: Servers
) -> None:
    """A CA the client does not trust fails as it always did, even though the host is pinned."""
    pins = StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})

    error = fetch_error(
        stack, pins, pki.ca_bundle, servers.untrusted.url(), _proxy(servers, via_proxy)
    )

    cert_error = find_cert_error(error)
    assert cert_error is not None, repr(error)
    assert find_pin_error(error) is None
    assert "unable to get local issuer certificate" in str(cert_error)
    assert_no_request_byte(servers.untrusted)


def test_certificate_for_another_host_is_refused_by_normal_validation(
    stack: Stack, via_proxy: bool, pki: PKI, servers: Servers
) -> None:
    """The pinned intermediate issued this certificate, but not for this host: still refused."""
    pins = StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})

    error = fetch_error(
        stack, pins, pki.ca_bundle, servers.wrong_host.url(), _proxy(servers, via_proxy)
    )

    cert_error = find_cert_error(error)
    assert cert_error is not None, repr(error)
    assert find_pin_error(error) is None
    assert "Hostname mismatch" in str(cert_error)
    assert_no_request_byte(servers.wrong_host)
