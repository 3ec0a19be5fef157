"""Pin-violation reports: schema check, per-client rate limit, storage and aggregation.

The fields are those of RFC 7469 §3 (and TrustKit's report, which extends them), plus the app and
the channel. Unknown members are refused so that the stored rows mean what the schema says; the
body is capped at 32 KiB before it is parsed.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pinwarden.server._errors import ValidationError
from pinwarden.server._models import ViolationReport

__all__ = [
    "MAX_REPORT_BYTES",
    "RateLimiter",
    "list_reports",
    "parse_report",
    "store_report",
    "summarize_reports",
]

MAX_REPORT_BYTES = 32 * 1024
_MAX_CHAIN = 20
_TEXT, _LONG_TEXT = 300, 16 * 1024

# member: (type, required). RFC 7469 §3 first, then TrustKit's and pinwarden's additions.
_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "date-time": (str, False),
    "hostname": (str, True),
    "port": (int, False),
    "effective-expiration-date": (str, False),
    "include-subdomains": (bool, False),
    "noted-hostname": (str, False),
    "served-certificate-chain": (list, False),
    "validated-certificate-chain": (list, False),
    "known-pins": (list, False),
    "enforce-pinning": (bool, False),
    "validation-result": (int, False),
    "app-bundle-id": (str, False),
    "app-id": (str, False),
    "app-version": (str, False),
    "app-platform": (str, False),
    "app-platform-version": (str, False),
    "app-vendor-id": (str, False),
    "trustkit-version": (str, False),
    "channel": (str, False),
    "pinset-version": (int, False),
    "reason": (str, False),
}


def _check_member(name: str, value: Any) -> None:
    expected, _ = _SCHEMA[name]
    if isinstance(value, bool) and expected is int:
        raise ValidationError(f"report member {name!r} must be an integer")
    if not isinstance(value, expected):
        raise ValidationError(f"report member {name!r} must be of type {expected.__name__}")  # type: ignore[union-attr]
    if isinstance(value, str) and len(value) > _TEXT:
        raise ValidationError(f"report member {name!r} is longer than {_TEXT} characters")
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**31:
        raise ValidationError(f"report member {name!r} is out of range")
    if isinstance(value, list):
        if len(value) > _MAX_CHAIN or not all(
            isinstance(item, str) and len(item) <= _LONG_TEXT for item in value
        ):
            raise ValidationError(
                f"report member {name!r} must be a list of at most {_MAX_CHAIN} strings"
            )


def parse_report(body: bytes) -> dict[str, Any]:
    """A schema-checked report from a JSON body (already capped by the caller)."""
    if len(body) > MAX_REPORT_BYTES:
        raise ValidationError(f"a report is at most {MAX_REPORT_BYTES} bytes")
    try:
        report = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("a report is a JSON object") from None
    if not isinstance(report, dict):
        raise ValidationError("a report is a JSON object")
    unknown = sorted(set(report) - _SCHEMA.keys())
    if unknown:
        raise ValidationError(f"unknown report members {unknown}")
    missing = sorted(
        name for name, (_, required) in _SCHEMA.items() if required and name not in report
    )
    if missing:
        raise ValidationError(f"missing report members {missing}")
    for name, value in report.items():
        _check_member(name, value)
    return report


def store_report(session: Session, report: dict[str, Any], client: str) -> ViolationReport:
    row = ViolationReport(
        client=client[:100],
        hostname=report["hostname"],
        port=report.get("port"),
        noted_hostname=report.get("noted-hostname"),
        app_id=report.get("app-id") or report.get("app-bundle-id"),
        app_version=report.get("app-version"),
        enforced=report.get("enforce-pinning"),
        payload=report,
    )
    session.add(row)
    return row


def list_reports(session: Session, *, limit: int = 100) -> list[ViolationReport]:
    query = select(ViolationReport).order_by(ViolationReport.id.desc()).limit(limit)
    return list(session.scalars(query))


def summarize_reports(session: Session, *, since: datetime | None = None) -> list[dict[str, Any]]:
    """Counts by hostname, noted hostname, app and app version: what a dashboard shows."""
    keys = (
        ViolationReport.hostname,
        ViolationReport.noted_hostname,
        ViolationReport.app_id,
        ViolationReport.app_version,
    )
    query = select(
        *keys,
        func.count().label("count"),
        func.min(ViolationReport.received_at).label("first_seen"),
        func.max(ViolationReport.received_at).label("last_seen"),
    ).group_by(*keys)
    if since is not None:
        query = query.where(ViolationReport.received_at >= since)
    rows = session.execute(query.order_by(func.count().desc())).all()
    return [
        {
            "hostname": row.hostname,
            "noted_hostname": row.noted_hostname,
            "app_id": row.app_id,
            "app_version": row.app_version,
            "count": row.count,
            "first_seen": str(row.first_seen),
            "last_seen": str(row.last_seen),
        }
        for row in rows
    ]


class RateLimiter:
    """A token bucket per client address, in this process's memory (per replica).

    The table of clients is bounded: the least recently seen client is forgotten first.
    """

    def __init__(self, burst: int, per_minute: float, *, max_clients: int = 10_000) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, client: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self.burst, moment))
        tokens = min(self.burst, tokens + (moment - last) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, moment)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        return max(1, round(1.0 / self.rate)) if self.rate > 0 else 60
