"""Exchange lifecycle throughput through the real HTTP API, with concurrent clients.

For each database: a fresh database, migrated; learners and mentors written directly (one
Argon2 hash for all), each signed in through the API; ``capex serve --workers N`` in a
subprocess; then ``--clients`` threads, each with its own keep-alive connection, drive
request -> accept -> complete until ``--exchanges`` exchanges (three transitions each) are
done. After the run the invariants are checked in SQL:

- no mentor has ``accepted_as_mentor > mentor_capacity``;
- ``accepted_as_mentor`` equals the number of accepted exchanges of each mentor, and
  ``requested_as_learner`` the number of waiting requests of each learner;
- no two open exchanges share a learner, mentor and skill;
- every exchange's events form one legal path of the transition table, from ``request`` to
  the exchange's state; the counts of exchanges and completions match what clients saw.

The clients' connections are spread evenly over the workers (``--no-spread``: left where
the kernel put them; see ``Spreader``). Contention: each client owns its learner, so a
learner's transitions never race. Mentors are either owned too (``--mentors-per-client``,
the default: no two clients touch the same row) or, with ``--shared-mentors K``, a pool of
K mentors that every client uses, so that accepts and completions of different clients
update the same mentor rows at once.

    .venv/bin/python bench/exchanges.py --databases sqlite,postgresql --clients 16 \\
        --workers 2 --exchanges 3000

Issue 4's target: at least 200 transitions per second on PostgreSQL with two workers.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import migrate, testing  # noqa: E402
from capex.db import make_engine, make_session_factory  # noqa: E402
from capex.models import SkillOffer, VolunteerLanguage  # noqa: E402
from capex.services import accounts  # noqa: E402
from capex.services.exchanges import TRANSITIONS  # noqa: E402

TARGET_TRANSITIONS_PER_SECOND = 200.0
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench password 0123456789"
SKILL = "lua"
MENTOR_CAPACITY = 20  # the most a profile allows
SERVER_START_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
KINDS = ("request", "accept", "complete")
SPREAD_ATTEMPTS = 50
BARRIER_TIMEOUT_SECONDS = 300.0


# -- databases -----------------------------------------------------------------------------


# The same fresh databases as the directory benchmark (bench/ is on sys.path when run).
from directory import fresh_database  # noqa: E402


@dataclass(frozen=True)
class Party:
    id: int
    username: str


@dataclass(frozen=True)
class Cast:
    """Who plays: one learner per client and the mentors each client asks, in turn."""

    learners: list[Party]
    mentors_of: list[list[Party]]


def create_accounts(url: str, clients: int, mentors_per_client: int, shared: int) -> Cast:
    """Write the learners and mentors directly; every mentor offers SKILL with room for 20."""
    migrate.upgrade(url)
    password_hash = accounts.hash_password(PASSWORD)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:

            def volunteer(username: str, offers: bool) -> Party:
                row = accounts.new_volunteer(
                    username,
                    f"{username}@bench.invalid",
                    password_hash,
                    display_name=username.title(),
                )
                row.mentor_capacity = MENTOR_CAPACITY if offers else 2
                row.languages = [VolunteerLanguage(code="en", language="en", level=5)]
                row.offers = [SkillOffer(skill_id=SKILL, level=4)] if offers else []
                session.add(row)
                session.flush()
                return Party(row.id, username)

            learners = [volunteer(f"learner{c:03d}", False) for c in range(clients)]
            if shared:
                pool = [volunteer(f"mentor{k:03d}", True) for k in range(shared)]
                # Each client starts at another mentor of the pool.
                mentors_of = [pool[c % shared :] + pool[: c % shared] for c in range(clients)]
            else:
                mentors_of = [
                    [volunteer(f"mentor{c:03d}x{k}", True) for k in range(mentors_per_client)]
                    for c in range(clients)
                ]
            session.commit()
    finally:
        engine.dispose()
    return Cast(learners, mentors_of)


# -- the server ----------------------------------------------------------------------------


@contextmanager
def server(url: str, workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """``capex serve --workers N`` on ``url``'s database; yields the base URL and the pid."""
    env = {
        "CAPEX_ENVIRONMENT": "development",
        # No access log line per request; errors (a 500's traceback) are still written.
        "CAPEX_LOG_LEVEL": "WARNING",
        # Every client writes from this one address, as fast as it can: no write limits.
        "CAPEX_WRITE_LIMIT_PER_ACCOUNT": "0",
        "CAPEX_WRITE_LIMIT_PER_ADDRESS": "0",
        "PYTHONPATH": str(ROOT),
    }
    with testing.live_server(
        url, workers=workers, env=env, log=log, start_timeout=SERVER_START_SECONDS, cwd=ROOT
    ) as live:
        yield live.base, live.pid


# -- CPU accounting (Linux /proc) ------------------------------------------------------------


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in listed]


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuSample:
    workers: dict[int, int]  # CPU ticks per server process (the supervisor and each worker)
    postgres: int
    machine_busy: int
    machine_total: int
    bench: float


def cpu_sample(server_pid: int) -> CpuSample:
    busy, total = _machine_ticks()
    return CpuSample(
        workers={pid: _ticks(pid) for pid in [server_pid, *_children(server_pid)]},
        postgres=sum(_ticks(pid) for pid in _postgres_pids()),
        machine_busy=busy,
        machine_total=total,
        bench=time.process_time(),
    )


# -- the load ------------------------------------------------------------------------------


@dataclass
class ClientLog:
    samples_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    # Timed responses per answering worker process (its pid, from X-Capex-Worker).
    workers: Counter[str] = field(default_factory=Counter)
    created: int = 0
    completed: int = 0


def sign_in(client: httpx.Client, party: Party) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", data={"username": party.username, "password": PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Spreader:
    """Gives each client a connection to a worker that holds fewer than its share of them.

    uvicorn's workers share one listening socket, and an event loop accepts every pending
    connection in one go: 16 clients that connect at once mostly land on one worker, which
    then serves all their keep-alive requests while the other idles. A load balancer would
    spread the requests; here a client reconnects until its worker has room.
    """

    def __init__(self, workers: int, clients: int, enabled: bool) -> None:
        self.limit = -(-clients // workers)
        self.enabled = enabled
        self.held: Counter[str] = Counter()
        self.lock = threading.Lock()

    def connect(self, base: str) -> httpx.Client:
        for attempt in range(SPREAD_ATTEMPTS):
            client = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS)
            worker = client.get("/healthz").headers.get("x-capex-worker", "?")
            with self.lock:
                if (
                    not self.enabled
                    or self.held[worker] < self.limit
                    or attempt == SPREAD_ATTEMPTS - 1
                ):
                    self.held[worker] += 1
                    return client
            client.close()
        raise AssertionError("unreachable")


def run_client(
    base: str,
    spreader: Spreader,
    learner: dict[str, str],
    mentors: list[tuple[int, dict[str, str]]],
    warmup: int,
    count: int,
    start: threading.Barrier,
    log: ClientLog,
) -> None:
    """``warmup`` untimed exchanges, wait for the others, then ``count`` timed ones."""
    with closing(spreader.connect(base)) as client:
        timed = False

        def step(
            kind: str, path: str, headers: dict[str, str], expected: int, json: object = None
        ) -> httpx.Response | None:
            started = time.perf_counter()
            try:
                response = client.post(path, headers=headers, json=json)
            except httpx.HTTPError as error:
                log.errors[f"{kind}: {type(error).__name__}"] += 1
                return None
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != expected:
                log.errors[f"{kind}: {response.status_code}"] += 1
                return None
            if timed:
                log.samples_ms[kind].append(elapsed)
                log.workers[response.headers.get("x-capex-worker", "?")] += 1
            return response

        for number in range(warmup + count):
            if number == warmup:
                start.wait(timeout=BARRIER_TIMEOUT_SECONDS)
                timed = True
            mentor_id, mentor = mentors[number % len(mentors)]
            created = step(
                "request",
                "/api/v1/exchanges",
                learner,
                201,
                json={"mentor_id": mentor_id, "skill": SKILL},
            )
            if created is None:
                continue
            log.created += 1
            exchange = created.json()["id"]
            if step("accept", f"/api/v1/exchanges/{exchange}/accept", mentor, 200) is None:
                continue
            # Learner and mentor take turns to mark it done.
            closer = learner if number % 2 else mentor
            if step("complete", f"/api/v1/exchanges/{exchange}/complete", closer, 200):
                log.completed += 1


@dataclass
class Report:
    database: str
    clients: int
    workers: int
    contention: str
    seconds: float
    samples_ms: dict[str, list[float]]
    errors: Counter[str]
    server_errors_logged: int
    violations: list[str]
    cpu: dict[str, float]
    per_worker: list[tuple[float, float]]  # (CPU cores busy, share of requests), busiest first

    @property
    def transitions(self) -> int:
        return sum(len(samples) for samples in self.samples_ms.values())

    @property
    def per_second(self) -> float:
        return self.transitions / self.seconds


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def drive(
    base: str, cast: Cast, args: argparse.Namespace, server_pid: int
) -> tuple[float, list[ClientLog], CpuSample, CpuSample]:
    """Sign everybody in, then run the clients; returns the timed wall time, the clients'
    logs and the CPU counters when the clock started and stopped."""
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        learner_headers = [sign_in(client, learner) for learner in cast.learners]
        mentor_headers: dict[int, dict[str, str]] = {}
        for mentors in cast.mentors_of:
            for mentor in mentors:
                if mentor.id not in mentor_headers:
                    mentor_headers[mentor.id] = sign_in(client, mentor)
    share, extra = divmod(args.exchanges, args.clients)
    # The main thread joins the barrier too: it starts the clock when every client is ready.
    start = threading.Barrier(args.clients + 1)
    logs = [ClientLog() for _ in range(args.clients)]
    spreader = Spreader(args.workers, args.clients, args.spread)

    def guarded(*client_args: object) -> None:
        try:
            run_client(*client_args)  # type: ignore[arg-type]
        except BaseException:
            start.abort()  # the other clients and the clock stop waiting
            raise

    threads = [
        threading.Thread(
            target=guarded,
            args=(
                base,
                spreader,
                learner_headers[c],
                [(m.id, mentor_headers[m.id]) for m in cast.mentors_of[c]],
                args.warmup,
                share + (1 if c < extra else 0),
                start,
                logs[c],
            ),
            daemon=True,
        )
        for c in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    try:
        start.wait(timeout=BARRIER_TIMEOUT_SECONDS)
    except threading.BrokenBarrierError:
        raise RuntimeError("a client failed before the timed run; see its traceback") from None
    before = cpu_sample(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return seconds, logs, before, cpu_sample(server_pid)


# -- invariants ----------------------------------------------------------------------------


def check_invariants(url: str, created: int, completed: int) -> list[str]:
    """Every violation of the exchange invariants, in words; empty when all hold."""
    violations: list[str] = []
    legal = {(t.action, t.from_state, t.to_state) for t in TRANSITIONS}
    legal.add(("request", None, "requested"))  # type: ignore[arg-type]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for row in conn.execute(
                text(
                    "SELECT id, accepted_as_mentor, mentor_capacity FROM volunteers "
                    "WHERE accepted_as_mentor > mentor_capacity"
                )
            ):
                violations.append(f"volunteer {row[0]}: {row[1]} accepted > capacity {row[2]}")
            for column, state, side in (
                ("accepted_as_mentor", "accepted", "mentor_id"),
                ("requested_as_learner", "requested", "learner_id"),
            ):
                for row in conn.execute(
                    text(
                        f"SELECT v.id, v.{column}, (SELECT count(*) FROM exchanges e "
                        f"WHERE e.{side} = v.id AND e.state = '{state}') AS actual "
                        f"FROM volunteers v WHERE v.{column} <> (SELECT count(*) FROM "
                        f"exchanges e WHERE e.{side} = v.id AND e.state = '{state}')"
                    )
                ):
                    violations.append(f"volunteer {row[0]}: {column} {row[1]}, rows say {row[2]}")
            for row in conn.execute(
                text(
                    "SELECT learner_id, mentor_id, skill_id, count(*) FROM exchanges "
                    "WHERE state IN ('requested', 'accepted') "
                    "GROUP BY learner_id, mentor_id, skill_id HAVING count(*) > 1"
                )
            ):
                violations.append(f"{row[3]} open exchanges for learner/mentor/skill {row[:3]}")
            states = dict(conn.execute(text("SELECT id, state FROM exchanges")).all())
            trails: dict[int, list[tuple[str, str | None, str]]] = defaultdict(list)
            for exchange_id, action, from_state, to_state in conn.execute(
                text(
                    "SELECT exchange_id, action, from_state, to_state FROM exchange_events "
                    "ORDER BY exchange_id, id"
                )
            ):
                trails[exchange_id].append((action, from_state, to_state))
    finally:
        engine.dispose()
    for exchange_id, state in states.items():
        trail = trails.get(exchange_id, [])
        steps_legal = all(step in legal for step in trail)
        chained = all(b[1] == a[2] for a, b in itertools.pairwise(trail))
        if not (
            trail and trail[0][0] == "request" and steps_legal and chained and trail[-1][2] == state
        ):
            violations.append(f"exchange {exchange_id} is {state} but its events say {trail}")
    if len(states) != created:
        violations.append(f"{len(states)} exchanges stored, clients saw {created} created")
    done = sum(1 for state in states.values() if state == "completed")
    if done != completed:
        violations.append(f"{done} exchanges completed, clients saw {completed} completions")
    return violations


# -- the report ----------------------------------------------------------------------------


def run_database(kind: str, args: argparse.Namespace) -> Report:
    contention = (
        f"{args.shared_mentors} shared mentors"
        if args.shared_mentors
        else f"{args.mentors_per_client} own mentors per client"
    )
    print(f"\n{kind}: {args.clients} clients, {args.workers} workers, {contention}")
    with fresh_database(kind, args.postgres_admin_url, args.keep) as url:
        if args.keep:
            print(f"  database: {url}")
        cast = create_accounts(url, args.clients, args.mentors_per_client, args.shared_mentors)
        log = Path(tempfile.gettempdir()) / f"capex_bench_exchanges_{os.getpid()}_{kind}.log"
        with server(url, args.workers, log) as (base, pid_of_supervisor):
            seconds, logs, before, after = drive(base, cast, args, pid_of_supervisor)
        hertz = os.sysconf("SC_CLK_TCK")
        answered: Counter[str] = Counter()
        for client_log in logs:
            answered.update(client_log.workers)
        # Each worker that answered: its CPU (cores busy) and its share of the requests.
        per_worker = sorted(
            (
                (after.workers.get(int(pid), 0) - before.workers.get(int(pid), 0))
                / hertz
                / seconds,
                count / max(1, sum(answered.values())),
            )
            for pid, count in answered.items()
            if pid.isdigit()
        )[::-1]
        cpu = {
            "server": (sum(after.workers.values()) - sum(before.workers.values()))
            / hertz
            / seconds,
            "postgres": (after.postgres - before.postgres) / hertz / seconds,
            "bench": (after.bench - before.bench) / seconds,
            "machine": (after.machine_busy - before.machine_busy)
            / max(1, after.machine_total - before.machine_total)
            * (os.cpu_count() or 1),
        }
        server_errors = log.read_text(errors="replace").count("unhandled error")
        samples: dict[str, list[float]] = {kind_: [] for kind_ in KINDS}
        errors: Counter[str] = Counter()
        for client_log in logs:
            for kind_, values in client_log.samples_ms.items():
                samples[kind_].extend(values)
            errors.update(client_log.errors)
        violations = check_invariants(
            url, sum(c.created for c in logs), sum(c.completed for c in logs)
        )
        if not args.keep:
            log.unlink(missing_ok=True)
    report = Report(
        kind,
        args.clients,
        args.workers,
        contention,
        seconds,
        samples,
        errors,
        server_errors,
        violations,
        cpu,
        per_worker,
    )
    print(
        f"  {report.transitions} transitions in {seconds:.1f} s: {report.per_second:.0f}/s; "
        f"errors {dict(errors) or 0}; 500s logged {server_errors}"
    )
    print(
        "  CPU cores busy during the run: "
        + ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
        + "; per worker (cores, share of requests): "
        + ", ".join(f"{busy:.2f} {share:.0%}" for busy, share in per_worker)
    )
    print("  invariants: ok" if not violations else "  invariants VIOLATED:")
    for violation in violations[:50]:
        print(f"    {violation}")
    return report


def versions(args: argparse.Namespace, kinds: list[str]) -> str:
    parts = [
        f"{os.cpu_count()} CPUs",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if "postgresql" in kinds:
        with psycopg.connect(testing.admin_dsn(args.postgres_admin_url)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            parts.append(f"PostgreSQL {row[0] if row else '?'}")
    return ", ".join(parts)


def print_report(reports: list[Report], args: argparse.Namespace, kinds: list[str]) -> None:
    print(
        f"\nExchange lifecycle through the API, {args.exchanges} exchanges "
        f"(+{args.warmup} untimed per client); {versions(args, kinds)}; "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        "\n| database | clients | workers | mentors | transitions | s | transitions/s "
        "| request p50 / p95 ms | accept p50 / p95 ms | complete p50 / p95 ms | errors "
        "| invariants | target |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in reports:
        latency = " | ".join(
            f"{statistics.median(r.samples_ms[k]) if r.samples_ms[k] else float('nan'):.1f} / "
            f"{percentile(r.samples_ms[k], 0.95):.1f}"
            for k in KINDS
        )
        errors = sum(r.errors.values()) + r.server_errors_logged
        verdict = "ok" if r.per_second >= TARGET_TRANSITIONS_PER_SECOND else "MISSED"
        print(
            f"| {r.database} | {r.clients} | {r.workers} | {r.contention} | {r.transitions} "
            f"| {r.seconds:.1f} | {r.per_second:.0f} | {latency} | {errors} "
            f"| {'ok' if not r.violations else f'{len(r.violations)} violations'} "
            f"| {verdict if r.database == 'postgresql' else ''} |"
        )
    print(
        "\n| database | capex serve, cores (per worker: cores, share of requests) | postgres "
        "| bench clients | whole machine | capex CPU ms per transition |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in reports:
        workers = ", ".join(f"{busy:.2f} {share:.0%}" for busy, share in r.per_worker)
        postgres = r.cpu["postgres"] if r.database == "postgresql" else 0.0
        print(
            f"| {r.database} | {r.cpu['server']:.2f} ({workers}) | {postgres:.2f} "
            f"| {r.cpu['bench']:.2f} | {r.cpu['machine']:.2f} "
            f"| {1000 * r.cpu['server'] / r.per_second:.1f} |"
        )
    print("(CPU cores busy, averaged over the timed run; the machine has 2)")
    print(
        "\ninvariants: ok" if all(not r.violations for r in reports) else "\ninvariants: VIOLATED"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--exchanges", type=int, default=3000, help="timed exchanges in all")
    parser.add_argument("--warmup", type=int, default=2, help="untimed exchanges per client")
    parser.add_argument("--mentors-per-client", type=int, default=2)
    parser.add_argument(
        "--shared-mentors",
        type=int,
        default=0,
        help="a pool of this many mentors used by every client (contention on their rows)",
    )
    parser.add_argument(
        "--no-spread",
        dest="spread",
        action="store_false",
        help="keep each client's first connection, wherever the kernel put it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("CAPEX_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
        help="a PostgreSQL URL allowed to CREATE DATABASE",
    )
    args = parser.parse_args()
    # A plain `kill` should still stop the server and drop the databases (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kinds = [kind.strip() for kind in args.databases.split(",") if kind.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database kinds: {', '.join(sorted(unknown))}")
    if args.shared_mentors and args.clients > MENTOR_CAPACITY:
        parser.error(f"with shared mentors, at most {MENTOR_CAPACITY} clients (their capacity)")
    reports = [run_database(kind, args) for kind in kinds]
    print_report(reports, args, kinds)
    if any(r.violations for r in reports):
        sys.exit(1)


if __name__ == "__main__":
    main()
