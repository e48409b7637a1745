"""Engine and session factory; SQLite gets WAL, foreign keys and explicit transactions."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings, get_settings
from capex.errors import DatabaseUnavailable


def normalize_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # as SQLAlchemy's documentation recommends, so transactions mean what they say.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def make_engine(
    url: str,
    *,
    connect_timeout: int | None = None,
    pool_timeout: float | None = None,
    **kwargs: Any,
) -> Engine:
    """Create an engine for ``url`` with the settings capex relies on.

    On PostgreSQL, ``connect_timeout`` (seconds) bounds how long a new connection may take
    and ``pool_timeout`` how long a request waits for a pooled one; SQLite opens a file and
    waits only for its lock (``timeout``).
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    if pool_timeout is not None:
        kwargs.setdefault("pool_timeout", pool_timeout)
    if connect_timeout is not None:
        kwargs.setdefault("connect_args", {}).setdefault("connect_timeout", connect_timeout)
    return create_engine(url, **kwargs)


def engine_for(settings: Settings) -> Engine:
    """The engine of a server process: ``settings``' database, with its timeouts."""
    return make_engine(
        settings.database_url,
        connect_timeout=settings.db_connect_timeout_seconds,
        pool_timeout=settings.db_pool_timeout_seconds,
    )


# What SQLAlchemy raises when the database, rather than the statement, is at fault; only
# some of these are (see ``unavailable``), the rest are bugs to answer 500.
CONNECTION_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.DisconnectionError,
    exc.TimeoutError,
)
# PostgreSQL's SQLSTATEs for "no connection": class 08, and the server shutting down or
# starting up (57P01-57P03).
_POSTGRES_DOWN = ("08", "57P01", "57P02", "57P03")


def unavailable(error: BaseException, retry_after_seconds: int) -> DatabaseUnavailable | None:
    """The 503 that ``error`` means if the database cannot answer now; None for a real error.

    A connection that broke or could not be made (refused, timed out, closed by the
    server), a pool that gave none in time, SQLite's file that cannot be opened or its
    lock held past the timeout. Anything else, such as a bad statement, is not the
    database's absence and stays the error it is.
    """
    if isinstance(error, exc.TimeoutError):  # the pool had no connection in time
        return DatabaseUnavailable(retry_after_seconds, busy=True)
    if isinstance(error, exc.DisconnectionError):
        return DatabaseUnavailable(retry_after_seconds)
    if not isinstance(error, exc.OperationalError | exc.InterfaceError):
        return None
    if error.connection_invalidated:
        return DatabaseUnavailable(retry_after_seconds)
    cause = error.orig
    if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        # Without a SQLSTATE the client itself failed: no server, or the connection lost.
        state = cause.sqlstate
        if state is None or state.startswith(_POSTGRES_DOWN):
            return DatabaseUnavailable(retry_after_seconds)
        return None
    if isinstance(cause, sqlite3.OperationalError):
        message = str(cause)
        if "database is locked" in message:
            return DatabaseUnavailable(retry_after_seconds, busy=True)
        if "unable to open database" in message:
            return DatabaseUnavailable(retry_after_seconds)
    return None


def log_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """Log a background task's failure: one line while the database is away (it is not the
    task's fault, and an outage would repeat the same traceback every few seconds), the
    traceback otherwise."""
    if unavailable(error, 1) is not None:
        logger.warning("%s: the database is not answering (%s)", what, type(error).__name__)
    else:
        logger.error("%s", what, exc_info=error)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def open_database(url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on an engine of its own for ``url``, disposed when the block ends."""
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def session_scope(
    factory: sessionmaker[Session] | None = None, *, write: bool = False
) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error.

    ``write`` takes SQLite's write lock when the transaction begins: a deferred transaction
    that reads and then writes fails at once if another writer got in between. Without
    ``factory`` (scripts, the CLI) the transaction runs on the database the process
    settings name, through an engine opened for it and disposed after it.
    """
    with ExitStack() as stack:
        if factory is None:
            factory = stack.enter_context(open_database(get_settings().database_url))
        session = stack.enter_context(factory())
        if write:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
