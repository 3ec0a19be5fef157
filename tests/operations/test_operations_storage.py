"""The operations tables on SQLite and PostgreSQL: the migration matches the models, the lease
and the one-open-alert-per-condition rule hold on both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pinwarden.server import make_engine, upgrade_database
from pinwarden.server._database import make_session_factory
from pinwarden.server._fetch_counts import FetchCount  # noqa: F401 (its table)
from pinwarden.server._models import Base
from pinwarden.server._shared_limits import RateBucket  # noqa: F401 (its table)
from pinwarden.server.alerts import Alert, AlertBook, AlertKind, Condition
from pinwarden.server.ct import CtLogState  # noqa: F401 (its tables)
from pinwarden.server.freshness import take_lease
from pinwarden.server.ui import UISession  # noqa: F401 (its table)
from tests.operations.operations_harness import START

OPERATIONS_TABLES = {
    "operation_leases",
    "alerts",
    "webhook_outbox",
    "monitored_hosts",
    "monitor_probe_settings",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def test_the_migration_creates_exactly_the_models_tables(engine: Engine) -> None:
    assert OPERATIONS_TABLES <= set(Base.metadata.tables)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_the_lease_holds_on_this_backend(sessions: sessionmaker[Session]) -> None:
    minute = timedelta(minutes=1)
    with sessions.begin() as session:
        assert take_lease(session, "job", "a", now=START, duration=minute)
    with sessions.begin() as session:
        assert not take_lease(session, "job", "b", now=START, duration=minute)
        assert take_lease(session, "other", "b", now=START, duration=minute)
    with sessions.begin() as session:
        assert take_lease(session, "job", "b", now=START + minute, duration=minute)


def test_a_condition_has_at_most_one_open_alert_in_the_database(
    sessions: sessionmaker[Session],
) -> None:
    """Two replicas opening the same condition at once: the unique key refuses the second."""
    condition = Condition(AlertKind.NO_BACKUP_PIN, "app h 1.2.3.4:443", "no backup")
    book = AlertBook(clock=lambda: START)
    with sessions.begin() as session:
        book.observe(session, condition.kind, condition.subject, condition)
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Alert(
                kind=condition.kind.value,
                subject=condition.subject,
                open_key=condition.key,
                summary="again",
                detail={},
                opened_at=START,
                last_seen_at=START,
            )
        )
    with sessions.begin() as session:
        book.observe(session, condition.kind, condition.subject, None)
        book.observe(session, condition.kind, condition.subject, condition)
    with sessions() as session:
        assert session.query(Alert).count() == 2
