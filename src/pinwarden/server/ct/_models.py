"""What the CT watch keeps: per log its verified position and collapsed tree, so a restart
resumes there; per certificate and rule, the sighting the dashboard, alerts and suggestions
read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pinwarden.server._models import Base

__all__ = ["CtLogState", "CtSighting", "unpinned_alert_subject"]


def unpinned_alert_subject(channel: str, pattern: str, tbs_hash: str) -> str:
    """The subject of the ``ct-unpinned-key`` alert of one sighting."""
    return f"{channel} {pattern} tbs:{tbs_hash}"


class CtLogState(Base):
    """``tree_size`` entries of the log are processed and verified against a signed head whose
    root is ``root_hash``; ``collapsed`` holds the subtree roots (hex) to continue from."""

    __tablename__ = "ct_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[str] = mapped_column(String(44), unique=True)
    description: Mapped[str] = mapped_column(String(300))
    api: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(2000))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    collapsed: Mapped[list[Any]]
    head_timestamp: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)


class CtSighting(Base):
    """A logged certificate for the hosts of one rule, once per TBS hash (a precertificate and
    its certificate are one sighting). ``pinned``: its key (or its verified issuer's) was among
    the rule's published pins when it was seen."""

    __tablename__ = "ct_sightings"
    __table_args__ = (
        UniqueConstraint("tbs_hash", "channel", "pattern", name="uq_ct_sightings_tbs_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tbs_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(200), index=True)
    pattern: Mapped[str] = mapped_column(String(300))
    log_id: Mapped[str] = mapped_column(String(44))
    entry_index: Mapped[int] = mapped_column(BigInteger)
    precert: Mapped[bool] = mapped_column(Boolean)
    names: Mapped[list[Any]]
    leaf_pin: Mapped[str] = mapped_column(String(60))
    issuer_pin: Mapped[str | None] = mapped_column(String(60))
    pinned: Mapped[bool] = mapped_column(Boolean)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    seen_at: Mapped[datetime]

    @property
    def alert_subject(self) -> str:
        return unpinned_alert_subject(self.channel, self.pattern, self.tbs_hash)

    def view(self) -> dict[str, Any]:
        return {
            "tbs_hash": self.tbs_hash,
            "channel": self.channel,
            "pattern": self.pattern,
            "log_id": self.log_id,
            "entry_index": self.entry_index,
            "precert": self.precert,
            "names": self.names,
            "leaf_pin": self.leaf_pin,
            "issuer_pin": self.issuer_pin,
            "pinned": self.pinned,
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "seen_at": self.seen_at.isoformat(),
        }
