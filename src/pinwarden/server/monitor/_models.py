"""What the monitor keeps between scans: per host its last chain and failure count, and per rule
where and how to reach it (a connect-to address and a CA bundle, for hosts not yet in DNS or
behind a private CA)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pinwarden.server._models import Base

__all__ = ["MonitoredHost", "ProbeSettings"]


class MonitoredHost(Base):
    """The latest check of one rule's host: ``chain`` is a list of certificate views, leaf first."""

    __tablename__ = "monitored_hosts"
    __table_args__ = (
        UniqueConstraint(
            "channel", "pattern", "host", "port", name="uq_monitored_hosts_channel_pattern"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    pattern: Mapped[str] = mapped_column(String(300))
    host: Mapped[str] = mapped_column(String(300))
    port: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[datetime]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    leaf_pin: Mapped[str | None] = mapped_column(String(60))
    chain: Mapped[list[Any]]
    seen_pins: Mapped[list[Any]]  # every pin ever seen in this host's verified chains
    last_error: Mapped[str | None] = mapped_column(Text)


class ProbeSettings(Base):
    """How the monitor reaches a rule's host beyond the rule's own probe host and port."""

    __tablename__ = "monitor_probe_settings"
    __table_args__ = (
        UniqueConstraint("channel", "pattern", name="uq_monitor_probe_settings_channel_pattern"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    pattern: Mapped[str] = mapped_column(String(300))
    connect_to: Mapped[str | None] = mapped_column(String(300))
    ca_bundle_pem: Mapped[str | None] = mapped_column(Text)
