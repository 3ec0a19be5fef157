"""End to end against the real pin server (pinwarden.server, uvicorn in a thread on 127.0.0.1):
the dynamic client follows a key rotation published through the admin API, by push, and its
violation report is accepted and stored by the server.

The client code never imports the server; only this test does, and it is skipped (with the reason)
when the server's extra is not installed.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip(
    "pinwarden.server", reason="the pin server needs pip install 'pinwarden[server]'"
)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

import server_harness
from dynamic_harness import IO_TIMEOUT, Waiter
from server_harness import LiveServer, TLSHost, backup_pin

from pinwarden.client import (
    DynamicPins,
    EventKind,
    PinValidationError,
    RefreshPolicy,
    StaticPins,
    pinned_context,
)

CHANNEL = "com.example.app/prod"

# The server's own fixtures (docs: tests/server/server_harness.py), found by name.
live_server_factory = server_harness.live_server_factory
template_key_dir = server_harness.template_key_dir
tls_host_factory = server_harness.tls_host_factory
trust_ca = server_harness.trust_ca


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


def handshake(source: DynamicPins, host: TLSHost) -> bool:
    """A pinned TLS handshake with ``host``: True if the pins accept its chain."""
    context = pinned_context(source, cafile=host.ca_file)
    with socket.create_connection(("127.0.0.1", host.port), timeout=IO_TIMEOUT) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=host.name):
                return True
        except PinValidationError:
            return False


def publish(server: LiveServer) -> int:
    with server.client() as admin:
        response = admin.post(f"/v1/admin/channels/{CHANNEL}/publish", json={})
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def test_a_rotation_published_on_the_server_is_followed_by_push(
    live_server_factory: Callable[..., LiveServer],
    tls_host_factory: Callable[[str], TLSHost],
    tmp_path: Path,
) -> None:
    server = live_server_factory()
    old_host = tls_host_factory("api.example.test")
    backup = backup_pin()
    rule = f"/v1/admin/channels/{CHANNEL}/rules/{old_host.name}"
    with server.client() as admin:
        channel = {
            "name": CHANNEL, "refresh_seconds": 3600, "report_uri": f"{server.url}/v1/reports"
        }
        assert admin.post("/v1/admin/channels", json=channel).status_code == 201
        rule_body = {"pattern": old_host.name, "probe_host": "127.0.0.1",
                     "probe_port": old_host.port}
        assert admin.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule_body).status_code == 201
        for pin in (old_host.leaf_pin, backup):
            assert admin.post(f"{rule}/pins", json={"pin": pin}).status_code == 201
    assert publish(server) == 1

    waiter = Waiter()
    with DynamicPins(
        f"{server.url}/v1/channels/{CHANNEL}",
        keyring=server.initialized.keyring_path.read_bytes(),
        bootstrap=StaticPins({old_host.name: [old_host.leaf_pin, backup]}),
        cache_dir=str(tmp_path / "cache"),
        push=True,
        app_id="com.example.app",
        app_version="1.0",
        on_event=waiter,
        # A push may start a fetch at most once per min_interval: v2 follows v1 within seconds.
        policy=RefreshPolicy(min_interval=timedelta(milliseconds=100)),
    ) as source:
        assert waiter.wait_for(EventKind.FETCHED, 1)
        assert handshake(source, old_host)

        new_host = tls_host_factory(old_host.name)  # the host's key was rotated
        assert not handshake(source, new_host)
        with server.client() as admin:
            assert admin.patch(rule, json={"probe_port": new_host.port}).status_code == 200
            assert admin.post(f"{rule}/pins", json={"pin": new_host.leaf_pin}).status_code == 201
            removed = admin.delete(f"{rule}/pins", params={"pin": old_host.leaf_pin})
            assert removed.status_code == 200
        assert publish(server) == 2
        # refresh_seconds is an hour: only the push can bring v2 this soon.
        assert waiter.wait_for(EventKind.FETCHED, 2)
        assert handshake(source, new_host)
        assert not handshake(source, old_host)
        assert source.flush_reports()

    assert waiter.wait_for(EventKind.REPORT_SENT)
    with server.client() as admin:
        reports = admin.get("/v1/admin/reports").json()
    # Two mismatches, two chains: the new key under v1, then the old key under v2.
    by_version = {report["pinset-version"]: report for report in reports}
    assert sorted(by_version) == [1, 2] and len(reports) == 2
    report = by_version[2]
    assert report["hostname"] == old_host.name and report["enforce-pinning"] is True
    assert report["app-id"] == "com.example.app" and report["channel"] == CHANNEL
    assert f'pin-sha256="{new_host.leaf_pin.removeprefix("sha256/")}"' in report["known-pins"]
