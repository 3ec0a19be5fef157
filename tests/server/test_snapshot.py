"""The rule snapshot stored in every published row: typed, versioned, and old rows stay readable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pinwarden.document import load_keyring, verify_pinset
from pinwarden.server._models import Channel, PublishedDocument, utc_now
from pinwarden.server._snapshot import (
    SNAPSHOT_VERSION,
    RuleSnapshot,
    SnapshotError,
    SnapshotPin,
    snapshots_from_json,
)
from pinwarden.server._store import etag_for
from tests.server.server_harness import LiveServer

CHANNEL = "com.example.app/prod"
PIN_A = "sha256/" + "A" * 43 + "="
PIN_B = "sha256/" + "B" * 43 + "="

# A rule exactly as servers before the snapshot model stored it (``rule_view``): no version.
ROW_IN_THE_CURRENT_SHAPE: dict[str, Any] = {
    "pattern": "api.example.com",
    "mode": "enforce",
    "pins": [{"pin": PIN_A, "label": "leaf key"}, {"pin": PIN_B, "label": "backup key"}],
    "probe_host": "127.0.0.1",
    "probe_port": 8443,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


def test_a_row_in_the_current_shape_is_read_as_version_1() -> None:
    snapshot = RuleSnapshot.from_json(ROW_IN_THE_CURRENT_SHAPE)
    assert snapshot == RuleSnapshot(
        "api.example.com",
        "enforce",
        (SnapshotPin(PIN_A, "leaf key"), SnapshotPin(PIN_B, "backup key")),
        "127.0.0.1",
        8443,
    )
    assert snapshot.view() == ROW_IN_THE_CURRENT_SHAPE  # the admin API shows what it showed


def test_a_snapshot_is_written_with_its_version_and_read_back_equal() -> None:
    snapshot = RuleSnapshot.from_json(ROW_IN_THE_CURRENT_SHAPE)
    stored = snapshot.to_json()
    assert stored == {"snapshot_version": SNAPSHOT_VERSION, **ROW_IN_THE_CURRENT_SHAPE}
    assert RuleSnapshot.from_json(stored) == snapshot


def test_absent_optional_members_take_their_defaults_and_unknown_ones_are_ignored() -> None:
    snapshot = RuleSnapshot.from_json(
        {"pattern": "x.example", "mode": "disabled", "pins": [{"pin": PIN_A}], "later": 1}
    )
    assert snapshot == RuleSnapshot("x.example", "disabled", (SnapshotPin(PIN_A, ""),))
    assert snapshot.probe_host is None and snapshot.probe_port == 443


def test_a_snapshot_from_a_newer_server_is_refused_with_a_next_step() -> None:
    with pytest.raises(SnapshotError, match=r"newer server .* upgrade this server"):
        RuleSnapshot.from_json({**ROW_IN_THE_CURRENT_SHAPE, "snapshot_version": 2})


def _deep(depth: int) -> Any:
    nested: Any = []
    for _ in range(depth):
        nested = [nested]
    return nested


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("a string", "is an object, not str"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "snapshot_version": True}, "not a version number"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "snapshot_version": "1"}, "not a version number"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "snapshot_version": 0}, "not a version number"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pattern": None}, "'pattern' is missing, not a string"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "mode": 7}, "'mode' is the number 7, not a string"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pins": {"pin": PIN_A}}, "'pins' is a dict, not a list"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pins": [PIN_A]}, "a snapshot pin is an object, not str"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pins": [{"pin": 1}]}, "'pin' is the number 1"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pins": [{"pin": PIN_A, "label": []}]}, "'label' is a"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "probe_port": True}, "'probe_port' is a bool"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "probe_port": 70_000}, "is the number 70000, not a TCP"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "probe_port": 10**400}, "'probe_port' is a int"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "probe_host": ["x"]}, "'probe_host' is a list"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pattern": _deep(100_000)}, "'pattern' is a list"),
        ({**ROW_IN_THE_CURRENT_SHAPE, "pattern": "x" * 10**6 + "\0"}, None),  # stored text
    ],
)
def test_a_malformed_snapshot_is_one_clear_error(stored: object, expected: str | None) -> None:
    if expected is None:
        assert len(RuleSnapshot.from_json(stored).pattern) == 10**6 + 1
        return
    with pytest.raises(SnapshotError) as caught:
        RuleSnapshot.from_json(stored)
    message = str(caught.value)
    assert expected in message and "\n" not in message and len(message) < 200


def test_published_rules_are_a_list() -> None:
    with pytest.raises(SnapshotError, match="a list, not dict"):
        snapshots_from_json({"rules": []})
    assert snapshots_from_json([]) == ()


def _old_row(channel: Channel, version: int, rules: list[dict[str, Any]]) -> PublishedDocument:
    body = b'{"written": "by an older server"}'
    return PublishedDocument(
        channel_id=channel.id,
        version=version,
        body=body,
        etag=etag_for(version, body),
        rules=rules,
        keyring_version=1,
        expires_at=utc_now() + timedelta(days=1),
        published_by="older server",
    )


def test_a_row_stored_before_the_snapshot_version_can_be_rolled_back_to_and_re_signed(
    live_server: LiveServer,
) -> None:
    disabled: dict[str, Any] = {
        "pattern": "legacy.example.test",
        "mode": "disabled",
        "pins": [],
        "probe_host": None,
        "probe_port": 443,
    }
    with live_server.client() as client:
        assert client.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
    with live_server.services.sessions.begin() as session:
        channel = session.query(Channel).filter_by(name=CHANNEL).one()
        session.add(_old_row(channel, 1, [disabled]))
    with live_server.client() as client:
        history = client.get(f"/v1/admin/channels/{CHANNEL}/history").json()
        assert history[0]["rules"] == [disabled]
        rolled = client.post(f"/v1/admin/channels/{CHANNEL}/rollback", json={"to_version": 1})
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["version"] == 2 and rolled.json()["republished_from"] == 1
        assert client.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"] == [disabled]
        resigned = client.post("/v1/admin/resign", json={"reason": "test"})
        assert resigned.status_code == 200, resigned.text
        assert resigned.json()["resigned"] == {CHANNEL: 3}
    keyring = load_keyring(live_server.initialized.keyring_path.read_bytes())
    served = verify_pinset(
        httpx.get(f"{live_server.url}/v1/channels/{CHANNEL}/pinset").content, keyring=keyring
    )
    assert served.version == 3
    assert [(rule.pattern, rule.mode) for rule in served.rules] == [
        ("legacy.example.test", "disabled")
    ]
    with live_server.services.sessions() as session:
        stored = session.query(PublishedDocument).filter_by(version=3).one().rules
    assert stored == [{"snapshot_version": SNAPSHOT_VERSION, **disabled}]


def test_a_row_this_server_cannot_read_is_a_clear_error_not_a_traceback(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:
        assert client.post("/v1/admin/channels", json={"name": CHANNEL}).status_code == 201
    with live_server.services.sessions.begin() as session:
        channel = session.query(Channel).filter_by(name=CHANNEL).one()
        newer = {**ROW_IN_THE_CURRENT_SHAPE, "snapshot_version": SNAPSHOT_VERSION + 1}
        session.add(_old_row(channel, 1, [newer]))
    with live_server.client() as client:
        answer = client.post(f"/v1/admin/channels/{CHANNEL}/rollback", json={"to_version": 1})
    assert answer.status_code == 409
    assert answer.json()["error"].startswith("published version 1: a rule snapshot of version 2")
