"""Channels sharing one ``cache_dir``: each keeps its own pin set and version floor (docs/spec.md
§8), and a cache of the older one-channel layout keeps loading."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from pinwarden.client import EventKind, StaticPins
from pinwarden.client._cache import PinCache, channel_directory_name
from pinwarden.client._trust import claimed_channel
from pinwarden.document import RollbackError
from tests.dynamic.dynamic_harness import PIN_A, PIN_B, PIN_C, PIN_D, Recorder
from tests.dynamic.pin_server_simulator import PinServerSimulator
from tests.support.clock import FakeClock

HOST = "api.example.com"
BOOTSTRAP = StaticPins({HOST: [PIN_A, PIN_B]})


@pytest.fixture
def channel_a(clock: FakeClock) -> PinServerSimulator:
    sim = PinServerSimulator(clock, channel="com.example.app/a")
    for _ in range(10):
        sim.publish({HOST: [PIN_C, PIN_D]})
    return sim


@pytest.fixture
def channel_b(channel_a: PinServerSimulator, clock: FakeClock) -> PinServerSimulator:
    """Another channel of the same server: the same keys, its own versions (1 to 3)."""
    sim = PinServerSimulator(clock, channel="com.example.app/b")
    sim.root_keys, sim.online_keys, sim.keyrings = (
        channel_a.root_keys, channel_a.online_keys, channel_a.keyrings
    )
    for _ in range(3):
        sim.publish({HOST: [PIN_B, PIN_D]})
    return sim


def test_two_channels_sharing_a_cache_dir_keep_their_own_pins_and_floors(
    channel_a: PinServerSimulator, channel_b: PinServerSimulator, tmp_path: Path
) -> None:
    """Channel B's v3 is not a rollback below channel A's v10, and neither deletes the other's
    pin set; after a restart each loads its own. The twin: B's own floor still refuses B's v2."""
    assert channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).refresh().version == 10
    b = channel_b.client(BOOTSTRAP, cache_dir=str(tmp_path))
    assert b.refresh().version == 3
    assert channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).version == 10
    assert channel_b.client(BOOTSTRAP, cache_dir=str(tmp_path)).version == 3
    channel_b.serve(channel_b.documents[2])
    assert isinstance(b.refresh().error, RollbackError)


def move_to_the_older_layout(sim: PinServerSimulator, cache_dir: Path) -> None:
    """Put the channel's files where the one-channel layout kept them: in ``cache_dir`` itself."""
    channel_dir = sim.cache_of(cache_dir)
    for path in channel_dir.iterdir():
        os.replace(path, cache_dir / path.name)
    channel_dir.rmdir()


def test_a_cache_of_the_older_layout_keeps_loading_with_its_floor(
    channel_a: PinServerSimulator, tmp_path: Path
) -> None:
    channel_a.rotate_online_key()
    channel_a.publish({HOST: [PIN_C, PIN_D]})
    channel_a.publish({HOST: [PIN_C, PIN_D]})
    channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).refresh()
    move_to_the_older_layout(channel_a, tmp_path)
    events = Recorder()
    restarted = channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path), on_event=events)
    assert restarted.version == 12 and restarted.keyring_version == 2
    assert [event.kind for event in events.snapshot()] == [EventKind.CACHE_LOADED]
    assert not (tmp_path / "pinset.json").exists() and not (tmp_path / "floor.json").exists()
    assert (channel_a.cache_of(tmp_path) / "pinset.json").exists()
    (channel_a.cache_of(tmp_path) / "pinset.json").unlink()  # the floor moved with it:
    channel_a.serve(channel_a.documents[11])
    again = channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path))
    assert isinstance(again.refresh().error, RollbackError)


def test_an_older_layout_cache_of_another_channel_is_left_to_that_channel(
    channel_a: PinServerSimulator, channel_b: PinServerSimulator, tmp_path: Path
) -> None:
    channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).refresh()
    move_to_the_older_layout(channel_a, tmp_path)
    b = channel_b.client(BOOTSTRAP, cache_dir=str(tmp_path))
    assert b.version is None and (tmp_path / "pinset.json").exists()
    assert b.refresh().version == 3  # A's floor (10) did not come along
    assert channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).version == 10


def test_an_older_floor_without_a_pin_set_is_kept(
    channel_a: PinServerSimulator, tmp_path: Path
) -> None:
    """The pin set was deleted before the upgrade: the floor alone still refuses a replay."""
    channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).refresh()
    move_to_the_older_layout(channel_a, tmp_path)
    (tmp_path / "pinset.json").unlink()
    channel_a.serve(channel_a.documents[9])
    restarted = channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path))
    assert isinstance(restarted.refresh().error, RollbackError)


@pytest.mark.parametrize(
    "channel",
    [".", "..", "../../etc", "a/b", "x" * 256, "%2e%2e", "CON", "a\\b", "a\x00b", "\ud800",
     "\ud800" * 256],
)
def test_a_channel_directory_stays_inside_the_cache_dir(channel: str, tmp_path: Path) -> None:
    name = channel_directory_name(channel)
    assert "/" not in name and "\\" not in name and name.startswith("channel-")
    assert len(name.encode()) <= 255
    cache = PinCache(tmp_path / name)
    assert cache.directory.parent == tmp_path
    assert channel_directory_name(channel) != channel_directory_name(channel + "x")


def payload_document(payload: object) -> bytes:
    encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return json.dumps({"payload": encoded, "signatures": []}).encode()


@pytest.mark.parametrize(
    ("raw", "channel"),
    [
        (payload_document({"channel": "com.example.app/a"}), "com.example.app/a"),
        (payload_document({"channel": 7}), None),
        (payload_document(["channel"]), None),
        (b"", None),
        (b"\x00\xff", None),
        (b'{"payload": 1}', None),
        (b'{"payload": "!!!"}', None),
        (b"[" * 100_000 + b"]" * 100_000, None),
        (payload_document({"channel": "\ud800"}), "\ud800"),
    ],
)
def test_the_claimed_channel_of_a_hostile_cache_file(raw: bytes, channel: str | None) -> None:
    """Read unverified, only to place an older cache: never an exception, whatever the bytes."""
    assert claimed_channel(raw) == channel


@pytest.mark.parametrize("damage", ["pinset.json", "floor.json", "keyring-2.json"])
def test_a_damaged_cache_of_the_older_layout_is_moved_and_recovered_from(
    channel_a: PinServerSimulator, tmp_path: Path, damage: str
) -> None:
    """Garbage in an older-layout file: no exception, bootstrap pins, and a fetch heals it."""
    channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path)).refresh()
    move_to_the_older_layout(channel_a, tmp_path)
    (tmp_path / damage).write_bytes(b"\x00\xff[[[" * 1000)
    events = Recorder()
    restarted = channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path), on_event=events)
    assert EventKind.CACHE_RECOVERED in [event.kind for event in events.snapshot()]
    # A damaged keyring past the shipped one is skipped: the pin set still verifies under v1.
    assert restarted.version == (10 if damage.startswith("keyring") else None)
    assert restarted.refresh().kind in (EventKind.FETCHED, EventKind.NOT_MODIFIED)
    assert restarted.version == 10


def test_a_cache_dir_that_cannot_be_used_is_an_event_not_a_crash(
    channel_a: PinServerSimulator, tmp_path: Path
) -> None:
    """A cache_dir under a file (or read-only, or full): the client starts without a cache, says
    so, and still fetches and enforces; its twin with a usable directory keeps its floor."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    events = Recorder()
    client = channel_a.client(BOOTSTRAP, cache_dir=str(blocker / "cache"), on_event=events)
    (failed,) = [e for e in events.snapshot() if e.kind is EventKind.CACHE_WRITE_FAILED]
    assert "cannot be used" in failed.message and "not-a-directory" in failed.message
    assert client.refresh().version == 10 and client.rule_for(HOST) is not None
    usable = channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path / "cache"))
    assert usable.refresh().version == 10
    assert channel_a.client(BOOTSTRAP, cache_dir=str(tmp_path / "cache")).version == 10
