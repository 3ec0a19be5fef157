"""Rule modes and hosts without rules: report-only, disabled, unpinned; the most specific wins."""

from __future__ import annotations

import logging
import ssl

import pytest

from pinwarden.client import Mode, PinValidationError, PinViolation, StaticPins, pinned_context
from tests.client._stack_table import (
    STACKS,
    Stack,
    fetch_error,
    find_cert_error,
    find_pin_error,
    tcp_to,
)
from tests.client._tls_harness import Servers
from tests.support.pki import PKI
from tests.support.tls_servers import assert_no_request_byte

pytestmark = pytest.mark.network


def _pem(certificate_pem: bytes) -> str:
    return certificate_pem.decode().strip()


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_report_only_rule_lets_the_connection_through_and_reports(
    stack: Stack, pki: PKI, servers: Servers
) -> None:
    violations: list[PinViolation] = []
    pins = StaticPins(
        {"localhost": {"pins": [pki.intermediate_pin, pki.backup_pin], "mode": "report-only"}},
        on_violation=violations.append,
    )

    assert stack.fetch(pins, pki.ca_bundle, servers.rogue.url(), None) == "ok:rogue"

    assert len(violations) == 1
    violation = violations[0]
    assert violation.hostname == "localhost"
    assert violation.noted_hostname == "localhost"
    # A memory BIO has no socket to ask for the peer's port.
    assert violation.port == (None if stack.memory_bio else servers.rogue.port)
    assert violation.enforced is False
    assert violation.rule.mode is Mode.REPORT_ONLY
    assert violation.rule.pins == (pki.intermediate_pin, pki.backup_pin)
    assert violation.verified_pins == (pki.rogue_leaf_pin, pki.rogue_root_pin)
    assert [pem.strip() for pem in violation.validated_chain_pem] == [
        _pem(pki.rogue_leaf.cert_chain_pems[0].bytes()),
        _pem(pki.rogue_root.cert_pem.bytes()),
    ]


def test_report_only_reports_every_connection(pki: PKI, servers: Servers) -> None:
    violations: list[PinViolation] = []
    pins = StaticPins(
        {"localhost": [pki.intermediate_pin]}, mode="report-only", on_violation=violations.append
    )
    context = pinned_context(pins, cafile=pki.ca_bundle)
    for _ in range(3):
        context.wrap_socket(tcp_to(servers.rogue.port), server_hostname="localhost").close()
    assert len(violations) == 3


def test_report_only_twin_reports_nothing_when_the_pin_matches(pki: PKI, servers: Servers) -> None:
    violations: list[PinViolation] = []
    pins = StaticPins(
        {"localhost": [pki.intermediate_pin]}, mode="report-only", on_violation=violations.append
    )
    context = pinned_context(pins, cafile=pki.ca_bundle)
    with context.wrap_socket(tcp_to(servers.legit.port), server_hostname="localhost") as tls:
        assert tls.pin_check.matched_pin == pki.intermediate_pin  # type: ignore[attr-defined]
    assert violations == []


def test_enforced_rule_reports_and_refuses(pki: PKI, servers: Servers) -> None:
    violations: list[PinViolation] = []
    pins = StaticPins({"localhost": [pki.intermediate_pin]}, on_violation=violations.append)
    context = pinned_context(pins, cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError):
        context.wrap_socket(tcp_to(servers.rogue.port), server_hostname="localhost")
    assert [(v.enforced, v.verified_pins) for v in violations] == [
        (True, (pki.rogue_leaf_pin, pki.rogue_root_pin))
    ]
    assert_no_request_byte(servers.rogue)


def test_failing_violation_callback_is_logged_and_ignored(
    pki: PKI, servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    def callback(violation: PinViolation) -> None:
        raise RuntimeError("report sender down")

    pins = StaticPins(
        {"localhost": [pki.intermediate_pin]}, mode="report-only", on_violation=callback
    )
    context = pinned_context(pins, cafile=pki.ca_bundle)
    with caplog.at_level(logging.ERROR, logger="pinwarden.client"):
        with context.wrap_socket(tcp_to(servers.rogue.port), server_hostname="localhost") as tls:
            assert tls.pin_check.matched_pin is None  # type: ignore[attr-defined]
    assert "on_violation callback raised" in caplog.text


UNPINNED_SOURCES = {
    "no-rule": lambda pki: StaticPins({"other.pinwarden.test": [pki.intermediate_pin]}),
    "disabled-rule": lambda pki: StaticPins({"localhost": {"pins": [], "mode": "disabled"}}),
}


@pytest.mark.parametrize("stack", STACKS, ids=str)
@pytest.mark.parametrize("make_source", UNPINNED_SOURCES.values(), ids=UNPINNED_SOURCES.keys())
def test_unpinned_host_gets_normal_tls_only(
    stack: Stack, make_source: object, pki: PKI, servers: Servers
) -> None:
    source = make_source(pki)  # type: ignore[operator]
    # The rogue CA is trusted and no pin applies: accepted.
    assert stack.fetch(source, pki.ca_bundle, servers.rogue.url(), None) == "ok:rogue"
    # Twin: a CA the client does not trust is refused by normal validation.
    error = fetch_error(stack, source, pki.ca_bundle, servers.untrusted.url())
    assert find_cert_error(error) is not None, repr(error)
    assert find_pin_error(error) is None
    assert_no_request_byte(servers.untrusted)


@pytest.mark.parametrize(
    ("rules", "host", "refused"),
    [
        (
            {"**.pinwarden.test": "enforce", "api.pinwarden.test": "disabled"},
            "api.pinwarden.test",
            False,
        ),
        (
            {"**.pinwarden.test": "enforce", "api.pinwarden.test": "disabled"},
            "deep.api.pinwarden.test",
            True,
        ),
        (
            {"**.pinwarden.test": "disabled", "api.pinwarden.test": "enforce"},
            "api.pinwarden.test",
            True,
        ),
        (
            {"**.pinwarden.test": "disabled", "*.pinwarden.test": "enforce"},
            "api.pinwarden.test",
            True,
        ),
        ({"**.pinwarden.test": "disabled", "*.pinwarden.test": "enforce"}, "pinwarden.test", False),
    ],
)
def test_most_specific_rule_decides(
    rules: dict[str, str], host: str, refused: bool, pki: PKI, servers: Servers
) -> None:
    pins = StaticPins(
        {pattern: {"pins": [pki.intermediate_pin], "mode": mode} for pattern, mode in rules.items()}
    )
    context = pinned_context(pins, cafile=pki.ca_bundle)
    if refused:
        with pytest.raises(PinValidationError):
            context.wrap_socket(tcp_to(servers.rogue.port), server_hostname=host)
    else:
        with context.wrap_socket(tcp_to(servers.rogue.port), server_hostname=host) as tls:
            assert tls.pin_check.rule.mode is Mode.DISABLED  # type: ignore[attr-defined]


def test_unpinned_host_keeps_hostname_validation(pki: PKI, servers: Servers) -> None:
    context = pinned_context(
        StaticPins({"other.pinwarden.test": [pki.intermediate_pin]}), cafile=pki.ca_bundle
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch") as raised:
        context.wrap_socket(tcp_to(servers.wrong_host.port), server_hostname="localhost")
    assert not isinstance(raised.value, PinValidationError)
