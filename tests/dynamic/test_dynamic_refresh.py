"""Refresh timing (hint, bounds, expiry, jitter, back-off) and the thread and asyncio loops."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import timedelta

import pytest

from pinwarden.client._refresh import AsyncRefresher, RefreshPolicy, ThreadRefresher

POLICY = RefreshPolicy()


def draws(function: object, n: int = 200) -> list[float]:
    rng = random.Random(7)
    return [function(rng) for _ in range(n)]  # type: ignore[operator]


def test_success_follows_the_hint_with_jitter() -> None:
    delays = draws(lambda rng: POLICY.after_success(timedelta(minutes=10), None, rng))
    assert all(540 <= d <= 660 for d in delays)
    assert len({round(d) for d in delays}) > 50  # spread, not one instant for a whole fleet


def test_without_jitter_the_hint_is_exact() -> None:
    policy = RefreshPolicy(jitter=0)
    assert policy.after_success(timedelta(minutes=10), None, random.Random()) == 600


def test_no_hint_means_the_default_interval() -> None:
    policy = RefreshPolicy(jitter=0, default_interval=timedelta(minutes=42))
    assert policy.after_success(None, None, random.Random()) == 42 * 60


@pytest.mark.parametrize(
    ("hint", "expected"), [(timedelta(seconds=1), 60), (timedelta(days=30), 24 * 3600)]
)
def test_the_hint_is_bounded(hint: timedelta, expected: float) -> None:
    policy = RefreshPolicy(jitter=0)
    assert policy.after_success(hint, None, random.Random()) == expected


def test_a_document_near_expiry_is_fetched_again_before_it_expires() -> None:
    policy = RefreshPolicy(jitter=0)
    hint = timedelta(hours=6)
    assert policy.after_success(hint, timedelta(hours=2), random.Random()) == 3600
    assert policy.after_success(hint, timedelta(hours=20), random.Random()) == 6 * 3600


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = RefreshPolicy(backoff_base=timedelta(seconds=30), backoff_cap=timedelta(minutes=10))
    rng = random.Random(1)
    for failures, full in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (60, 600)]:
        delay = policy.after_failure(failures, rng)
        assert full / 2 <= delay <= full


@pytest.mark.parametrize(
    "kwargs",
    [{"jitter": 1.0}, {"jitter": -0.1}, {"min_interval": timedelta(0)},
     {"min_interval": timedelta(hours=2), "max_interval": timedelta(hours=1)},
     {"backoff_base": timedelta(hours=2), "backoff_cap": timedelta(hours=1)}],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RefreshPolicy(**kwargs)  # type: ignore[arg-type]


class CountingStep:
    """A refresh step that counts its runs and asks to run again only in an hour."""

    def __init__(self, fail_first: bool = False) -> None:
        self.runs = 0
        self.ran = threading.Event()
        self.fail_first = fail_first

    def __call__(self) -> float:
        self.runs += 1
        self.ran.set()
        if self.fail_first and self.runs == 1:
            raise RuntimeError("unexpected")
        return 3600.0


def test_thread_refresher_runs_after_its_first_delay_then_when_woken() -> None:
    step = CountingStep()
    refresher = ThreadRefresher(step, first_delay=0.0, name="test-refresh")
    refresher.start()
    try:
        assert step.ran.wait(5)
        step.ran.clear()
        refresher.wake()
        assert step.ran.wait(5)
        assert step.runs == 2
    finally:
        refresher.stop()


def test_thread_refresher_does_not_run_before_its_delay() -> None:
    step = CountingStep()
    refresher = ThreadRefresher(step, first_delay=3600.0, name="test-refresh")
    refresher.start()
    try:
        assert not step.ran.wait(0.2)  # with first_delay=0 it runs at once (test above)
    finally:
        refresher.stop()
    assert step.runs == 0


def test_a_step_that_raises_does_not_kill_the_thread() -> None:
    step = CountingStep(fail_first=True)
    refresher = ThreadRefresher(step, first_delay=0.0, name="test-refresh")
    refresher.start()
    try:
        assert step.ran.wait(5)
        step.ran.clear()
        refresher.wake()
        assert step.ran.wait(5)
        assert step.runs == 2
    finally:
        refresher.stop()


def test_async_refresher_runs_as_a_task_and_wakes_from_another_thread() -> None:
    async def scenario() -> int:
        step = CountingStep()
        refresher = AsyncRefresher(step, first_delay=0.0)
        refresher.start()
        try:
            assert await asyncio.to_thread(step.ran.wait, 5)
            step.ran.clear()
            threading.Thread(target=refresher.wake).start()
            assert await asyncio.to_thread(step.ran.wait, 5)
            return step.runs
        finally:
            refresher.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == 2


def test_async_refresher_waits_for_its_delay() -> None:
    async def scenario() -> int:
        step = CountingStep()
        refresher = AsyncRefresher(step, first_delay=3600.0)
        refresher.start()
        await asyncio.sleep(0.2)
        refresher.stop()
        return step.runs

    assert asyncio.run(scenario()) == 0


def test_a_wake_with_a_delay_waits_for_it_and_never_postpones() -> None:
    step = CountingStep()
    refresher = ThreadRefresher(step, first_delay=3600.0, name="test-refresh")
    refresher.start()
    try:
        refresher.wake(3600.0)
        assert not step.ran.wait(0.2)  # brought forward to at most an hour: not yet
        refresher.wake(7200.0)  # later than planned: changes nothing
        refresher.wake(0.0)
        assert step.ran.wait(5)
    finally:
        refresher.stop()
    assert step.runs == 1


class BlockingStep(CountingStep):
    """A step that waits for ``release`` on its first run (a fetch in progress)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def __call__(self) -> float:
        delay = super().__call__()
        if self.runs == 1:
            assert self.release.wait(5)
        return delay


def test_a_wake_during_the_step_counts_from_its_own_instant() -> None:
    """A push that arrives while a fetch runs, asking for "in a minute", does not make the
    loop fetch again as soon as that fetch ends."""
    step = BlockingStep()
    refresher = ThreadRefresher(step, first_delay=0.0, name="test-refresh")
    refresher.start()
    try:
        assert step.ran.wait(5)
        step.ran.clear()
        refresher.wake(60.0)
        step.release.set()
        assert not step.ran.wait(0.2)
        refresher.wake(0.0)
        assert step.ran.wait(5)
    finally:
        refresher.stop()
    assert step.runs == 2


def test_async_refresher_wake_with_a_delay_waits_for_it() -> None:
    async def scenario() -> int:
        step = CountingStep()
        refresher = AsyncRefresher(step, first_delay=3600.0)
        refresher.start()
        try:
            refresher.wake(3600.0)
            await asyncio.sleep(0.2)
            assert step.runs == 0
            threading.Thread(target=refresher.wake).start()
            assert await asyncio.to_thread(step.ran.wait, 5)
            return step.runs
        finally:
            refresher.stop()

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == 1
