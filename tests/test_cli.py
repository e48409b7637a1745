"""The ``capex`` command against real databases of both backends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from capex import config, db, migrate
from capex.cli import app
from capex.models import Volunteer
from capex.schemas.profiles import RegisterIn
from capex.services import accounts
from capex.testing import discard_database, fresh_database
from tests.conftest import reset_process_state

runner = CliRunner()


def capex(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Point the command at a database, as CAPEX_DATABASE_URL would."""

    def use(url: str) -> str:
        monkeypatch.setenv("CAPEX_DATABASE_URL", url)
        reset_process_state()
        return url

    yield use
    reset_process_state()


@pytest.fixture
def empty_database(backend: str, tmp_path: Path, use_database) -> Iterator[str]:
    url = fresh_database(backend, tmp_path)
    yield use_database(url)
    reset_process_state()
    discard_database(url)


@pytest.fixture(scope="module")
def _migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # One migrated database per backend for this module: the tests below only add rows
    # with names of their own, so they can share it.
    url = fresh_database(backend, tmp_path_factory.mktemp(f"cli-{backend}"))
    migrate.upgrade(url)
    yield url
    discard_database(url)


@pytest.fixture
def migrated_database(_migrated_url: str, use_database) -> str:
    return use_database(_migrated_url)


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def exported_ids() -> list[str]:
    result = capex("skills", "export")
    assert result.exit_code == 0, result.output
    return [entry["id"] for entry in json.loads(result.stdout)]


# db


def test_db_upgrade_then_current_says_up_to_date(empty_database):
    head = migrate.head_revision()
    assert head is not None

    before = capex("db", "current")
    assert before.exit_code == 0, before.output
    assert "upgrade pending" in before.stdout

    upgraded = capex("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"database at {head}" in upgraded.stdout

    current = capex("db", "current")
    assert current.exit_code == 0, current.output
    assert current.stdout.startswith(head)
    assert "up to date" in current.stdout


def test_db_downgrade_base_then_current_says_base(empty_database):
    assert capex("db", "upgrade").exit_code == 0

    downgraded = capex("db", "downgrade", "base")
    assert downgraded.exit_code == 0, downgraded.output
    assert "database at base" in downgraded.stdout

    current = capex("db", "current")
    assert current.exit_code == 0, current.output
    assert current.stdout.startswith("base")
    assert "upgrade pending" in current.stdout


# users


def test_users_set_role_makes_a_volunteer_coordinator(migrated_database):
    with db.session_scope() as session:
        accounts.register(
            session,
            RegisterIn(username="Ada", email="ada@example.org", password="correct horse battery"),
        )

    result = capex("users", "set-role", "ada", "coordinator")

    assert result.exit_code == 0, result.output
    assert "coordinator" in result.stdout
    with db.session_scope() as session:
        role = session.scalar(select(Volunteer.role).where(Volunteer.username_key == "ada"))
    assert role == "coordinator"


def test_users_set_role_for_unknown_user_exits_1(migrated_database):
    result = capex("users", "set-role", "nobody-here", "coordinator")
    assert result.exit_code == 1
    assert "no volunteer named 'nobody-here'" in result.stderr


def test_users_set_role_to_unknown_role_exits_1(migrated_database):
    result = capex("users", "set-role", "ada", "emperor")
    assert result.exit_code == 1
    assert "coordinator" in result.stderr


# skills


def test_skills_export_prints_json_that_import_accepts(migrated_database, tmp_path):
    exported = capex("skills", "export")
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.stdout)
    assert len(document) >= 80
    assert {"id", "name", "description", "parent", "aliases", "wikidata"} == set(document[0])

    result = capex("skills", "import", str(write_json(tmp_path / "skills.json", document)))

    assert result.exit_code == 0, result.output
    assert f"0 skills created, {len(document)} updated" in result.stdout
    assert json.loads(capex("skills", "export").stdout) == document


def test_skills_import_creates_a_new_skill(migrated_database, tmp_path):
    new = {
        "id": "cli-imported-skill",
        "name": "Imported from a file",
        "description": "Made by the import command.",
        "parent": "technology",
        "aliases": ["file skill"],
        "wikidata": None,
    }

    result = capex("skills", "import", str(write_json(tmp_path / "new.json", [new])))

    assert result.exit_code == 0, result.output
    assert "1 skills created, 0 updated" in result.stdout
    exported = json.loads(capex("skills", "export").stdout)
    assert new in exported


def test_skills_import_of_a_file_that_is_not_json_exits_1(migrated_database, tmp_path):
    path = tmp_path / "skills.csv"
    path.write_text("id,name\nlua,Lua\n", encoding="utf-8")

    result = capex("skills", "import", str(path))

    assert result.exit_code == 1
    assert "is not JSON" in result.stderr
    assert "Traceback" not in result.output


def test_skills_import_of_an_invalid_entry_changes_nothing(migrated_database, tmp_path):
    document = [
        {"id": "cli-fine-skill", "name": "Fine", "parent": "technology"},
        {"id": "cli-orphan-skill", "name": "Orphan", "parent": "no-such-skill"},
    ]

    result = capex("skills", "import", str(write_json(tmp_path / "bad.json", document)))

    assert result.exit_code == 1
    assert "1.parent: unknown skill" in result.stderr
    assert "cli-fine-skill" not in exported_ids()


def test_skills_import_of_a_missing_file_is_a_usage_error(migrated_database, tmp_path):
    result = capex("skills", "import", str(tmp_path / "missing.json"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


# demo


def test_demo_creates_demo1_to_demo50(migrated_database):
    result = capex("demo", "--volunteers", "50", "--seed", "3")

    assert result.exit_code == 0, result.output
    with db.session_scope() as session:
        usernames = set(
            session.scalars(select(Volunteer.username).where(Volunteer.username.like("demo%")))
        )
    assert usernames == {f"demo{number}" for number in range(1, 51)}


# exchanges


def test_exchanges_expire_writes_requests_past_their_time(migrated_database):
    from datetime import timedelta

    from sqlalchemy import update

    from capex.models import Exchange
    from capex.models.base import utcnow
    from capex.services import exchanges
    from tests.factories import make_volunteer

    with db.session_scope() as session:
        learner = make_volunteer(session, "cli_learner")
        mentor = make_volunteer(session, "cli_mentor", offers=[{"skill": "lua", "level": 3}])
        fresh = make_volunteer(session, "cli_mentor2", offers=[{"skill": "lua", "level": 3}])
        settings = config.get_settings()
        old = exchanges.request(session, settings, learner, mentor_id=mentor.id, skill="lua")
        new = exchanges.request(session, settings, learner, mentor_id=fresh.id, skill="lua")
        stale_id, new_id = old.exchange.id, new.exchange.id
        session.execute(
            update(Exchange)
            .where(Exchange.id == stale_id)
            .values(created_at=utcnow() - timedelta(days=settings.request_ttl_days, hours=1))
        )

    result = capex("exchanges", "expire")

    assert result.exit_code == 0, result.output
    assert "1 requests expired" in result.stdout
    with db.session_scope() as session:
        states = dict(
            session.execute(
                select(Exchange.id, Exchange.state).where(Exchange.id.in_([stale_id, new_id]))
            ).all()
        )
    assert states == {stale_id: "expired", new_id: "requested"}
    assert "0 requests expired" in capex("exchanges", "expire").stdout


# stats export

EXPORTED = {
    "overview",
    "skills",
    "areas",
    "funnel",
    "funnel_lost",
    "timeline_month",
    "timeline_week",
    "regions",
    "languages",
    "mentors_load",
    "mentors_waiting_requests",
    "mentors_top",
}


def test_stats_export_writes_every_table_with_the_service_figures(empty_database, tmp_path):
    import csv

    from capex.services import stats

    loaded = capex("demo", "--volunteers", "80", "--exchanges", "400", "--seed", "2")
    assert loaded.exit_code == 0, loaded.output

    as_csv = capex("stats", "export", "--format", "csv", "--out", str(tmp_path / "csv"))
    assert as_csv.exit_code == 0, as_csv.output
    assert "12 tables" in as_csv.output
    assert {path.stem for path in (tmp_path / "csv").glob("*.csv")} == EXPORTED
    with db.session_scope() as session:
        skills = stats.skills(session, stats.StatsQuery(config.get_settings()))
    with (tmp_path / "csv" / "skills.csv").open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["skill"], int(r["wanted"]), int(r["gap"])) for r in rows] == [
        (item.skill, item.wanted, item.gap) for item in skills.items
    ]
    assert sum(int(r["requested"]) for r in rows) == 400

    as_tab = capex("stats", "export", "--format", "tab", "--out", str(tmp_path / "tab"))
    assert as_tab.exit_code == 0, as_tab.output
    assert {path.stem for path in (tmp_path / "tab").glob("*.tab")} == EXPORTED
    top = json.loads((tmp_path / "tab" / "mentors_top.tab").read_text(encoding="utf-8"))
    assert top["license"] == "CC0-1.0"
    assert [f["name"] for f in top["schema"]["fields"]] == ["completed", "rating", "ratings"]
    document = json.loads((tmp_path / "tab" / "skills.tab").read_text(encoding="utf-8"))
    wanted = [f["name"] for f in document["schema"]["fields"]].index("wanted")
    shown = [row[wanted] for row in document["data"]]
    assert all(value is None or value >= 5 for value in shown)
    assert shown == [None if item.wanted < 5 else item.wanted for item in skills.items]


def test_stats_export_refuses_a_bad_format_or_filter(migrated_database, tmp_path):
    bad_format = capex("stats", "export", "--format", "xlsx", "--out", str(tmp_path))
    assert bad_format.exit_code == 1
    assert "csv or tab" in bad_format.stderr
    bad_region = capex("stats", "export", "--region", "atlantis", "--out", str(tmp_path))
    assert bad_region.exit_code == 1
    assert "region" in bad_region.stderr
    bad_area = capex("stats", "export", "--area", "lua", "--out", str(tmp_path))
    assert bad_area.exit_code == 1
    assert "root skill" in bad_area.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_seed_if_empty_loads_volunteers_and_their_history_once(empty_database):
    from sqlalchemy import func

    from capex.models import Exchange

    first = capex("seed-if-empty", "--volunteers", "30")
    assert first.exit_code == 0, first.output
    with db.session_scope() as session:
        counts = (
            session.scalar(select(func.count()).select_from(Volunteer)),
            session.scalar(select(func.count()).select_from(Exchange)),
        )
    # Ten exchanges per volunteer: the coordinators' statistics have something to show.
    assert counts == (30, 300)
    again = capex("seed-if-empty", "--volunteers", "30")
    assert again.exit_code == 0, again.output
    assert "no demo data loaded" in again.output


# rounds


def test_rounds_run_then_publish_from_the_command_line(empty_database):
    from capex.models import Exchange, Round

    loaded = capex("demo", "--volunteers", "120", "--seed", "4")
    assert loaded.exit_code == 0, loaded.output

    ran = capex("rounds", "run", "--name", "CLI cohort", "--skill", "technology")
    assert ran.exit_code == 0, ran.output
    assert "CLI cohort" in ran.output
    assert "blocking" in ran.output
    with db.session_scope() as session:
        (round_,) = session.scalars(select(Round)).all()
        pairs = round_.matched
    assert pairs > 0
    assert f"capex rounds publish {round_.id}" in ran.output

    published = capex("rounds", "publish", str(round_.id))
    assert published.exit_code == 0, published.output
    with db.session_scope() as session:
        made = session.scalars(select(Exchange).where(Exchange.origin == "round")).all()
    assert len(made) > 0
    assert f"{len(made)} pairs published" in published.output

    again = capex("rounds", "publish", str(round_.id))
    assert again.exit_code == 1
    assert "already published" in again.stderr


def test_rounds_run_refuses_bad_options(migrated_database):
    bad_mode = capex("rounds", "run", "--name", "x", "--mode", "greedy")
    assert bad_mode.exit_code == 1
    assert "mode" in bad_mode.stderr
    bad_skill = capex("rounds", "run", "--name", "x", "--skill", "no-such-skill")
    assert bad_skill.exit_code == 1
    assert "unknown skill" in bad_skill.stderr
    missing = capex("rounds", "publish", "987654")
    assert missing.exit_code == 1
    assert "no round" in missing.stderr
