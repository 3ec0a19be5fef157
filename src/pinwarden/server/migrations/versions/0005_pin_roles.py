"""Pins carry their chain role (leaf, intermediate, root, backup key).

Pins stored before have ``unspecified``: an export that needs roles (ios-plist) refuses them by
name until ``pinwarden pins set-role`` gives them one (docs/export.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pins") as batch:
        batch.add_column(
            sa.Column("role", sa.String(20), nullable=False, server_default="unspecified")
        )


def downgrade() -> None:
    with op.batch_alter_table("pins") as batch:
        batch.drop_column("role")
