"""Freshness: every published pin set is re-signed by the server before it lapses
(docs/operations.md, "Freshness"); and the lease that keeps one replica at a time on a job."""

from __future__ import annotations

from pinwarden.server.freshness._lease import take_lease
from pinwarden.server.freshness._models import Lease
from pinwarden.server.freshness._service import (
    FRESHNESS_ACTOR,
    ChannelFreshness,
    Freshener,
    FreshnessPolicy,
    FreshnessRound,
    Resigner,
)

__all__ = [
    "FRESHNESS_ACTOR",
    "ChannelFreshness",
    "Freshener",
    "FreshnessPolicy",
    "FreshnessRound",
    "Lease",
    "Resigner",
    "take_lease",
]
