"""Errors a user can act on, and the traps that used to be silent.

``pin_error`` finds the refusal inside every stack's wrapper; the refusal names the host, the
verified chain, the pins expected and where they came from, and the next step. A hex certificate
fingerprint given as a pin, a single pin, a CA bundle named outside ``cafile=`` and a certificate
with only a common name each get a clear answer.
"""

from __future__ import annotations

import datetime
import pickle
import ssl
import sys
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pinwarden.client import (
    ChainCertificate,
    Mode,
    PinRule,
    PinValidationError,
    SinglePinWarning,
    StaticPins,
    backup_pin_advice,
    pin_error,
    pinned_context,
    pinned_requests_session,
)
from tests.client._pin_sources import FixedRule
from tests.client._stack_table import STACKS, Stack, fetch_error, find_pin_error, tcp_to, tls_get
from tests.client._tls_harness import Servers
from tests.support.pki import PKI, issue_leaf
from tests.support.tls_servers import RecordingTLSServer, assert_no_request_byte, running

pytestmark = pytest.mark.network


def _pins(pki: PKI) -> StaticPins:
    return StaticPins({"localhost": [pki.intermediate_pin, pki.backup_pin]})


# --- pin_error: the refusal inside each stack's own error ---------------------------------------


@pytest.mark.parametrize("via_proxy", [False, True], ids=["direct", "proxy"])
@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_pin_error_finds_the_refusal_in_every_stack(
    stack: Stack, via_proxy: bool, pki: PKI, servers: Servers
) -> None:
    proxy = servers.proxy.url if via_proxy else None
    error = fetch_error(stack, _pins(pki), pki.ca_bundle, servers.rogue.url(), proxy)

    found = pin_error(error)

    assert found is not None, f"{stack}: nothing found in {error!r}"
    assert found is find_pin_error(error)
    assert (found.host, found.expected) == ("localhost", (pki.intermediate_pin, pki.backup_pin))
    assert_no_request_byte(servers.rogue)


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_pin_error_twin_finds_nothing_in_a_plain_certificate_failure(
    stack: Stack, pki: PKI, servers: Servers
) -> None:
    """A CA the client does not trust is a normal TLS failure, not a pin refusal."""
    error = fetch_error(stack, _pins(pki), pki.ca_bundle, servers.untrusted.url())
    assert pin_error(error) is None, repr(error)


def test_pin_error_finds_the_refusal_in_urllib(pki: PKI, servers: Servers) -> None:
    context = pinned_context(_pins(pki), cafile=pki.ca_bundle)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with pytest.raises(urllib.error.URLError) as raised:
        opener.open(servers.rogue.url(), timeout=5)
    found = pin_error(raised.value)
    assert found is not None and found.host == "localhost"
    assert opener.open(servers.legit.url(), timeout=5).read() == b"ok:legit"


def _refusal() -> PinValidationError:
    return PinValidationError("h.example", "no key of the verified chain is pinned")


def test_pin_error_follows_causes_contexts_arguments_and_attributes() -> None:
    refusal = _refusal()
    by_reason = OSError("wrapped")
    by_reason.reason = refusal  # type: ignore[attr-defined]
    cases: list[BaseException] = [refusal, ValueError(refusal), by_reason]
    caused = RuntimeError("outer")
    caused.__cause__ = refusal
    in_context = RuntimeError("during handling")
    in_context.__context__ = ValueError("middle", refusal)
    cases += [caused, in_context]
    if sys.version_info >= (3, 11):
        cases.append(ExceptionGroup("many", [ValueError("x"), refusal]))  # noqa: F821
    for case in cases:
        assert pin_error(case) is refusal, repr(case)


def test_pin_error_returns_none_for_errors_without_a_refusal() -> None:
    plain = ssl.SSLCertVerificationError("certificate verify failed")
    for error in (ValueError("x"), plain, OSError(1, "no"), KeyboardInterrupt(), ValueError(None)):
        assert pin_error(error) is None


def test_pin_error_ends_on_cycles_and_deep_nesting() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__context__ = second, first
    assert pin_error(first) is None

    deep: BaseException = _refusal()
    for level in range(10_000):
        deep = ValueError(f"level {level}", deep)
    assert pin_error(deep) is None  # past the depth bound: no RecursionError, no hang

    shallow: BaseException = _refusal()
    for level in range(5):
        shallow = ValueError(f"level {level}", shallow)
    assert isinstance(pin_error(shallow), PinValidationError)


def test_pin_error_survives_hostile_attributes() -> None:
    class Hostile(Exception):
        @property
        def reason(self) -> BaseException:
            raise RuntimeError("property failed")

        @property
        def exceptions(self) -> object:
            return "not a list of exceptions"

    hostile = Hostile("\x00\ud800", 10**100, b"\xff")
    assert pin_error(hostile) is None
    hostile.__cause__ = _refusal()
    assert pin_error(hostile) is hostile.__cause__


# --- The message: OkHttp's "Certificate pinning failure!" -----------------------------------------


def test_refusal_names_the_host_the_chain_the_pins_their_origin_and_the_next_step(
    pki: PKI, servers: Servers
) -> None:
    context = pinned_context(_pins(pki), cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError) as raised:
        context.wrap_socket(tcp_to(servers.rogue.port), server_hostname="localhost")
    refusal = raised.value
    message = str(refusal)

    assert message.startswith("certificate pinning failed for localhost: no key of the verified")
    leaf, root = refusal.chain
    assert (leaf.role, root.role) == ("leaf", "root")
    assert (leaf.pin, root.pin) == (pki.rogue_leaf_pin, pki.rogue_root_pin)
    assert "rogue root" in leaf.issuer and leaf.issuer == root.subject == root.issuer
    for certificate in refusal.chain:
        assert str(certificate) in message
    assert "pins expected by rule localhost (static pins):" in message
    assert f"    {pki.intermediate_pin}\n    {pki.backup_pin}\n" in message
    assert refusal.origin == "static pins"
    assert refusal.seen == (pki.rogue_leaf_pin, pki.rogue_root_pin)
    assert refusal.next_step is not None
    assert "pinwarden pin localhost" in refusal.next_step
    assert message.endswith(f"next step: {refusal.next_step}")

    # A refusal crosses process boundaries (a process pool, a multiprocessing queue) whole.
    copy = pickle.loads(pickle.dumps(refusal))  # noqa: S301 (our own bytes)
    assert type(copy) is PinValidationError
    assert str(copy) == message
    assert (copy.host, copy.chain, copy.expected, copy.origin) == (
        refusal.host, refusal.chain, refusal.expected, refusal.origin
    )


def test_refusal_of_a_three_certificate_chain_names_the_intermediate(
    pki: PKI, servers: Servers
) -> None:
    """The legitimate chain (leaf, intermediate, root) refused by a rule that pins another key."""
    context = pinned_context(
        StaticPins({"localhost": [pki.rogue_root_pin, pki.backup_pin]}), cafile=pki.ca_bundle
    )
    with pytest.raises(PinValidationError) as raised:
        context.wrap_socket(tcp_to(servers.legit.port), server_hostname="localhost")
    chain = raised.value.chain
    assert [certificate.role for certificate in chain] == ["leaf", "intermediate", "root"]
    assert [c.pin for c in chain] == [pki.leaf_pin, pki.intermediate_pin, pki.legit_root_pin]


def test_refusal_under_a_signed_rule_says_which_pin_set_and_to_publish(
    pki: PKI, servers: Servers
) -> None:
    origin = "pin set v7 of channel com.example.app/prod"
    rule = PinRule.create("localhost", [pki.intermediate_pin, pki.backup_pin], origin=origin)
    context = pinned_context(FixedRule(rule), cafile=pki.ca_bundle)
    with pytest.raises(PinValidationError) as raised:
        context.wrap_socket(tcp_to(servers.rogue.port), server_hostname="localhost")
    assert raised.value.origin == origin
    assert f"pins expected by rule localhost ({origin}):" in str(raised.value)
    assert raised.value.next_step is not None
    assert "publish a pin set" in raised.value.next_step


def test_chain_certificate_is_plain_data() -> None:
    certificate = ChainCertificate("leaf", "CN=a", "CN=b", "sha256/x")
    assert str(certificate).startswith("leaf          sha256/x  subject: CN=a; issuer: CN=b")


# --- One pin: a warning, and advice the CLI can print --------------------------------------------


def test_a_single_enforced_pin_warns(pki: PKI) -> None:
    with pytest.warns(SinglePinWarning, match=r"rule localhost \(static pins\) enforces a single"):
        StaticPins({"localhost": [pki.intermediate_pin]})


@pytest.mark.parametrize(
    "rules",
    [
        {"localhost": ["PIN", "BACKUP"]},
        {"localhost": {"pins": ["PIN"], "mode": "report-only"}},
        {"localhost": {"pins": [], "mode": "disabled"}},
    ],
    ids=["two-pins", "report-only", "disabled"],
)
def test_single_pin_warning_twins_stay_quiet(rules: dict[str, object], pki: PKI) -> None:
    real = {"PIN": pki.intermediate_pin, "BACKUP": pki.backup_pin}

    def resolve(spec: object) -> object:
        if isinstance(spec, list):
            return [real[pin] for pin in spec]
        assert isinstance(spec, dict)
        return {**spec, "pins": [real[pin] for pin in spec["pins"]]}

    with warnings.catch_warnings():
        warnings.simplefilter("error", SinglePinWarning)
        StaticPins({pattern: resolve(spec) for pattern, spec in rules.items()})  # type: ignore[misc]


def test_backup_pin_advice(pki: PKI) -> None:
    single = PinRule.create("api.example.com", [pki.intermediate_pin])
    assert backup_pin_advice(single) is not None
    assert "add a backup pin" in (backup_pin_advice(single) or "")
    assert backup_pin_advice(PinRule.create("a.example", [pki.leaf_pin, pki.backup_pin])) is None
    report_only = PinRule.create("a.example", [pki.leaf_pin], Mode.REPORT_ONLY)
    assert backup_pin_advice(report_only) is None


# --- CA settings of requests: applied through cafile=, or refused by name ------------------------


def _clear_requests_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_requests_session_verify_path_is_refused_by_name(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_requests_environment(monkeypatch)
    with pinned_requests_session(_pins(pki), cafile=pki.ca_bundle) as session:
        session.verify = pki.untrusted_root_file
        with pytest.raises(ValueError, match=r"untrusted-root\.pem.*session\.verify"):
            session.get(servers.legit.url(), timeout=5)
    assert servers.legit.connections == []


def test_requests_verify_naming_the_cafile_twin_is_accepted(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_requests_environment(monkeypatch)
    with pinned_requests_session(_pins(pki), cafile=pki.ca_bundle) as session:
        session.verify = pki.ca_bundle
        assert session.get(servers.legit.url(), timeout=5).text == "ok:legit"


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_requests_ca_bundle_variable_applies_when_no_cafile_is_given(
    variable: str, pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for plain requests; before the fix the bundle was silently ignored."""
    _clear_requests_environment(monkeypatch)
    monkeypatch.setenv(variable, pki.ca_bundle)
    with pinned_requests_session(_pins(pki)) as session:
        assert session.get(servers.legit.url(), timeout=5).text == "ok:legit"
        with pytest.raises(requests.exceptions.SSLError) as raised:
            session.get(servers.rogue.url(), timeout=5)  # the twin: pins still apply
    assert pin_error(raised.value) is not None


def test_requests_ca_bundle_variable_other_than_the_cafile_is_refused_by_name(
    pki: PKI, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_requests_environment(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.untrusted_root_file)
    with pinned_requests_session(_pins(pki), cafile=pki.ca_bundle) as session:
        with pytest.raises(ValueError, match=r"untrusted-root\.pem.*trust_env = False"):
            session.get(servers.legit.url(), timeout=5)
        session.trust_env = False
        assert session.get(servers.legit.url(), timeout=5).text == "ok:legit"


@pytest.mark.parametrize(
    "value", ["/nonexistent/ca.pem", "bad\x00path", "x" * 5000], ids=["missing", "nul", "huge"]
)
def test_requests_ca_bundle_variable_that_cannot_load_is_one_clear_error(
    value: str, pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_requests_environment(monkeypatch)
    if "\x00" in value:
        # The environment cannot hold a NUL; reach the same code through os.environ's mapping.
        monkeypatch.setattr("os.environ", {"REQUESTS_CA_BUNDLE": value})
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", value)
    with pytest.raises(ValueError, match="REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE") as raised:
        pinned_requests_session(_pins(pki))
    assert "\n" not in str(raised.value)


def test_requests_default_trust_is_certifi_as_for_plain_requests(
    pki: PKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    _clear_requests_environment(monkeypatch)
    with pinned_requests_session(_pins(pki)) as session:
        adapter = session.get_adapter("https://localhost/")
        context: ssl.SSLContext = adapter._pinned_context  # type: ignore[attr-defined]
    expected = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()
    assert context.cert_store_stats() == expected


# --- hostname_checks_common_name = False (a CN-only certificate) ----------------------------------


def _leaf_chain(pki: PKI, directory: Path, *, with_san: bool) -> str:
    """A leaf for "localhost" from the legitimate intermediate, with or without a SAN."""
    leaf = issue_leaf(pki.intermediate, "localhost", ["localhost"] if with_san else [])
    path = directory / f"cn-{'san' if with_san else 'only'}-chain.pem"
    path.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
    return str(path)


@pytest.mark.parametrize("with_san", [False, True], ids=["cn-only-refused", "san-twin-accepted"])
def test_common_name_alone_does_not_match_the_host(
    with_san: bool, pki: PKI, tmp_path: Path
) -> None:
    server = RecordingTLSServer("cn", _leaf_chain(pki, tmp_path, with_san=with_san))
    context = pinned_context(_pins(pki), cafile=pki.ca_bundle)
    assert context.hostname_checks_common_name is False
    with running(server):
        if with_san:
            with context.wrap_socket(tcp_to(server.port), server_hostname="localhost") as tls:
                assert tls_get(tls, "localhost", server.port) == "ok:cn"
            return
        with pytest.raises(ssl.SSLCertVerificationError) as raised:
            context.wrap_socket(tcp_to(server.port), server_hostname="localhost")
        assert "Hostname mismatch" in str(raised.value)
        assert_no_request_byte(server)


def test_the_cn_only_server_passes_with_pythons_default(pki: PKI, tmp_path: Path) -> None:
    """What the test above guards against: Python's default still matches the common name."""
    server = RecordingTLSServer("cn", _leaf_chain(pki, tmp_path, with_san=False))
    context = ssl.create_default_context(cafile=pki.ca_bundle)
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT  # 3.13's default refuses a leaf with no SAN
    with running(server):
        with context.wrap_socket(tcp_to(server.port), server_hostname="localhost") as tls:
            assert tls_get(tls, "localhost", server.port) == "ok:cn"


def test_names_chosen_by_the_server_cannot_forge_lines_of_the_message() -> None:
    from pinwarden.client._chain import describe_chain

    key = ec.generate_private_key(ec.SECP256R1())
    forged = "evil\n  pins expected by rule x (static pins):\x00\u202e"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, forged)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (described,) = describe_chain([certificate.public_bytes(serialization.Encoding.DER)])
    assert "\n" not in str(described) and "\x00" not in str(described)
    assert "\u202e" not in str(described)
    assert "evil\\n" in described.subject
