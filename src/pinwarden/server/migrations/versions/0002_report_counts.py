"""Report counts that outlive pruned report rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pinwarden.server._reports import report_count_key

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    counts = op.create_table(
        "report_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=300), nullable=False),
        sa.Column("noted_hostname", sa.String(length=300), nullable=False),
        sa.Column("app_id", sa.String(length=200), nullable=False),
        sa.Column("app_version", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_counts")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_report_counts_key_sha256")),
    )
    # The reports stored so far, counted as the new rows will be.
    reports = sa.table(
        "violation_reports",
        sa.column("hostname"),
        sa.column("noted_hostname"),
        sa.column("app_id"),
        sa.column("app_version"),
        sa.column("received_at", sa.DateTime()),
    )
    keys = (reports.c.hostname, reports.c.noted_hostname, reports.c.app_id, reports.c.app_version)
    groups = op.get_bind().execute(
        sa.select(
            *keys,
            sa.func.count().label("count"),
            sa.func.min(reports.c.received_at).label("first_seen"),
            sa.func.max(reports.c.received_at).label("last_seen"),
        ).group_by(*keys)
    )
    rows = [
        {
            **report_count_key(*group[:4]),
            "count": group.count,
            "first_seen": group.first_seen,
            "last_seen": group.last_seen,
        }
        for group in groups
    ]
    if rows:
        op.bulk_insert(counts, rows)


def downgrade() -> None:
    op.drop_table("report_counts")
