"""Migrations: they go up and down cleanly, and they build exactly what the models describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from capex import migrate
from capex.db import make_engine
from capex.models import Base, Skill, SkillAlias
from capex.services import skills as skill_service
from capex.testing import discard_database, fresh_database


@pytest.fixture
def fresh_url(backend: str, tmp_path) -> Iterator[str]:
    """An empty database of this backend, not the shared migrated one."""
    url = fresh_database(backend, tmp_path)
    yield url
    discard_database(url)


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def model_tables() -> set[str]:
    return set(Base.metadata.tables)


def test_upgrade_downgrade_upgrade_round_trip(fresh_url):
    migrate.upgrade(fresh_url)
    assert table_names(fresh_url) == model_tables() | {"alembic_version"}
    assert migrate.current_revision(fresh_url) == migrate.head_revision()

    migrate.downgrade(fresh_url, "base")
    assert table_names(fresh_url) == {"alembic_version"}
    assert migrate.current_revision(fresh_url) is None

    migrate.upgrade(fresh_url)
    assert table_names(fresh_url) == model_tables() | {"alembic_version"}
    assert migrate.current_revision(fresh_url) == migrate.head_revision()


def test_models_match_the_migrations(fresh_url):
    # What `alembic check` does: autogenerate against the migrated database finds nothing.
    migrate.upgrade(fresh_url)
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_loads_the_starting_taxonomy(fresh_url):
    migrate.upgrade(fresh_url)
    shipped = skill_service.starting_taxonomy()
    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            ids = set(conn.scalars(select(Skill.id)))
            roots = set(conn.scalars(select(Skill.id).where(Skill.parent_id.is_(None))))
            lua_aliases = list(
                conn.scalars(
                    select(SkillAlias.alias)
                    .where(SkillAlias.skill_id == "lua")
                    .order_by(SkillAlias.position)
                )
            )
    finally:
        engine.dispose()
    assert ids == {entry["id"] for entry in shipped}
    assert len(ids) >= 80
    assert roots == {entry["id"] for entry in shipped if entry["parent"] is None}
    assert lua_aliases == next(e["aliases"] for e in shipped if e["id"] == "lua")


@pytest.fixture
def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'pragmas.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_sqlite_enforces_foreign_keys(sqlite_engine):
    with sqlite_engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(
            text("INSERT INTO skills (id, name, description, parent_id) VALUES (:id, :n, '', :p)"),
            {"id": "orphan", "n": "Orphan", "p": "no-such-skill"},
        )
