"""``pinwarden demo``: the whole story runs, each step printed, and ends as told."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest

from pinwarden.rotation._demo import DemoResult
from tests.rotation.cli_helpers import assert_one_error_line, run

pytestmark = pytest.mark.network


def test_the_demo_tells_the_story_and_it_ends_as_told(capsys: pytest.CaptureFixture[str]) -> None:
    ran = run(capsys, "demo")
    assert ran.status == 0, ran.out + ran.err
    lines = ran.out.splitlines()
    unpinned = next(line for line in lines if "unpinned app:" in line)
    pinned = next(line for line in lines if "pinned app:" in line and "unpinned" not in line)
    assert "200 OK" in unpinned and "Authorization: Bearer user-secret" in ran.out
    assert "refused by pinning" in pinned
    static = [line for line in lines if "static app:" in line]
    dynamic = [line for line in lines if "dynamic app:" in line and "holds" not in line]
    assert all("refused by pinning" in line for line in static) and len(static) == 2
    assert "refused by pinning" in dynamic[0] and "200 OK again" in dynamic[-1]


def test_a_step_that_ends_otherwise_fails_the_demo() -> None:
    told = DemoResult(True, True, (), False, True, 0.1)
    assert told.as_told
    for changed in (
        replace(told, unpinned_fooled=False),
        replace(told, pinned_refused_proxy=False),
        replace(told, static_survived=True),
        replace(told, dynamic_recovered=False, failure_window=None),
    ):
        assert not changed.as_told


def test_without_the_server_installed_the_demo_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    assert_one_error_line(run(capsys, "demo"), 2, "pinwarden[server]")
