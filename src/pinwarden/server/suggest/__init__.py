"""Suggestions: the next safe rule change after a host's key or certificate changes
(docs/operations.md, "Suggestions"); applying one still goes through safe publishing."""

from __future__ import annotations

from pinwarden.server.suggest._suggest import (
    ChangeKind,
    PinChange,
    Suggestion,
    apply_suggestion,
    suggest,
)

__all__ = ["ChangeKind", "PinChange", "Suggestion", "apply_suggestion", "suggest"]
