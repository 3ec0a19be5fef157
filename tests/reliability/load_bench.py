"""``bench/load_server.py`` as a module for the tests (the load, fault and checker tests).

Imported by name from ``bench/`` on ``sys.path``: its load-generating processes are started with
``spawn``, and each child imports the module again by that name.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import load_server  # noqa: E402

__all__ = ["BENCH", "load_server"]
