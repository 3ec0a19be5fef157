"""The dashboard's one table: a login session, bound to the admin token that opened it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pinwarden.server._models import Base

__all__ = ["UISession"]


class UISession(Base):
    """A browser session: the SHA-256 of the cookie's secret (never the secret), the token it
    stands for (checked again on every request, so revoking the token ends the session), the
    CSRF value its forms carry, and an absolute expiry."""

    __tablename__ = "ui_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[str] = mapped_column(String(40), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
