"""Statistics latency at 100k volunteers and 1M exchanges, through the real HTTP API.

For each database: a fresh database; ``capex demo --volunteers N --exchanges M`` (timed,
the population and its 24-month history); a uvicorn server in a subprocess, signed in as
a coordinator; then every statistics endpoint, unfiltered and under filters, timed over
HTTP (median and 95th percentile of ``--requests`` calls after the first, whose time is
shown apart: it may include building the snapshot).

Beside it, in the same run and in-process:

- *naive*: the obvious way: every row loaded into Python through the ORM, then each answer
  counted in one plain pass (Counters; regions and languages left out: their obvious pass
  is a mentor search per learner). Its time is the load plus the counting, as an app that
  loads on each request would spend;
- *the snapshot* the server answers from (``StatsIndex``), on its own: a full build, the
  memory it holds, and a refresh with nothing new and after 1,000 exchanges changed;
- *SQL per call*: the same answers aggregated by the database on each call
  (``capex.services.stats.SqlStats``, the module's SQL), one call each.

    .venv/bin/python bench/stats.py --volunteers 100000 --exchanges 1000000

Issue 9's target: every statistics call under 200 ms median on both databases.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from directory import Measurement, database_kinds, server  # noqa: E402  (bench/directory.py)

from capex import testing  # noqa: E402
from capex.config import Settings  # noqa: E402
from capex.db import open_database, session_scope  # noqa: E402
from capex.demo import DEFAULT_DEMO_PASSWORD  # noqa: E402
from capex.models import Exchange, Feedback, SkillOffer, SkillWant, Volunteer  # noqa: E402
from capex.models.base import utcnow  # noqa: E402
from capex.services import accounts  # noqa: E402
from capex.services.stats import SqlStats, StatsFilter, StatsQuery  # noqa: E402
from capex.services.stats_snapshot import StatsIndex  # noqa: E402
from capex.vocabulary import Role  # noqa: E402

TARGET_MS = 200.0
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REQUEST_TIMEOUT_SECONDS = 300.0

# (endpoint, query) pairs timed over HTTP; the first of each endpoint is unfiltered.
CALLS: list[tuple[str, dict[str, str]]] = [
    ("overview", {}),
    ("overview", {"region": "lac"}),
    ("overview", {"language": "pt", "area": "technology"}),
    ("skills", {}),
    ("skills", {"region": "ssa", "since": "{year_ago}"}),
    ("skills", {"level": "area"}),
    ("funnel", {}),
    ("funnel", {"language": "es", "since": "{year_ago}"}),
    ("timeline", {}),
    ("timeline", {"interval": "week", "area": "communication"}),
    ("regions", {}),
    ("regions", {"area": "technology"}),
    ("languages", {}),
    ("languages", {"region": "eseap"}),
    ("mentors", {}),
    ("mentors", {"region": "cee", "language": "en"}),
]


@dataclass
class DatabaseReport:
    database: str
    load_seconds: float
    http: list[Measurement]
    naive_load_seconds: float = 0.0
    naive_ms: dict[str, float] = field(default_factory=dict)
    sql_ms: dict[str, float] = field(default_factory=dict)
    snapshot: dict[str, float] = field(default_factory=dict)


@contextmanager
def database(kind: str, args: argparse.Namespace) -> Iterator[str]:
    if kind == "sqlite" and args.reuse_sqlite:
        yield args.reuse_sqlite
        return
    if kind == "postgresql" and args.reuse_postgresql:
        yield args.reuse_postgresql
        return
    with testing.throwaway_database(
        kind, Path(tempfile.gettempdir()), prefix="capex_bench", admin_url=args.postgres_admin_url
    ) as url:
        yield url


def load(url: str, volunteers: int, exchanges: int) -> float:
    """``capex demo`` in a subprocess, as an operator would run it; then ANALYZE."""
    started = time.perf_counter()
    subprocess.run(
        [
            *(sys.executable, "-m", "capex.cli", "demo"),
            *("--volunteers", str(volunteers), "--exchanges", str(exchanges)),
        ],
        env={**os.environ, "CAPEX_DATABASE_URL": url, "PYTHONPATH": str(ROOT)},
        check=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    with open_database(url) as sessions, sessions() as session:
        # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) does after a bulk load.
        session.execute(text("ANALYZE"))
        session.commit()
    return seconds


def coordinator_token(url: str, base: str) -> str:
    with open_database(url) as sessions, session_scope(sessions, write=True) as session:
        accounts.set_role(session, accounts.volunteer_named(session, "demo1"), Role.COORDINATOR)
    signed_in = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": "demo1", "password": DEFAULT_DEMO_PASSWORD},
        timeout=60,
    )
    signed_in.raise_for_status()
    return str(signed_in.json()["access_token"])


def measure_http(base: str, token: str, requests: int) -> list[Measurement]:
    year_ago = (utcnow() - timedelta(days=365)).date().isoformat()
    measurements = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS, headers=headers) as client:
        for endpoint, params in CALLS:
            query = {key: value.format(year_ago=year_ago) for key, value in params.items()}
            shown = "&".join(f"{k}={v}" for k, v in query.items())
            measurement = Measurement(endpoint, shown)

            def call(endpoint: str = endpoint, query: dict[str, str] = query) -> None:
                response = client.get(f"/api/v1/stats/{endpoint}", params=query)
                response.raise_for_status()

            started = time.perf_counter()
            call()
            measurement.first_ms = (time.perf_counter() - started) * 1000
            for _ in range(requests):
                started = time.perf_counter()
                call()
                measurement.samples_ms.append((time.perf_counter() - started) * 1000)
            print(
                f"  {endpoint:9} {shown:40} first {measurement.first_ms:8.1f} ms, "
                f"median {measurement.median:6.1f} ms",
                flush=True,
            )
            measurements.append(measurement)
    return measurements


def measure_snapshot(url: str) -> dict[str, float]:
    """The snapshot on its own, in-process: a full build, a refresh with nothing new, and a
    refresh after 1,000 exchanges changed; the memory the build took."""
    settings = Settings(database_url=url)
    figures = {}
    with open_database(url) as sessions:
        index = StatsIndex(sessions, settings)
        tracemalloc.start()
        started = time.perf_counter()
        index.refresh()
        figures["build_s"] = time.perf_counter() - started
        figures["held_mb"] = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        started = time.perf_counter()
        index.refresh()
        figures["refresh_unchanged_s"] = time.perf_counter() - started
        with session_scope(sessions, write=True) as session:
            # 1,000 exchanges touched, as 1,000 transitions would stamp them.
            session.execute(update(Exchange).where(Exchange.id <= 1000).values(updated_at=utcnow()))
        started = time.perf_counter()
        index.refresh()
        figures["refresh_1000_s"] = time.perf_counter() - started
    print(
        f"  snapshot: build {figures['build_s']:.1f} s holding {figures['held_mb']:.0f} MB; "
        f"refresh {figures['refresh_unchanged_s'] * 1000:.0f} ms unchanged, "
        f"{figures['refresh_1000_s'] * 1000:.0f} ms after 1,000 changed exchanges",
        flush=True,
    )
    return figures


def measure_sql(url: str) -> dict[str, float]:
    """Each answer, unfiltered, aggregated by the database on the call: one call each."""
    settings, query = Settings(database_url=url), None
    timings = {}
    with open_database(url) as sessions:
        source = SqlStats(sessions)
        query = StatsQuery(settings, StatsFilter())
        for endpoint in dict.fromkeys(endpoint for endpoint, _ in CALLS):
            started = time.perf_counter()
            getattr(source, endpoint)(query)
            timings[endpoint] = (time.perf_counter() - started) * 1000
            print(f"  SQL per call {endpoint:9} {timings[endpoint]:9.0f} ms", flush=True)
    return timings


def measure_naive(url: str) -> tuple[float, dict[str, float]]:
    """Every row into Python through the ORM, then each answer counted in one plain pass."""
    settings = Settings(database_url=url)
    now = utcnow()
    cutoff = now - timedelta(days=settings.request_ttl_days)
    with open_database(url) as sessions, sessions() as session:
        started = time.perf_counter()
        volunteers = list(session.scalars(select(Volunteer)))
        offers = list(session.scalars(select(SkillOffer)))
        wants = list(session.scalars(select(SkillWant)))
        exchanges = list(session.scalars(select(Exchange)))
        feedback = list(session.scalars(select(Feedback)))
        load_seconds = time.perf_counter() - started
    print(f"  naive: every row loaded in {load_seconds:.1f} s", flush=True)

    def state(exchange: Exchange) -> str:
        if exchange.state == "requested" and exchange.created_at <= cutoff:
            return "expired"
        return str(exchange.state)

    def hours(exchange: Exchange) -> float:
        assert exchange.responded_at is not None
        return (exchange.responded_at - exchange.created_at).total_seconds() / 3600

    def overview() -> Any:
        active = {v.id: v for v in volunteers if v.is_active}
        offering = {o.volunteer_id for o in offers}
        mentors = [v for v in active.values() if v.mentor_capacity > 0 and v.id in offering]
        states = Counter(state(e) for e in exchanges)
        answered = [hours(e) for e in exchanges if e.responded_at is not None]
        return (
            len(active),
            len(mentors),
            sum(1 for v in mentors if v.accepted_as_mentor < v.mentor_capacity),
            len({w.volunteer_id for w in wants if w.volunteer_id in active}),
            states,
            statistics.median(answered) if answered else None,
        )

    def skills() -> Any:
        active = {v.id: v for v in volunteers if v.is_active}
        offered: Counter[str] = Counter()
        slots: Counter[str] = Counter()
        for o in offers:
            v = active.get(o.volunteer_id)
            if v is not None and v.mentor_capacity > 0:
                offered[o.skill_id] += 1
                slots[o.skill_id] += v.mentor_capacity - v.accepted_as_mentor
        wanted = Counter(w.skill_id for w in wants if w.volunteer_id in active)
        flows: dict[str, Counter[str]] = defaultdict(Counter)
        answered: dict[str, list[float]] = defaultdict(list)
        for e in exchanges:
            flows[e.skill_id][state(e)] += 1
            if e.responded_at is not None:
                answered[e.skill_id].append(hours(e))
        medians = {skill: statistics.median(h) for skill, h in answered.items()}
        rows = [(skill, offered[skill], wanted[skill] - slots[skill]) for skill in wanted]
        return sorted(rows, key=lambda row: -row[2]), flows, medians

    def funnel() -> Any:
        rated = {f.exchange_id for f in feedback}
        return (
            len(exchanges),
            sum(1 for e in exchanges if e.responded_at is not None),
            sum(1 for e in exchanges if e.accepted_at is not None),
            sum(1 for e in exchanges if e.state == "completed"),
            sum(1 for e in exchanges if e.state == "completed" and e.id in rated),
            Counter(state(e) for e in exchanges),
        )

    def timeline() -> Any:
        months: dict[str, Counter[str]] = defaultdict(Counter)
        for v in volunteers:
            months[f"{v.created_at:%Y-%m}"]["new_volunteers"] += 1
        for e in exchanges:
            months[f"{e.created_at:%Y-%m}"]["requested"] += 1
            if e.accepted_at is not None:
                months[f"{e.accepted_at:%Y-%m}"]["accepted"] += 1
            if e.closed_at is not None and e.state in ("completed", "expired"):
                months[f"{e.closed_at:%Y-%m}"][str(e.state)] += 1
        return sorted(months.items())

    def mentors() -> Any:
        offering = {o.volunteer_id for o in offers}
        load = Counter(
            v.accepted_as_mentor
            for v in volunteers
            if v.is_active and v.mentor_capacity > 0 and v.id in offering
        )
        waiting = sorted(
            (e for e in exchanges if state(e) == "requested"), key=lambda e: e.created_at
        )[:20]
        completed = Counter(e.mentor_id for e in exchanges if e.state == "completed")
        return load, waiting, completed.most_common(20)

    timings = {}
    for endpoint, answer in [
        ("overview", overview),
        ("skills", skills),
        ("funnel", funnel),
        ("timeline", timeline),
        ("mentors", mentors),
    ]:
        started = time.perf_counter()
        answer()
        timings[endpoint] = (time.perf_counter() - started) * 1000
        print(f"  naive {endpoint:9} counting {timings[endpoint]:9.0f} ms", flush=True)
    return load_seconds, timings


def run_database(kind: str, args: argparse.Namespace) -> DatabaseReport:
    print(f"\n{kind}", flush=True)
    with database(kind, args) as url:
        reused = (kind == "sqlite" and args.reuse_sqlite) or (
            kind == "postgresql" and args.reuse_postgresql
        )
        seconds = 0.0 if reused else load(url, args.volunteers, args.exchanges)
        # The matching index is not what is measured: do not build it beside the calls.
        with server(url, {"CAPEX_WARM_MATCHING_INDEX": "false"}) as base:
            token = coordinator_token(url, base)
            report = DatabaseReport(kind, seconds, measure_http(base, token, args.requests))
        report.snapshot = measure_snapshot(url)
        if not args.skip_sql:
            report.sql_ms = measure_sql(url)
        if not args.skip_naive:
            report.naive_load_seconds, report.naive_ms = measure_naive(url)
    return report


def print_report(reports: list[DatabaseReport], args: argparse.Namespace) -> None:
    print(
        f"\nStatistics latency, {args.volunteers} demo volunteers and {args.exchanges} "
        f"exchanges, {args.requests} timed requests per call after the first; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        "\n| database | load (capex demo) | snapshot build | held | refresh, nothing new "
        "| refresh, 1,000 exchanges changed | naive: every row into Python |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for report in reports:
        loaded = f"{report.load_seconds:.0f} s" if report.load_seconds else "(reused)"
        snap = report.snapshot
        print(
            f"| {report.database} | {loaded} | {snap['build_s']:.1f} s | {snap['held_mb']:.0f} MB "
            f"| {snap['refresh_unchanged_s'] * 1000:.0f} ms "
            f"| {snap['refresh_1000_s'] * 1000:.0f} ms "
            f"| {report.naive_load_seconds:.1f} s |"
        )
    print(
        "\n| database | call | first ms | median ms | p95 ms | SQL per call ms | naive ms "
        "| naive/median | target |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for report in reports:
        seen: set[str] = set()
        for m in report.http:
            unfiltered = m.query not in seen
            seen.add(m.query)
            sql = report.sql_ms.get(m.query) if unfiltered else None
            naive_ms = (
                report.naive_load_seconds * 1000 + report.naive_ms[m.query]
                if unfiltered and m.query in report.naive_ms
                else None
            )
            ratio = f"{naive_ms / m.median:,.0f}x" if naive_ms else ""
            verdict = "ok" if m.median < TARGET_MS else "MISSED"
            print(
                f"| {report.database} | {m.query}{'?' + m.description if m.description else ''} "
                f"| {m.first_ms:.0f} | {m.median:.1f} | {m.p95:.1f} "
                f"| {'' if sql is None else f'{sql:,.0f}'} "
                f"| {'' if naive_ms is None else f'{naive_ms:,.0f}'} | {ratio} | {verdict} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--exchanges", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per call")
    parser.add_argument("--skip-sql", action="store_true", help="do not time SQL per call")
    parser.add_argument("--skip-naive", action="store_true", help="do not time the naive way")
    parser.add_argument("--reuse-sqlite", help="an SQLite URL already loaded: skip the load")
    parser.add_argument("--reuse-postgresql", help="a PostgreSQL URL already loaded")
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
