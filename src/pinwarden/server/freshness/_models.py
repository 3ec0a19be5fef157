"""The lease table: which replica does a periodic job now (docs/operations.md, "One replica")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pinwarden.server._models import Base

__all__ = ["Lease"]


class Lease(Base):
    """A named job held by one replica (``holder``) until ``expires_at``, then free to take."""

    __tablename__ = "operation_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
