"""``DynamicPins`` as a state machine, against the in-memory pin-server simulator (no sockets).

Each case of the TUF threat model that the client meets has an accept case and its refusal.
The TLS-level twins of the main scenarios are in test_dynamic_tls.py.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pinwarden.client import (
    ChannelError,
    DynamicPins,
    EventKind,
    Mode,
    PinEvent,
    RefreshPolicy,
    StaticPins,
)
from pinwarden.client._trust import channel_of
from pinwarden.document import (
    DocumentError,
    ExpiredError,
    FormatError,
    KeyringError,
    RollbackError,
    SignatureError,
    SigningKey,
)
from tests.dynamic.dynamic_harness import (
    PIN_A,
    PIN_B,
    PIN_C,
    PIN_D,
    Recorder,
    Waiter,
    cached_document,
    with_payload,
    without_signatures,
    write_cached_document,
)
from tests.dynamic.pin_server_simulator import CHANNEL, PinServerSimulator
from tests.support.clock import FakeClock

HOST = "api.example.com"
OTHER = "static.example.com"


@pytest.fixture
def bootstrap() -> StaticPins:
    return StaticPins({HOST: [PIN_A, PIN_B], OTHER: [PIN_A, PIN_B]})


@pytest.fixture
def events() -> Recorder:
    return Recorder()


def kinds(events: Recorder) -> list[EventKind]:
    return [event.kind for event in events.snapshot()]


def make(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, **options: Any
) -> DynamicPins:
    options.setdefault("on_event", events)
    return sim.client(bootstrap, **options)


def pins_of(source: DynamicPins, host: str = HOST) -> tuple[str, ...]:
    rule = source.rule_for(host)
    assert rule is not None
    return rule.pins


# -- cold start ------------------------------------------------------------------------------


def test_cold_start_answers_on_bootstrap_pins_while_the_first_fetch_is_held(
    sim: PinServerSimulator, bootstrap: StaticPins
) -> None:
    """The background fetch starts at once and the pin server holds its answer: the rules are
    the bootstrap pins meanwhile, at once. The twin: once released, v1 is in force."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.hold()
    waiter = Waiter()
    with make(sim, bootstrap, Recorder(), on_event=waiter, background=True) as source:
        try:
            assert sim.wait_until_held()
            generation = source.generation
            assert source.version is None and pins_of(source) == (PIN_A, PIN_B)
            assert sim.held == 1  # the fetch is still pending
        finally:
            sim.release()
        assert waiter.wait_for(EventKind.FETCHED, version=1)
        assert source.version == 1 and pins_of(source) == (PIN_C, PIN_D)
        assert source.generation != generation


def test_without_background_nothing_is_fetched_before_refresh(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    assert source.version is None and pins_of(source) == (PIN_A, PIN_B)
    assert sim.requests == []
    assert source.refresh().version == 1 and sim.count("/pinset") == 1


def test_wait_for_first_fetch_fetches_before_returning(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events, wait_for_first_fetch=True)
    assert source.version == 1
    assert pins_of(source) == (PIN_C, PIN_D)
    assert sim.count("/pinset") == 1


def test_wait_for_first_fetch_with_the_server_down_starts_on_bootstrap(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.down = True
    source = make(sim, bootstrap, events, wait_for_first_fetch=True)
    assert source.version is None
    assert pins_of(source) == (PIN_A, PIN_B)
    assert kinds(events) == [EventKind.FETCH_FAILED]


# -- updates ---------------------------------------------------------------------------------


def test_an_update_is_applied_and_moves_the_generation(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.publish({HOST: [PIN_C, PIN_D]})
    before = source.generation
    event = source.refresh()
    assert event.kind is EventKind.FETCHED and event.version == 1
    assert "v1 in force (was the bootstrap pins)" in str(event)
    assert source.generation != before
    assert pins_of(source) == (PIN_C, PIN_D)
    assert pins_of(source, OTHER) == (PIN_A, PIN_B)  # not in the pin set: bootstrap rule


def test_an_unchanged_document_is_not_modified_and_keeps_the_generation(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    generation = source.generation
    assert source.refresh().kind is EventKind.NOT_MODIFIED
    assert source.generation == generation
    assert sim.count("/pinset") == 2


def test_a_later_version_replaces_the_earlier(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    sim.publish({HOST: [PIN_B, PIN_D]})
    assert source.refresh().version == 2
    assert pins_of(source) == (PIN_B, PIN_D)


def test_only_a_signed_disabled_rule_switches_a_host_off(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: {"pins": [], "mode": "disabled"}})
    source = make(sim, bootstrap, events)
    source.refresh()
    rule = source.rule_for(HOST)
    assert rule is not None and rule.mode is Mode.DISABLED
    # Absence is not "off": a host the pin set does not name keeps its bootstrap rule.
    other = source.rule_for(OTHER)
    assert other is not None and other.mode is Mode.ENFORCE


def test_a_host_in_no_rule_at_all_is_not_pinned(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    assert source.rule_for("unrelated.example.org") is None


# -- the threat model: injection, rollback, freeze, other channel, endless data ---------------


def test_a_document_signed_by_an_unknown_key_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.serve(sim.make_pinset({HOST: [PIN_C, PIN_D]}, signers=[SigningKey.generate()]))
    event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, SignatureError)
    assert event.error_type == "SignatureError"
    assert source.version is None and pins_of(source) == (PIN_A, PIN_B)


def test_a_document_signed_by_a_root_key_instead_of_the_online_key_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.serve(sim.make_pinset({HOST: [PIN_C, PIN_D]}, signers=sim.root_keys))
    assert isinstance(source.refresh().error, SignatureError)


def test_a_replayed_older_document_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.publish({HOST: [PIN_B, PIN_D]})
    source = make(sim, bootstrap, events)
    assert source.refresh().version == 2
    sim.serve(sim.documents[1])
    event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, RollbackError)
    assert source.version == 2 and pins_of(source) == (PIN_B, PIN_D)


def test_an_older_document_is_accepted_by_a_client_that_never_saw_a_newer_one(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    """The twin of the replay test: what refuses the replay is the floor, nothing else."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.publish({HOST: [PIN_B, PIN_D]})
    sim.serve(sim.documents[1])
    source = make(sim, bootstrap, events)
    assert source.refresh().version == 1


def test_a_replay_is_refused_even_after_the_cached_document_is_deleted(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.publish({HOST: [PIN_B, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    (sim.cache_of(tmp_path) / "pinset.json").unlink()
    sim.serve(sim.documents[1])
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version is None
    assert isinstance(restarted.refresh().error, RollbackError)
    assert restarted.version is None and pins_of(restarted) == (PIN_A, PIN_B)


def test_a_replay_written_into_the_cache_is_refused_on_load(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    older = sim.documents[1]
    sim.publish({HOST: [PIN_B, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    write_cached_document(sim.cache_of(tmp_path), older)
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    recovered = [e for e in events.snapshot() if e.kind is EventKind.CACHE_RECOVERED]
    assert isinstance(recovered[-1].error, RollbackError)
    assert restarted.version is None


def test_a_freeze_ends_on_the_bootstrap_pins(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(days=2))
    source = make(sim, bootstrap, events)
    source.refresh()
    generation = source.generation
    clock.advance(days=1, hours=23)
    assert source.refresh().kind is EventKind.NOT_MODIFIED  # still valid: still used
    assert pins_of(source) == (PIN_C, PIN_D)
    clock.advance(hours=1)  # the frozen document expires
    assert source.version is None
    assert pins_of(source) == (PIN_A, PIN_B)  # bootstrap pins, never no pinning
    assert source.generation != generation
    assert EventKind.FELL_BACK in kinds(events)
    event = source.refresh()  # the server still serves the expired document
    assert event.kind is EventKind.REFUSED and isinstance(event.error, ExpiredError)
    assert source.version is None


def test_the_server_down_for_hours_keeps_the_last_good_set_until_it_expires(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(hours=24))
    source = make(sim, bootstrap, events)
    source.refresh()
    sim.down = True
    for _ in range(10):
        clock.advance(hours=2)
        assert source.refresh().kind is EventKind.FETCH_FAILED
        assert source.version == 1 and pins_of(source) == (PIN_C, PIN_D)
    clock.advance(hours=4)
    assert source.version is None and pins_of(source) == (PIN_A, PIN_B)


def test_a_document_of_another_channel_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.serve(sim.make_pinset({HOST: [PIN_C, PIN_D]}, channel="com.example.other/prod"))
    event = source.refresh()
    assert isinstance(event.error, ChannelError) and isinstance(event.error, DocumentError)


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        ("https://pins.example.com/v1/channels/com.example.app/prod", "com.example.app/prod"),
        ("https://pins.example.com/v1/channels/com.example.app%2Fprod/", "com.example.app/prod"),
        ("https://cdn.example.com/pins/app", None),
        ("https://pins.example.com/v1/channels/", None),
    ],
)
def test_channel_of_a_url(url: str, channel: str | None) -> None:
    assert channel_of(url) == channel


@pytest.mark.parametrize(("signed_for", "accepted"), [("com.example.other/prod", True),
                                                      (CHANNEL, False)])
def test_the_channel_is_read_from_the_url(
    clock: FakeClock, bootstrap: StaticPins, events: Recorder, signed_for: str, accepted: bool
) -> None:
    """No ``channel=``: the client's URL names ``com.example.other/prod`` (not the simulator's
    default channel), so only a pin set signed for that channel is accepted."""
    sim = PinServerSimulator(clock, channel="com.example.other/prod")
    assert sim.url.endswith("/v1/channels/com.example.other/prod")
    sim.serve(sim.make_pinset({HOST: [PIN_C, PIN_D]}, channel=signed_for))
    event = make(sim, bootstrap, events).refresh()
    assert (event.version == 1) is accepted
    assert isinstance(event.error, ChannelError) is not accepted


@pytest.mark.parametrize(
    "url", ["https://cdn.example.com/pins/prod", "https://pins.example.com/v1/channels/"]
)
def test_a_url_that_names_no_channel_needs_the_channel_given(
    sim: PinServerSimulator, bootstrap: StaticPins, url: str
) -> None:
    """Spec §8: the channel check is a duty, never skipped because the URL did not say."""
    options: dict[str, Any] = {
        "keyring": sim.shipped_keyring, "bootstrap": bootstrap, "transport": sim,
        "background": False,
    }
    with pytest.raises(ValueError, match="channel="):
        DynamicPins(url, **options)
    with pytest.raises(ValueError, match="channel="):
        DynamicPins(url, channel="", **options)
    assert DynamicPins(url, channel=sim.channel, **options).version is None


@pytest.mark.parametrize(("served_channel", "accepted"), [("com.example.app/dev", False),
                                                          (None, True)])
def test_a_static_export_of_another_channel_cannot_switch_pinning_off(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder,
    served_channel: str | None, accepted: bool,
) -> None:
    """A CDN path without ``/v1/channels/``: the channel given is checked all the same."""
    sim.url = f"{sim.base}/pins/prod"
    sim.serve(sim.make_pinset({HOST: {"pins": [], "mode": "disabled"}}, channel=served_channel))
    source = make(sim, bootstrap, events, channel=sim.channel)
    event = source.refresh()
    if accepted:
        assert event.kind is EventKind.FETCHED
        assert source.rule_for(HOST).mode is Mode.DISABLED  # type: ignore[union-attr]
    else:
        assert event.kind is EventKind.REFUSED and isinstance(event.error, ChannelError)
        assert pins_of(source) == (PIN_A, PIN_B)
        assert source.rule_for(HOST).mode is Mode.ENFORCE  # type: ignore[union-attr]


@pytest.mark.parametrize("garbage", [b"", b"not json", b"{}", b'{"payload": "x"}'])
def test_garbage_is_refused_as_a_format_error(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, garbage: bytes
) -> None:
    source = make(sim, bootstrap, events)
    sim.serve(garbage)
    event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, FormatError)


def test_endless_data_is_cut_at_the_cap(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.serve(b"x" * (256 * 1024 + 1))
    assert source.refresh().kind is EventKind.FETCH_FAILED
    assert "cap" in events.snapshot()[-1].message


# -- per-rule expiry -------------------------------------------------------------------------


def test_an_expired_rule_gives_its_host_back_to_the_bootstrap_rule(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    soon = clock() + timedelta(hours=1)
    sim.publish({HOST: {"pins": [PIN_C, PIN_D], "expires": soon}, OTHER: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    generation = source.generation
    assert pins_of(source) == (PIN_C, PIN_D)
    clock.advance(minutes=59)
    assert source.generation == generation
    clock.advance(minutes=1)
    assert source.generation != generation
    assert pins_of(source) == (PIN_A, PIN_B)
    assert pins_of(source, OTHER) == (PIN_C, PIN_D)
    assert source.version == 1
    assert EventKind.RULE_EXPIRED in kinds(events)


# -- keyring rotation ------------------------------------------------------------------------


def test_an_online_key_rotation_is_followed(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert source.refresh().version == 1
    assert source.keyring_version == 2
    assert [e.version for e in events.snapshot() if e.kind is EventKind.KEYRING_ROTATED] == [2]


def test_root_and_online_rotations_are_walked_in_one_refresh(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.rotate_online_key()
    sim.rotate_root_keys()
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert source.refresh().version == 1
    assert source.keyring_version == 4
    assert sim.count("/keyring/2") == sim.count("/keyring/3") == sim.count("/keyring/4") == 1


def test_after_a_rotation_the_old_online_key_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    old_key = sim.online_keys
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    sim.serve(sim.make_pinset({HOST: [PIN_A, PIN_D]}, version=2, signers=old_key))
    assert isinstance(source.refresh().error, SignatureError)
    assert source.version == 1


def test_a_keyring_not_signed_by_the_old_root_keys_is_refused(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    source = make(sim, bootstrap, events)
    sim.root_keys = [SigningKey.generate() for _ in range(3)]  # an attacker's roots
    sim._publish_keyring(signers=sim.root_keys[:2])
    sim.publish({HOST: [PIN_C, PIN_D]})
    event = source.refresh()
    assert event.kind is EventKind.REFUSED and isinstance(event.error, SignatureError)
    assert source.keyring_version == 1


def test_a_keyring_walk_beyond_the_bound_is_refused_before_any_fetch(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    for _ in range(3):
        sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events, max_keyring_steps=2)
    assert isinstance(source.refresh().error, KeyringError)
    assert sim.count("/keyring/2") == 0


def test_followed_keyrings_are_reloaded_from_the_cache_offline(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    sim.down = True
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version == 1 and restarted.keyring_version == 2


def test_deleted_cached_keyrings_cannot_lower_the_keyring_floor(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    """A pin set signed by an online key that was rotated away stays refused."""
    old_key = sim.online_keys
    sim.rotate_online_key()
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    (sim.cache_of(tmp_path) / "keyring-2.json").unlink()
    (sim.cache_of(tmp_path) / "pinset.json").unlink()
    sim.keyrings.pop(2)  # and the attacker hides it from the client
    sim.serve(sim.make_pinset({HOST: [PIN_A, PIN_D]}, version=2, signers=old_key))
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    event = restarted.refresh()
    assert event.kind is EventKind.MISCONFIGURED and restarted.version is None  # a 404


# -- the cache -------------------------------------------------------------------------------


def test_a_restart_loads_the_cache_without_a_request(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    requests = len(sim.requests)
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version == 1 and pins_of(restarted) == (PIN_C, PIN_D)
    assert len(sim.requests) == requests
    assert EventKind.CACHE_LOADED in kinds(events)


def test_the_cached_etag_makes_the_first_refresh_conditional(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.refresh().kind is EventKind.NOT_MODIFIED


@pytest.mark.parametrize(
    "damage",
    ["truncate", "garbage", "flip a payload byte", "add a pin to the payload", "drop signatures"],
)
def test_a_corrupted_or_edited_cache_is_recovered_from(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path, damage: str
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    cache = sim.cache_of(tmp_path)
    raw = cached_document(cache)
    if damage == "truncate":
        (cache / "pinset.json").write_bytes((cache / "pinset.json").read_bytes()[:40])
    elif damage == "garbage":
        (cache / "pinset.json").write_bytes(b"\x00\xff" * 100)
    elif damage == "flip a payload byte":
        envelope = json.loads(raw)
        payload = envelope["payload"]
        envelope["payload"] = payload[:20] + ("A" if payload[20] != "A" else "B") + payload[21:]
        write_cached_document(cache, json.dumps(envelope).encode())
    elif damage == "add a pin to the payload":
        write_cached_document(
            cache, with_payload(raw, lambda payload: payload["rules"][0]["pins"].append(PIN_A))
        )
    else:
        write_cached_document(cache, without_signatures(raw))
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version is None and pins_of(restarted) == (PIN_A, PIN_B)
    recovered = [e for e in events.snapshot() if e.kind is EventKind.CACHE_RECOVERED]
    assert len(recovered) == 1
    assert restarted.refresh().version == 1  # and the next fetch heals the cache
    assert make(sim, bootstrap, events, cache_dir=str(tmp_path)).version == 1


def damage_floor(directory: Path, damage: str) -> None:
    if damage == "deleted":
        (directory / "floor.json").unlink()
    else:
        (directory / "floor.json").write_bytes(b"garbage")


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_lost_floor_cannot_roll_the_client_back_through_the_cache(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path, damage: str
) -> None:
    """An older signed pin set in the cache, the floor beside it damaged or deleted: not loaded,
    and the floor file is not rewritten lower; the next fetch restores both."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.publish({HOST: [PIN_B, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    cache = sim.cache_of(tmp_path)
    write_cached_document(cache, sim.documents[1])
    damage_floor(cache, damage)
    floor_file = (cache / "floor.json").read_bytes() if damage == "garbage" else None
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version is None and pins_of(restarted) == (PIN_A, PIN_B)
    assert kinds(events)[-1] is EventKind.CACHE_RECOVERED
    if floor_file is None:
        assert not (cache / "floor.json").exists()
    else:
        assert (cache / "floor.json").read_bytes() == floor_file
    assert restarted.refresh().version == 2  # the server heals the cache and the floor
    assert json.loads((cache / "floor.json").read_text())["pinset_version"] == 2
    assert make(sim, bootstrap, events, cache_dir=str(tmp_path)).version == 2


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_lost_floor_still_refuses_what_the_cache_proves_older(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path, damage: str
) -> None:
    """The floor never goes below a version the client can prove it saw: the cached v2 verifies,
    so a replayed v1 is refused even though v2 is not put in force; v2 itself is accepted."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    sim.publish({HOST: [PIN_B, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    damage_floor(sim.cache_of(tmp_path), damage)
    sim.serve(sim.documents[1])
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version is None
    assert isinstance(restarted.refresh().error, RollbackError)
    sim.serve(sim.documents[2])
    assert restarted.refresh().version == 2


def test_a_new_cache_has_no_floor_and_loses_nothing(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    """The twin: a floor never written beside no pin set is a new cache, not a lost floor."""
    source = make(sim, bootstrap, events, cache_dir=str(sim.cache_of(tmp_path) / "new"))
    assert EventKind.CACHE_RECOVERED not in kinds(events)
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert source.refresh().version == 1
    assert make(sim, bootstrap, events, cache_dir=str(sim.cache_of(tmp_path) / "new")).version == 1


def test_an_intact_cache_is_not_reported_as_recovered(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert EventKind.CACHE_RECOVERED not in kinds(events)


def test_an_expired_cache_is_not_used(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path,
    clock: FakeClock,
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]}, expires_in=timedelta(hours=1))
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    clock.advance(hours=2)
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version is None
    assert events.snapshot()[-1].kind is EventKind.FELL_BACK
    assert isinstance(events.snapshot()[-1].error, ExpiredError)


def test_a_cache_that_cannot_be_written_does_not_stop_the_pins(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    source = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    cache = sim.cache_of(tmp_path)
    cache.rmdir()
    cache.write_bytes(b"a file where the cache directory was")  # every write now fails
    sim.publish({HOST: [PIN_C, PIN_D]})
    assert source.refresh().version == 1
    assert EventKind.CACHE_WRITE_FAILED in kinds(events)


# -- scheduling ------------------------------------------------------------------------------


def test_failures_back_off_and_a_success_resets(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    policy = RefreshPolicy(jitter=0, backoff_base=timedelta(seconds=10))
    source = make(sim, bootstrap, events, policy=policy)
    sim.down = True
    delays: list[float] = []
    for _ in range(4):
        source.refresh()
        delays.append(source._outcome.next_delay or 0.0)
    assert all(5 <= d <= 10 for d in delays[:1]) and all(40 <= d <= 80 for d in delays[3:])
    sim.down = False
    sim.publish({HOST: [PIN_C, PIN_D]}, refresh_after=600)
    source.refresh()
    assert source._outcome.next_delay == 600


def test_a_fresh_cache_delays_the_first_background_fetch_until_the_hint(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path,
    clock: FakeClock,
) -> None:
    policy = RefreshPolicy(jitter=0)
    sim.publish({HOST: [PIN_C, PIN_D]}, refresh_after=3600)
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    clock.advance(minutes=20)
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path), policy=policy)
    assert restarted._first_delay() == 40 * 60
    assert make(sim, bootstrap, events, policy=policy)._first_delay() == 0  # no cache: at once


# -- events ----------------------------------------------------------------------------------


def test_a_failing_event_callback_does_not_break_the_client(
    sim: PinServerSimulator, bootstrap: StaticPins
) -> None:
    def explode(event: PinEvent) -> None:
        raise RuntimeError("app bug")

    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, Recorder(), on_event=explode)
    assert source.refresh().version == 1


class RaisingTransport:
    """The simulator, except that ``get`` raises ``error`` while it is set."""

    def __init__(self, sim: PinServerSimulator) -> None:
        self.sim = sim
        self.error: Exception | None = None

    def get(self, url: str, *, etag: str | None, max_bytes: int) -> Any:
        if self.error is not None:
            raise self.error
        return self.sim.get(url, etag=etag, max_bytes=max_bytes)

    def post_json(self, url: str, body: bytes) -> int:
        return self.sim.post_json(url, body)

    def open_stream(self, url: str) -> Any:
        return self.sim.open_stream(url)


@pytest.mark.parametrize(
    "error",
    [ValueError("Invalid header value"), UnicodeEncodeError("latin-1", "\u2603", 0, 1, "no"),
     RuntimeError("a transport bug")],
)
def test_refresh_never_raises_whatever_the_transport_raises(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, error: Exception
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    transport = RaisingTransport(sim)
    transport.error = error
    source = make(sim, bootstrap, events, transport=transport, wait_for_first_fetch=True)
    assert source.version is None and kinds(events) == [EventKind.FETCH_FAILED]
    event = source.refresh()
    assert event.kind is EventKind.FETCH_FAILED and event.error is error
    assert source._outcome.failures == 2  # and the loop backs off
    transport.error = None
    assert source.refresh().version == 1


def test_a_verifier_that_crashes_is_an_event_not_an_escape(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise TypeError("a verifier bug")

    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    monkeypatch.setattr("pinwarden.client._trust.verify_pinset", crash)
    event = source.refresh()
    assert event.kind is EventKind.FETCH_FAILED and isinstance(event.error, TypeError)
    monkeypatch.undo()
    assert source.refresh().version == 1


def test_a_tampered_cached_etag_is_not_sent_and_the_fetch_heals_it(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, tmp_path: Path
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    make(sim, bootstrap, events, cache_dir=str(tmp_path)).refresh()
    stored = json.loads((sim.cache_of(tmp_path) / "pinset.json").read_text())
    good_etag = stored["etag"]
    stored["etag"] = "x\r\nInjected: 1"
    (sim.cache_of(tmp_path) / "pinset.json").write_text(json.dumps(stored))
    seen: list[str | None] = []
    original_get = sim.get

    def recording_get(url: str, *, etag: str | None, max_bytes: int) -> Any:
        seen.append(etag)
        return original_get(url, etag=etag, max_bytes=max_bytes)

    sim.get = recording_get  # type: ignore[method-assign]
    restarted = make(sim, bootstrap, events, cache_dir=str(tmp_path))
    assert restarted.version == 1  # the document still verifies; only its ETag is dropped
    assert restarted.refresh().kind is EventKind.NOT_MODIFIED
    assert restarted.refresh().kind is EventKind.NOT_MODIFIED
    assert seen == [None, good_etag]
    assert json.loads((sim.cache_of(tmp_path) / "pinset.json").read_text())["etag"] == good_etag


# -- push ------------------------------------------------------------------------------------


def test_a_push_announcement_triggers_a_fetch(
    sim: PinServerSimulator, bootstrap: StaticPins
) -> None:
    fetched = threading.Event()

    def on_event(event: PinEvent) -> None:
        if event.kind is EventKind.FETCHED and event.version == 1:
            fetched.set()

    source = make(sim, bootstrap, Recorder(), on_event=on_event, push=True)
    try:
        for _ in range(500):  # the subscription thread opens its stream
            if sim.streams:
                break
            threading.Event().wait(0.01)
        sim.publish({HOST: [PIN_C, PIN_D]})
        assert fetched.wait(5)
        assert source.version == 1
    finally:
        source.close()
    assert sim.count("/events") == 1


def test_an_announcement_of_a_version_already_held_fetches_nothing(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder
) -> None:
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    source._announced(1)
    assert sim.count("/pinset") == 1
    sim.clock.advance(minutes=1)
    source._announced(2)
    assert sim.count("/pinset") == 2


class RecordingRefresher:
    """Stands in for the refresh loop: records the delay of each wake."""

    def __init__(self) -> None:
        self.wakes: list[float] = []

    def start(self) -> None: ...

    def wake(self, delay: float = 0.0) -> None:
        self.wakes.append(delay)

    def stop(self, timeout: float = 0.0) -> None: ...


def test_an_announcement_right_after_a_cold_start_is_followed_at_once(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    """The first fetch at start, then v2 announced seconds later: fetched at once, not a minute
    later. The twin: an announcement of the version in force fetches nothing."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    clock.advance(seconds=5)
    source._announced(1)
    assert sim.count("/pinset") == 1
    sim.publish({HOST: [PIN_B, PIN_D]})
    source._announced(2)
    assert sim.count("/pinset") == 2 and source.version == 2


def test_announcements_cannot_force_more_fetches_than_the_budget(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    """A burst of ``RefreshPolicy.burst`` fetches (3) then one per ``min_interval`` (60 s),
    however many versions a stream announces; an explicit ``refresh()`` takes no announcement
    token; without a refresh loop, a too-early announcement waits for the next refresh."""
    sim.publish({HOST: [PIN_C, PIN_D]})
    source = make(sim, bootstrap, events)
    source.refresh()
    clock.advance(seconds=10)
    for version in range(2, 50):
        source._announced(version)
    assert sim.count("/pinset") == 1 + 3
    clock.advance(seconds=60)
    source._announced(50)
    assert sim.count("/pinset") == 1 + 4  # a token came back: at once
    source._refresher = refresher = RecordingRefresher()
    clock.advance(seconds=15)
    source._announced(51)
    clock.advance(seconds=60)
    source._announced(52)
    assert refresher.wakes == [45.0, 0.0]


def test_announcements_respect_the_back_off_after_failures(
    sim: PinServerSimulator, bootstrap: StaticPins, events: Recorder, clock: FakeClock
) -> None:
    policy = RefreshPolicy(backoff_base=timedelta(minutes=4), jitter=0)
    source = make(sim, bootstrap, events, policy=policy)
    source._refresher = refresher = RecordingRefresher()
    sim.down = True
    source.refresh()
    source.refresh()  # two failures: the back-off is 4-8 minutes
    backoff = source._outcome.next_delay
    assert backoff is not None and backoff >= 240
    clock.advance(seconds=100)
    source._announced(1)
    clock.advance(seconds=backoff)
    source._announced(1)
    assert refresher.wakes == [pytest.approx(backoff - 100), 0.0]
