"""The public endpoints: pin set with ETag/304/Cache-Control, keyrings, push, reports, metrics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from pinwarden.document import load_keyring, verify_pinset
from pinwarden.server import ServerConfig, create_app
from pinwarden.server._models import ViolationReport
from pinwarden.server._ratelimit import RateLimiter
from tests.server.server_harness import (
    LiveServer,
    SSEListener,
    exposed_samples,
    run_uvicorn_in_thread,
)
from tests.support.waiting import wait_until

CHANNEL = "com.example.app/prod"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"  # the read path never touches the database


def _disabled_channel(server: LiveServer, channel: str = CHANNEL, refresh: int = 600) -> None:
    """A channel whose one rule is ``disabled``: publishable without a live host."""
    with server.client() as client:
        client.post("/v1/admin/channels", json={"name": channel, "refresh_seconds": refresh})
        client.post(
            f"/v1/admin/channels/{channel}/rules",
            json={"pattern": "legacy.example.test", "mode": "disabled"},
        )


def _publish(server: LiveServer, channel: str = CHANNEL) -> int:
    with server.client() as client:
        response = client.post(f"/v1/admin/channels/{channel}/publish", json={})
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def test_the_pinset_is_served_with_etag_304_and_cache_control(live_server: LiveServer) -> None:
    _disabled_channel(live_server, refresh=600)
    _publish(live_server)
    url = f"{live_server.url}/v1/channels/{CHANNEL}/pinset"
    first = httpx.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/jose+json"
    assert first.headers["cache-control"] == "public, max-age=600, no-transform"
    etag = first.headers["etag"]
    assert etag.startswith('"v1-')
    keyring = load_keyring(live_server.initialized.keyring_path.read_bytes())
    assert verify_pinset(first.content, keyring=keyring).version == 1
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = httpx.get(url, headers={"if-none-match": if_none_match})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
    stale = httpx.get(url, headers={"if-none-match": '"v0-old"'})
    assert stale.status_code == 200 and stale.content == first.content
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["etag"] == etag
    _publish(live_server)
    changed = httpx.get(url, headers={"if-none-match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert verify_pinset(changed.content, keyring=keyring, min_version=1).version == 2


def test_unknown_channels_and_keyrings_are_404(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    base = f"{live_server.url}/v1/channels"
    assert httpx.get(f"{base}/{CHANNEL}/pinset").status_code == 404  # not published yet
    assert httpx.get(f"{base}/nope/pinset").status_code == 404
    assert httpx.get(f"{base}/nope/keyring/1").status_code == 404
    assert httpx.get(f"{base}/{CHANNEL}/keyring/2").status_code == 404
    assert httpx.post(f"{base}/{CHANNEL}/pinset").status_code == 405


def test_the_keyring_is_served_byte_for_byte(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    response = httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/keyring/1")
    assert response.status_code == 200
    assert response.content == live_server.initialized.keyring_path.read_bytes()
    assert "immutable" in response.headers["cache-control"]


def test_events_announce_each_new_version(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    _publish(live_server)
    listener = SSEListener(f"{live_server.url}/v1/channels/{CHANNEL}/events")
    try:
        assert listener.status == 200
        current = listener.next_event()  # on connect: the version served now
        assert (current.event, json.loads(current.data or ""), current.id) == (
            "pinset",
            {"version": 1},
            "1",
        )
        _publish(live_server)
        event = listener.next_event()
        assert (event.event, json.loads(event.data or "")) == ("pinset", {"version": 2})
        wait_until(lambda: "heartbeat" in listener.comments, 10, "a heartbeat comment")
    finally:
        listener.close()


def test_a_client_that_has_the_current_version_gets_no_event_on_connect(
    live_server: LiveServer,
) -> None:
    _disabled_channel(live_server)
    _publish(live_server)
    listener = SSEListener(
        f"{live_server.url}/v1/channels/{CHANNEL}/events", headers={"last-event-id": "1"}
    )
    try:
        wait_until(lambda: "heartbeat" in listener.comments, 10, "a heartbeat comment")
        assert listener.events.empty()
        _publish(live_server)
        assert listener.next_event().id == "2"
    finally:
        listener.close()


def test_events_of_an_unknown_channel_are_404(live_server: LiveServer) -> None:
    assert httpx.get(f"{live_server.url}/v1/channels/nope/events").status_code == 404


def test_closed_event_streams_are_released(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    listeners = [SSEListener(f"{live_server.url}/v1/channels/{CHANNEL}/events") for _ in range(3)]
    wait_until(lambda: live_server.services.broker.subscriber_count == 3, 10, "3 subscribers")
    for listener in listeners:
        listener.close()
    wait_until(lambda: live_server.services.broker.subscriber_count == 0, 10, "no subscribers")


REPORT = {
    "date-time": "2026-11-27T10:00:00Z",
    "hostname": "api.example.test",
    "port": 443,
    "noted-hostname": "*.example.test",
    "include-subdomains": False,
    "served-certificate-chain": ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"],
    "validated-certificate-chain": [],
    "known-pins": ['pin-sha256="AAAA"'],
    "enforce-pinning": True,
    "app-id": "com.example.app",
    "app-version": "1.2.3",
}


def test_reports_are_stored_and_aggregated(live_server: LiveServer) -> None:
    url = f"{live_server.url}/v1/reports"
    for version in ("1.2.3", "1.2.3", "1.3.0"):
        response = httpx.post(url, json={**REPORT, "app-version": version})
        assert response.status_code == 202, response.text
    with live_server.client() as client:
        summary = client.get("/v1/admin/reports/summary").json()
        recent = client.get("/v1/admin/reports").json()
    counts = {(row["app_version"], row["count"]) for row in summary}
    assert counts == {("1.2.3", 2), ("1.3.0", 1)}
    assert recent[0]["hostname"] == "api.example.test" and recent[0]["client"] == "127.0.0.1"


def test_a_report_may_say_where_the_violated_rule_came_from(live_server: LiveServer) -> None:
    """The dynamic client sends ``rule-source`` (shipped pins, or which signed pin set)."""
    source = "pin-set version 3 of channel com.example.app/prod"
    response = httpx.post(f"{live_server.url}/v1/reports", json={**REPORT, "rule-source": source})
    assert response.status_code == 202, response.text
    with live_server.client() as client:
        assert client.get("/v1/admin/reports").json()[0]["rule-source"] == source


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({**REPORT, "rule-source": 3}).encode(),
        json.dumps({**REPORT, "rule-source": "x" * 301}).encode(),
        b"not json",
        b"[]",
        json.dumps({"port": 443}).encode(),  # hostname is required
        json.dumps({**REPORT, "port": "443"}).encode(),
        json.dumps({**REPORT, "port": True}).encode(),
        json.dumps({**REPORT, "known-pins": "x"}).encode(),
        json.dumps({**REPORT, "known-pins": [1]}).encode(),
        json.dumps({**REPORT, "surprise": 1}).encode(),
        json.dumps({**REPORT, "hostname": "x" * 301}).encode(),
    ],
)
def test_malformed_reports_are_refused(live_server: LiveServer, body: bytes) -> None:
    response = httpx.post(
        f"{live_server.url}/v1/reports", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    with live_server.client() as client:
        assert client.get("/v1/admin/reports").json() == []


def test_reports_over_32_kib_are_refused(live_server: LiveServer) -> None:
    chain = ["x" * 8000] * 4
    small = {**REPORT, "served-certificate-chain": chain[:3]}
    large = {**REPORT, "served-certificate-chain": chain, "validated-certificate-chain": chain[:1]}
    assert len(json.dumps(small)) < 32 * 1024 < len(json.dumps(large))
    assert httpx.post(f"{live_server.url}/v1/reports", json=small).status_code == 202
    assert httpx.post(f"{live_server.url}/v1/reports", json=large).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming
        for _ in range(40):
            yield b"x" * 1024

    streamed = httpx.post(
        f"{live_server.url}/v1/reports",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_reports_are_rate_limited_per_client(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(report_burst=3, report_per_minute=1.0)
    statuses = [httpx.post(f"{server.url}/v1/reports", json=REPORT).status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    limited = httpx.post(f"{server.url}/v1/reports", json=REPORT)
    assert int(limited.headers["retry-after"]) >= 1
    assert server.services.limiter.allow("192.0.2.1")  # another client is not limited


def test_metrics_are_in_the_prometheus_text_format(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    _publish(live_server)
    httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset")
    httpx.get(f"{live_server.url}/v1/channels/nope/pinset")
    httpx.post(f"{live_server.url}/v1/reports", json=REPORT)
    response = httpx.get(f"{live_server.url}/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = exposed_samples(response.text)
    assert samples[("pinwarden_pinset_responses_total", (("status", "200"),))] == 1
    assert samples[("pinwarden_pinset_responses_total", (("status", "404"),))] == 1
    assert samples[("pinwarden_reports_total", (("outcome", "stored"),))] == 1
    assert samples[("pinwarden_published_version", (("channel", "com.example.app/prod"),))] == 1
    assert samples[("pinwarden_database_up", ())] == 1
    for line in response.text.splitlines():
        assert line.startswith("#") or len(line.split(" ")) == 2, line


def test_healthz(live_server: LiveServer) -> None:
    _disabled_channel(live_server)
    _publish(live_server)
    body = httpx.get(f"{live_server.url}/healthz").json()
    assert body == {"status": "ok", "database": "ok", "channels": {CHANNEL: 1}, "detail": []}


def test_a_publish_through_another_server_on_the_same_sqlite_file_is_pushed(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    """Without NOTIFY, servers on one SQLite file find new versions by polling, then push them."""
    first = live_server_factory()
    second_app = create_app(
        ServerConfig(
            database_url=first.initialized.database_url,
            key_dir=first.initialized.data.key_dir,
            passphrase=None,  # a replica that serves and pushes but does not sign
            poll_seconds=0.1,
            heartbeat_seconds=0.5,
        )
    )
    url, stop = run_uvicorn_in_thread(second_app)
    try:
        _disabled_channel(first)
        _publish(first)
        wait_until(
            lambda: httpx.get(f"{url}/v1/channels/{CHANNEL}/pinset").status_code == 200,
            10,
            "the second server to serve version 1",
        )
        listener = SSEListener(f"{url}/v1/channels/{CHANNEL}/events")
        try:
            assert listener.next_event().id == "1"
            _publish(first)
            assert listener.next_event().id == "2"
        finally:
            listener.close()
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {first.admin_token}"}
        ) as c:
            refused = c.post(f"/v1/admin/channels/{CHANNEL}/publish", json={})
        assert refused.status_code == 409 and "cannot publish" in refused.json()["error"]
    finally:
        stop()


def test_event_streams_are_capped_in_total_and_per_client_address(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(sse_max_streams=3, sse_max_streams_per_client=2)
    _disabled_channel(server)
    url = f"{server.url}/v1/channels/{CHANNEL}/events"
    with contextlib.ExitStack() as streams:

        def open_from(address: str) -> httpx.Response:
            transport = httpx.HTTPTransport(local_address=address)
            client = streams.enter_context(httpx.Client(transport=transport, timeout=10))
            return streams.enter_context(client.stream("GET", url))

        held = [open_from("127.0.0.1"), open_from("127.0.0.1")]
        assert [response.status_code for response in held] == [200, 200]
        per_client = open_from("127.0.0.1")  # this address holds its two
        assert per_client.status_code == 503 and per_client.headers["retry-after"] == "30"
        assert open_from("127.0.0.2").status_code == 200  # another address: the third stream
        assert open_from("127.0.0.3").status_code == 503  # three in all
        assert server.services.broker.subscriber_count == 3
        held[0].close()
        wait_until(lambda: server.services.broker.subscriber_count == 2, 10, "a stream released")
        assert open_from("127.0.0.1").status_code == 200  # the twin: a freed slot is taken
    metrics = exposed_samples(httpx.get(f"{server.url}/metrics").text)
    assert metrics[("pinwarden_sse_refused_total", ())] == 2


def _post_report_from(server: LiveServer, address: str, **members: object) -> int:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.post(f"{server.url}/v1/reports", json={**REPORT, **members}).status_code


def test_reports_are_rate_limited_for_all_clients_together(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(report_burst=10, report_total_burst=3, report_total_per_minute=1)
    addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [_post_report_from(server, address) for address in addresses] == [202, 202, 202, 429]
    with server.client() as client:
        assert len(client.get("/v1/admin/reports").json()) == 3


def test_the_rate_limiter_refills_both_buckets() -> None:
    limiter = RateLimiter(2, 60.0, total_burst=3, total_per_minute=60.0)
    assert [limiter.allow("a", now=0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", now=0.0)  # the shared bucket's third token
    assert not limiter.allow("c", now=0.0)  # a fresh address, but the shared bucket is empty
    assert limiter.allow("c", now=1.0)  # a second later: one token each
    assert limiter.retry_after() == 1


def test_report_rows_are_bounded_and_the_counts_stay(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(report_max_rows=3, report_max_age=timedelta(days=30))

    def post(version: str) -> None:
        assert _post_report_from(server, "127.0.0.1", **{"app-version": version}) == 202

    for version in ("1", "2", "3", "4"):
        post(version)
    with server.services.sessions.begin() as session:  # a newer row, but received long ago
        old = ViolationReport(client="192.0.2.9", hostname="old.example.test", payload={})
        old.received_at = datetime.now(timezone.utc) - timedelta(days=31)
        session.add(old)
    post("5")
    with server.client() as client:
        kept = [row.get("app-version") for row in client.get("/v1/admin/reports").json()]
        summary = client.get("/v1/admin/reports/summary").json()
    # The newest three ids are 4, the old row and 5; the old row is past the age bound.
    assert kept == ["5", "4"]
    assert sum(row["count"] for row in summary) == 5  # counted when they arrived: they stay
    assert {row["app_version"] for row in summary} == {"1", "2", "3", "4", "5"}
