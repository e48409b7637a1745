"""Back up a capex database to a file and restore it: SQLite's online backup API, pg_dump.

Both kinds of backup are consistent while the server runs and writes: SQLite's backup API
copies every page in one step under a read transaction (which WAL mode lets writers go on
beside), and pg_dump reads everything in one snapshot. The file is written beside its final
name and renamed into place, so a failed backup never leaves half a file behind.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from capex.db import normalize_url
from capex.errors import CapexError, Conflict

# What a migrated but unused database already holds: the starting skill taxonomy that a
# migration loads, and Alembic's own row. Any other row makes a restore target "not empty".
_SCHEMA_ONLY_TABLES = frozenset({"alembic_version", "skills", "skill_aliases"})


class BackupFailed(CapexError):
    """A backup or restore that could not be done: a missing tool, a file that is no backup."""


@dataclass(frozen=True, slots=True)
class TableRows:
    """One table of a backup and how many rows it holds."""

    name: str
    rows: int


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What ``backup`` wrote: the file, its size, the schema revision and every table's rows."""

    path: Path
    backend: str
    size_bytes: int
    revision: str
    tables: tuple[TableRows, ...]
    # SQLite only: the live database's journal mode (WAL lets writers go on during the copy).
    journal_mode: str | None


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What ``restore`` did: the database now holds the backup's revision and these rows."""

    path: Path
    backend: str
    revision: str
    head: str | None
    tables: tuple[TableRows, ...]

    @property
    def upgrade_pending(self) -> bool:
        """The backup predates the code's newest migration: ``capex db upgrade`` brings it up."""
        return self.revision != self.head


def backup(database_url: str, path: Path, *, force: bool = False) -> BackupResult:
    """Copy the database at ``database_url`` into the file ``path``, consistently.

    Refuses (``Conflict``) to overwrite an existing file unless ``force``; raises
    ``BackupFailed`` when the database is missing or has no capex schema, or pg_dump fails.
    """
    if path.exists() and not force:
        raise Conflict(f"{path} exists; pass --force to overwrite it")
    if path.is_dir():
        raise Conflict(f"{path} is a directory")
    url = make_url(normalize_url(database_url))
    with _database_errors(url), _written_in_place(path) as partial:
        if url.get_backend_name() == "sqlite":
            revision, tables, journal_mode = _sqlite_backup(_sqlite_path(url), partial)
        else:
            revision, tables = _postgres_backup(url, partial)
            journal_mode = None
    return BackupResult(
        path=path,
        backend=url.get_backend_name(),
        size_bytes=path.stat().st_size,
        revision=revision,
        tables=tables,
        journal_mode=journal_mode,
    )


def restore(
    database_url: str, path: Path, *, revisions: Sequence[str], force: bool = False
) -> RestoreResult:
    """Replace the database at ``database_url`` with the backup in ``path``.

    ``revisions`` are the migrations this code knows, oldest first (the last is the head). A
    target that holds data is refused (``Conflict``) unless ``force``; so is a backup whose
    revision is newer than the code. ``BackupFailed`` when ``path`` is not a capex backup.
    """
    if not path.is_file():
        raise BackupFailed(f"{path} is not a file")
    url = make_url(normalize_url(database_url))
    with _database_errors(url):
        return _restore(url, path, revisions=revisions, force=force)


def _restore(url: URL, path: Path, *, revisions: Sequence[str], force: bool) -> RestoreResult:
    sqlite = url.get_backend_name() == "sqlite"
    revision = _sqlite_backup_revision(path) if sqlite else _postgres_backup_revision(path)
    if revision not in revisions:
        raise Conflict(
            f"the backup is at revision {revision}, which this capex does not know "
            "(made by a newer capex?); install that version to restore it"
        )
    if not force:
        tables = _sqlite_tables(_sqlite_path(url)) if sqlite else _postgres_tables(url)
        holding = [
            table.name for table in tables if table.rows and table.name not in _SCHEMA_ONLY_TABLES
        ]
        if holding:
            raise Conflict(
                f"the database is not empty ({', '.join(holding[:3])}"
                f"{', ...' if len(holding) > 3 else ''} hold rows); "
                "pass --force to replace everything in it"
            )
    if sqlite:
        _sqlite_restore(path, _sqlite_path(url))
        restored = _sqlite_revision_and_tables(_sqlite_path(url))
    else:
        _postgres_restore(path, url)
        restored = _postgres_revision_and_tables(url)
    if restored[0] != revision:
        raise BackupFailed(
            f"after the restore the database is at revision {restored[0]}, "
            f"not the backup's {revision}"
        )
    return RestoreResult(
        path=path,
        backend=url.get_backend_name(),
        revision=revision,
        head=revisions[-1] if revisions else None,
        tables=restored[1],
    )


@contextmanager
def _database_errors(url: URL) -> Iterator[None]:
    # A database that cannot be reached (or is locked) is a one-line failure, not a traceback.
    try:
        yield
    except (psycopg.Error, sqlite3.Error) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = url.render_as_string(hide_password=True)
        raise BackupFailed(f"database {where}: {reason}") from None


@contextmanager
def _written_in_place(path: Path) -> Iterator[Path]:
    # Beside the final name, so that the rename is atomic (same file system).
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(descriptor)
    partial = Path(name)
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupFailed(f"cannot back up or restore the SQLite database {url.database!r}")
    return Path(url.database)


def _sqlite_connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    else:
        connection = sqlite3.connect(path, timeout=30)
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def _sqlite_backup(source: Path, target: Path) -> tuple[str, tuple[TableRows, ...], str]:
    if not source.is_file():
        raise BackupFailed(f"there is no SQLite database at {source}")
    with closing(_sqlite_connect(source, read_only=False)) as live:
        journal_mode = str(live.execute("PRAGMA journal_mode").fetchone()[0])
        with closing(sqlite3.connect(target)) as copy:
            # pages=-1: every page in one step, under one read transaction, so the copy is
            # one moment of the database; in WAL mode writers go on meanwhile.
            live.backup(copy, pages=-1)
            # The file stands alone: no -wal beside it.
            copy.execute("PRAGMA journal_mode=DELETE")
    revision, tables = _sqlite_revision_and_tables(target)
    if revision is None:
        raise BackupFailed(f"{source} has no capex schema (run capex db upgrade)")
    return revision, tables, journal_mode


def _sqlite_tables(path: Path) -> tuple[TableRows, ...]:
    if not path.is_file():
        return ()
    with closing(_sqlite_connect(path, read_only=True)) as connection:
        return _sqlite_count(connection)


def _sqlite_count(connection: sqlite3.Connection) -> tuple[TableRows, ...]:
    names = [
        str(row[0])
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
    ]
    return tuple(
        TableRows(name, int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]))
        for name in names
    )


def _sqlite_revision_and_tables(path: Path) -> tuple[str | None, tuple[TableRows, ...]]:
    with closing(_sqlite_connect(path, read_only=True)) as connection:
        # One read transaction: the revision and the counts of the same moment.
        connection.execute("BEGIN")
        tables = _sqlite_count(connection)
        revision = None
        if any(table.name == "alembic_version" for table in tables):
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = None if row is None else str(row[0])
        connection.execute("COMMIT")
    return revision, tables


def _sqlite_backup_revision(path: Path) -> str:
    try:
        with closing(_sqlite_connect(path, read_only=True)) as connection:
            check = connection.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupFailed(f"{path} is a damaged SQLite database: {check}")
        revision, _tables = _sqlite_revision_and_tables(path)
    except sqlite3.DatabaseError as error:
        raise BackupFailed(f"{path} is not a SQLite backup: {error}") from None
    if revision is None:
        raise BackupFailed(f"{path} is not a capex backup (it has no alembic_version)")
    return revision


def _sqlite_restore(backup_file: Path, target: Path) -> None:
    try:
        with (
            closing(_sqlite_connect(backup_file, read_only=True)) as copy,
            closing(_sqlite_connect(target, read_only=False)) as live,
        ):
            # Into the live database: the backup API takes its write lock, replaces every
            # page at once and tells its other connections that the schema changed.
            copy.backup(live, pages=-1)
            # As capex opens it (capex.db): WAL, so the server's readers and writers coexist.
            live.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as error:
        raise BackupFailed(f"the restore into {target} failed: {error}") from None


# -- PostgreSQL ------------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """``url`` as a libpq URI for --dbname, and the environment that carries its password.

    The password goes in PGPASSWORD rather than on a command line anyone can read in ps.
    """
    without_password = url.set(drivername="postgresql", password=None)
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    return without_password.render_as_string(hide_password=False), environment


def _psycopg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str, url: URL) -> str:
    """The path of pg_dump or pg_restore, checked to be at least the server's major version."""
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            f"{name} was not found on PATH; install the PostgreSQL client tools "
            "(the server's major version or newer)"
        )
    output = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)(?:\.\d+)?", output.stdout)
    if match is None:
        raise BackupFailed(f"cannot tell the version of {found}: {output.stdout.strip()!r}")
    tool_major = int(match.group(1))
    with psycopg.connect(_psycopg_dsn(url)) as connection:
        row = connection.execute("SHOW server_version_num").fetchone()
    server_major = int(str(row[0] if row else 0)) // 10000
    if tool_major < server_major:
        raise BackupFailed(
            f"{found} is version {tool_major}, older than the server's {server_major}; "
            f"install the PostgreSQL {server_major} client tools"
        )
    return found


def _run(arguments: list[str], environment: dict[str, str], what: str) -> str:
    finished = subprocess.run(
        arguments, env=environment, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        lines = [line for line in finished.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {finished.returncode}"
        raise BackupFailed(f"{what} failed: {reason}")
    return finished.stdout


def _postgres_count(cursor: psycopg.Cursor[tuple[object, ...]]) -> tuple[TableRows, ...]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )
    names = [str(row[0]) for row in cursor.fetchall()]
    counts = []
    for name in names:
        cursor.execute(f'SELECT count(*) FROM "{name}"')
        row = cursor.fetchone()
        counts.append(TableRows(name, int(str(row[0])) if row else 0))
    return tuple(counts)


def _postgres_revision(
    cursor: psycopg.Cursor[tuple[object, ...]], tables: tuple[TableRows, ...]
) -> str | None:
    if not any(table.name == "alembic_version" for table in tables):
        return None
    cursor.execute("SELECT version_num FROM alembic_version")
    row = cursor.fetchone()
    return None if row is None else str(row[0])


def _postgres_backup(url: URL, target: Path) -> tuple[str, tuple[TableRows, ...]]:
    pg_dump = _tool("pg_dump", url)
    dbname, environment = _libpq(url)
    with (
        psycopg.connect(_psycopg_dsn(url)) as connection,
        connection.cursor() as cursor,
    ):
        # pg_dump reads the snapshot this transaction exports: the counts printed are
        # exactly what the file holds.
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        tables = _postgres_count(cursor)
        revision = _postgres_revision(cursor, tables)
        if revision is None:
            raise BackupFailed(
                f"database {url.database} has no capex schema (run capex db upgrade)"
            )
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={target}",
                f"--dbname={dbname}",
            ],
            environment,
            "pg_dump",
        )
    return revision, tables


def _postgres_tables(url: URL) -> tuple[TableRows, ...]:
    with psycopg.connect(_psycopg_dsn(url)) as connection, connection.cursor() as cursor:
        return _postgres_count(cursor)


def _postgres_revision_and_tables(url: URL) -> tuple[str | None, tuple[TableRows, ...]]:
    with psycopg.connect(_psycopg_dsn(url)) as connection, connection.cursor() as cursor:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tables = _postgres_count(cursor)
        return _postgres_revision(cursor, tables), tables


def _postgres_backup_revision(path: Path) -> str:
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupFailed("pg_restore was not found on PATH; install the PostgreSQL client tools")
    # The archive's alembic_version rows, as the SQL pg_restore would run (no database needed).
    script = _run(
        [pg_restore, "--data-only", "--table=alembic_version", "--file=-", str(path)],
        dict(os.environ),
        f"reading {path} as a pg_dump archive",
    )
    lines = script.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and index + 1 < len(lines):
            revision = lines[index + 1].strip()
            if revision and revision != "\\.":
                return revision
    raise BackupFailed(f"{path} is not a capex backup (it has no alembic_version)")


def _postgres_restore(path: Path, url: URL) -> None:
    pg_restore = _tool("pg_restore", url)
    dbname, environment = _libpq(url)
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            f"--dbname={dbname}",
            str(path),
        ],
        environment,
        "pg_restore",
    )
