"""Engines, sessions and migrations for SQLite (the default) and PostgreSQL (by URL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "alembic_config",
    "is_connection_failure",
    "is_postgresql",
    "libpq_conninfo",
    "make_engine",
    "make_session_factory",
    "schema_is_current",
    "sqlite_url",
    "upgrade_database",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def is_postgresql(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def libpq_conninfo(url: str) -> str:
    """The ``postgresql://`` URI psycopg takes, from a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def is_connection_failure(error: DBAPIError) -> bool:
    """Whether ``error`` says the database cannot be reached (refused, lost or broken
    connection), as opposed to a statement it refused: bad data (``DataError``: a NUL, an integer
    past its column) is the request's fault and the database is up."""
    return error.connection_invalidated or isinstance(error, (OperationalError, InterfaceError))


def make_engine(url: str) -> Engine:
    """An engine for ``url``: ``sqlite:///…`` or ``postgresql+psycopg://…``."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        # Short connect timeout: the admin API answers 503 quickly while the database is down.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
