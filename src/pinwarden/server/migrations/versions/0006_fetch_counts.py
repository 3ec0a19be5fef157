"""Pin-set fetches counted by channel and version.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pinset_fetch_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replica", sa.String(length=200), nullable=False),
        sa.Column("minute", sa.DateTime(), nullable=False),
        sa.Column("fetches", sa.Integer(), nullable=False),
        sa.Column("addresses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pinset_fetch_counts")),
        sa.UniqueConstraint(
            "channel", "version", "replica", "minute", name=op.f("uq_pinset_fetch_counts_channel")
        ),
    )
    op.create_index(
        "ix_pinset_fetch_counts_channel_minute",
        "pinset_fetch_counts",
        ["channel", "minute"],
    )


def downgrade() -> None:
    op.drop_index("ix_pinset_fetch_counts_channel_minute", table_name="pinset_fetch_counts")
    op.drop_table("pinset_fetch_counts")
