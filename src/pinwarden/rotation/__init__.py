"""Certificate rotation without downtime: preflight, the rotation plan, the drill and the demo.

A room of its own beneath the command line (docs/rotation.md). Preflight and the plan use the
client and the document verifier only; the demo and the drill (``pinwarden.rotation._drill``,
run by bench/rotation_drill.py) also run the pin server, so they are imported on first use.
It never imports ``pinwarden.cli``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinwarden._lazy import lazy_attributes
from pinwarden._public_names import name_exceptions_after
from pinwarden.rotation._channel import (
    ChannelPinsError,
    RuleBook,
    channel_url,
    fetch_published,
    rulebook_of_pinset,
    verify_local_pinset,
)
from pinwarden.rotation._material import Candidate, MaterialError, candidate_from_bytes
from pinwarden.rotation._plan import (
    DEFAULT_THRESHOLD,
    LiveChainError,
    PlanStep,
    RotationPlan,
    live_chain_pins,
    plan_rotation,
    poll_window,
)
from pinwarden.rotation._preflight import Verdict, judge
from pinwarden.rotation._uptake import (
    Uptake,
    UptakeError,
    measure_uptake,
    read_uptake,
    versions_carrying,
)

if TYPE_CHECKING:
    from pinwarden.rotation._demo import DemoResult, run_demo

# The demo starts the pin server: only a command that runs it pays for importing it.
_LAZY = {"DemoResult": "pinwarden.rotation._demo", "run_demo": "pinwarden.rotation._demo"}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "DEFAULT_THRESHOLD",
    "Candidate",
    "ChannelPinsError",
    "DemoResult",
    "LiveChainError",
    "MaterialError",
    "PlanStep",
    "RotationPlan",
    "RuleBook",
    "Uptake",
    "UptakeError",
    "Verdict",
    "candidate_from_bytes",
    "channel_url",
    "fetch_published",
    "judge",
    "live_chain_pins",
    "measure_uptake",
    "plan_rotation",
    "poll_window",
    "read_uptake",
    "rulebook_of_pinset",
    "run_demo",
    "verify_local_pinset",
    "versions_carrying",
]

name_exceptions_after(__name__, globals(), __all__)
