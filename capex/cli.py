"""The ``capex`` command: serve, db, users, skills, demo."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from capex import migrate
from capex.config import Settings, SettingsError, get_settings
from capex.errors import CapexError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from capex.services.backups import TableRows

app = typer.Typer(help="capex: a capacity exchange.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
skills_app = typer.Typer(help="The skill taxonomy.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
exchanges_app = typer.Typer(help="Exchanges.", no_args_is_help=True)
stats_app = typer.Typer(help="Statistics for coordinators.", no_args_is_help=True)
rounds_app = typer.Typer(help="Matching rounds for a cohort.", no_args_is_help=True)
matching_app = typer.Typer(help="The matching index.", no_args_is_help=True)
app.add_typer(skills_app, name="skills")
app.add_typer(exchanges_app, name="exchanges")
app.add_typer(stats_app, name="stats")
app.add_typer(rounds_app, name="rounds")
app.add_typer(matching_app, name="matching")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Apply pending migrations, then serve the API and the web client; drain on SIGTERM."""
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    typer.echo(f"capex on http://{host}:{port} (database {_safe_url(settings.database_url)})")
    shared = None
    if settings.matching_index_dir is None:
        # One folder for this run's workers: the matching index is built once and mapped by
        # each. Fresh per run, so no worker maps an index of another database or day.
        shared = tempfile.mkdtemp(prefix="capex-matching-")
        os.environ["CAPEX_MATCHING_INDEX_DIR"] = shared
        get_settings.cache_clear()  # a single worker runs in this process
    try:
        _run_server(settings, host, port, workers)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    from capex.serving import serve as serve_until_stopped

    serve_until_stopped(
        "capex.api.app:create_app",
        workers=workers,
        grace_seconds=settings.shutdown_grace_seconds,
        timeout_keep_alive=settings.keep_alive_seconds,
        host=host,
        port=port,
        timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
        access_log=False,
        log_level=settings.log_level.lower(),
        # uvicorn believes X-Forwarded-For from loopback by default, which would let anyone
        # on the host pick the address the sign-in throttle counts; only named proxies.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {migrate.current_revision(get_settings().database_url)}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or 'base'.")],
) -> None:
    """Undo migrations down to REVISION."""
    migrate.downgrade(get_settings().database_url, revision)
    typer.echo(f"database at {migrate.current_revision(get_settings().database_url) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one."""
    url = get_settings().database_url
    current = migrate.current_revision(url)
    head = migrate.head_revision()
    state = "up to date" if current == head else "upgrade pending"
    typer.echo(f"{current or 'base'} (head {head}; {state})")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The backup file to write.")],
    force: Annotated[bool, typer.Option(help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Copy the database into FILE, consistently, while the server runs (SQLite, pg_dump)."""
    from capex.services import backups

    try:
        result = backups.backup(get_settings().database_url, file, force=force)
    except CapexError as error:
        raise _fail(error.detail) from error
    mode = f", journal {result.journal_mode}" if result.journal_mode else ""
    _print_tables(f"backup of {result.backend} at revision {result.revision}{mode}", result.tables)
    typer.echo(f"{file}: {_size(result.size_bytes)}, revision {result.revision}")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="A file `db backup` wrote.")],
    force: Annotated[
        bool, typer.Option(help="Replace the database even when it holds data.")
    ] = False,
) -> None:
    """Replace the database with the backup in FILE (stop the server first)."""
    from capex.services import backups

    try:
        result = backups.restore(
            get_settings().database_url, file, revisions=migrate.revisions(), force=force
        )
    except CapexError as error:
        raise _fail(error.detail) from error
    _print_tables(f"restored {file} at revision {result.revision}", result.tables)
    typer.echo(f"database at {result.revision}")
    if result.upgrade_pending:
        typer.echo(f"the backup predates this capex (head {result.head}): run `capex db upgrade`")


def _print_tables(title: str, tables: Sequence[TableRows]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for entry in tables:
        table.add_row(entry.name, f"{entry.rows:,}")
    Console().print(table)


def _size(size_bytes: int) -> str:
    size = float(size_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@users_app.command("set-role")
def users_set_role(
    username: str,
    role: Annotated[str, typer.Argument(help="coordinator or volunteer")],
) -> None:
    """Make USERNAME a coordinator, or a plain volunteer again."""
    from capex.db import session_scope
    from capex.services import accounts
    from capex.vocabulary import Role

    if role not in set(Role):
        raise _fail(f"role must be one of {', '.join(Role)}")
    try:
        # A write transaction from the start, as a write request has, so that the count of
        # coordinators cannot change under it (SQLite's write lock).
        with session_scope(write=True) as session:
            accounts.set_role(session, accounts.volunteer_named(session, username), Role(role))
    except CapexError as error:
        raise _fail(error.detail) from error
    typer.echo(f"{username} is now a {role}")


@skills_app.command("import")
def skills_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A JSON list of skills.")
    ],
) -> None:
    """Create or update skills from a JSON file (the format `skills export` writes)."""
    from capex.db import session_scope
    from capex.services import skills

    try:
        documents = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise _fail(f"{file} is not JSON: {error}") from error
    try:
        with session_scope() as session:
            result = skills.import_skills(session, documents)
    except CapexError as error:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in getattr(error, "errors", [])
        )
        raise _fail(f"{error.detail}{': ' + details if details else ''}") from error
    typer.echo(f"{result.created} skills created, {result.updated} updated")


@skills_app.command("export")
def skills_export() -> None:
    """Write the whole taxonomy as JSON to standard output."""
    from capex.db import session_scope
    from capex.services import skills

    with session_scope() as session:
        documents = skills.export_skills(session)
    json.dump(documents, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


@exchanges_app.command("expire")
def exchanges_expire() -> None:
    """Expire requests unanswered for CAPEX_REQUEST_TTL_DAYS (the server also does it)."""
    from capex.db import open_database
    from capex.services import maintenance

    settings = get_settings()
    with open_database(settings.database_url) as sessions:
        count = maintenance.expire_requests(sessions, settings)
    typer.echo(f"{count} requests expired")


@matching_app.command("build")
def matching_build(
    directory: Annotated[
        Path, typer.Argument(file_okay=False, help="The folder the server's workers share.")
    ],
) -> None:
    """Build the matching index into DIRECTORY as its next generation (`capex serve` runs
    this in a process of its own; its workers map the file)."""
    from capex.db import open_database
    from capex.services.matches import build_generation
    from capex.services.matching_index import Generations

    settings = get_settings()
    with open_database(settings.database_url) as sessions:
        meta = build_generation(sessions, Generations(directory))
    typer.echo(f"generation {meta.number} for the week of {meta.week_start:%Y-%m-%d}")


@stats_app.command("export")
def stats_export(
    out: Annotated[Path, typer.Option(file_okay=False, help="The folder to write into.")],
    format: Annotated[
        str, typer.Option(help="csv (every figure) or tab (open data: Commons tabular data).")
    ] = "csv",
    region: Annotated[str | None, typer.Option(help="Only volunteers of this region.")] = None,
    language: Annotated[str | None, typer.Option(help="Only speakers of this language.")] = None,
    area: Annotated[str | None, typer.Option(help="Only skills under this root skill.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Exchanges made on or after YYYY-MM-DD.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Exchanges made on or before YYYY-MM-DD.")
    ] = None,
) -> None:
    """Write every statistics table into OUT, one file each (NAME.csv or NAME.tab)."""
    from pydantic import TypeAdapter, ValidationError

    from capex.db import open_database
    from capex.schemas.profiles import LanguageCode, Region
    from capex.services import stats_tables
    from capex.services.stats import StatsFilter, StatsQuery
    from capex.services.stats_snapshot import StatsIndex
    from capex.services.tables import to_csv

    if format not in ("csv", "tab"):
        raise _fail("--format must be csv or tab")
    settings = get_settings()

    def checked(option: str, kind: Any, value: str | None) -> Any:
        try:
            return TypeAdapter(kind).validate_python(value)
        except ValidationError as error:
            message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
            raise _fail(f"--{option} {value}: {message}") from None

    filters = StatsFilter(
        region=checked("region", Region | None, region),
        language=checked("language", LanguageCode | None, language),
        area=area,
        since=checked("since", date | None, since),
        until=checked("until", date | None, until),
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise _fail(f"--since {since} is after --until {until}")
    migrate.upgrade(settings.database_url)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with open_database(settings.database_url) as sessions:
            query = StatsQuery(settings, filters)
            # One snapshot for every table: the same as_of, and a second instead of minutes.
            snapshot = StatsIndex(sessions, settings, max_age_seconds=3600)
            export = stats_tables.every_table(snapshot, query)
    except CapexError as error:
        raise _fail(error.detail) from error
    for table in export.tables:
        if format == "csv":
            (out / f"{table.name}.csv").write_text(to_csv(table), encoding="utf-8", newline="")
        else:
            document = stats_tables.open_data(
                table, min_cell=settings.stats_min_cell, as_of=export.as_of
            )
            text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
            (out / f"{table.name}.tab").write_text(text, encoding="utf-8")
    typer.echo(f"{len(export.tables)} tables written to {out} as {format}")


@rounds_app.command("run")
def rounds_run(
    name: Annotated[str, typer.Option(help="The round's name, e.g. the 2027 leadership cohort.")],
    skill: Annotated[
        list[str] | None,
        typer.Option(help="Only learners wanting this skill (or below); again for more."),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="optimal (greatest total score) or stable.")
    ] = "optimal",
    learner: Annotated[
        list[int] | None, typer.Option(help="Only this learner id; again for more.")
    ] = None,
    mentor: Annotated[
        list[int] | None, typer.Option(help="Only this mentor id; again for more.")
    ] = None,
    min_score: Annotated[float, typer.Option(help="Leave out pairs scoring less.")] = 0.0,
    max_per_learner: Annotated[int, typer.Option(help="Pairs one learner may get.")] = 1,
) -> None:
    """Run a matching round and keep it as a draft; prints its metrics."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from capex.db import open_database, session_scope
    from capex.schemas.rounds import RoundCreate
    from capex.services import rounds
    from capex.services.matches import MatchingService

    try:
        data = RoundCreate.model_validate(
            {
                "name": name,
                "mode": mode,
                "skills": skill or None,
                "learners": learner or None,
                "mentors": mentor or None,
                "min_score": min_score,
                "max_per_learner": max_per_learner,
            }
        )
    except ValidationError as error:
        problems = "; ".join(
            f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
            for e in error.errors()
        )
        raise _fail(problems) from None
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    try:
        with open_database(settings.database_url) as sessions, Progress() as bar:
            task = bar.add_task("round", total=4)

            def moved(step: str, done: float, steps: int) -> None:
                bar.update(task, completed=done, total=steps, description=step)

            matching = MatchingService(sessions, rebuild_in_background=False)
            with session_scope(sessions, write=True) as session:
                view = rounds.run(session, matching, None, data, progress=moved)
    except CapexError as error:
        raise _fail(error.detail) from error
    table = Table(title=f"round {view.id}: {view.name} ({view.mode}, draft)")
    for column in (
        "learners",
        "matched",
        "pairs",
        "total score",
        "mean score",
        "mentor load Gini",
        "blocking pairs",
    ):
        table.add_column(column, justify="right")
    m = view.metrics
    table.add_row(
        str(m.learners),
        str(m.matched),
        str(len(view.pairs)),
        f"{m.total_score:.4f}",
        "-" if m.mean_score is None else f"{m.mean_score:.4f}",
        "-" if m.mentor_load_gini is None else f"{m.mentor_load_gini:.3f}",
        str(m.blocking_pairs),
    )
    Console().print(table)
    typer.echo(f"publish it with: capex rounds publish {view.id}")


@rounds_app.command("publish")
def rounds_publish(
    round_id: Annotated[int, typer.Argument(min=1, help="The round's id.")],
) -> None:
    """Turn a draft round's pairs into requests (origin round); reports the pairs left out."""
    from capex.db import open_database, session_scope
    from capex.services import rounds

    settings = get_settings()
    try:
        with (
            open_database(settings.database_url) as sessions,
            session_scope(sessions, write=True) as session,
        ):
            result = rounds.publish(session, settings, round_id)
    except CapexError as error:
        raise _fail(error.detail) from error
    typer.echo(f"{result.published} pairs published as requests, {result.not_published} left out")
    for pair in result.round.pairs:
        if pair.not_published:
            who = f"{pair.learner.username} -> {pair.mentor.username} ({pair.skill})"
            typer.echo(f"  {who}: {pair.not_published}")


@app.command()
def demo(
    volunteers: Annotated[int, typer.Option(min=1, max=2_000_000, help="How many volunteers.")],
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same population.")] = 1,
    password: Annotated[
        str | None, typer.Option(help="Password of every demo user (default in README).")
    ] = None,
    exchanges: Annotated[
        int,
        typer.Option(min=0, max=20_000_000, help="How many exchanges of history among them."),
    ] = 0,
) -> None:
    """Load a synthetic population of volunteers demo1..demoN sharing one password, and
    optionally an exchange history among them over the last 24 months."""
    from rich.progress import Progress

    import capex.demo as demo_service
    from capex.db import session_scope
    from capex.demo.history import write_history
    from capex.models.base import utcnow

    settings = get_settings()
    migrate.upgrade(settings.database_url)
    # One now for the population and its history: the same seed gives the same rows.
    now = utcnow()
    try:
        with Progress() as progress, session_scope() as session:
            task = progress.add_task("volunteers", total=volunteers)
            result = demo_service.populate(
                session,
                volunteers=volunteers,
                seed=seed,
                password=password or demo_service.DEFAULT_DEMO_PASSWORD,
                progress=lambda done: progress.update(task, completed=done),
                clock=lambda: now,
            )
            if exchanges:
                history_task = progress.add_task("exchanges", total=exchanges)
                history = write_history(
                    session,
                    settings,
                    result,
                    exchanges=exchanges,
                    seed=seed,
                    progress=lambda done: progress.update(history_task, completed=done),
                    clock=lambda: now,
                )
    except CapexError as error:
        raise _fail(error.detail) from error
    typer.echo(
        f"{result.created} demo volunteers (demo1..demo{result.created}) in {result.seconds:.1f} s"
    )
    if exchanges:
        typer.echo(
            f"{history.exchanges} exchanges, {history.events} events and {history.feedback} "
            f"ratings in {history.seconds:.1f} s"
        )


@app.command("seed-if-empty")
def seed_if_empty(
    volunteers: Annotated[int, typer.Option(min=0, help="How many demo volunteers.")] = 300,
    exchanges: Annotated[
        int | None,
        typer.Option(min=0, help="How many exchanges of history (default 10 per volunteer)."),
    ] = None,
) -> None:
    """Load demo volunteers and their history only when there are none yet (`make run`)."""
    from sqlalchemy import func, select

    from capex.db import session_scope
    from capex.models import Volunteer

    migrate.upgrade(get_settings().database_url)
    with session_scope() as session:
        count = session.scalar(select(func.count()).select_from(Volunteer)) or 0
    if count or not volunteers:
        typer.echo(f"{count} volunteers in the database; no demo data loaded")
        return
    history = 10 * volunteers if exchanges is None else exchanges
    demo(volunteers=volunteers, seed=1, password=None, exchanges=history)


def main() -> None:
    """The ``capex`` command; a bad CAPEX_* variable ends in one line each, exit code 2."""
    try:
        app()
    except SettingsError as error:
        for line in str(error).splitlines():
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
