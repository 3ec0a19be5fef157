"""Over real TLS on 127.0.0.1: a pin mismatch brings the next fetch forward, and violation reports
use the trust of their own host, not the pin server's."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from pinwarden.client import DynamicPins, EventKind, PinValidationError, StaticPins, pinned_context
from tests.dynamic.dynamic_harness import Waiter, raw_https_get
from tests.dynamic.pin_server_simulator import (
    PinServerSimulator,
    report_url,
    server_url,
    simulator_server,
)
from tests.support.pki import AppPKI
from tests.support.tls_servers import TLSServer
from tests.support.waiting import WAIT

HOST = "localhost"


@pytest.fixture
def bootstrap(app_pki: AppPKI) -> StaticPins:
    return StaticPins({HOST: [app_pki.pin_a, app_pki.backup_pin]})


def accepts(source: DynamicPins, pki: AppPKI, server: TLSServer) -> bool:
    try:
        return raw_https_get(pinned_context(source, cafile=pki.ca_file), server.port) == b"ok"
    except PinValidationError:
        return False


def test_a_mismatch_fetches_a_rotation_the_client_has_not_seen(
    sim: PinServerSimulator, bootstrap: StaticPins, app_pki: AppPKI,
    server_a: TLSServer, server_b: TLSServer,
) -> None:
    """v1 pins key A and says "ask again in an hour"; v2, pinning key B, is published with no
    push. The first request to the server now holding key B still fails, and brings the fetch
    of v2 forward: the next request passes. The twin: key A is refused under v2."""
    sim.publish({HOST: [app_pki.pin_a, app_pki.backup_pin]}, refresh_after=3600)
    waiter = Waiter()
    with sim.client(bootstrap, on_event=waiter, background=True) as source:
        assert waiter.wait_for(EventKind.FETCHED, version=1)
        sim.publish({HOST: [app_pki.pin_b, app_pki.backup_pin]}, refresh_after=3600)
        assert not accepts(source, app_pki, server_b)  # the failing request still fails
        assert waiter.wait_for(EventKind.FETCHED, version=2)
        assert accepts(source, app_pki, server_b)
        assert not accepts(source, app_pki, server_a)


# -- the trust of violation reports --------------------------------------------------------------


@pytest.fixture(scope="module")
def public_ca() -> trustme.CA:
    """Stands for a public CA: "the system trust store" is pointed at it with SSL_CERT_FILE."""
    return trustme.CA()


@pytest.fixture
def system_trusts(public_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "system-ca.pem"
    public_ca.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def pin_server(sim: PinServerSimulator, app_pki: AppPKI) -> Iterator[TLSServer]:
    """The pin server, on the app's private CA (the client's ``cafile``)."""
    server = simulator_server(sim, app_pki.server_context(app_pki.leaf_a)).start()
    yield server
    server.stop()


@pytest.fixture
def report_server(sim: PinServerSimulator, public_ca: trustme.CA) -> Iterator[TLSServer]:
    """A report collector on another host (here: another port), publicly certified."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    public_ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = simulator_server(sim, context).start()
    yield server
    server.stop()


def reported(
    sim: PinServerSimulator, pin_server: TLSServer, report_server: TLSServer, app_pki: AppPKI,
    bootstrap: StaticPins, server_b: TLSServer, **options: Any,
) -> list[EventKind]:
    """One report-only mismatch reported to ``report_server``: the report events."""
    sim.publish({HOST: {"pins": [app_pki.pin_a, app_pki.backup_pin], "mode": "report-only"}},
                report_uri=report_url(report_server, sim))
    waiter = Waiter()
    with DynamicPins(server_url(pin_server, sim), keyring=sim.shipped_keyring,
                     bootstrap=bootstrap, cafile=app_pki.ca_file, clock=sim.clock,
                     background=False, on_event=waiter, timeout=5.0, **options) as source:
        assert source.refresh().version == 1
        assert accepts(source, app_pki, server_b)  # report-only: through, and reported
        assert source.flush_reports(WAIT)
    return [e.kind for e in waiter.events if e.kind.value.startswith("report")]


@pytest.mark.usefixtures("system_trusts")
def test_a_report_to_a_publicly_certified_host_is_sent_despite_a_private_pin_server_ca(
    sim: PinServerSimulator, pin_server: TLSServer, report_server: TLSServer, app_pki: AppPKI,
    bootstrap: StaticPins, server_b: TLSServer,
) -> None:
    kinds = reported(sim, pin_server, report_server, app_pki, bootstrap, server_b)
    assert kinds == [EventKind.REPORT_SENT] and report_server.count("/v1/reports") == 1


@pytest.mark.usefixtures("system_trusts")
def test_report_trust_given_elsewhere_is_used_and_a_refusal_is_an_event(
    sim: PinServerSimulator, pin_server: TLSServer, report_server: TLSServer, app_pki: AppPKI,
    bootstrap: StaticPins, server_b: TLSServer,
) -> None:
    """The twin: ``report_cafile`` names a CA that did not certify the report host: the report
    is dropped, and that is an event."""
    kinds = reported(sim, pin_server, report_server, app_pki, bootstrap, server_b,
                     report_cafile=app_pki.ca_file)
    assert kinds == [EventKind.REPORT_DROPPED] and report_server.count("/v1/reports") == 0


def test_report_cafile_reaches_a_privately_certified_report_host(
    sim: PinServerSimulator, pin_server: TLSServer, report_server: TLSServer, app_pki: AppPKI,
    bootstrap: StaticPins, server_b: TLSServer, public_ca: trustme.CA, tmp_path: Path,
) -> None:
    ca_file = tmp_path / "report-ca.pem"
    public_ca.cert_pem.write_to_path(str(ca_file))
    kinds = reported(sim, pin_server, report_server, app_pki, bootstrap, server_b,
                     report_cafile=str(ca_file))
    assert kinds == [EventKind.REPORT_SENT]


def test_a_report_cafile_that_is_not_a_file_is_one_clear_error(
    sim: PinServerSimulator, bootstrap: StaticPins, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="not a file"):
        DynamicPins(sim.url, keyring=sim.shipped_keyring, bootstrap=bootstrap,
                    background=False, report_cafile=str(tmp_path / "missing.pem"))
