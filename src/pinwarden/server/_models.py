"""The server's tables, as typed SQLAlchemy 2 models.

Published documents are immutable rows: the ORM refuses to update or delete one, so history,
audit and rollback-by-republish can trust them. Tokens are stored as a SHA-256 of their secret,
never the secret. Private signing keys are not here: they stay encrypted in the key directory;
``SigningKeyRecord`` only names them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AuditEntry",
    "Base",
    "Channel",
    "ImmutableRowError",
    "KeyringRecord",
    "Observation",
    "Pin",
    "PublishedDocument",
    "ReportCount",
    "Rule",
    "SigningKeyRecord",
    "Token",
    "ViolationReport",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone: stored naive, in UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


# Stable constraint names, so migrations and models compare equal on every backend.
_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        bytes: LargeBinary(),
    }


class ImmutableRowError(RuntimeError):
    """Something tried to change or delete a published document."""


class Channel(Base):
    """What one client build subscribes to, e.g. ``com.example.app/prod``."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    refresh_seconds: Mapped[int] = mapped_column(Integer)
    ttl_seconds: Mapped[int] = mapped_column(Integer)
    report_uri: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    rules: Mapped[list[Rule]] = relationship(
        back_populates="channel", cascade="all, delete-orphan", order_by="Rule.pattern"
    )


class Rule(Base):
    """A host pattern of a channel, its mode, and where to look at the live chain."""

    __tablename__ = "rules"
    __table_args__ = (UniqueConstraint("channel_id", "pattern", name="uq_rules_channel_pattern"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    pattern: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(20))
    probe_host: Mapped[str | None] = mapped_column(String(300))
    probe_port: Mapped[int] = mapped_column(Integer, default=443)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)

    channel: Mapped[Channel] = relationship(back_populates="rules")
    pins: Mapped[list[Pin]] = relationship(
        back_populates="rule", cascade="all, delete-orphan", order_by="Pin.id"
    )


class Pin(Base):
    """One SPKI pin of a rule, with a label ("leaf key", "backup key", "CA intermediate") and the
    role of its key in the chain (leaf, intermediate, root, backup; ``unspecified`` for pins
    added before roles existed), which platform exports need (docs/export.md)."""

    __tablename__ = "pins"
    __table_args__ = (UniqueConstraint("rule_id", "pin", name="uq_pins_rule_pin"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id", ondelete="CASCADE"))
    pin: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(
        String(20), default="unspecified", server_default="unspecified"
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    rule: Mapped[Rule] = relationship(back_populates="pins")


class SigningKeyRecord(Base):
    """A signing key known to the server; the private half stays encrypted in the key directory."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    algorithm: Mapped[str] = mapped_column(String(20))
    public_jwk: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    retired_at: Mapped[datetime | None]


class KeyringRecord(Base):
    """A signed keyring, served byte for byte at ``/v1/channels/{channel}/keyring/{version}``."""

    __tablename__ = "keyrings"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[bytes]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class PublishedDocument(Base):
    """A signed pin set as published: immutable; a rollback republishes as a new version."""

    __tablename__ = "published_documents"
    __table_args__ = (
        UniqueConstraint("channel_id", "version", name="uq_published_documents_channel_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes]
    etag: Mapped[str] = mapped_column(String(100))
    rules: Mapped[list[Any]]
    keyring_version: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    published_by: Mapped[str] = mapped_column(String(300))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    republished_from: Mapped[int | None] = mapped_column(Integer)


@event.listens_for(PublishedDocument, "before_update")
@event.listens_for(PublishedDocument, "before_delete")
def _refuse_change(mapper: Any, connection: Any, target: PublishedDocument) -> None:
    raise ImmutableRowError(
        f"published document version {target.version} is immutable; publish a new version"
    )


class Token(Base):
    """An API token: a public id, a SHA-256 of the secret, and scopes."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    created_by: Mapped[str] = mapped_column(String(300))
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # refused from then on, like a revoked token


class AuditEntry(Base):
    """Who changed what, when, and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]]
    reason: Mapped[str | None] = mapped_column(Text)


class Observation(Base):
    """A chain seen on a live host (by the monitor, or by a publish check)."""

    __tablename__ = "observations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(300), index=True)
    port: Mapped[int] = mapped_column(Integer)
    chain_pins: Mapped[list[Any]]
    seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    source: Mapped[str] = mapped_column(String(50))


class ViolationReport(Base):
    """A pin violation reported by a client (RFC 7469 §3 fields, plus the app)."""

    __tablename__ = "violation_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    client: Mapped[str] = mapped_column(String(100))
    hostname: Mapped[str] = mapped_column(String(300))
    port: Mapped[int | None] = mapped_column(Integer)
    noted_hostname: Mapped[str | None] = mapped_column(String(300))
    app_id: Mapped[str | None] = mapped_column(String(200))
    app_version: Mapped[str | None] = mapped_column(String(100))
    enforced: Mapped[bool | None] = mapped_column(Boolean)
    payload: Mapped[dict[str, Any]]


class ReportCount(Base):
    """Violation reports counted by host, noted host, app and app version, as they arrive.

    The dashboard's numbers: they stay when old ``ViolationReport`` rows are pruned. An absent
    member is stored as ``""``; ``key_sha256`` (of the four) is the unique key the upsert targets.
    """

    __tablename__ = "report_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str] = mapped_column(String(300))
    noted_hostname: Mapped[str] = mapped_column(String(300))
    app_id: Mapped[str] = mapped_column(String(200))
    app_version: Mapped[str] = mapped_column(String(100))
    count: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
