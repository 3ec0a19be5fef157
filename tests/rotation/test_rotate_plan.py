"""``pinwarden rotate plan`` and ``pinwarden pins add --from-key``: a planned rotation, step by
step, against a live host and a live pin server."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from pinwarden.rotation._certs import new_key
from pinwarden.rotation._channel import fetch_published
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab
from pinwarden.rotation._plan import plan_rotation, poll_window
from tests.rotation.cli_helpers import (
    assert_one_error_line,
    reaching_api,
    rotate_plan,
    run,
    write_key,
)

pytestmark = pytest.mark.network


def _plan(capsys: pytest.CaptureFixture[str], lab: Lab, *extra: str) -> dict[str, object]:
    ran = run(capsys, *rotate_plan(lab, *reaching_api(lab), "--json", *extra))
    assert ran.status in (0, 1), ran.err
    plan: dict[str, object] = json.loads(ran.out)
    plan["status"] = ran.status
    return plan


def _states(plan: dict[str, object]) -> list[str]:
    return [step["state"] for step in plan["steps"]]  # type: ignore[attr-defined,index]


def _admin(lab: Lab, *argv: str) -> list[str]:
    return [*argv, "--server", lab.server_url, "--token", lab.admin_token]


def test_pins_add_from_key_publishes_the_next_keys_pin(
    fresh_lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    next_key = new_key()
    key_file = write_key(tmp_path / "api.key.next", next_key)
    ran = run(
        capsys,
        *_admin(
            fresh_lab,
            "pins",
            "add",
            CHANNEL,
            API_HOST,
            "--from-key",
            key_file,
            "--label",
            "next key",
        ),
    )
    assert ran.status == 0, ran.err
    expected = write_key(tmp_path / "check.pem", next_key)
    assert run(capsys, "pin", expected).out.split()[0] in ran.out
    rules = fresh_lab.call("GET", f"/channels/{CHANNEL}")["rules"]
    assert {pin["label"] for pin in rules[0]["pins"]} >= {"next key"}


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"\x00" * 10, b"x" * (4 * 1024 * 1024 + 1)],
    ids=["empty", "garbage", "nul", "huge"],
)
def test_pins_add_from_a_file_that_is_no_key_is_bad_input(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    key_file = tmp_path / "api.key.next"
    key_file.write_bytes(content)
    ran = run(capsys, *_admin(lab, "pins", "add", CHANNEL, API_HOST, "--from-key", str(key_file)))
    assert_one_error_line(ran, 2, "api.key.next")


def test_pins_add_encrypted_key_says_so(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "encrypted.key"
    key_file.write_bytes(
        new_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    ran = run(capsys, *_admin(lab, "pins", "add", CHANNEL, API_HOST, "--from-key", str(key_file)))
    assert_one_error_line(ran, 2, "encrypted")


@pytest.mark.parametrize("pin_given", [True, False])
def test_pins_add_takes_a_pin_or_a_key_file_not_both_or_neither(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str], pin_given: bool
) -> None:
    key_file = write_key(tmp_path / "k.pem", new_key())
    argv = ["pins", "add", CHANNEL, API_HOST, *([lab.backup_pin] if pin_given else [])]
    argv += ["--from-key", key_file] if pin_given else []
    assert_one_error_line(run(capsys, *_admin(lab, *argv)), 2, "--from-key")


def test_a_planned_rotation_walks_through_the_four_steps(
    fresh_lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = fresh_lab
    next_key = new_key()
    key_file = write_key(tmp_path / "api.key.next", next_key)
    first = _plan(capsys, lab, "--new-key", key_file)
    assert first["status"] == 0 and _states(first) == ["now", "blocked", "blocked", "blocked"]

    assert (
        run(capsys, *_admin(lab, "pins", "add", CHANNEL, API_HOST, "--from-key", key_file)).status
        == 0
    )
    lab.publish()
    published = _plan(capsys, lab, "--new-key", key_file)
    assert _states(published)[:3] == ["done", "waiting", "blocked"]

    # Without a token, step 2 is judged from the refresh hint alone: the same plan, once that
    # time has passed (the fetch counts: test_rotate_uptake.py).
    pinset = fetch_published(lab.server_url, CHANNEL, lab.keyring)
    later = pinset.issued + poll_window(pinset)
    live = tuple(published["live_pins"])  # type: ignore[arg-type]
    pin = str(published["new_pin"])
    assert plan_rotation(API_HOST, pinset, live, new_pin=pin, now=later).steps[1].state == "done"
    assert (
        plan_rotation(API_HOST, pinset, live, new_pin=pin, now=later - timedelta(seconds=1))
        .steps[1]
        .state
        == "waiting"
    )

    lab.api.serve(lab.new_certificate(next_key))  # deploy
    deployed = _plan(capsys, lab, "--new-key", key_file)
    assert deployed["status"] == 0 and _states(deployed)[2:] == ["done", "now"]

    lab.remove_pin(lab.live.pin)
    lab.publish()
    retired = _plan(capsys, lab, "--new-key", key_file)
    assert _states(retired) == ["done", "done", "done", "done"]


def test_an_unpinned_live_key_is_a_problem_and_fails(
    fresh_lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_lab.api.serve(fresh_lab.new_certificate())  # a key nobody pinned: an emergency
    plan = _plan(capsys, fresh_lab)
    assert plan["status"] == 1
    assert "matches no pin" in str(plan["problems"])


def test_the_planned_backup_is_found_without_naming_a_key(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(capsys, lab)
    assert plan["status"] == 0 and plan["new_pin"] == lab.backup_pin
    assert _states(plan)[0] == "done"


def test_a_host_failing_normal_validation_is_a_network_error(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without the API's CA: the chain does not validate.
    options = ("--port", str(lab.api.port), "--connect-to", "127.0.0.1")
    ran = run(capsys, *rotate_plan(lab, *options))
    assert_one_error_line(ran, 3, "fails normal validation")


@pytest.mark.parametrize(
    "extra",
    [
        ["--port", "0"],
        ["--port", "70000"],
        ["--new-pin", "sha256/short"],
        ["--new-pin", "\udcff"],
        ["--new-key", "/nonexistent/key.pem"],
    ],
    ids=["port-zero", "port-huge", "bad-pin", "surrogate", "missing-key"],
)
def test_bad_plan_input_is_one_line(
    lab: Lab, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    ran = run(capsys, *rotate_plan(lab, *extra))
    assert_one_error_line(ran, 2)


def test_no_rule_for_the_host_is_a_problem(lab: Lab) -> None:
    pinset = fetch_published(lab.server_url, CHANNEL, lab.keyring)
    plan = plan_rotation("www.bank.test", pinset, (), now=pinset.issued)
    assert plan.steps == () and "no rule" in plan.problems[0]
    assert replace(plan, problems=()).problems == ()
    assert httpx.get(f"{lab.channel_url}/pinset", timeout=10).status_code == 200
