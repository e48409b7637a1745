"""A mixed load through the real HTTP API on PostgreSQL, then the invariants checked in SQL.

    .venv/bin/python -m pip install -e '.[bench]'   # locust and httpx (or: make load)
    .venv/bin/python bench/load.py                  # 100k volunteers, 2 workers, 16 clients, 60 s
    .venv/bin/python bench/load.py --volunteers 2000 --duration 20 --workers 1

What it does:

1. A template database on PostgreSQL, ``capex_load_<N>v_<M>x``, made once with ``capex demo
   --volunteers N --exchanges M`` (then ``VACUUM ANALYZE``) and kept, so that later runs
   start in seconds; each run works on a copy (``CREATE DATABASE ... TEMPLATE``), dropped
   afterwards unless ``--keep``.
2. The cast: ``--clients`` demo volunteers (password ``capex-demo-2026``) who offer and want
   skills, chained so that each one's matches as a learner list the next one (asked of
   ``MatchingService`` over the copy), so that requests reach mentors who are also clients
   and get accepted and completed. One more demo volunteer becomes a coordinator.
3. ``capex serve --workers W`` on the copy (or, with ``--healthcheck-timeout S``, the same
   app under ``uvicorn --timeout-worker-healthcheck S``: see ``server_command``; log level
   WARNING: no access log; write rate limits off, ``CAPEX_WRITE_LIMIT_PER_ACCOUNT=0`` and
   ``..._PER_ADDRESS=0``; statistics at most ``--stats-max-age`` seconds old).
4. ``locust -f bench/locustfile.py --headless`` in a subprocess: one user per client, no
   think time, for ``--duration`` seconds (see the locustfile for the mix). Its CSV gives
   the table (requests/s and p50/p95/p99 per endpoint); its journal (one line per request)
   gives the answers by status and the acknowledged writes.
5. The checks, in SQL, on the copy: no mentor over capacity, and ``accepted_as_mentor`` and
   ``requested_as_learner`` equal to the counts of rows; every exchange's last event is its
   state, and every exchange touched during the run has a legal trail of events from its
   request to its state; every write a client saw acknowledged is in the database; the
   coordinators' ``/stats/overview`` and ``/stats/funnel``, once their snapshot is newer
   than the end of the load, equal the same counts made in SQL; and no 5xx nor transport
   error during the run. Exits 1 when a check fails.

``bench/faults.py`` runs the same load with PostgreSQL stopped, and the server sent SIGTERM,
in the middle.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import migrate, testing  # noqa: E402
from capex.config import Settings  # noqa: E402
from capex.db import make_engine, make_session_factory  # noqa: E402
from capex.services.exchanges import OPENING, TRANSITIONS  # noqa: E402
from capex.services.exchanges.lifecycle import EXPIRY  # noqa: E402
from capex.services.matches import MatchingService  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEMO_PASSWORD = "capex-demo-2026"
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
SERVER_START_SECONDS = 300.0
# The locust users ask for 20 matches; a fellow must be among them.
MATCHES_ASKED = 20


# -- databases -------------------------------------------------------------------------------


def admin_connect(admin_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(testing.admin_dsn(admin_url), autocommit=True)


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def template_name(volunteers: int, exchanges: int, seed: int) -> str:
    suffix = "" if seed == 1 else f"_s{seed}"
    return f"capex_load_{volunteers}v_{exchanges}x{suffix}"


def ensure_template(admin_url: str, volunteers: int, exchanges: int, seed: int = 1) -> str:
    """The populated template database's name; made first if there is none yet.

    It is built under another name and renamed when complete, so that a run cut short
    never leaves a half-filled template behind.
    """
    name = template_name(volunteers, exchanges, seed)
    with admin_connect(admin_url) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if found.fetchone():
            print(f"template {name}: reused")
            return name
        building = f"{name}_building"
        connection.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{building}"')
    print(f"template {name}: capex demo --volunteers {volunteers} --exchanges {exchanges}")
    started = time.monotonic()
    env = {
        **os.environ,
        "CAPEX_ENVIRONMENT": "development",
        "CAPEX_DATABASE_URL": database_url(admin_url, building),
    }
    command = [sys.executable, "-m", "capex.cli", "demo", "--volunteers", str(volunteers)]
    command += ["--exchanges", str(exchanges), "--seed", str(seed)]
    subprocess.run(command, env=env, cwd=ROOT, check=True)
    with psycopg.connect(
        testing.admin_dsn(database_url(admin_url, building)), autocommit=True
    ) as connection:
        connection.execute("VACUUM ANALYZE")
    with admin_connect(admin_url) as connection:
        connection.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    print(f"template {name}: made in {time.monotonic() - started:.0f} s")
    return name


@contextmanager
def database_copy(admin_url: str, template: str, keep: bool = False) -> Iterator[str]:
    """A new database copied from ``template``, for the ``with`` block; its URL."""
    name = f"capex_load_run_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    with admin_connect(admin_url) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    print(f"database {name}: copied in {time.monotonic() - started:.1f} s")
    try:
        yield database_url(admin_url, name)
    finally:
        if keep:
            print(f"database {name}: kept")
        else:
            with admin_connect(admin_url) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the cast --------------------------------------------------------------------------------


def choose_cast(url: str, clients: int, seed: int) -> tuple[list[dict[str, Any]], str]:
    """``clients`` demo volunteers, each with a fellow of the cast among their matches as a
    learner where one could be found; and a coordinator's username (made so here)."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with engine.connect() as connection:
            candidates = {
                row[0]: row[1]
                for row in connection.execute(
                    text(
                        "SELECT v.id, v.username FROM volunteers v WHERE v.is_active "
                        "AND v.role = 'volunteer' AND v.mentor_capacity > 0 "
                        "AND v.requested_as_learner <= 1 "
                        "AND EXISTS (SELECT 1 FROM skill_offers o WHERE o.volunteer_id = v.id) "
                        "AND EXISTS (SELECT 1 FROM skill_wants w WHERE w.volunteer_id = v.id)"
                    )
                )
            }
        index = MatchingService(factory, rebuild_in_background=False).index()
        rng = random.Random(seed)
        pool = sorted(candidates)
        chosen: list[int] = []
        fellow: dict[int, int] = {}
        attempts = 0
        while len(chosen) < clients and attempts < 50 * clients:
            attempts += 1
            current = rng.choice(pool)
            if current in chosen:
                continue
            chain = [current]
            while len(chosen) + len(chain) < clients:
                listed = index.query(current, role="learner", limit=MATCHES_ASKED)
                nexts = [
                    match.volunteer_id
                    for match in listed
                    if match.volunteer_id in candidates
                    and match.volunteer_id not in chosen
                    and match.volunteer_id not in chain
                ]
                if not nexts:
                    break
                fellow[current] = nexts[0]
                current = nexts[0]
                chain.append(current)
            if len(chain) > 1 or attempts > 10 * clients:
                chosen.extend(chain)
        # The ends of chains: any other member of the cast among their matches.
        cast_ids = set(chosen)
        for member in chosen:
            if member not in fellow:
                listed = index.query(member, role="learner", limit=MATCHES_ASKED)
                others = [m.volunteer_id for m in listed if m.volunteer_id in cast_ids - {member}]
                if others:
                    fellow[member] = others[0]
        with engine.begin() as connection:
            wants = defaultdict(list)
            languages = defaultdict(list)
            for volunteer_id, skill in connection.execute(
                text("SELECT volunteer_id, skill_id FROM skill_wants WHERE volunteer_id = ANY(:i)"),
                {"i": chosen},
            ):
                wants[volunteer_id].append(skill)
            for volunteer_id, language in connection.execute(
                text(
                    "SELECT volunteer_id, language FROM volunteer_languages "
                    "WHERE volunteer_id = ANY(:i)"
                ),
                {"i": chosen},
            ):
                languages[volunteer_id].append(language)
            coordinator = connection.execute(
                text(
                    "UPDATE volunteers SET role = 'coordinator' WHERE id = (SELECT min(id) "
                    "FROM volunteers WHERE is_active AND NOT (id = ANY(:i))) RETURNING username"
                ),
                {"i": chosen},
            ).scalar_one()
    finally:
        engine.dispose()
    cast = [
        {
            "id": member,
            "username": candidates[member],
            "wants": sorted(wants[member]),
            "languages": sorted(set(languages[member])),
            "fellow_id": fellow.get(member),
        }
        for member in chosen
    ]
    return cast, coordinator


# -- the server ------------------------------------------------------------------------------


def server_environment(stats_max_age: float) -> dict[str, str]:
    return {
        "CAPEX_ENVIRONMENT": "development",
        # No access log line per request; errors are still written.
        "CAPEX_LOG_LEVEL": "WARNING",
        # Rate limits on writes, where the server has them: off, so the load is not throttled.
        "CAPEX_WRITE_LIMIT_PER_ACCOUNT": "0",
        "CAPEX_WRITE_LIMIT_PER_ADDRESS": "0",
        "CAPEX_STATS_MAX_AGE_SECONDS": str(stats_max_age),
        "PYTHONPATH": str(ROOT),
    }


def server_command(workers: int, healthcheck_timeout: float | None) -> Callable[[int], list[str]]:
    """``capex serve --workers N``; or, with ``healthcheck_timeout``, the same app under
    ``uvicorn --timeout-worker-healthcheck``, which ``capex serve`` does not set.

    uvicorn's supervisor kills a worker that has not answered its ping within 5 s (the
    default), and a worker answers only once it has imported the app: on a saturated
    2-core machine that import alone can take longer, and the workers are then killed and
    restarted over and over, never serving. The database must be migrated already.
    """
    if healthcheck_timeout is None:
        return testing.capex_serve(workers)

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "uvicorn", "capex.api.app:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--timeout-worker-healthcheck", str(round(healthcheck_timeout))),
            *("--no-access-log", "--log-level", "warning"),
        ]

    return command


def warm_up(base: str, coordinator: str, workers: int, timeout: float = 300.0) -> float:
    """Wait until every worker has answered ``/me/matches`` and ``/stats/overview`` once
    (each builds its matching index and statistics snapshot on first use or at boot);
    the seconds it took. A question that times out, or whose connection breaks (a worker
    killed by uvicorn's supervisor), is asked again."""
    started = time.monotonic()
    seen: dict[str, set[str]] = {"/me/matches": set(), "/stats/overview": set()}
    broken = 0
    token = None
    with httpx.Client(base_url=f"{base}/api/v1", timeout=120, trust_env=False) as client:
        while token is None or any(len(found) < workers for found in seen.values()):
            if time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"the workers did not all answer within {timeout:.0f} s ({broken} requests "
                    "lost on a broken connection: workers killed and restarted? see the "
                    "server log, and --healthcheck-timeout)"
                )
            try:
                if token is None:
                    signed = client.post(
                        "/auth/token", data={"username": coordinator, "password": DEMO_PASSWORD}
                    )
                    signed.raise_for_status()
                    token = signed.json()["access_token"]
                    client.headers["Authorization"] = f"Bearer {token}"
                for path, found in seen.items():
                    answer = client.get(path, headers={"Connection": "close"})
                    if answer.status_code == 200:
                        found.add(answer.headers.get("X-Capex-Worker", ""))
            except httpx.TimeoutException:
                continue
            except httpx.TransportError:
                broken += 1
                time.sleep(1)
    return time.monotonic() - started


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def process_tree(pid: int) -> list[int]:
    """``pid`` and its worker processes (multiprocessing's resource tracker left out)."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        listed = []
    workers = []
    for child in listed:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            workers.append(int(child))
    return [pid, *workers]


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    return {pid: _ticks(pid) for pid in pids}


# -- the load --------------------------------------------------------------------------------


@dataclass
class LoadRun:
    """What one locust run left: its CSV prefix, its journal and its wall-clock span."""

    csv_prefix: Path
    journal: Path
    started: float
    ended: float
    returncode: int


def start_locust(
    base: str,
    cast: list[dict[str, Any]],
    workdir: Path,
    *,
    clients: int,
    duration: float,
    tag: str,
    spread_workers: int = 0,
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start locust headless against ``base``; the process, its CSV prefix and its journal."""
    cast_file = workdir / f"{tag}-cast.json"
    cast_file.write_text(json.dumps(cast))
    journal = workdir / f"{tag}-journal.jsonl"
    journal.unlink(missing_ok=True)
    prefix = workdir / f"{tag}-locust"
    locust = Path(sys.executable).with_name("locust")
    command = [str(locust)] if locust.exists() else [sys.executable, "-m", "locust"]
    command += ["-f", str(LOCUSTFILE), "--headless", "--host", base]
    command += ["--users", str(clients), "--spawn-rate", str(clients)]
    command += ["--run-time", f"{max(1, round(duration))}s", "--stop-timeout", "35"]
    command += ["--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    env = {
        **os.environ,
        "CAPEX_LOAD_CAST": str(cast_file),
        "CAPEX_LOAD_JOURNAL": str(journal),
        "CAPEX_LOAD_PASSWORD": DEMO_PASSWORD,
        "CAPEX_LOAD_SPREAD_WORKERS": str(spread_workers),
    }
    output = (workdir / f"{tag}-locust.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=output)
    return process, prefix, journal


def run_locust(
    base: str,
    cast: list[dict[str, Any]],
    workdir: Path,
    *,
    clients: int,
    duration: float,
    tag: str,
    spread_workers: int = 0,
) -> LoadRun:
    started = time.time()
    process, prefix, journal = start_locust(
        base,
        cast,
        workdir,
        clients=clients,
        duration=duration,
        tag=tag,
        spread_workers=spread_workers,
    )
    returncode = process.wait()
    return LoadRun(prefix, journal, started, time.time(), returncode)


@dataclass
class EndpointRow:
    name: str
    requests: int
    not_2xx: int
    per_second: float
    p50: float
    p95: float
    p99: float


def endpoint_table(records: list[dict[str, Any]], seconds: float) -> list[EndpointRow]:
    """Per endpoint, then for all: requests, requests/s over ``seconds``, latency percentiles
    in ms (answered or not), and the count of answers other than 2xx (or none).

    From the journal rather than locust's CSV, which is written before locust has waited
    for the requests in flight at the end of ``--run-time``.
    """
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_name[record["name"]].append(record)
    rows = []
    for name, found in [*sorted(by_name.items()), ("all", records)]:
        if not found:
            continue
        times = np.array([1000 * (r["t1"] - r["t0"]) for r in found])
        p50, p95, p99 = np.percentile(times, [50, 95, 99])
        rows.append(
            EndpointRow(
                name=name,
                requests=len(found),
                not_2xx=sum(1 for r in found if not 200 <= r["status"] < 300),
                per_second=len(found) / seconds,
                p50=float(p50),
                p95=float(p95),
                p99=float(p99),
            )
        )
    return rows


def locust_totals(prefix: Path) -> tuple[int, int]:
    """Requests and failures in locust's own ``<prefix>_stats.csv`` (its Aggregated row)."""
    try:
        with open(f"{prefix}_stats.csv", newline="") as stats:
            for row in csv.DictReader(stats):
                if row["Name"] == "Aggregated":
                    return int(row["Request Count"]), int(row["Failure Count"])
    except FileNotFoundError:
        pass
    return 0, 0


def read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def journal_seconds(records: list[dict[str, Any]]) -> float:
    """From the first request sent to the last answer."""
    if not records:
        return 1.0
    return max(r["t1"] for r in records) - min(r["t0"] for r in records)


def worker_shares(records: list[dict[str, Any]]) -> str:
    answered = Counter(r["worker"] for r in records if r.get("worker"))
    total = sum(answered.values()) or 1
    return ", ".join(f"{100 * n / total:.0f}%" for _, n in answered.most_common())


def outcome(record: Mapping[str, Any]) -> str:
    """A request's outcome in words: ``200``, ``503 Retry-After``, ``transport reset``..."""
    if record["status"] == 0:
        return f"transport {record['error']}"
    status = str(record["status"])
    if record["status"] >= 400 and record["retry_after"]:
        status += " Retry-After"
    return status


def outcomes(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(outcome(record) for record in records)


def print_load_table(rows: list[EndpointRow]) -> None:
    print("| endpoint | requests | requests/s | p50 ms | p95 ms | p99 ms | not 2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        name = f"**{row.name}**" if row.name == "all" else f"`{row.name}`"
        print(
            f"| {name} | {row.requests} | {row.per_second:.1f} | {row.p50:.0f} | {row.p95:.0f} "
            f"| {row.p99:.0f} | {row.not_2xx} |"
        )


def print_outcomes(counts: Counter[str], by_endpoint: dict[str, Counter[str]]) -> None:
    print("\n| answer | count | endpoints |")
    print("|---|---:|---|")
    for answer, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        where = ", ".join(
            f"`{name}` {found[answer]}"
            for name, found in sorted(by_endpoint.items())
            if found[answer] and not answer.startswith("2")
        )
        print(f"| {answer} | {count} | {where} |")


# -- the checks ------------------------------------------------------------------------------


def check_counters(connection: Any) -> list[str]:
    """No mentor over capacity; the denormalised counters equal the rows."""
    problems = []
    rows = connection.execute(
        text(
            "WITH accepted AS (SELECT mentor_id, count(*) AS n FROM exchanges "
            "WHERE state = 'accepted' GROUP BY mentor_id), "
            "waiting AS (SELECT learner_id, count(*) AS n FROM exchanges "
            "WHERE state = 'requested' GROUP BY learner_id) "
            "SELECT v.id, v.mentor_capacity, v.accepted_as_mentor, coalesce(a.n, 0), "
            "v.requested_as_learner, coalesce(w.n, 0) FROM volunteers v "
            "LEFT JOIN accepted a ON a.mentor_id = v.id "
            "LEFT JOIN waiting w ON w.learner_id = v.id "
            "WHERE coalesce(a.n, 0) > v.mentor_capacity OR coalesce(a.n, 0) <> "
            "v.accepted_as_mentor OR coalesce(w.n, 0) <> v.requested_as_learner"
        )
    ).all()
    for volunteer, capacity, counter, accepted, waiting_counter, waiting in rows[:20]:
        problems.append(
            f"volunteer {volunteer}: capacity {capacity}, {accepted} accepted exchanges, "
            f"accepted_as_mentor {counter}; {waiting} waiting requests, "
            f"requested_as_learner {waiting_counter}"
        )
    if len(rows) > 20:
        problems.append(f"... {len(rows)} volunteers in all")
    return problems


LEGAL_STEPS = {(t.action.value, t.from_state.value, t.to_state.value) for t in TRANSITIONS}
LEGAL_STEPS.add((EXPIRY.action.value, EXPIRY.from_state.value, EXPIRY.to_state.value))
OPENING_STEP = (OPENING.action.value, None, OPENING.to_state.value)


def check_trails(connection: Any, since: datetime) -> tuple[list[str], int, int]:
    """Every exchange's last event is its state; the exchanges changed since ``since`` each
    have a legal trail from the request to their state. The problems, the exchanges whose
    trails were walked, and their events."""
    problems = []
    mismatched = connection.execute(
        text(
            "SELECT e.id, e.state, last.to_state FROM exchanges e LEFT JOIN ("
            "SELECT DISTINCT ON (exchange_id) exchange_id, to_state FROM exchange_events "
            "ORDER BY exchange_id, id DESC) last ON last.exchange_id = e.id "
            "WHERE last.to_state IS DISTINCT FROM e.state"
        )
    ).all()
    for exchange, state, last in mismatched[:20]:
        problems.append(f"exchange {exchange} is {state}, its last event says {last}")
    if len(mismatched) > 20:
        problems.append(f"... {len(mismatched)} exchanges whose last event is not their state")
    states = dict(
        connection.execute(
            text("SELECT id, state FROM exchanges WHERE updated_at >= :since"), {"since": since}
        ).all()
    )
    trails: dict[int, list[tuple[str, str | None, str]]] = defaultdict(list)
    events = 0
    for exchange, action, from_state, to_state in connection.execute(
        text(
            "SELECT exchange_id, action, from_state, to_state FROM exchange_events "
            "WHERE exchange_id = ANY(:ids) ORDER BY exchange_id, id"
        ),
        {"ids": list(states)},
    ):
        trails[exchange].append((action, from_state, to_state))
        events += 1
    for exchange, state in states.items():
        trail = trails.get(exchange, [])
        legal = (
            bool(trail)
            and trail[0] == OPENING_STEP
            and all(step in LEGAL_STEPS for step in trail[1:])
            and all(b[1] == a[2] for a, b in itertools.pairwise(trail))
            and trail[-1][2] == state
        )
        if not legal:
            problems.append(f"exchange {exchange} is {state} but its events say {trail}")
    return problems[:40], len(states), events


@dataclass
class Acknowledged:
    """What the clients saw acknowledged, checked against the database."""

    exchanges: int = 0
    transitions: int = 0
    missing: list[int] = field(default_factory=list)
    without_event: list[tuple[int, str]] = field(default_factory=list)
    other_state: list[tuple[int, str, str]] = field(default_factory=list)
    moved_by_unanswered: int = 0

    @property
    def lost(self) -> int:
        return len(self.missing) + len(self.without_event) + len(self.other_state)


WRITES = ("POST /exchanges", "POST /exchanges/{id}/")
TRANSITION_PATH = re.compile(r"/exchanges/(\d+)/")


def check_acknowledged(connection: Any, records: list[dict[str, Any]]) -> Acknowledged:
    """Every exchange a 2xx write told a client about exists, has the event of each state it
    was acknowledged in, and is in the last acknowledged state, unless a later write on it
    went unanswered (no answer, or a 5xx) and may have been applied."""
    writes = [r for r in records if r["name"].startswith(WRITES)]
    acknowledged: dict[int, list[tuple[float, str]]] = defaultdict(list)
    # The latest start of a transition on each exchange that got no answer, or a 5xx.
    unanswered: dict[int, float] = {}
    result = Acknowledged()
    for record in writes:
        if 200 <= record["status"] < 300 and "exchange" in record:
            acknowledged[record["exchange"]].append((record["t1"], record["state"]))
            result.transitions += 1
        elif not 400 <= record["status"] < 500:
            found = TRANSITION_PATH.match(record["path"])
            if found:
                exchange = int(found.group(1))
                unanswered[exchange] = max(unanswered.get(exchange, 0.0), record["t0"])
    result.exchanges = len(acknowledged)
    if not acknowledged:
        return result
    stored = dict(
        connection.execute(
            text("SELECT id, state FROM exchanges WHERE id = ANY(:ids)"),
            {"ids": list(acknowledged)},
        ).all()
    )
    event_states = set(
        connection.execute(
            text("SELECT exchange_id, to_state FROM exchange_events WHERE exchange_id = ANY(:i)"),
            {"i": list(acknowledged)},
        ).all()
    )
    for exchange, seen in acknowledged.items():
        if exchange not in stored:
            result.missing.append(exchange)
            continue
        for _, state in seen:
            if (exchange, state) not in event_states:
                result.without_event.append((exchange, state))
        last_time, last_state = max(seen)
        if stored[exchange] != last_state:
            # A later transition that got no answer may have been applied.
            if unanswered.get(exchange, 0.0) > last_time:
                result.moved_by_unanswered += 1
            else:
                result.other_state.append((exchange, last_state, stored[exchange]))
    return result


def effective_counts(connection: Any, as_of: datetime, ttl_days: float) -> dict[str, Any]:
    """The statistics' counts made in SQL from the tables, as of ``as_of``."""
    cutoff = as_of - timedelta(days=ttl_days)
    states = dict(
        connection.execute(
            text(
                "SELECT CASE WHEN state = 'requested' AND created_at <= :cutoff THEN 'expired' "
                "ELSE state END AS effective, count(*) FROM exchanges GROUP BY effective"
            ),
            {"cutoff": cutoff},
        ).all()
    )
    funnel = connection.execute(
        text(
            "SELECT count(*), count(responded_at), count(accepted_at), "
            "count(*) FILTER (WHERE state = 'completed'), "
            "count(*) FILTER (WHERE state = 'completed' AND EXISTS "
            "(SELECT 1 FROM feedback f WHERE f.exchange_id = exchanges.id)) FROM exchanges"
        )
    ).one()
    people = connection.execute(
        text(
            "SELECT count(*) FILTER (WHERE is_active), "
            "count(*) FILTER (WHERE is_active AND mentor_capacity > 0 AND EXISTS "
            "(SELECT 1 FROM skill_offers o WHERE o.volunteer_id = v.id)), "
            "count(*) FILTER (WHERE is_active AND mentor_capacity > 0 "
            "AND accepted_as_mentor < mentor_capacity AND EXISTS "
            "(SELECT 1 FROM skill_offers o WHERE o.volunteer_id = v.id)), "
            "count(*) FILTER (WHERE is_active AND EXISTS "
            "(SELECT 1 FROM skill_wants w WHERE w.volunteer_id = v.id)) FROM volunteers v"
        )
    ).one()
    return {
        "exchanges": {state: int(count) for state, count in states.items()},
        "requests_waiting": int(states.get("requested", 0)),
        "volunteers": int(people[0]),
        "mentors": int(people[1]),
        "mentors_with_open_slots": int(people[2]),
        "learners": int(people[3]),
        "funnel": dict(
            zip(("requested", "answered", "accepted", "completed", "feedback"), funnel, strict=True)
        ),
        "lost": {
            state: int(states.get(state, 0)) for state in ("declined", "cancelled", "expired")
        },
    }


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check_statistics(
    base: str, url: str, coordinator: str, load_ended: float, max_age: float, workers: int
) -> tuple[list[str], list[str]]:
    """The coordinators' overview and funnel, once newer than the load, against SQL; the
    problems, and what was compared (in words).

    Each worker keeps its own snapshot: every question goes on a new connection, until each
    has been answered at least twice and by every worker (or the time is up)."""
    problems: list[str] = []
    compared: list[str] = []
    ttl = Settings().request_ttl_days
    with httpx.Client(base_url=f"{base}/api/v1", timeout=60, trust_env=False) as client:
        signed = client.post(
            "/auth/token", data={"username": coordinator, "password": DEMO_PASSWORD}
        )
        signed.raise_for_status()
        client.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
        answers: dict[str, list[dict[str, Any]]] = {"overview": [], "funnel": []}
        answered_by: dict[str, set[str]] = {name: set() for name in answers}
        deadline = time.time() + 3 * max_age + 60

        def enough(name: str) -> bool:
            return len(answers[name]) >= 2 and len(answered_by[name]) >= workers

        while not all(enough(name) for name in answers) and time.time() < deadline:
            for name in answers:
                answer = client.get(f"/stats/{name}", headers={"Connection": "close"})
                answer.raise_for_status()
                body = answer.json()
                worker = answer.headers.get("X-Capex-Worker", "")
                fresh = parse_time(body["as_of"]).timestamp() > load_ended + 0.5
                if fresh and (worker not in answered_by[name] or len(answers[name]) < 2):
                    answers[name].append(body)
                    answered_by[name].add(worker)
            time.sleep(0.2)
    if any(not found for found in answers.values()):
        return [f"no statistics newer than the load within {3 * max_age + 60:.0f} s"], compared
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            for overview in answers["overview"]:
                expected = effective_counts(connection, parse_time(overview["as_of"]), ttl)
                for figure in ("volunteers", "mentors", "mentors_with_open_slots", "learners"):
                    if overview[figure] != expected[figure]:
                        problems.append(
                            f"overview {figure} {overview[figure]}, SQL {expected[figure]}"
                        )
                if overview["requests_waiting"] != expected["requests_waiting"]:
                    problems.append(
                        f"overview requests_waiting {overview['requests_waiting']}, "
                        f"SQL {expected['requests_waiting']}"
                    )
                served = {k: v for k, v in overview["exchanges"].items() if v}
                if served != expected["exchanges"]:
                    problems.append(f"overview exchanges {served}, SQL {expected['exchanges']}")
            for funnel in answers["funnel"]:
                expected = effective_counts(connection, parse_time(funnel["as_of"]), ttl)
                stages = {stage["stage"]: stage["count"] for stage in funnel["stages"]}
                if stages != expected["funnel"]:
                    problems.append(f"funnel stages {stages}, SQL {expected['funnel']}")
                if funnel["lost"] != expected["lost"]:
                    problems.append(f"funnel lost {funnel['lost']}, SQL {expected['lost']}")
            last = effective_counts(connection, parse_time(answers["overview"][-1]["as_of"]), ttl)
    finally:
        engine.dispose()
    compared.append(
        f"{len(answers['overview'])} overviews and {len(answers['funnel'])} funnels newer than "
        f"the load, from {len(answered_by['overview'] | answered_by['funnel'])} workers, "
        f"against SQL: {last['volunteers']} volunteers, {last['mentors']} mentors, "
        f"{last['learners']} learners, exchanges {last['exchanges']}, funnel {last['funnel']}"
    )
    return problems, compared


@dataclass
class Checks:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    acknowledged: Acknowledged = field(default_factory=Acknowledged)


def check_tables(url: str, records: list[dict[str, Any]], since: datetime) -> Checks:
    """The checks made in SQL alone: counters and capacity, audit trails, acknowledged writes."""
    checks = Checks()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            checks.problems += check_counters(connection)
            trail_problems, walked, events = check_trails(connection, since)
            checks.problems += trail_problems
            checks.notes.append(
                f"{walked} exchanges changed during the run, {events} events: trails checked"
            )
            checks.acknowledged = check_acknowledged(connection, records)
    finally:
        engine.dispose()
    ack = checks.acknowledged
    checks.notes.append(
        f"{ack.transitions} acknowledged writes on {ack.exchanges} exchanges: "
        f"{len(ack.missing)} missing, {len(ack.without_event)} states without their event, "
        f"{len(ack.other_state)} in another state, {ack.moved_by_unanswered} moved on by a "
        "request that got no answer"
    )
    if ack.lost:
        checks.problems.append(
            f"acknowledged writes lost: missing {ack.missing[:10]}, without event "
            f"{ack.without_event[:10]}, other state {ack.other_state[:10]}"
        )
    return checks


def database_now(url: str) -> datetime:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            value: datetime = connection.execute(text("SELECT now()")).scalar_one()
    finally:
        engine.dispose()
    return value


def machine() -> str:
    cpus = os.cpu_count()
    load = os.getloadavg()
    return (
        f"{cpus} vCPUs, Python {platform.python_version()}, load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) at the end"
    )


# -- main ------------------------------------------------------------------------------------


def arguments(description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n")[0])
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument(
        "--exchanges", type=int, default=None, help="exchange history (default 10 per volunteer)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--stats-max-age", type=float, default=10.0, help="CAPEX_STATS_MAX_AGE_SECONDS"
    )
    parser.add_argument("--keep", action="store_true", help="keep the copy of the database")
    parser.add_argument(
        "--healthcheck-timeout",
        type=float,
        default=None,
        help="run the app under uvicorn --timeout-worker-healthcheck S instead of capex serve",
    )
    parser.add_argument(
        "--no-spread",
        dest="spread",
        action="store_false",
        help="keep each client's first connection, wherever the kernel put it",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where logs and CSV go")
    return parser


def main() -> int:
    try:
        return run(arguments().parse_args())
    except RuntimeError as error:  # a server that did not start or serve
        print(f"FAILED: {error}")
        return 1


def run(args: argparse.Namespace) -> int:
    exchanges = 10 * args.volunteers if args.exchanges is None else args.exchanges
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="capex-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    template = ensure_template(args.postgres_admin_url, args.volunteers, exchanges, args.seed)
    with database_copy(args.postgres_admin_url, template, keep=args.keep) as url:
        cast, coordinator = choose_cast(url, args.clients, args.seed)
        with_fellow = sum(1 for member in cast if member["fellow_id"])
        print(f"cast: {len(cast)} clients, {with_fellow} with a fellow client among their matches")
        since = database_now(url)
        log = workdir / "server.log"
        env = server_environment(args.stats_max_age)
        migrate.upgrade(url)  # the template may be older than the code
        with testing.live_server(
            url,
            command=server_command(args.workers, args.healthcheck_timeout),
            env=env,
            log=log,
            start_timeout=SERVER_START_SECONDS,
            cwd=ROOT,
        ) as live:
            warmed = warm_up(live.base, coordinator, args.workers)
            print(f"warm-up: every worker answered matches and statistics after {warmed:.1f} s")
            pids = process_tree(live.pid)
            before = cpu_ticks(pids)
            print(
                f"load: {args.clients} clients, {args.duration:.0f} s, "
                f"{args.workers} workers, {args.volunteers} volunteers"
            )
            run = run_locust(
                live.base,
                cast,
                workdir,
                clients=args.clients,
                duration=args.duration,
                tag="load",
                spread_workers=args.workers if args.spread else 0,
            )
            after = cpu_ticks(pids)
            records = read_journal(run.journal)
            checks = check_tables(url, records, since)
            stat_problems, stat_notes = check_statistics(
                live.base, url, coordinator, run.ended, args.stats_max_age, args.workers
            )
            checks.problems += stat_problems
            checks.notes += stat_notes
    print(f"\nlocust exit status {run.returncode}; files in {workdir}\n")
    seconds = journal_seconds(records)
    print_load_table(endpoint_table(records, seconds))
    in_csv, failed_in_csv = locust_totals(run.csv_prefix)
    print(
        f"\n(locust's CSV, written at the end of --run-time: {in_csv} requests, "
        f"{failed_in_csv} not 2xx; the journal adds those that were in flight then)"
    )
    counts = outcomes(records)
    by_endpoint: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        by_endpoint[record["name"]][outcome(record)] += 1
    print_outcomes(counts, by_endpoint)
    hertz = os.sysconf("SC_CLK_TCK")
    cores = {pid: (after[pid] - before[pid]) / hertz / seconds for pid in before}
    workers = ", ".join(f"{cores[pid]:.2f}" for pid in pids[1:]) or "none: it serves itself"
    print(
        f"\ncapex serve: {sum(cores.values()):.2f} cores busy over the run "
        f"(main process {cores[pids[0]]:.2f}; workers {workers}); share of the requests "
        f"per worker: {worker_shares(records)}"
    )
    failures = [
        answer
        for answer in counts
        if answer.startswith("transport") or answer.startswith("5") or answer == "429"
    ]
    if failures:
        checks.problems.append(
            "answers that should not happen under load: "
            + ", ".join(f"{answer} x{counts[answer]}" for answer in failures)
        )
    if not records or run.returncode not in (0, 1):
        checks.problems.append(f"locust exited with {run.returncode}, {len(records)} requests")
    print(f"\n{machine()}")
    print("\nchecks:")
    for note in checks.notes:
        print(f"  {note}")
    for problem in checks.problems:
        print(f"  FAILED: {problem}")
    print("  all held" if not checks.problems else f"  {len(checks.problems)} failed")
    return 1 if checks.problems else 0


if __name__ == "__main__":
    sys.exit(main())
