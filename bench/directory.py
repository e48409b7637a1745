"""Directory latency with the demo population loaded, through the real HTTP API.

For each database: a fresh database, migrated; ``populate`` (timed); a uvicorn server in a
subprocess; then the median and 95th percentile of each directory query, signed in as a
demo volunteer:

(a) offers=<the most offered leaf skill>&language=en
(b) offers=<a skill offered by ~1% of volunteers>&language=<a language ~2% speak>
(c) the second page of (a), through its next_cursor
(d) wants=<the most wanted skill>&region=ssa
(e) q=<the most common surname>
(g) offers=<the root area offered most>&language=<the least spoken language> (a stress case)

and (f), for comparison, the "naive" way of answering (a), timed in-process: load every
active volunteer with offers and languages (ORM, selectinload) and filter in Python, as a
small app typically does.

    .venv/bin/python bench/directory.py --volunteers 100000 --databases sqlite,postgresql

Issue 2's target: a median under 50 ms for each directory query at 100,000 volunteers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, selectinload

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import demo, migrate, testing  # noqa: E402
from capex.db import make_engine, make_session_factory  # noqa: E402
from capex.models import SkillOffer, SkillWant, Volunteer, VolunteerLanguage  # noqa: E402
from capex.services import skills as skill_service  # noqa: E402

TARGET_MS = 50.0
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SERVER_START_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
# Each query gets at most this long; the naive way stops after NAIVE_RUNS or this budget.
QUERY_BUDGET_SECONDS = 120.0
NAIVE_RUNS = 5
WARMUP_REQUESTS = 5


@dataclass
class Measurement:
    query: str
    description: str
    samples_ms: list[float] = field(default_factory=list)
    # The first call's time, where it is kept apart from the samples (bench/stats.py).
    first_ms: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class DatabaseReport:
    database: str
    populate_seconds: float
    measurements: list[Measurement]


# -- databases -----------------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str, admin_url: str, keep: bool) -> Iterator[str]:
    """A new empty database of ``kind`` ('sqlite' or 'postgresql'); dropped afterwards."""
    with testing.throwaway_database(
        kind, Path(tempfile.gettempdir()), prefix="capex_bench", admin_url=admin_url, keep=keep
    ) as url:
        yield url


def populate(url: str, volunteers: int, analyze: bool) -> float:
    """Migrate, load the demo population, commit and (unless told not to) ANALYZE."""
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            started = time.perf_counter()
            result = demo.populate(
                session,
                volunteers=volunteers,
                progress=lambda k: print(f"\r  populate: {k:>7} volunteers", end="", flush=True),
            )
            session.commit()
            seconds = time.perf_counter() - started
        print(f"\r  populate: {result.created} volunteers in {seconds:.1f} s")
        # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) would do shortly after
        # a bulk load; without statistics the planners guess.
        if analyze:
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        return seconds
    finally:
        engine.dispose()


# -- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameters:
    username: str
    top_offered: str
    mid_offered: str
    rare_language: str
    top_wanted: str
    broad_root: str
    rarest_language: str
    surname: str


def choose_parameters(session: Session, volunteers: int) -> Parameters:
    """Query values that exist in this population, chosen the same way every run."""
    tree = skill_service.parents(session)
    inner = {parent for parent in tree.values() if parent is not None}
    offered = session.execute(
        select(SkillOffer.skill_id, func.count()).group_by(SkillOffer.skill_id)
    ).all()
    leaves = sorted(
        ((count, skill) for skill, count in offered if skill not in inner), reverse=True
    )
    # A mid-popular skill: offered by about 1% of volunteers (the 20th-40th most offered).
    mid = min(leaves, key=lambda pair: (abs(pair[0] - 0.01 * volunteers), pair[1]))
    wanted = session.execute(
        select(SkillWant.skill_id, func.count())
        .group_by(SkillWant.skill_id)
        .order_by(func.count().desc(), SkillWant.skill_id)
        .limit(1)
    ).one()
    spoken = session.execute(
        select(VolunteerLanguage.language, func.count()).group_by(VolunteerLanguage.language)
    ).all()
    # A less common language: spoken by about 2% of volunteers.
    rare = min(
        (pair for pair in spoken if pair[0] != "en"),
        key=lambda pair: (abs(pair[1] - 0.02 * volunteers), pair[0]),
    )
    # A stress case: a whole root area (dozens of skills) with the least spoken language.
    offers_by_skill = dict(offered)
    roots = [skill for skill, parent in tree.items() if parent is None]
    broad_root = max(
        roots,
        key=lambda root: (
            sum(offers_by_skill.get(s, 0) for s in skill_service.subtree_ids(tree, root)),
            root,
        ),
    )
    rarest = min(spoken, key=lambda pair: (pair[1], pair[0]))
    surnames = Counter(
        name.rsplit(" ", 1)[-1]
        for name in session.scalars(select(Volunteer.display_name).limit(20000))
    )
    username = session.scalars(
        select(Volunteer.username)
        .where(Volunteer.username_key.like("demo%"), Volunteer.is_active.is_(True))
        .order_by(Volunteer.id)
        .limit(1)
    ).one()
    return Parameters(
        username=username,
        top_offered=leaves[0][1],
        mid_offered=mid[1],
        rare_language=str(rare[0]),
        top_wanted=str(wanted[0]),
        surname=surnames.most_common(1)[0][0],
        broad_root=broad_root,
        rarest_language=str(rarest[0]),
    )


# -- the server ----------------------------------------------------------------------------


@contextmanager
def server(url: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """uvicorn serving capex on ``url``'s database; yields the base URL. ``env`` adds
    CAPEX_* settings."""

    def uvicorn(port: int) -> list[str]:
        app = ["uvicorn", "capex.api.app:create_app", "--factory", "--no-access-log"]
        return [sys.executable, "-m", *app, "--host", "127.0.0.1", "--port", str(port)]

    environment = {"CAPEX_ENVIRONMENT": "development", "PYTHONPATH": str(ROOT), **(env or {})}
    with testing.live_server(
        url,
        command=uvicorn,
        env=environment,
        ready_path="/healthz",
        start_timeout=SERVER_START_SECONDS,
        cwd=ROOT,
    ) as live:
        yield live.base


def timed(
    measurement: Measurement, runs: int, call: Callable[[], None], warmup: int = WARMUP_REQUESTS
) -> Measurement:
    for _ in range(warmup):
        call()
    deadline = time.monotonic() + QUERY_BUDGET_SECONDS
    for _ in range(runs):
        started = time.perf_counter()
        call()
        measurement.samples_ms.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline:
            break
    return measurement


def measure_http(base: str, params: Parameters, requests: int) -> list[Measurement]:
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        response = client.post(
            "/api/v1/auth/token",
            data={"username": params.username, "password": demo.DEFAULT_DEMO_PASSWORD},
        )
        response.raise_for_status()
        client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

        def page(query: dict[str, str]) -> httpx.Response:
            answer = client.get("/api/v1/volunteers", params=query)
            answer.raise_for_status()
            return answer

        first_query = {"offers": params.top_offered, "language": "en"}
        cursor = page(first_query).json()["next_cursor"]
        if cursor is None:
            raise RuntimeError("query (a) has a single page; use more volunteers")
        queries = [
            ("a", f"offers={params.top_offered}&language=en", first_query),
            (
                "b",
                f"offers={params.mid_offered}&language={params.rare_language}",
                {"offers": params.mid_offered, "language": params.rare_language},
            ),
            ("c", "(a), second page", {**first_query, "cursor": cursor}),
            (
                "d",
                f"wants={params.top_wanted}&region=ssa",
                {"wants": params.top_wanted, "region": "ssa"},
            ),
            ("e", f"q={params.surname}", {"q": params.surname}),
            (
                "g",
                f"offers={params.broad_root}&language={params.rarest_language} (stress)",
                {"offers": params.broad_root, "language": params.rarest_language},
            ),
        ]
        results = []
        for name, description, query in queries:
            found = len(page(query).json()["items"])
            print(f"  ({name}) {description}: {found} on the page")
            results.append(timed(Measurement(name, description), requests, _caller(page, query)))
        return results


def _caller(
    page: Callable[[dict[str, str]], httpx.Response], query: dict[str, str]
) -> Callable[[], None]:
    def call() -> None:
        page(query)

    return call


# -- the naive way -------------------------------------------------------------------------


def naive_search(session: Session, skill_ids: set[str], language: str, limit: int) -> list[int]:
    """Query (a) as a small app does it: everything into Python, then a loop."""
    volunteers = session.scalars(
        select(Volunteer)
        .options(selectinload(Volunteer.offers), selectinload(Volunteer.languages))
        .where(Volunteer.is_active.is_(True))
    ).all()
    found = []
    for volunteer in sorted(volunteers, key=lambda v: v.id):
        if any(offer.skill_id in skill_ids for offer in volunteer.offers) and any(
            lang.language == language for lang in volunteer.languages
        ):
            found.append(volunteer.id)
            if len(found) == limit:
                break
    return found


def measure_naive(engine: Engine, params: Parameters) -> Measurement:
    factory = make_session_factory(engine)
    with factory() as session:
        skill_ids = skill_service.subtree_ids(skill_service.parents(session), params.top_offered)

    def run() -> None:
        # A fresh session per request, as a web request would have.
        with factory() as session:
            naive_search(session, skill_ids, "en", 20)

    return timed(
        Measurement("f", f"naive (a): load all, filter in Python ({NAIVE_RUNS} runs)"),
        NAIVE_RUNS,
        run,
        warmup=1,
    )


# -- the report ----------------------------------------------------------------------------


def run_database(kind: str, args: argparse.Namespace) -> DatabaseReport:
    print(f"\n{kind}")
    with fresh_database(kind, args.postgres_admin_url, args.keep) as url:
        if args.keep:
            print(f"  database: {url}")
        seconds = populate(url, args.volunteers, args.analyze)
        engine = make_engine(url)
        try:
            with make_session_factory(engine)() as session:
                params = choose_parameters(session, args.volunteers)
            with server(url) as base:
                measurements = measure_http(base, params, args.requests)
            measurements.append(measure_naive(engine, params))
        finally:
            engine.dispose()
    return DatabaseReport(kind, seconds, measurements)


def print_report(reports: list[DatabaseReport], args: argparse.Namespace) -> None:
    print(
        f"\nDirectory latency, {args.volunteers} demo volunteers, {args.requests} requests "
        f"per query; {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("\n| database | populate |")
    print("|---|---:|")
    for report in reports:
        print(f"| {report.database} | {report.populate_seconds:.1f} s |")
    print("\n| database | query | median ms | p95 ms | naive/indexed | target |")
    print("|---|---|---:|---:|---:|---|")
    for report in reports:
        indexed = next(m.median for m in report.measurements if m.query == "a")
        for m in sorted(report.measurements, key=lambda m: m.query):
            naive = m.query == "f"
            ratio = f"{m.median / indexed:.0f}x vs (a)" if naive else ""
            verdict = "" if naive else ("ok" if m.median < TARGET_MS else "MISSED")
            print(
                f"| {report.database} | ({m.query}) {m.description} | {m.median:.1f} "
                f"| {m.p95:.1f} | {ratio} | {verdict} |"
            )


def database_kinds(parser: argparse.ArgumentParser, databases: str) -> list[str]:
    """The kinds ``--databases`` names ("sqlite,postgresql"); a usage error for others."""
    kinds = [kind.strip() for kind in databases.split(",") if kind.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database kinds: {', '.join(sorted(unknown))}")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="measure without refreshing planner statistics after the bulk load",
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("CAPEX_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL URL allowed to CREATE DATABASE",
    )
    args = parser.parse_args()
    kinds = database_kinds(parser, args.databases)
    reports = [run_database(kind, args) for kind in kinds]
    print_report(reports, args)


if __name__ == "__main__":
    main()
