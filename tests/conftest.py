"""Fixtures: every database test runs on SQLite and on PostgreSQL.

Each backend is migrated once per run (Alembic, not create_all); each test runs inside an
outer transaction that is rolled back, so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from capex import config, migrate
from capex.api.app import create_app
from capex.config import Settings
from capex.db import make_engine
from capex.testing import BACKENDS, throwaway_database

# The browser fixtures (chromium, site, new_page) and their checks: tests/browser.py.
pytest_plugins = ["tests.browser"]


@pytest.fixture(params=BACKENDS)
def live_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend for one live server (it migrates it)."""
    with throwaway_database(str(request.param), tmp_path) as url:
        yield url


def reset_process_state() -> None:
    """Forget the cached settings, as a new ``capex`` process would start."""
    config.get_settings.cache_clear()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_database(backend, tmp_path_factory.mktemp(backend)) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    # Each commit inside the code under test releases a savepoint of the outer transaction.
    return sessionmaker(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        autoflush=False,
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test app on ``database_url``: no background work beside the test."""
    defaults: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "log_level": "WARNING",
        # The tests share one connection per test: no background index build beside them.
        "warm_matching_index": False,
        "periodic_tasks": False,
        # Statistics taken afresh for each answer: a test reads what it just did.
        "stats_max_age_seconds": 0,
        # Every test client writes from one address, faster than any person: the write
        # limits are off unless a test turns them on (tests/test_write_limits.py).
        "write_limit_per_account": 0,
        "write_limit_per_address": 0,
    }
    return Settings(**{**defaults, **overrides})


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture
def client(settings: Settings, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    app = create_app(settings, session_factory)
    # One connection per test: a rebuild must not run beside the request in another thread.
    app.state.matching.rebuild_in_background = False
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
