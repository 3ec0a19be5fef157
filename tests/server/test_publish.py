"""Safe publishing (docs/server.md, "Safe publishing") against real TLS hosts on 127.0.0.1.

Every accepted publish is a real signed document that ``verify_pinset`` accepts with the keyring
the data directory made; every refusal has its accepted twin.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from pinwarden.document import (
    KeyringError,
    load_keyring,
    verify_pinset,
    walk_keyrings,
)
from tests.server.server_harness import LiveServer, TLSHost
from tests.support.pki import backup_pin
from tests.support.tls_servers import free_port

CHANNEL = "com.example.app/prod"


def _setup(server: LiveServer, host: TLSHost, pins: list[tuple[str, str]], **rule: object) -> None:
    with server.client() as client:
        assert client.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
        body = {"pattern": host.name, "probe_host": "127.0.0.1", "probe_port": host.port, **rule}
        assert client.post(f"/v1/admin/channels/{CHANNEL}/rules", json=body).status_code == 201
        for pin, label in pins:
            response = client.post(
                f"/v1/admin/channels/{CHANNEL}/rules/{host.name}/pins",
                json={"pin": pin, "label": label},
            )
            assert response.status_code == 201, response.text


def _publish(server: LiveServer, **body: object) -> httpx.Response:
    with server.client() as client:
        return client.post(f"/v1/admin/channels/{CHANNEL}/publish", json=body)


def _served(server: LiveServer):  # type: ignore[no-untyped-def]
    keyring = load_keyring(server.initialized.keyring_path.read_bytes())
    raw = httpx.get(f"{server.url}/v1/channels/{CHANNEL}/pinset").content
    return verify_pinset(raw, keyring=keyring)


def test_a_safe_rule_is_published_signed_and_verifiable(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    backup = backup_pin()
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf key"), (backup, "backup key")])
    response = _publish(live_server)
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["published"] and outcome["version"] == 1 and not outcome["forced"]
    live = outcome["checks"][0]["live_chain"]
    assert live["pins"][0] == tls_host.leaf_pin and live["source"] == "connection"
    pinset = _served(live_server)
    assert pinset.version == 1 and pinset.channel == CHANNEL
    assert [(r.pattern, set(r.pins), r.mode) for r in pinset.rules] == [
        (tls_host.name, {tls_host.leaf_pin, backup}, "enforce")
    ]


def test_a_rule_with_one_pin_is_refused(live_server: LiveServer, tls_host: TLSHost) -> None:
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf key")])
    response = _publish(live_server)
    assert response.status_code == 409
    assert "at least 2" in response.json()["problems"][0]["problems"][0]
    assert httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset").status_code == 404


def test_a_rule_without_a_backup_outside_the_live_chain_is_refused(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    # Two pins, both in the chain served now (leaf and CA): no way out if that key is lost.
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (tls_host.ca_pin, "CA")])
    response = _publish(live_server)
    assert response.status_code == 409
    assert "no backup pin" in str(response.json()["problems"])


def test_a_rule_that_does_not_match_the_live_chain_is_refused(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    _setup(live_server, tls_host, [(backup_pin(), "next key"), (backup_pin(), "backup key")])
    response = _publish(live_server)
    assert response.status_code == 409
    assert "no pin matches the chain" in str(response.json()["problems"])


def test_a_host_that_cannot_be_reached_is_refused(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    with live_server.client() as client:
        client.patch(
            f"/v1/admin/channels/{CHANNEL}/rules/{tls_host.name}", json={"probe_port": free_port()}
        )
    response = _publish(live_server)
    assert response.status_code == 409
    assert "cannot see the live chain" in str(response.json()["problems"])


def test_a_host_with_an_untrusted_certificate_is_refused(
    live_server_factory: Callable[..., LiveServer], tls_host: TLSHost
) -> None:
    server = live_server_factory(ca_file=None)  # the trustme CA is not trusted now
    _setup(server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    response = _publish(server)
    assert response.status_code == 409
    assert "CERTIFICATE_VERIFY_FAILED" in str(response.json()["problems"])


def test_a_host_named_only_in_its_certificates_common_name_is_refused(
    live_server: LiveServer, tls_host_factory: Callable[..., TLSHost]
) -> None:
    """Clients refuse a certificate without a subjectAltName for the host (RFC 6125 §6.4.4), so
    the live-chain check must too, or it would call a chain clients refuse "safe". The accepted
    twin is ``test_a_safe_rule_is_published_signed_and_verifiable``."""
    host = tls_host_factory("api.example.test", common_name_only=True)
    _setup(live_server, host, [(host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    response = _publish(live_server)
    assert response.status_code == 409, response.text
    problems = str(response.json()["problems"])
    assert "cannot see the live chain" in problems and "mismatch" in problems


def test_force_needs_a_reason_and_is_audited(live_server: LiveServer, tls_host: TLSHost) -> None:
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf key")])
    assert _publish(live_server, force=True).status_code == 422
    response = _publish(live_server, force=True, reason="INC-42: emergency pin")
    assert response.status_code == 200 and response.json()["forced"]
    assert _served(live_server).version == 1
    with live_server.client() as client:
        entry = client.get("/v1/admin/audit", params={"target": f"channel:{CHANNEL}"}).json()[0]
        history = client.get(f"/v1/admin/channels/{CHANNEL}/history").json()
    assert entry["action"] == "publish" and entry["reason"] == "INC-42: emergency pin"
    assert entry["detail"]["forced"] and entry["detail"]["overridden_problems"]
    assert history[0]["forced"] and history[0]["reason"] == "INC-42: emergency pin"


def test_a_dry_run_shows_the_change_and_publishes_nothing(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    backup, replacement = backup_pin(), backup_pin()
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup, "backup")])
    assert _publish(live_server).status_code == 200
    with live_server.client() as client:
        base = f"/v1/admin/channels/{CHANNEL}/rules/{tls_host.name}/pins"
        client.post(base, json={"pin": replacement, "label": "new backup"})
        client.request("DELETE", base, params={"pin": backup})
    outcome = _publish(live_server, dry_run=True).json()
    assert outcome["dry_run"] and not outcome["published"] and outcome["safe"]
    assert outcome["changes"] == [
        {
            "pattern": tls_host.name,
            "change": "changed",
            "mode": "enforce",
            "pins_added": [replacement],
            "pins_removed": [backup],
        }
    ]
    assert _served(live_server).version == 1
    unsafe = _publish(live_server, dry_run=True)
    assert unsafe.status_code == 200


def _token(server: LiveServer, *scopes: str) -> str:
    with server.client() as client:
        response = client.post("/v1/admin/tokens", json={"name": "t", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_an_observation_posted_through_the_api_is_never_proof_of_the_live_chain(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    """The review's attack: pins that do not match the host, "proved" by a posted observation."""
    wrong = backup_pin()
    _setup(live_server, tls_host, [(wrong, "not the live key"), (backup_pin(), "backup")])
    observed = {"host": tls_host.name, "port": tls_host.port, "pins": [wrong]}
    writer, publisher = _token(live_server, "write"), _token(live_server, "publish")
    with live_server.client(writer) as client:
        assert client.post("/v1/admin/observations", json=observed).status_code == 403
    with live_server.client(publisher) as client:
        assert client.post("/v1/admin/observations", json=observed).status_code == 201
        refused = client.post(f"/v1/admin/channels/{CHANNEL}/publish", json={})
    assert refused.status_code == 409
    assert "no pin matches the chain" in str(refused.json()["problems"])
    live = refused.json()["problems"][0]["live_chain"]
    assert live["source"] == "connection" and live["pins"][0] == tls_host.leaf_pin
    # The twin: with the live key pinned, a posted observation of another chain changes nothing.
    with live_server.client() as client:
        pins = f"/v1/admin/channels/{CHANNEL}/rules/{tls_host.name}/pins"
        client.post(pins, json={"pin": tls_host.leaf_pin, "label": "leaf"})
    assert _publish(live_server).status_code == 200


def test_an_unreachable_host_is_refused_even_with_a_posted_observation(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    tls_host.stop()
    observed = {"host": tls_host.name, "port": tls_host.port, "pins": [tls_host.leaf_pin]}
    with live_server.client() as client:
        assert client.post("/v1/admin/observations", json=observed).status_code == 201
    response = _publish(live_server)
    assert response.status_code == 409
    assert "cannot see the live chain" in str(response.json()["problems"])


def _publish_then_lose_the_host(server: LiveServer, host: TLSHost) -> None:
    """Publish (a dry run records no observation), then stop the host."""
    _setup(server, host, [(host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    published = _publish(server).json()  # this server connects and records the chain
    assert published["published"] and published["checks"][0]["live_chain"]["source"] == "connection"
    host.stop()


def test_the_servers_own_recent_observation_stands_in_when_the_host_cannot_be_reached(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    _publish_then_lose_the_host(live_server, tls_host)
    response = _publish(live_server)
    assert response.status_code == 200, response.text
    live = response.json()["checks"][0]["live_chain"]
    assert live["source"] == "observation" and "live connection failed" in live["fallback"]
    with live_server.client() as client:
        entry = client.get("/v1/admin/audit", params={"target": f"channel:{CHANNEL}"}).json()[0]
    assert entry["action"] == "publish"
    assert "live connection failed" in entry["detail"]["live_chains"][tls_host.name]["fallback"]


def test_an_old_observation_does_not_stand_in(
    live_server_factory: Callable[..., LiveServer], tls_host: TLSHost
) -> None:
    server = live_server_factory(observation_max_age=timedelta(0))
    _publish_then_lose_the_host(server, tls_host)
    response = _publish(server)
    assert response.status_code == 409
    assert "cannot see the live chain" in str(response.json()["problems"])


def test_rollback_republishes_old_rules_as_a_new_version(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    first_backup, second_backup = backup_pin(), backup_pin()
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (first_backup, "backup")])
    assert _publish(live_server).json()["version"] == 1
    pins = f"/v1/admin/channels/{CHANNEL}/rules/{tls_host.name}/pins"
    with live_server.client() as client:
        client.post(pins, json={"pin": second_backup, "label": "backup 2"})
        assert _publish(live_server).json()["version"] == 2
        response = client.post(f"/v1/admin/channels/{CHANNEL}/rollback", json={"to_version": 1})
        assert response.status_code == 200, response.text
        outcome = response.json()
        assert outcome["version"] == 3 and outcome["republished_from"] == 1
        assert outcome["changes"][0]["pins_removed"] == [second_backup]
        draft = client.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"][0]["pins"]
        missing = client.post(f"/v1/admin/channels/{CHANNEL}/rollback", json={"to_version": 9})
    pinset = _served(live_server)
    assert pinset.version == 3
    assert set(pinset.rules[0].pins) == {tls_host.leaf_pin, first_backup}
    assert [pin["pin"] for pin in draft] == [tls_host.leaf_pin, first_backup]
    assert missing.status_code == 404


def test_rollback_to_rules_the_host_no_longer_serves_is_refused(
    live_server: LiveServer, tls_host_factory: Callable[[str], TLSHost]
) -> None:
    old_host = tls_host_factory("api.example.test")
    _setup(live_server, old_host, [(old_host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    assert _publish(live_server).status_code == 200
    new_host = tls_host_factory("api.example.test")  # the key was rotated
    rule = f"/v1/admin/channels/{CHANNEL}/rules/{old_host.name}"
    with live_server.client() as client:
        client.patch(rule, json={"probe_port": new_host.port})
        client.post(rule + "/pins", json={"pin": new_host.leaf_pin, "label": "rotated leaf"})
        assert _publish(live_server).status_code == 200
        refused = client.post(f"/v1/admin/channels/{CHANNEL}/rollback", json={"to_version": 1})
    assert refused.status_code == 409
    assert _served(live_server).version == 2


def test_a_disabled_rule_needs_no_pins_and_no_live_host(live_server: LiveServer) -> None:
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL})
        client.post(
            f"/v1/admin/channels/{CHANNEL}/rules",
            json={"pattern": "legacy.example.test", "mode": "disabled"},
        )
    assert _publish(live_server).status_code == 200
    assert _served(live_server).rules[0].mode == "disabled"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "bad name"}, 422),
        ({"name": "app/pinset"}, 422),
        ({"name": "ok", "refresh_seconds": 5}, 422),
        ({"name": "ok", "refresh_seconds": 600, "ttl_seconds": 300}, 422),
        ({"name": "ok", "report_uri": "ftp://x"}, 422),
        ({"name": "ok", "unknown": 1}, 422),
        ({"name": "ok"}, 201),
    ],
)
def test_channel_input_is_validated(live_server: LiveServer, body: dict, status: int) -> None:  # type: ignore[type-arg]
    with live_server.client() as client:
        assert client.post("/v1/admin/channels", json=body).status_code == status


def test_rule_and_pin_input_is_validated(live_server: LiveServer) -> None:
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL})
        rules = f"/v1/admin/channels/{CHANNEL}/rules"
        assert client.post(rules, json={"pattern": "*.com"}).status_code == 422
        assert (
            client.post(rules, json={"pattern": "a.example.test", "mode": "x"}).status_code == 422
        )
        assert client.post(rules, json={"pattern": "A.Example.TEST."}).status_code == 201
        assert client.post(rules, json={"pattern": "a.example.test"}).status_code == 409
        pins = f"{rules}/a.example.test/pins"
        assert client.post(pins, json={"pin": "sha1/AAAA"}).status_code == 422
        pin = backup_pin()
        assert client.post(pins, json={"pin": pin.removeprefix("sha256/")}).status_code == 201
        assert client.post(pins, json={"pin": pin}).status_code == 409
        assert client.post(f"{rules}/b.example.test/pins", json={"pin": pin}).status_code == 404
        assert (
            client.post("/v1/admin/channels/nope/rules", json={"pattern": "x.test"}).status_code
            == 404
        )


def test_an_online_key_rotation_done_offline_is_re_signed_and_walked_to(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    backup = backup_pin()
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup, "backup")])
    assert _publish(live_server).status_code == 200
    shipped = load_keyring(live_server.initialized.keyring_path.read_bytes())  # in the app
    # Offline: `pinwarden keys rotate-online --dir OFFLINE`, then `keys export-online`.
    assert live_server.initialized.rotate_online_offline() == 2
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": "unpublished"})
        resigned = client.post("/v1/admin/resign", json={"reason": "yearly rotation"})
        assert resigned.status_code == 200, resigned.text
        assert resigned.json() == {"keyring_version": 2, "resigned": {CHANNEL: 2}}
        actions = [entry["action"] for entry in client.get("/v1/admin/audit").json()[:2]]
    assert actions == ["resign", "resign-all"]
    raw = httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset").content

    def fetch(version: int) -> bytes:
        return httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/keyring/{version}").content

    with pytest.raises(KeyringError):  # the twin: the shipped keyring alone cannot verify it
        verify_pinset(raw, keyring=shipped)
    walked = walk_keyrings(shipped, fetch, 2)
    pinset = verify_pinset(raw, keyring=walked, min_version=1)
    assert pinset.version == 2 and pinset.keyring_version == 2
    assert set(pinset.rules[0].pins) == {tls_host.leaf_pin, backup}
    assert _publish(live_server).json()["version"] == 3  # later publishes use the new keys
    latest = httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset").content
    assert verify_pinset(latest, keyring=walked).version == 3


def test_a_keyring_rotated_offline_is_used_and_served_at_the_next_publish(
    live_server: LiveServer, tls_host: TLSHost
) -> None:
    _setup(live_server, tls_host, [(tls_host.leaf_pin, "leaf"), (backup_pin(), "backup")])
    assert _publish(live_server).status_code == 200
    shipped = load_keyring(live_server.initialized.keyring_path.read_bytes())
    assert live_server.initialized.rotate_online_offline() == 2  # `pinwarden keys …` offline
    assert _publish(live_server).json()["version"] == 2
    raw = httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset").content
    fetched = httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/keyring/2")
    assert fetched.status_code == 200  # served as soon as a pin set names it
    walked = walk_keyrings(shipped, lambda version: fetched.content, 2)
    assert verify_pinset(raw, keyring=walked).keyring_version == 2


def test_dropping_a_published_rule_is_refused_unless_forced(live_server: LiveServer) -> None:
    """Turning pinning off is a signed ``disabled`` rule, not an absence (docs/spec.md §3)."""
    rules = f"/v1/admin/channels/{CHANNEL}/rules"
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL})
        for host in ("a.example.test", "b.example.test"):
            client.post(rules, json={"pattern": host, "mode": "disabled"})
        assert _publish(live_server).status_code == 200
        assert client.delete(f"{rules}/b.example.test").status_code == 200
        refused = _publish(live_server)
        assert refused.status_code == 409
        assert "'disabled'" in refused.json()["error"]
        assert refused.json()["problems"][0]["pattern"] == "b.example.test"
        dry = _publish(live_server, dry_run=True).json()
        assert not dry["safe"] and dry["changes"][0]["change"] == "removed"
        forced = _publish(live_server, force=True, reason="CHG-9: host decommissioned")
        assert forced.status_code == 200 and forced.json()["forced"]
        entry = client.get("/v1/admin/audit", params={"target": f"channel:{CHANNEL}"}).json()[0]
    assert entry["reason"] == "CHG-9: host decommissioned"
    assert "removed" in entry["detail"]["overridden_problems"][0]["problems"][0]
    assert [rule.pattern for rule in _served(live_server).rules] == ["a.example.test"]


def test_rollback_to_a_version_without_a_published_rule_is_refused(
    live_server: LiveServer,
) -> None:
    rules = f"/v1/admin/channels/{CHANNEL}/rules"
    with live_server.client() as client:
        client.post("/v1/admin/channels", json={"name": CHANNEL})
        client.post(rules, json={"pattern": "a.example.test", "mode": "disabled"})
        assert _publish(live_server).status_code == 200
        client.post(rules, json={"pattern": "b.example.test", "mode": "disabled"})
        assert _publish(live_server).status_code == 200
        rollback = f"/v1/admin/channels/{CHANNEL}/rollback"
        assert client.post(rollback, json={"to_version": 1}).status_code == 409
        assert client.post(rollback, json={"to_version": 2}).status_code == 200  # the twin
