"""The operations loop: leases, alerts, the webhook outbox, monitored hosts, probe settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

The tables are declared as models in the server's operation packages (freshness, alerts, monitor).
Importing those modules here registers them on ``Base.metadata`` wherever the migrations are
loaded, so the schema and the metadata compared with it always name the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pinwarden.server.alerts._models
import pinwarden.server.freshness._models
import pinwarden.server.monitor._models  # noqa: F401 - registers the tables below on Base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operation_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_operation_leases")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=700), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=True),
        sa.Column("open_key", sa.String(length=800), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("acked_at", sa.DateTime(), nullable=True),
        sa.Column("acked_by", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
    )
    op.create_index(op.f("ix_alerts_kind"), "alerts", ["kind"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("failed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_outbox")),
        sa.UniqueConstraint(
            "message_id", "endpoint", name=op.f("uq_webhook_outbox_message_endpoint")
        ),
    )
    op.create_index(
        op.f("ix_webhook_outbox_next_attempt_at"), "webhook_outbox", ["next_attempt_at"]
    )
    op.create_table(
        "monitored_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=300), nullable=False),
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("leaf_pin", sa.String(length=60), nullable=True),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("seen_pins", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitored_hosts")),
        sa.UniqueConstraint(
            "channel", "pattern", "host", "port", name=op.f("uq_monitored_hosts_channel_pattern")
        ),
    )
    op.create_table(
        "monitor_probe_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=300), nullable=False),
        sa.Column("connect_to", sa.String(length=300), nullable=True),
        sa.Column("ca_bundle_pem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_probe_settings")),
        sa.UniqueConstraint(
            "channel", "pattern", name=op.f("uq_monitor_probe_settings_channel_pattern")
        ),
    )


def downgrade() -> None:
    op.drop_table("monitor_probe_settings")
    op.drop_table("monitored_hosts")
    op.drop_index(op.f("ix_webhook_outbox_next_attempt_at"), table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_index(op.f("ix_alerts_kind"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("operation_leases")
