"""Replicas on one PostgreSQL: push across processes by LISTEN/NOTIFY, and serving while the
database is down. Real ``pinwarden serve`` processes on 127.0.0.1; the machine's PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from pinwarden.cli import main
from tests.server.server_harness import PinServer, SSEListener, TCPProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.postgres

CHANNEL = "com.example.app/prod"


def _disabled_channel(server: PinServer) -> None:
    with httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {server.admin_token}"}
    ) as c:
        assert c.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
        rule = {"pattern": "legacy.example.test", "mode": "disabled"}
        assert c.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).status_code == 201


def _cli_publish(server: PinServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINWARDEN_URL", server.url)
    monkeypatch.setenv("PINWARDEN_TOKEN", server.admin_token)
    assert main(["publish", CHANNEL]) == 0


# The bound: a publish through one replica reaches the event streams of the other within
# a second. Without a notification a replica also reloads, but only after _RELOAD_SECONDS of
# silence on its LISTEN connection (``_LISTEN_TIMEOUT`` in pinwarden/server/_sync.py, not
# configurable; ``--poll`` applies to SQLite only).
_PUSH_BOUND_SECONDS = 1.0
_RELOAD_SECONDS = 30.0


def test_a_publish_through_one_replica_reaches_the_event_streams_of_the_other(
    pin_server_factory: Callable[..., PinServer],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = pin_server_factory(database_url=postgres_url)
    second_started = time.monotonic()  # its first (re)load cannot come before this
    second = pin_server_factory(
        database_url=postgres_url, data_dir=first.data_dir, admin_token=first.admin_token
    )
    _disabled_channel(first)
    wait_until(  # the channel's creation is announced too
        lambda: _serves_keyring(second), 10, "the second replica to learn of the channel"
    )
    listener = SSEListener(f"{second.url}/v1/channels/{CHANNEL}/events")
    try:
        for version in (1, 2):
            started = time.monotonic()  # just before the publish call
            _cli_publish(first, monkeypatch)
            published = time.monotonic()
            event = listener.next_event(timeout=10)  # a generous wait; the bound is below
            arrived = time.monotonic()
            assert (event.event, event.data) == ("pinset", f'{{"version": {version}}}')
            print(
                f"v{version}: publish via replica A took {(published - started) * 1000:.0f} ms; "
                f"SSE event at replica B {(arrived - started) * 1000:.0f} ms after the call"
            )
            # A timed reload happens no sooner than _RELOAD_SECONDS after the replica started:
            # an event before then was carried by LISTEN/NOTIFY.
            assert arrived - second_started < _RELOAD_SECONDS, "too slow to tell NOTIFY apart"
            assert arrived - started < _PUSH_BOUND_SECONDS
    finally:
        listener.close()
    served = [httpx.get(f"{s.url}/v1/channels/{CHANNEL}/pinset").content for s in (first, second)]
    assert served[0] == served[1]


def _serves_keyring(server: PinServer) -> bool:
    return httpx.get(f"{server.url}/v1/channels/{CHANNEL}/keyring/1").status_code == 200


def test_the_read_path_serves_while_the_database_is_down(
    pin_server_factory: Callable[..., PinServer],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = make_url(postgres_url)
    proxy = TCPProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        server = pin_server_factory(database_url=proxy.url_for(postgres_url))
        _disabled_channel(server)
        _cli_publish(server, monkeypatch)
        pinset_url = f"{server.url}/v1/channels/{CHANNEL}/pinset"
        before = httpx.get(pinset_url)
        proxy.cut()
        wait_until(
            lambda: httpx.get(f"{server.url}/healthz").json()["database"] == "unreachable",
            20,
            "the server to notice the database is gone",
        )
        during = httpx.get(pinset_url)
        assert during.status_code == 200 and during.content == before.content
        assert (
            httpx.get(pinset_url, headers={"if-none-match": before.headers["etag"]}).status_code
            == 304
        )
        assert httpx.get(f"{server.url}/v1/channels/{CHANNEL}/keyring/1").status_code == 200
        with httpx.Client(
            base_url=server.url,
            headers={"authorization": f"Bearer {server.admin_token}"},
            timeout=30,
        ) as c:
            assert c.get("/v1/admin/channels").status_code == 503
        proxy.restore()
        wait_until(
            lambda: httpx.get(f"{server.url}/healthz").json()["database"] == "ok",
            30,
            "the server to reconnect",
        )
        _cli_publish(server, monkeypatch)
        assert httpx.get(pinset_url).headers["x-pinwarden-version"] == "2"
    finally:
        proxy.cut()
