"""``capex db backup`` and ``capex db restore`` on both backends: a round trip under writes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Row, Table, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from capex import migrate
from capex.cli import app
from capex.config import Settings
from capex.db import make_engine, make_session_factory, session_scope
from capex.demo import populate
from capex.demo.history import write_history
from capex.errors import Conflict
from capex.models import Base, Exchange, Notification
from capex.services import accounts, backups
from capex.services.backups import BackupFailed
from capex.testing import discard_database, fresh_database
from capex.vocabulary import NotificationKind
from tests.conftest import reset_process_state
from tests.factories import password_hash

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WRITER = "writer"
runner = CliRunner()


@pytest.fixture
def new_database(backend: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Fresh, empty databases of the backend, discarded after the test."""
    made: list[str] = []

    def new() -> str:
        made.append(fresh_database(backend, tmp_path))
        return made[-1]

    yield new
    for url in made:
        discard_database(url)


@pytest.fixture(scope="module")
def populated(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database with 30 demo volunteers, their exchanges and notifications."""
    url = fresh_database(backend, tmp_path_factory.mktemp(f"backups-{backend}"))
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            population = populate(session, volunteers=30, clock=lambda: NOW)
            write_history(session, Settings(), population, exchanges=40, clock=lambda: NOW)
            session.flush()
            for exchange in session.scalars(select(Exchange).order_by(Exchange.id).limit(10)):
                session.add(
                    Notification(
                        volunteer_id=exchange.mentor_id,
                        kind=NotificationKind.EXCHANGE_REQUESTED,
                        exchange_id=exchange.id,
                        text="a request",
                        created_at=NOW,
                    )
                )
    finally:
        engine.dispose()
    yield url
    discard_database(url)


def every_table(url: str) -> dict[str, list[Row[Any]]]:
    """Every row of every capex table and of alembic_version, in primary key order."""
    engine = make_engine(url)
    tables: list[Table] = [*Base.metadata.sorted_tables]
    tables.append(Table("alembic_version", MetaData(), autoload_with=engine))
    try:
        with engine.connect() as connection:
            return {
                table.name: list(
                    connection.execute(select(table).order_by(*table.primary_key.columns))
                )
                for table in tables
            }
    finally:
        engine.dispose()


class Writer(threading.Thread):
    """Registers volunteers writer1, writer2, ..., each with one notification in the same
    transaction, until stopped; ``committed`` counts the transactions done."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.committed = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        engine = make_engine(self.url)
        sessions = make_session_factory(engine)
        try:
            while not self.stop.is_set():
                number = self.committed + 1
                with session_scope(sessions, write=True) as session:
                    self.register(session, number)
                self.committed = number
        except BaseException as error:
            self.error = error
        finally:
            engine.dispose()

    @staticmethod
    def register(session: Session, number: int) -> None:
        name = f"{WRITER}{number}"
        volunteer = accounts.new_volunteer(name, f"{name}@example.org", password_hash())
        session.add(volunteer)
        session.flush()
        session.add(
            Notification(
                volunteer_id=volunteer.id,
                kind=NotificationKind.EXCHANGE_ACCEPTED,
                text=f"note {number}",
                created_at=NOW,
            )
        )


def writer_number(username: str) -> int | None:
    return int(username.removeprefix(WRITER)) if username.startswith(WRITER) else None


def test_backup_while_writing_restores_every_table_as_it_was(
    backend, populated, new_database, tmp_path
):
    file = tmp_path / "capex.backup"
    writer = Writer(populated)
    writer.start()
    try:
        while writer.committed < 3 and writer.error is None:
            threading.Event().wait(0.01)
        before = writer.committed
        result = backups.backup(populated, file)
        after_backup = writer.committed
        # The backup did not stop the writer: it goes on committing after.
        while writer.committed < after_backup + 3 and writer.error is None:
            threading.Event().wait(0.01)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None
    if backend == "sqlite":
        assert result.journal_mode == "wal"
    assert result.revision == migrate.head_revision()
    assert result.size_bytes == file.stat().st_size > 0

    target = new_database()
    restored = backups.restore(target, file, revisions=migrate.revisions())
    assert restored.revision == result.revision
    assert not restored.upgrade_pending
    assert {t.name: t.rows for t in restored.tables} == {t.name: t.rows for t in result.tables}

    copy = every_table(target)
    source = every_table(populated)
    # One moment of the database: writer1..writerK, each with its notification, nothing more.
    copied_writers = sorted(
        n for row in copy["volunteers"] if (n := writer_number(row.username)) is not None
    )
    k = len(copied_writers)
    assert copied_writers == list(range(1, k + 1))
    assert before <= k <= after_backup + 1
    volunteer_ids = {row.id for row in copy["volunteers"]}
    writer_ids = {row.id for row in copy["volunteers"] if writer_number(row.username) is not None}
    assert sum(row.volunteer_id in writer_ids for row in copy["notifications"]) == k
    assert all(row.volunteer_id in volunteer_ids for row in copy["notifications"])
    assert all({row.learner_id, row.mentor_id} <= volunteer_ids for row in copy["exchanges"])
    assert copy["exchanges"], "the demo history made exchanges"

    # The source as it was at the backup: without the writer's later transactions.
    later = {
        row.id
        for row in source["volunteers"]
        if (n := writer_number(row.username)) is not None and n > k
    }
    source["volunteers"] = [row for row in source["volunteers"] if row.id not in later]
    source["notifications"] = [
        row for row in source["notifications"] if row.volunteer_id not in later
    ]
    assert set(copy) == set(source)
    for name, rows in source.items():
        assert copy[name] == rows, name


def test_restore_refuses_a_database_that_holds_data_unless_forced(
    populated, new_database, tmp_path
):
    file = tmp_path / "capex.backup"
    backups.backup(populated, file)
    target = new_database()
    migrate.upgrade(target)  # migrated but unused (the starting taxonomy): empty
    backups.restore(target, file, revisions=migrate.revisions())
    engine = make_engine(target)
    with session_scope(make_session_factory(engine)) as session:
        Writer.register(session, 999)
    engine.dispose()

    with pytest.raises(Conflict, match="not empty"):
        backups.restore(target, file, revisions=migrate.revisions())
    assert any(writer_number(row.username) == 999 for row in every_table(target)["volunteers"])

    backups.restore(target, file, revisions=migrate.revisions(), force=True)
    assert every_table(target) == every_table_at_backup(file, new_database)


def every_table_at_backup(file: Path, new_database: Callable[[], str]) -> dict[str, Any]:
    """The backup's content, read through a restore into a database of its own."""
    url = new_database()
    backups.restore(url, file, revisions=migrate.revisions())
    return every_table(url)


def test_backup_of_a_database_without_capex_schema_fails(new_database, tmp_path):
    url = new_database()
    if url.startswith("sqlite"):
        make_engine(url).dispose()
        Path(url.removeprefix("sqlite:///")).touch()
    with pytest.raises(BackupFailed, match="no capex schema"):
        backups.backup(url, tmp_path / "capex.backup")
    assert not (tmp_path / "capex.backup").exists()


# The command, end to end.


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    def use(url: str) -> str:
        monkeypatch.setenv("CAPEX_DATABASE_URL", url)
        reset_process_state()
        return url

    yield use
    reset_process_state()


def capex(*args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_refused(result: Any, reason: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert reason in lines[0]


def test_cli_backs_up_and_restores(populated, new_database, use_database, tmp_path):
    file = tmp_path / "capex.backup"
    use_database(populated)
    backed_up = capex("db", "backup", str(file))
    assert backed_up.exit_code == 0, backed_up.output
    head = migrate.head_revision()
    assert f"revision {head}" in backed_up.stdout
    assert "volunteers" in backed_up.stdout
    assert "exchanges" in backed_up.stdout

    assert_refused(capex("db", "backup", str(file)), "exists; pass --force")
    assert capex("db", "backup", "--force", str(file)).exit_code == 0

    target = use_database(new_database())
    restored = capex("db", "restore", str(file))
    assert restored.exit_code == 0, restored.output
    assert f"database at {head}" in restored.stdout
    assert "capex db upgrade" not in restored.stdout
    assert migrate.current_revision(target) == head

    assert_refused(capex("db", "restore", str(file)), "not empty")
    assert capex("db", "restore", "--force", str(file)).exit_code == 0
    assert every_table(target) == every_table(populated)


@pytest.mark.parametrize(
    "content", [b"", b"not a backup at all\n" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_cli_restore_of_a_file_that_is_no_backup_fails_cleanly(
    content, new_database, use_database, tmp_path
):
    file = tmp_path / "junk.backup"
    file.write_bytes(content)
    use_database(new_database())
    assert_refused(capex("db", "restore", str(file)), str(file))
    assert_refused(capex("db", "restore", str(tmp_path / "missing")), "is not a file")


def test_cli_restore_of_an_older_backup_suggests_upgrade(new_database, use_database, tmp_path):
    older = migrate.revisions()[-2]
    source = use_database(new_database())
    migrate.upgrade(source, older)
    file = tmp_path / "older.backup"
    assert capex("db", "backup", str(file)).exit_code == 0

    target = use_database(new_database())
    restored = capex("db", "restore", str(file))
    assert restored.exit_code == 0, restored.output
    assert "capex db upgrade" in restored.stdout
    assert migrate.current_revision(target) == older


def test_cli_restore_of_a_newer_backup_is_refused(new_database, use_database, tmp_path):
    source = use_database(new_database())
    migrate.upgrade(source)
    engine = make_engine(source)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999future'"))
    engine.dispose()
    file = tmp_path / "newer.backup"
    assert capex("db", "backup", str(file)).exit_code == 0

    target = use_database(new_database())
    assert_refused(capex("db", "restore", str(file)), "9999future")
    assert migrate.current_revision(target) is None


def test_cli_backup_of_a_missing_sqlite_database_fails_cleanly(use_database, tmp_path):
    use_database(f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert_refused(capex("db", "backup", str(tmp_path / "b")), "no SQLite database")
    assert not (tmp_path / "nowhere.db").exists()


def test_cli_restore_into_a_database_that_cannot_be_opened_fails_cleanly(
    backend, populated, use_database, tmp_path
):
    file = tmp_path / "capex.backup"
    backups.backup(populated, file)
    if backend == "sqlite":
        use_database(f"sqlite:///{tmp_path / 'no-such-folder' / 'capex.db'}")
    else:
        url = fresh_database(backend, tmp_path)
        discard_database(url)
        use_database(url)
    reason = "unable to open" if backend == "sqlite" else "does not exist"
    assert_refused(capex("db", "restore", str(file)), reason)


def test_cli_postgresql_backup_without_pg_dump_says_so(
    backend, populated, use_database, tmp_path, monkeypatch
):
    if backend != "postgresql":
        pytest.skip("pg_dump backs up PostgreSQL only")
    use_database(populated)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert_refused(capex("db", "backup", str(tmp_path / "b")), "pg_dump was not found on PATH")
    assert not (tmp_path / "b").exists()
