"""The cache store: atomic writes, a floor kept apart that only rises, damage reported as such."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pinwarden.client._cache import CachedPinset, CacheError, PinCache, VersionFloor


def test_pinset_round_trip_keeps_bytes_and_etag(tmp_path: Path) -> None:
    cache = PinCache(tmp_path / "c")
    assert cache.load_pinset() is None
    cache.store_pinset(CachedPinset(b'{"signed": "bytes"}\n', '"v7"'))
    assert cache.load_pinset() == CachedPinset(b'{"signed": "bytes"}\n', '"v7"')


def test_the_checked_time_is_kept_and_must_carry_a_zone(tmp_path: Path) -> None:
    cache = PinCache(tmp_path)
    checked = datetime(2030, 1, 1, 12, 30, tzinfo=timezone.utc)
    cache.store_pinset(CachedPinset(b"doc", None, checked))
    assert cache.load_pinset() == CachedPinset(b"doc", None, checked)
    stored = json.loads((tmp_path / "pinset.json").read_text())
    stored["checked"] = "2030-01-01T12:30:00"
    (tmp_path / "pinset.json").write_text(json.dumps(stored))
    with pytest.raises(CacheError, match="time zone"):
        cache.load_pinset()


def test_directory_and_files_are_private(tmp_path: Path) -> None:
    cache = PinCache(tmp_path / "c")
    cache.store_pinset(CachedPinset(b"x", None))
    cache.raise_floor(VersionFloor(3, 1))
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    for name in ("pinset.json", "floor.json"):
        assert stat.S_IMODE((tmp_path / "c" / name).stat().st_mode) == 0o600


def test_a_crash_mid_write_leaves_the_old_cache_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = PinCache(tmp_path)
    cache.store_pinset(CachedPinset(b"old document", '"old"'))

    def crash(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        cache.store_pinset(CachedPinset(b"new document", '"new"'))
    monkeypatch.undo()
    assert cache.load_pinset() == CachedPinset(b"old document", '"old"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pinset.json"]  # no temporary left


def test_a_write_that_completes_replaces_the_old_cache(tmp_path: Path) -> None:
    cache = PinCache(tmp_path)
    cache.store_pinset(CachedPinset(b"old document", '"old"'))
    cache.store_pinset(CachedPinset(b"new document", '"new"'))
    assert cache.load_pinset() == CachedPinset(b"new document", '"new"')


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff garbage", b"[]", b'{"etag": null}', b'{"etag": 5, "document": ""}',
     b'{"etag": null, "document": "not base64!"}', b"x" * (1024 * 1024 + 1)],
)
def test_a_damaged_pinset_file_is_a_cache_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "pinset.json").write_bytes(content)
    with pytest.raises(CacheError):
        PinCache(tmp_path).load_pinset()


def test_the_floor_only_rises(tmp_path: Path) -> None:
    cache = PinCache(tmp_path)
    assert cache.load_floor() is None  # never stored: not the same as a stored zero
    assert cache.raise_floor(VersionFloor(5, 2)) == VersionFloor(5, 2)
    assert cache.raise_floor(VersionFloor(3, 4)) == VersionFloor(5, 4)
    assert PinCache(tmp_path).load_floor() == VersionFloor(5, 4)


def test_the_floor_survives_the_pinset_being_deleted(tmp_path: Path) -> None:
    cache = PinCache(tmp_path)
    cache.store_pinset(CachedPinset(b"doc", None))
    cache.raise_floor(VersionFloor(9, 1))
    cache.discard_pinset()
    assert cache.load_pinset() is None
    assert cache.load_floor() == VersionFloor(9, 1)


@pytest.mark.parametrize(
    "content", [b"{", b'{"pinset_version": -1, "keyring_version": 0}',
                b'{"pinset_version": true, "keyring_version": 0}', b'{"pinset_version": 1}'],
)
def test_a_damaged_floor_is_reported_and_rewritten_on_the_next_raise(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "floor.json").write_bytes(content)
    cache = PinCache(tmp_path)
    with pytest.raises(CacheError):
        cache.load_floor()
    cache.raise_floor(VersionFloor(2, 1))
    assert cache.load_floor() == VersionFloor(2, 1)


def test_a_concurrent_lower_raise_never_overwrites_a_higher_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-compare-write under a lock: the raise to v4 reads v3, and stalls before its write
    while the raise to v5 runs. Without the lock v5 lands first and v4 overwrites it."""
    PinCache(tmp_path).raise_floor(VersionFloor(3, 1))
    stalled, release = threading.Event(), threading.Event()
    load_floor = PinCache.load_floor

    def stall_after_reading(cache: PinCache) -> VersionFloor | None:
        stored = load_floor(cache)
        if threading.current_thread().name == "lower":
            stalled.set()
            release.wait(10)
        return stored

    monkeypatch.setattr(PinCache, "load_floor", stall_after_reading)
    lower = threading.Thread(
        target=PinCache(tmp_path).raise_floor, args=(VersionFloor(4, 1),), name="lower"
    )
    higher = threading.Thread(target=PinCache(tmp_path).raise_floor, args=(VersionFloor(5, 1),))
    lower.start()
    assert stalled.wait(10)
    higher.start()
    higher.join(0.5)  # with the lock it waits for the lower raise; without, it is done by now
    release.set()
    lower.join(10)
    higher.join(10)
    monkeypatch.undo()
    assert PinCache(tmp_path).load_floor() == VersionFloor(5, 1)


@pytest.mark.parametrize(
    "etag",
    ['"x"\r\nInjected: 1', "\u2603", '"caf\u00e9"', '"a b"', "", '"' + "a" * 300 + '"', "\x00"],
)
def test_an_etag_that_cannot_be_sent_back_is_dropped_on_load(tmp_path: Path, etag: str) -> None:
    cache = PinCache(tmp_path)
    cache.store_pinset(CachedPinset(b"doc", etag))
    assert cache.load_pinset() == CachedPinset(b"doc", None)


@pytest.mark.parametrize("etag", ['"v7"', 'W/"5f2a"', '"' + "a" * 254 + '"'])
def test_a_well_formed_etag_is_kept(tmp_path: Path, etag: str) -> None:
    cache = PinCache(tmp_path)
    cache.store_pinset(CachedPinset(b"doc", etag))
    assert cache.load_pinset() == CachedPinset(b"doc", etag)


def test_keyrings_are_listed_by_version_and_other_files_ignored(tmp_path: Path) -> None:
    cache = PinCache(tmp_path)
    for version in (10, 2, 3):
        cache.store_keyring(version, f"keyring {version}".encode())
    (tmp_path / "keyring-0.json").write_bytes(b"")
    (tmp_path / "keyring-x.json").write_bytes(b"")
    (tmp_path / "keyring-4.json.tmp").write_bytes(b"")
    assert cache.keyring_versions() == [2, 3, 10]
    assert cache.load_keyring(10) == b"keyring 10"
    with pytest.raises(CacheError):
        cache.load_keyring(11)
