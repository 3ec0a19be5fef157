"""Certificate Transparency watch (docs/ct.md): follow the CT logs through both read APIs,
verify every batch against the log's signed tree head, and alert when a certificate for a
pinned host carries a key its rule does not pin."""

from __future__ import annotations

from pinwarden.server.ct._certs import LoggedCertificate, logged_certificate
from pinwarden.server.ct._entries import LogEntry, parse_leaf, parse_tile
from pinwarden.server.ct._fetch import Fetcher, LogFetchError
from pinwarden.server.ct._heads import BadTreeHead, LogKey, TreeHead, parse_checkpoint
from pinwarden.server.ct._loglist import (
    APPLE_LOG_LIST,
    CHROME_LOG_LIST,
    CtLog,
    LogListError,
    load_log_lists,
)
from pinwarden.server.ct._match import RuleSet, WatchedRule
from pinwarden.server.ct._merkle import CollapsedTree, leaf_hash, node_hash
from pinwarden.server.ct._metrics import add_ct_metrics
from pinwarden.server.ct._models import CtLogState, CtSighting, unpinned_alert_subject
from pinwarden.server.ct._readers import LogMisbehaved, tile_path
from pinwarden.server.ct._watch import CtWatcher, LogOutcome, WatchRound, watched_rules

__all__ = [
    "APPLE_LOG_LIST",
    "CHROME_LOG_LIST",
    "BadTreeHead",
    "CollapsedTree",
    "CtLog",
    "CtLogState",
    "CtSighting",
    "CtWatcher",
    "Fetcher",
    "LogEntry",
    "LogFetchError",
    "LogKey",
    "LogListError",
    "LogMisbehaved",
    "LogOutcome",
    "LoggedCertificate",
    "RuleSet",
    "TreeHead",
    "WatchRound",
    "WatchedRule",
    "add_ct_metrics",
    "leaf_hash",
    "load_log_lists",
    "logged_certificate",
    "node_hash",
    "parse_checkpoint",
    "parse_leaf",
    "parse_tile",
    "tile_path",
    "unpinned_alert_subject",
    "watched_rules",
]
