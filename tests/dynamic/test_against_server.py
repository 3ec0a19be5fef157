"""End to end against the real pin server: a ``pinwarden serve`` process speaking HTTPS on
127.0.0.1. Every admin step goes through the ``pinwarden`` CLI; the dynamic client fetches and
subscribes over TLS, follows the app host's key rotation by push, and its violation reports are
accepted and stored by the server.

The client code never imports the server; only this test does, and it is skipped (with the reason)
when the server's extra is not installed.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip(
    "pinwarden.server", reason="the pin server needs pip install 'pinwarden[server]'"
)

import httpx
import trustme

from pinwarden.cli import main
from pinwarden.client import (
    DynamicPins,
    EventKind,
    PinValidationError,
    RefreshPolicy,
    StaticPins,
    pinned_httpx_client,
)
from tests.dynamic.dynamic_harness import Waiter
from tests.server import server_harness
from tests.server.server_harness import PinServer
from tests.support.pki import AppPKI
from tests.support.tls_servers import IO_TIMEOUT, TLSServer
from tests.support.waiting import WAIT, wait_until

CHANNEL = "com.example.app/prod"
HOST = "localhost"  # the app host: server_a serves leaf A for it, server_b leaf B
REFRESH_SECONDS = 3600  # the channel's refresh hint: no timed refresh within the test

# The server's own fixtures (docs/server.md, "Starting a server in a test"), found by name.
pin_server_factory = server_harness.pin_server_factory
template_key_dir = server_harness.template_key_dir
trust_ca = server_harness.trust_ca


@pytest.fixture
def https_pin_server(
    pin_server_factory: Callable[..., PinServer],
    trust_ca: tuple[trustme.CA, str],
    app_pki: AppPKI,
    tmp_path: Path,
) -> PinServer:
    """``pinwarden serve --tls-cert … --tls-key …`` with a certificate of the trustme CA
    ``trust_ca`` for 127.0.0.1; it checks live chains against the app hosts' CA."""
    ca, ca_file = trust_ca
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "pin-server-cert.pem", tmp_path / "pin-server-key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    server = pin_server_factory(
        ca_file=app_pki.ca_file,
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key)],
        verify=ssl.create_default_context(cafile=ca_file),
    )
    assert server.url.startswith("https://")
    return server


@pytest.fixture
def pinwarden_cli(
    https_pin_server: PinServer,
    trust_ca: tuple[trustme.CA, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., None]:
    """``pinwarden ARGS --server URL --ca-file CA`` in this process, the token from the
    environment (as docs/server.md advises); asserts exit status 0."""
    monkeypatch.setenv("PINWARDEN_TOKEN", https_pin_server.admin_token)
    connection = ["--server", https_pin_server.url, "--ca-file", trust_ca[1]]

    def run(*args: str) -> None:
        assert main([*args, *connection]) == 0, f"pinwarden {' '.join(args)} failed"

    return run


@pytest.fixture
def app_client(app_pki: AppPKI) -> Iterator[Callable[[DynamicPins], httpx.Client]]:
    """The app's HTTP stack: ``pinned_httpx_client`` over the dynamic pins."""
    clients: list[httpx.Client] = []

    def make(source: DynamicPins) -> httpx.Client:
        client = pinned_httpx_client(source, cafile=app_pki.ca_file, timeout=IO_TIMEOUT)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def reaches(client: httpx.Client, host: TLSServer) -> bool:
    """True if a GET through the pinned client is answered; False if the pins refuse the host
    (and then no request reached it). Any other failure fails the test. A refusal on a new
    connection is an ``httpx.ConnectError``; on a pooled one, checked again before its next byte
    once the pins changed (docs/security.md rule 8), httpx reports it as a ``ReadError``."""
    before = host.count()
    try:
        return client.get(host.url("/")).text == "ok"
    except (httpx.ConnectError, httpx.ReadError) as error:
        assert pin_error_in(error), f"refused, but not by the pins: {error!r}"
        assert host.count() == before
        return False


def pin_error_in(error: BaseException) -> bool:
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if isinstance(current, PinValidationError):
            return True
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return False


def test_a_rotation_published_through_the_cli_is_followed_over_tls_by_push(
    https_pin_server: PinServer,
    pinwarden_cli: Callable[..., None],
    app_client: Callable[[DynamicPins], httpx.Client],
    app_pki: AppPKI,
    server_a: TLSServer,
    server_b: TLSServer,
    trust_ca: tuple[trustme.CA, str],
    tmp_path: Path,
) -> None:
    server, cli = https_pin_server, pinwarden_cli
    cli(
        "channel",
        "create",
        CHANNEL,
        "--refresh",
        str(REFRESH_SECONDS),
        "--report-uri",
        f"{server.url}/v1/reports",
    )
    # Safe publishing dials the host at its probe, under its name, and checks its live chain.
    cli("rule", "add", CHANNEL, HOST, "--mode", "enforce", "--probe", f"127.0.0.1:{server_a.port}")
    cli("pins", "add", CHANNEL, HOST, app_pki.pin_a, "--label", "leaf key")
    cli("pins", "add", CHANNEL, HOST, app_pki.backup_pin, "--label", "backup key")
    cli("publish", CHANNEL)

    waiter = Waiter()
    with DynamicPins(
        server.channel_url(CHANNEL),
        keyring=server.keyring_path.read_bytes(),
        bootstrap=StaticPins({HOST: [app_pki.pin_a, app_pki.backup_pin]}),
        cafile=trust_ca[1],  # the pin server's certificate: fetch, events and reports over TLS
        cache_dir=str(tmp_path / "cache"),
        push=True,
        app_id="com.example.app",
        app_version="1.0",
        on_event=waiter,
        # A push may start a fetch at most once per min_interval: v2 follows v1 within seconds.
        # The refresh hint (an hour) sets the timed refresh, so only a push brings v2 sooner.
        policy=RefreshPolicy(min_interval=timedelta(milliseconds=100)),
    ) as source:
        assert waiter.wait_for(EventKind.FETCHED, 1)
        app = app_client(source)
        assert reaches(app, server_a)
        assert not reaches(app, server_b)  # the host's new key, not yet published

        cli("rule", "update", CHANNEL, HOST, "--probe", f"127.0.0.1:{server_b.port}")
        cli("pins", "add", CHANNEL, HOST, app_pki.pin_b, "--label", "leaf key")
        cli("pins", "remove", CHANNEL, HOST, app_pki.pin_a)
        cli("publish", CHANNEL)
        # No refresh() call: the event stream announces v2 and the client fetches it.
        wait_until(lambda: source.version == 2, WAIT, "the client to follow v2 by push")
        pushed = [e for e in waiter.events if e.kind is EventKind.PUSH_ANNOUNCED]
        assert [e.version for e in pushed][-1:] == [2]
        assert reaches(app, server_b)
        assert not reaches(app, server_a)  # the old key, on the pooled connection or a new one
        assert source.flush_reports()

    assert waiter.wait_for(EventKind.REPORT_SENT)
    with httpx.Client(
        base_url=server.url,
        headers={"authorization": f"Bearer {server.admin_token}"},
        verify=ssl.create_default_context(cafile=trust_ca[1]),
        timeout=IO_TIMEOUT,
    ) as admin:
        reports = admin.get("/v1/admin/reports").json()
    # Two mismatches, two chains: the new key under v1, then the old key under v2.
    by_version = {report["pinset-version"]: report for report in reports}
    assert sorted(by_version) == [1, 2] and len(reports) == 2
    report = by_version[2]
    assert report["hostname"] == HOST and report["enforce-pinning"] is True
    assert report["app-id"] == "com.example.app" and report["channel"] == CHANNEL
    assert f'pin-sha256="{app_pki.pin_b.removeprefix("sha256/")}"' in report["known-pins"]
