"""Pin-violation reports: schema check, storage with a retention bound, and aggregation.

The fields are those of RFC 7469 §3 (and TrustKit's report, which extends them), plus the app and
the channel. Unknown members are refused so that the stored rows mean what the schema says; the
body is capped at 32 KiB before it is parsed (the rate limits are in ``_ratelimit``).

Storage is bounded: each stored report prunes the rows past ``ReportRetention`` (the newest
``max_rows`` ids, none older than ``max_age``). The dashboard's counts live in ``report_counts``,
counted as each report arrives, so pruning the rows does not change them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pinwarden.server._errors import ValidationError
from pinwarden.server._fields import text_problem
from pinwarden.server._models import ReportCount, ViolationReport, utc_now

__all__ = [
    "MAX_REPORT_BYTES",
    "ReportRetention",
    "list_reports",
    "parse_report",
    "report_count_key",
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
    "rule-source": (str, False),  # where the violated rule came from (``PinRule.origin``)
}


def _check_text(name: str, text: str, max_length: int) -> None:
    if len(text) > max_length:
        raise ValidationError(f"report member {name!r} is longer than {max_length} characters")
    problem = text_problem(text)
    if problem is not None:
        raise ValidationError(f"report member {name!r} {problem}")


def _check_member(name: str, value: Any) -> None:
    expected, _ = _SCHEMA[name]
    if isinstance(value, bool) and expected is int:
        raise ValidationError(f"report member {name!r} must be an integer")
    if not isinstance(value, expected):
        raise ValidationError(f"report member {name!r} must be of type {expected.__name__}")  # type: ignore[union-attr]
    if isinstance(value, str):
        _check_text(name, value, _TEXT)
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**31:
        raise ValidationError(f"report member {name!r} is out of range")
    if isinstance(value, list):
        if len(value) > _MAX_CHAIN or not all(isinstance(item, str) for item in value):
            raise ValidationError(
                f"report member {name!r} must be a list of at most {_MAX_CHAIN} strings"
            )
        for item in value:
            _check_text(name, item, _LONG_TEXT)


def parse_report(body: bytes) -> dict[str, Any]:
    """A schema-checked report from a JSON body (already capped by the caller)."""
    if len(body) > MAX_REPORT_BYTES:
        raise ValidationError(f"a report is at most {MAX_REPORT_BYTES} bytes")
    try:
        report = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("a report is a JSON object") from None
    except RecursionError:
        # CPython's json nests one C call per array or object (Modules/_json.c); about 32 KiB
        # of "[" exhausts the recursion limit. A report is one flat object.
        raise ValidationError("a report is a JSON object; this one nests too deeply") from None
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


@dataclass(frozen=True)
class ReportRetention:
    """How many report rows are kept: the newest ``max_rows`` ids, none older than ``max_age``."""

    max_rows: int = 100_000
    max_age: timedelta = timedelta(days=90)


def store_report(
    session: Session, report: dict[str, Any], client: str, retention: ReportRetention
) -> ViolationReport:
    """Store the report, count it, and prune the rows past ``retention``."""
    now = utc_now()
    row = ViolationReport(
        received_at=now,
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
    session.flush()
    _count(session, row)
    # By id, not by counting rows: one indexed range delete (ids only grow).
    session.execute(
        delete(ViolationReport).where(ViolationReport.id <= row.id - retention.max_rows)
    )
    session.execute(
        delete(ViolationReport).where(ViolationReport.received_at < now - retention.max_age)
    )
    return row


def report_count_key(
    hostname: str, noted_hostname: str | None, app_id: str | None, app_version: str | None
) -> dict[str, str]:
    """The columns that name a ``report_counts`` group, its ``key_sha256`` included."""
    key = {
        "hostname": hostname,
        "noted_hostname": noted_hostname or "",
        "app_id": app_id or "",
        "app_version": app_version or "",
    }
    digest = hashlib.sha256(json.dumps(list(key.values())).encode()).hexdigest()
    return {"key_sha256": digest, **key}


def _count(session: Session, row: ViolationReport) -> None:
    """Add one to the report's group in ``report_counts`` (an upsert, safe across replicas)."""
    key = report_count_key(row.hostname, row.noted_hostname, row.app_id, row.app_version)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(ReportCount).values(
        **key, count=1, first_seen=row.received_at, last_seen=row.received_at
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[ReportCount.key_sha256],
            set_={"count": ReportCount.count + 1, "last_seen": insert.excluded.last_seen},
        )
    )


def list_reports(session: Session, *, limit: int = 100) -> list[ViolationReport]:
    query = select(ViolationReport).order_by(ViolationReport.id.desc()).limit(limit)
    return list(session.scalars(query))


def summarize_reports(session: Session) -> list[dict[str, Any]]:
    """Counts by hostname, noted hostname, app and app version: what a dashboard shows."""
    rows = session.scalars(select(ReportCount).order_by(ReportCount.count.desc(), ReportCount.id))
    return [
        {
            "hostname": row.hostname,
            "noted_hostname": row.noted_hostname or None,
            "app_id": row.app_id or None,
            "app_version": row.app_version or None,
            "count": row.count,
            "first_seen": str(row.first_seen),
            "last_seen": str(row.last_seen),
        }
        for row in rows
    ]
