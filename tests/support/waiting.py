"""Waiting for background work, always bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

WAIT = 10.0  # the longest a test waits for background work
POLL_SECONDS = 0.05

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = WAIT, what: str = "a condition") -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail the test,
    naming ``what``, once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_SECONDS)
