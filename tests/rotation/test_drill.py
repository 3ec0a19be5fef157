"""The rotation drill at small scale: each scenario's outcome, asserted (bench/rotation_drill.py
runs the same code at full scale and writes docs/rotation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pinwarden.rotation._drill import (
    DrillSettings,
    KindResult,
    ScenarioResult,
    emergency,
    markdown_table,
    planned,
    untouched_days,
)
from pinwarden.rotation._fleet import POLL, PUSH, STATIC, UNPINNED, FleetSettings

pytestmark = pytest.mark.network

# Small and quick: two clients of each kind; a fetch budget of one token a second, so a dynamic
# client that met mismatches during the outage may fetch again within a second of the publish.
SETTINGS = DrillSettings(
    FleetSettings(clients=2, processes=2, workers=2, rate=100.0, min_interval=1.0),
    outage_seconds=1.0,
    observe_seconds=1.0,
    recovery_deadline=30.0,
)
PINNED = (STATIC, PUSH, POLL)


def _assert_attacker_fooled_only_the_control(result: ScenarioResult) -> None:
    for kind in PINNED:
        assert result.of(kind).attacks > 0 and result.of(kind).attacks_accepted == 0, kind
    control = result.of(UNPINNED)
    assert control.attacks > 0 and control.attacks_accepted == control.attacks


def test_a_planned_rotation_fails_no_request_of_any_client_with_a_backup(tmp_path: Path) -> None:
    result = planned(tmp_path, SETTINGS)
    assert result.notes == ()
    for kind in (*PINNED, UNPINNED):
        assert result.of(kind).requests > 0 and result.of(kind).failed == 0, kind
    _assert_attacker_fooled_only_the_control(result)


def test_an_emergency_rotation_breaks_static_clients_and_dynamic_ones_recover(
    tmp_path: Path,
) -> None:
    result = emergency(tmp_path, SETTINGS)
    assert result.of(STATIC).failed > 0
    assert result.of(UNPINNED).failed == 0  # the negative twin: only pinning made anyone fail
    for kind in (PUSH, POLL):
        recovered = result.of(kind)
        assert recovered.unrecovered == 0 and len(recovered.windows) == 2, kind
        assert max(recovered.windows) < SETTINGS.recovery_deadline
    _assert_attacker_fooled_only_the_control(result)
    table = markdown_table([result])
    assert len(table) == 2 + 4 and "| emergency | 2 | dynamic-push |" in table[3]


def test_sixty_untouched_days_never_fall_back(tmp_path: Path) -> None:
    result = untouched_days(tmp_path, days=60, clients=1)
    polling = result.of(POLL)
    assert polling.requests == 60 * 4 and polling.failed == 0 and polling.fallbacks == 0
    assert polling.attacks_accepted == 0
    assert "re-signatures by freshness" in result.notes[0]


def test_percentiles_are_nearest_rank() -> None:
    windows = tuple(float(value) for value in range(1, 101))
    result = KindResult(PUSH, 100, 0, 0, 0, 0, 0, windows)
    assert result.percentile(0.99) == 99.0 and result.percentile(1.0) == 100.0
    assert result.median == 50.5 and KindResult(PUSH, 0, 0, 0, 0, 0, 0).percentile(0.99) is None


def test_push_clients_take_the_new_pins_at_once_even_after_refused_connections(
    tmp_path: Path,
) -> None:
    settings = DrillSettings(
        FleetSettings(clients=2, processes=1, workers=2, rate=100.0, min_interval=20.0),
        outage_seconds=1.5,
        observe_seconds=0.5,
        recovery_deadline=5.0,
    )
    push = emergency(tmp_path, settings).of(PUSH)
    assert push.unrecovered == 0 and max(push.windows) < 2.0
