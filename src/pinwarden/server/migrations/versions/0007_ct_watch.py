"""Certificate Transparency watch: logs, positions, collapsed trees, sightings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ct_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log_id", sa.String(length=44), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("api", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("collapsed", sa.JSON(), nullable=False),
        sa.Column("head_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_logs")),
        sa.UniqueConstraint("log_id", name=op.f("uq_ct_logs_log_id")),
    )
    op.create_table(
        "ct_sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tbs_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=300), nullable=False),
        sa.Column("log_id", sa.String(length=44), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.Column("precert", sa.Boolean(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("leaf_pin", sa.String(length=60), nullable=False),
        sa.Column("issuer_pin", sa.String(length=60), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(), nullable=False),
        sa.Column("not_after", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_sightings")),
        sa.UniqueConstraint(
            "tbs_hash", "channel", "pattern", name=op.f("uq_ct_sightings_tbs_hash")
        ),
    )
    op.create_index(op.f("ix_ct_sightings_channel"), "ct_sightings", ["channel"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ct_sightings_channel"), table_name="ct_sightings")
    op.drop_table("ct_sightings")
    op.drop_table("ct_logs")
