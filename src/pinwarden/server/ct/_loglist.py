"""The logs to follow: the union of log lists in the v3 format Chrome and Apple publish.

Chrome (https://www.gstatic.com/ct/log_list/v3/log_list.json) and Apple
(https://valid.apple.com/ct/log_list/current_log_list.json) share the schema: operators, each
with RFC 6962 ``logs`` (``url``) and static-ct-api ``tiled_logs`` (``submission_url``,
``monitoring_url``), each with ``log_id``, ``key``, ``state`` and an optional
``temporal_interval``. A log is followed while it is qualified, usable or read-only and its
interval has not ended (a shard whose certificates have all expired holds nothing a client can
still be shown). The same log in two lists is one log (its ID); the ID must be the SHA-256 of
its key, or the entry is dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pinwarden._hosts import is_loopback
from pinwarden.server.ct._fetch import Fetcher, LogFetchError
from pinwarden.server.ct._heads import LogKey

__all__ = [
    "APPLE_LOG_LIST",
    "CHROME_LOG_LIST",
    "CtLog",
    "LogListError",
    "load_log_lists",
    "parse_log_list",
]

CHROME_LOG_LIST = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
APPLE_LOG_LIST = "https://valid.apple.com/ct/log_list/current_log_list.json"
_FOLLOWED = frozenset({"qualified", "usable", "readonly"})
_MAX_LIST = 8 * 1024 * 1024
_MAX_TEXT = 2000
_MAX_URL = 1900  # stored in a column of 2000 with the "/" a prefix may need


class LogListError(ValueError):
    """A log list that cannot be read at all (one line)."""


@dataclass(frozen=True)
class CtLog:
    """``api`` is "rfc6962" (``url`` ends in "/") or "static" (``url`` is the monitoring
    prefix, ending in "/"; ``origin`` the checkpoint's origin line)."""

    log_id: bytes
    key: LogKey
    description: str
    api: str
    url: str
    origin: str
    state: str

    @property
    def name(self) -> str:
        return base64.b64encode(self.log_id).decode()

    def view(self) -> dict[str, Any]:
        return {
            "log_id": self.name,
            "description": self.description,
            "api": self.api,
            "url": self.url,
            "state": self.state,
        }


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT or "\0" in value:
        raise ValueError(f"{what} is not a short text")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode") from None
    return value


def _prefix(value: object, what: str) -> str:
    """A log URL prefix: https, or http to this machine (tests); ends in "/"."""
    url = _text(value, what)
    if len(url) > _MAX_URL:
        raise ValueError(f"{what} is longer than {_MAX_URL} characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
        raise ValueError(f"{what} is not an https URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"{what} is plain http to another machine")
    return url if url.endswith("/") else url + "/"


def _state(log: dict[str, Any]) -> str:
    state = log.get("state")
    if not isinstance(state, dict) or len(state) != 1:
        raise ValueError("state is not one named state")
    return _text(next(iter(state)), "state")


def _ended(log: dict[str, Any], now: datetime) -> bool:
    interval = log.get("temporal_interval")
    if interval is None:
        return False
    if not isinstance(interval, dict):
        raise ValueError("temporal_interval is not an object")
    end = datetime.fromisoformat(_text(interval.get("end_exclusive"), "end_exclusive"))
    if end.tzinfo is None:
        raise ValueError("end_exclusive has no time zone")
    return end <= now


def _log(log: object, tiled: bool) -> CtLog | None:
    """The log, or None when it is not followed; ``ValueError`` when it is malformed."""
    if not isinstance(log, dict):
        raise ValueError("a log is not an object")
    state = _state(log)
    try:
        key_der = base64.b64decode(_text(log.get("key"), "key"), validate=True)
        log_id = base64.b64decode(_text(log.get("log_id"), "log_id"), validate=True)
    except binascii.Error:
        raise ValueError("key or log_id is not base64") from None
    key = LogKey(key_der)
    if key.log_id != log_id:
        raise ValueError("log_id is not the SHA-256 of the key")
    description = _text(log.get("description", "(no description)"), "description")
    if tiled:
        submission = _prefix(log.get("submission_url"), "submission_url")
        origin = submission.split("://", 1)[1].rstrip("/")
        url = _prefix(log.get("monitoring_url"), "monitoring_url")
        return CtLog(log_id, key, description, "static", url, origin, state)
    return CtLog(log_id, key, description, "rfc6962", _prefix(log.get("url"), "url"), "", state)


def parse_log_list(body: bytes, now: datetime, notes: list[str]) -> list[CtLog]:
    """The followed logs of one v3 list; malformed or skipped entries are noted, not fatal."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise LogListError("the log list is not JSON") from None
    operators = document.get("operators") if isinstance(document, dict) else None
    if not isinstance(operators, list):
        raise LogListError("the log list has no list of operators (is it a v3 list?)")
    logs: list[CtLog] = []
    for operator in operators:
        if not isinstance(operator, dict):
            continue
        for field, tiled in (("logs", False), ("tiled_logs", True)):
            entries = operator.get(field, [])
            for entry in entries if isinstance(entries, list) else []:
                try:
                    log = _log(entry, tiled)
                    if log is None or log.state not in _FOLLOWED or _ended(entry, now):
                        continue
                except ValueError as error:
                    described = entry.get("description") if isinstance(entry, dict) else None
                    notes.append(f"log {str(described)[:100]!r} skipped: {error}")
                    continue
                logs.append(log)
    return logs


def _read(source: str, fetcher: Fetcher) -> bytes:
    """A list from a file or a URL: https, or http to this machine (a list read in the clear
    could lose a log on the way)."""
    if source.startswith(("https://", "http://")):
        host = urllib.parse.urlsplit(source).hostname or ""
        if source.startswith("http://") and not is_loopback(host):
            raise LogFetchError(f"{source[:200]!r}: plain http to another machine; use https")
        return fetcher.get(source, limit=_MAX_LIST)
    try:
        with Path(source).open("rb") as handle:
            body = handle.read(_MAX_LIST + 1)
    except (OSError, ValueError) as error:
        raise LogFetchError(
            f"{source[:200]!r}: {getattr(error, 'strerror', None) or error}"
        ) from None
    if len(body) > _MAX_LIST:
        raise LogFetchError(f"{source[:200]!r}: larger than {_MAX_LIST} bytes")
    return body


def load_log_lists(
    sources: Iterable[str], fetcher: Fetcher, now: datetime
) -> tuple[list[CtLog], list[str]]:
    """The union of the lists (files or URLs), by log ID, first list first; and notes on what
    was skipped. A list that cannot be fetched is noted; none readable is ``LogListError``."""
    notes: list[str] = []
    logs: dict[bytes, CtLog] = {}
    readable = 0
    sources = list(sources)
    for source in sources:
        try:
            found = parse_log_list(_read(source, fetcher), now, notes)
        except (LogFetchError, LogListError) as error:
            notes.append(f"log list {source[:200]!r} not read: {error}")
            continue
        readable += 1
        for log in found:
            logs.setdefault(log.log_id, log)
    if sources and not readable:
        raise LogListError("; ".join(notes))
    return list(logs.values()), notes
