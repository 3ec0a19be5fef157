"""Storage: migrations match the models, published rows are immutable, tokens are stored hashed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from pinwarden.server import AuthError, ScopeError, make_engine, upgrade_database
from pinwarden.server._database import alembic_config, make_session_factory, schema_is_current
from pinwarden.server._models import (
    AuditEntry,
    Base,
    Channel,
    ImmutableRowError,
    PublishedDocument,
    Token,
    ViolationReport,
)
from pinwarden.server._reports import ReportRetention, store_report, summarize_reports
from pinwarden.server._tokens import authenticate, create_token, revoke_token


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_from_empty_match_the_models(engine: Engine) -> None:
    assert not schema_is_current(engine)
    upgrade_database(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert schema_is_current(engine)
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_the_alembic_command_line_path_migrates_by_url(database_url: str, engine: Engine) -> None:
    """``alembic upgrade head`` given only a URL (env.py without a caller's connection)."""
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert schema_is_current(engine)


def test_a_model_change_without_migration_is_detected(engine: Engine) -> None:
    """The twin of the test above: the comparison does see a difference when there is one."""
    upgrade_database(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE channels ADD COLUMN unexpected INTEGER")
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert any(diff[0] == "remove_column" for diff in differences)


def test_upgrade_is_idempotent(engine: Engine) -> None:
    upgrade_database(engine)
    upgrade_database(engine)
    assert schema_is_current(engine)


def _document(channel: Channel, version: int) -> PublishedDocument:
    from datetime import datetime, timezone

    return PublishedDocument(
        channel_id=channel.id,
        version=version,
        body=b"{}",
        etag='"x"',
        rules=[],
        keyring_version=1,
        expires_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
        published_by="test",
    )


def test_published_documents_are_immutable(engine: Engine) -> None:
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        channel = Channel(name="c", description="", refresh_seconds=60, ttl_seconds=600)
        session.add(channel)
        session.flush()
        session.add(_document(channel, 1))
    with sessions() as session:
        document = session.scalars(select(PublishedDocument)).one()
        document.body = b"tampered"
        with pytest.raises(ImmutableRowError):
            session.commit()
        session.rollback()
        session.delete(session.scalars(select(PublishedDocument)).one())
        with pytest.raises(ImmutableRowError):
            session.commit()
        session.rollback()
    with sessions() as session:
        assert session.scalars(select(PublishedDocument.body)).one() == b"{}"


def test_a_version_cannot_be_published_twice(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    upgrade_database(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        channel = Channel(name="c", description="", refresh_seconds=60, ttl_seconds=600)
        session.add(channel)
        session.flush()
        session.add(_document(channel, 1))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(_document(session.scalars(select(Channel)).one(), 1))


def test_tokens_are_stored_hashed_and_checked(engine: Engine) -> None:
    upgrade_database(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        _, token = create_token(session, "ci", ["read", "publish"], "test")
    secret = token.split("_", 2)[2]
    with sessions() as session:
        row = session.scalars(select(Token)).one()
        assert secret not in (row.secret_sha256, row.token_id, row.name)
        assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
        principal = authenticate(session, token)
        assert principal.has("publish") and principal.has("read") and not principal.has("write")
        with pytest.raises(ScopeError):
            principal.require("admin")
        for wrong in (
            None,
            "",
            token[:-1] + ("A" if token[-1] != "A" else "B"),
            "pwt_x_y",
            token[4:],
        ):
            with pytest.raises(AuthError):
                authenticate(session, wrong)
        audit = session.scalars(select(AuditEntry)).one()
        assert audit.action == "token.create" and secret not in str(audit.detail)
    with sessions.begin() as session:
        revoke_token(session, row.token_id, "test", "rotated")
    with sessions() as session, pytest.raises(AuthError, match="revoked"):
        authenticate(session, token)


def test_report_counts_are_backfilled_then_counted_past_pruning(engine: Engine) -> None:
    """Migration 0002 counts the reports stored before it; then each stored report is counted
    by the upsert, whatever the retention prunes."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        for _ in range(2):
            session.add(ViolationReport(client="c", hostname="a.test", app_id="app", payload={}))
    upgrade_database(engine)
    report = {"hostname": "a.test", "app-id": "app"}
    for _ in range(3):
        with sessions.begin() as session:
            store_report(session, report, "c", ReportRetention(max_rows=1))
    with sessions() as session:
        summary = summarize_reports(session)
        rows = session.scalars(select(ViolationReport)).all()
    assert [(row["hostname"], row["app_id"], row["noted_hostname"]) for row in summary] == [
        ("a.test", "app", None)
    ]
    assert summary[0]["count"] == 5 and len(rows) == 1
