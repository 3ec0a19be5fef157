"""The CT watch's parts on their own: the collapsed tree against the test log's recursive MTH,
tree heads and checkpoints, log lists (hostile ones too), certificate facts."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pinwarden.server.ct import (
    BadTreeHead,
    CollapsedTree,
    Fetcher,
    LogKey,
    LogListError,
    load_log_lists,
    logged_certificate,
    parse_checkpoint,
    parse_leaf,
    parse_tile,
    tile_path,
)
from tests.ct.ct_log import TestLog

NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def log() -> TestLog:
    log = TestLog()
    for index in range(70):
        log.add([f"h{index}.example.com"], precert=index % 5 == 0)
    return log


def test_the_collapsed_tree_and_its_right_edge_agree_with_the_recursive_tree(log: TestLog) -> None:
    tree = CollapsedTree()
    for size in range(1, 71):
        tree.append(log.entries[size - 1].hash)
        assert tree.root() == log.mth(0, size)
        edge = CollapsedTree.from_right_edge(
            size, log.entries[size - 1].hash, log.path(size - 1, 0, size)
        )
        assert edge.nodes == tree.nodes
        again = CollapsedTree.from_json(size, tree.to_json())
        assert again.root() == tree.root()
    with pytest.raises(ValueError):
        CollapsedTree(3, [b"\0" * 32])
    assert CollapsedTree().root() == log.mth(0, 0)


def test_tile_paths_follow_tlog_tiles() -> None:
    assert [tile_path(n) for n in (0, 5, 999, 1000, 1234067)] == [
        "000",
        "005",
        "999",
        "x001/000",
        "x001/x234/067",
    ]


def test_leaves_and_tiles_parse_to_the_same_hashes(log: TestLog) -> None:
    from_leaves = [parse_leaf(i, log.entries[i].leaf) for i in range(70)]
    from_tile = parse_tile(b"".join(e.tile_leaf for e in log.entries[:70]), 0, 70)
    assert [e.leaf_hash for e in from_leaves] == [e.leaf_hash for e in from_tile]
    assert [e.leaf_hash for e in from_leaves] == [e.hash for e in log.entries[:70]]
    with pytest.raises(ValueError):
        parse_tile(log.entries[0].tile_leaf[:-1], 0, 1)
    with pytest.raises(ValueError):
        parse_leaf(0, log.entries[0].leaf + b"\0")


def test_a_precertificate_and_its_certificate_have_one_tbs_hash_and_the_leafs_key() -> None:
    log = TestLog()
    key = ec.generate_private_key(ec.SECP256R1())
    log.add(["a.example.com", "b.example.com"], key, final=True)
    precert, final = (parse_leaf(i, log.entries[i].leaf) for i in (0, 1))
    assert precert.precert and not final.precert
    facts = [logged_certificate(entry) for entry in (precert, final)]
    assert facts[0].tbs_hash == facts[1].tbs_hash
    assert facts[0].names == facts[1].names == ("a.example.com", "b.example.com")
    from pinwarden._pins import spki_pin

    assert facts[0].pin == facts[1].pin == spki_pin(key)


def _head_of(log: TestLog) -> tuple[bytes, LogKey]:
    log.url = "https://ct.example.test/2026h1/"
    log.publish()
    return log.checkpoint(), LogKey(log.spki)


def test_checkpoints_verify_and_a_lie_does_not(log: TestLog) -> None:
    body, key = _head_of(log)
    head = parse_checkpoint(body, log.origin, key)
    assert (head.size, head.root) == (70, log.mth(0, 70))
    lines = body.decode().split("\n")
    for forged in (
        body.replace(b"\n70\n", b"\n71\n"),  # another size under the same signature
        "\n".join([lines[0], lines[1], base64.b64encode(b"\1" * 32).decode(), *lines[3:]]).encode(),
        body.split(b"\n\n")[0] + b"\n\n",  # no signature
        b"\xff" * 10,
        b"x" * 20_000,
        body.replace(b"ct.example.test/2026h1", b"other.example/log"),
    ):
        with pytest.raises(BadTreeHead):
            parse_checkpoint(forged, log.origin, key)
    other = LogKey(TestLog().spki)
    with pytest.raises(BadTreeHead):
        parse_checkpoint(body, log.origin, other)


def _lists(tmp_path: Path, *documents: Any) -> list[str]:
    paths = []
    for index, document in enumerate(documents):
        path = tmp_path / f"list{index}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        paths.append(str(path))
    return paths


def test_the_log_lists_are_joined_by_log_id_and_only_followed_logs_kept(tmp_path: Path) -> None:
    one, two, three, four = TestLog(), TestLog(), TestLog(), TestLog()
    for log in (one, two, three, four):
        log.url = "https://ct.example.test/log/"
    past = (NOW - timedelta(days=1)).isoformat()
    future = (NOW + timedelta(days=100)).isoformat()
    chrome = {
        "operators": [
            {
                "name": "a",
                "logs": [one.log_entry(tiled=False), two.log_entry(tiled=False, state="retired")],
                "tiled_logs": [
                    three.log_entry(
                        tiled=True,
                        temporal_interval={"start_inclusive": past, "end_exclusive": past},
                    )
                ],
            }
        ]
    }
    apple = {
        "operators": [
            {
                "name": "b",
                "logs": [
                    one.log_entry(tiled=False, state="readonly"),
                    {**one.log_entry(tiled=False), "log_id": base64.b64encode(b"x" * 32).decode()},
                ],
                "tiled_logs": [
                    four.log_entry(
                        tiled=True,
                        state="qualified",
                        temporal_interval={"start_inclusive": past, "end_exclusive": future},
                    )
                ],
            }
        ]
    }
    with Fetcher() as fetcher:
        logs, notes = load_log_lists(_lists(tmp_path, chrome, apple), fetcher, NOW)
    assert [(log.log_id, log.api, log.state) for log in logs] == [
        (one.log_id, "rfc6962", "usable"),
        (four.log_id, "static", "qualified"),
    ]
    assert logs[1].origin == "ct.example.test/log"
    assert any("not the SHA-256 of the key" in note for note in notes)


@pytest.mark.parametrize(
    "document",
    [
        "[" * 100_000,
        "not json",
        '{"operators": 5}',
        '"\\ud800"',
        json.dumps({"operators": [{"logs": [{"key": "\0", "log_id": 5, "state": {}}]}]}),
        json.dumps({"operators": [{"logs": [{"state": {"usable": {}}, "key": "!!"}]}]}),
        json.dumps({"operators": [{"logs": [[]], "tiled_logs": "x"}, 7]}),
        json.dumps(
            {"operators": [{"logs": [{"state": {"usable": {}}, "url": "http://evil.test/"}]}]}
        ),
        json.dumps({"operators": [{"logs": [{"state": {"usable": {}}, "url": 10**400}]}]}),
    ],
)
def test_a_hostile_log_list_is_refused_or_its_entries_skipped(
    tmp_path: Path, document: str
) -> None:
    with Fetcher() as fetcher:
        try:
            logs, _ = load_log_lists(_lists(tmp_path, document), fetcher, NOW)
        except LogListError as error:
            assert "\n" not in str(error)
        else:
            assert logs == []


def test_an_unreadable_list_is_a_note_while_another_is_read(tmp_path: Path) -> None:
    log = TestLog()
    log.url = "https://ct.example.test/"
    sources = [
        str(tmp_path / "missing.json"),
        "http://log-lists.example/list.json",
        *_lists(tmp_path, log.log_list(tiled=False)),
    ]
    with Fetcher() as fetcher:
        logs, notes = load_log_lists(sources, fetcher, NOW)
        assert len(logs) == 1 and "missing.json" in notes[0] and "plain http" in notes[1]
        with pytest.raises(LogListError):
            load_log_lists(sources[:1], fetcher, NOW)
