"""``rotate plan``'s step 2 judged from the server's fetch counts: real dynamic clients fetch
(push and polling), the server counts what it served by version, and the plan waits until the
share of fetches carrying the new pin reaches the threshold."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from pinwarden.client import DynamicPins
from pinwarden.rotation._certs import new_key
from pinwarden.rotation._channel import fetch_published
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab
from pinwarden.rotation._plan import plan_rotation, poll_window
from pinwarden.rotation._uptake import (
    Uptake,
    UptakeError,
    measure_uptake,
    read_uptake,
    versions_carrying,
)
from tests.rotation.cli_helpers import (
    assert_one_error_line,
    reaching_api,
    rotate_plan,
    run,
    write_key,
)

pytestmark = pytest.mark.network


def _plan(capsys: pytest.CaptureFixture[str], lab: Lab, *extra: str) -> dict[str, object]:
    options = ("--token", lab.admin_token, "--json", *extra)
    ran = run(capsys, *rotate_plan(lab, *reaching_api(lab), *options))
    assert ran.status == 0, ran.err
    plan: dict[str, object] = json.loads(ran.out)
    return plan


def _step_two(plan: dict[str, object]) -> dict[str, str]:
    return plan["steps"][1]  # type: ignore[index,no-any-return]


def _uptake(lab: Lab, pin: str) -> Uptake:
    """What the command reads, read the same way, over the last minute."""
    return read_uptake(lambda path: lab.call("GET", path), CHANNEL, API_HOST, pin, 60)


@pytest.fixture
def clients(fresh_lab: Lab) -> Iterator[tuple[list[DynamicPins], DynamicPins]]:
    """Two clients with push and one polling only, each holding the first pin set."""
    pushed = [fresh_lab.dynamic_pins(push=True) for _ in range(2)]
    polling = fresh_lab.dynamic_pins(push=False)
    yield pushed, polling
    for client in (*pushed, polling):
        client.close()


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    assert condition(), "timed out"  # type: ignore[operator]


def test_step_two_waits_for_clients_to_fetch_the_new_pin(
    fresh_lab: Lab,
    clients: tuple[list[DynamicPins], DynamicPins],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lab, (pushed, polling) = fresh_lab, clients
    first = polling.version
    key_file = write_key(tmp_path / "api.key.next", new_key())
    ran = run(capsys, "pins", "add", CHANNEL, API_HOST, "--from-key", key_file,
              "--server", lab.server_url, "--token", lab.admin_token)  # fmt: skip
    assert ran.status == 0, ran.err
    second = lab.publish()
    _wait_for(lambda: all(client.version == second for client in pushed))  # pushed, fetched
    plan = _plan(capsys, lab, "--new-key", key_file)
    pin = str(plan["new_pin"])
    # The three first fetches were of the old version: the share is far below 99 %.
    assert _step_two(plan)["state"] == "waiting"
    assert "below 99%" in _step_two(plan)["detail"], _step_two(plan)

    pinset = fetch_published(lab.server_url, CHANNEL, lab.keyring)
    later: datetime = pinset.issued + poll_window(pinset)
    uptake = _uptake(lab, pin)
    assert uptake.versions == (second,) and uptake.total > uptake.carrying >= 2
    # The refresh interval has passed, yet the counts say clients were still served the old pin.
    live = tuple(plan["live_pins"])  # type: ignore[arg-type]
    waiting = plan_rotation(API_HOST, pinset, live, new_pin=pin, now=later, uptake=uptake)
    assert waiting.steps[1].state == "waiting" and waiting.steps[2].state == "blocked"

    assert polling.version == first
    polling.refresh()  # its poll comes
    assert polling.version == second
    after = _uptake(lab, pin)
    assert (after.carrying, after.total) == (uptake.carrying + 1, uptake.total + 1)  # the poll
    ready = plan_rotation(
        API_HOST, pinset, live, new_pin=pin, now=later, uptake=after, threshold=after.share
    )
    assert ready.steps[1].state == "done" and ready.steps[2].state == "now"
    assert f"{after.carrying} of {after.total} pin-set fetches" in ready.steps[1].detail
    # Through the command, at a threshold the counts meet: no longer "below", the hint remains.
    met = _plan(capsys, lab, "--new-key", key_file, "--threshold", "1")
    assert "below" not in _step_two(met)["detail"] and "deploy after" in _step_two(met)["detail"]


def test_without_a_token_the_counts_are_not_read(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--new-pin", lab.backup_pin, "--json")
    ran = run(capsys, *rotate_plan(lab, *reaching_api(lab), *options))
    assert ran.status == 0, ran.err
    assert "fetch counts not checked" in json.loads(ran.out)["steps"][1]["detail"]


@pytest.mark.parametrize(
    "extra",
    [["--window", "59"], ["--window", "99999999"], ["--window", "x"], ["--threshold", "0"],
     ["--threshold", "nan"], ["--threshold", "101"], ["--token", "bad token"]],
    ids=["window-small", "window-huge", "window-text", "threshold-zero", "threshold-nan",
         "threshold-huge", "token-space"],
)  # fmt: skip
def test_bad_uptake_options_are_one_line(
    lab: Lab, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    options = ("--new-pin", lab.backup_pin, *extra)
    ran = run(capsys, *rotate_plan(lab, *reaching_api(lab), *options))
    assert_one_error_line(ran, 2)


@pytest.mark.parametrize(
    "history",
    [{}, [{"version": "1", "rules": []}], [{"version": 1, "rules": [{"pattern": "*.*.."}]}],
     [{"version": -1, "rules": []}], [{"version": True, "rules": []}],
     [{"version": 1, "rules": [{"pattern": API_HOST, "pins": [{"pin": 5}]}]}]],
)  # fmt: skip
def test_a_malformed_history_is_an_uptake_error(history: object) -> None:
    with pytest.raises(UptakeError):
        versions_carrying(history, API_HOST, "sha256/x")


@pytest.mark.parametrize(
    "report",
    [[], {"window_seconds": 60}, {"window_seconds": 60, "versions": [{"version": 1}]},
     {"window_seconds": 60, "versions": [{"version": 1, "fetches": 1e300}]}],
)  # fmt: skip
def test_a_malformed_report_is_an_uptake_error(report: object) -> None:
    with pytest.raises(UptakeError):
        measure_uptake(report, {1})
