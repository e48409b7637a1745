"""Capacity under a concurrent, read-mostly load: requests/s and p50/p95/p99 per endpoint.

    .venv/bin/python bench/capacity.py --template capex_capacity_100k --baseline-ref main

The template is a PostgreSQL database with the demo population in it, made once:

    createdb -h 127.0.0.1 -U postgres capex_capacity_100k
    CAPEX_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/capex_capacity_100k \\
        .venv/bin/capex demo --volunteers 100000 --exchanges 300000

For each configuration, "current" (this checkout) and, with ``--baseline-ref``, "baseline"
(that git revision, checked out into a temporary worktree and served from there with the
same interpreter), and for each of ``--rounds`` rounds, alternating: a fresh copy of the
template (``CREATE DATABASE ... TEMPLATE``), ``capex serve --workers N`` on it, then
``--clients`` threads, each with its own keep-alive ``httpx.Client``:

* each client signs in once as its own demo user ``demoK`` (half through the API's
  ``POST /api/v1/auth/token``, half through the web client's sign-in form), all at once;
* then, until the time is up, each picks a request: the directory (``GET
  /api/v1/volunteers``, unfiltered or filtered by a popular skill, a language, a region or
  a name) 40%, matches (``GET /api/v1/me/matches``, as learner or mentor) 40%, its own
  profile (``GET /api/v1/me``) 10%, one public profile 10%;
* beside them, people arrive and sign in (API) ``--sign-ins-per-second`` times a second,
  each on a new connection, whether or not the ones before got in (an open loop): sign-in
  must not stall the readers.

The first ``--warmup`` seconds after the sign-ins are not counted. ``--profile DIR`` runs
``py-spy record --subprocesses`` on the server of the last round of each configuration
(the ``bench`` extra installs py-spy; it needs ptrace, so root or CAP_SYS_PTRACE) and
prints where the workers' time went.

Timings are end to end from the client, which runs on the same machine and takes CPU of
its own (the same for both configurations).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import testing  # noqa: E402

DEFAULT_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PASSWORD = "capex-demo-2026"
REQUEST_TIMEOUT_SECONDS = 60.0
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

# (what to call it, weight) of each read a client makes.
READS = (("directory", 40), ("matches", 40), ("me", 10), ("profile", 10))


@dataclass
class Samples:
    """Latencies in ms and failures of one endpoint, for one configuration."""

    ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Result:
    """What one configuration measured over all its rounds."""

    name: str
    seconds: float = 0.0
    endpoints: dict[str, Samples] = field(default_factory=lambda: defaultdict(Samples))
    profile: list[tuple[str, float]] = field(default_factory=list)
    # CPU seconds used in the counted window: capex's processes, PostgreSQL's, the client's.
    cpu: Counter[str] = field(default_factory=Counter)

    @property
    def reads(self) -> int:
        return sum(len(s.ms) for name, s in self.endpoints.items() if "sign-in" not in name)


@dataclass(frozen=True)
class Workload:
    """The population's facts the clients need: who to sign in as, what to filter on."""

    usernames: list[str]
    volunteer_ids: list[int]
    directory_queries: list[dict[str, str]]


def workload(admin_url: str, template: str, clients: int, rng: random.Random) -> Workload:
    dsn = testing.admin_dsn(make_url(admin_url).set(database=template).render_as_string(False))
    with psycopg.connect(dsn) as connection:
        usernames = [
            row[0]
            for row in connection.execute(
                "SELECT username FROM volunteers WHERE is_active AND username LIKE 'demo%%' "
                "ORDER BY random() LIMIT %s",
                (clients + 200,),
            )
        ]
        ids = [row[0] for row in connection.execute("SELECT id FROM volunteers WHERE is_active")]
        offered = connection.execute(
            "SELECT skill_id FROM skill_offers GROUP BY skill_id ORDER BY count(*) DESC LIMIT 3"
        ).fetchall()
        wanted = connection.execute(
            "SELECT skill_id FROM skill_wants GROUP BY skill_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        surname = connection.execute(
            "SELECT split_part(display_name, ' ', 2) AS s FROM volunteers "
            "GROUP BY s ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
    queries: list[dict[str, str]] = [{}]
    queries += [{"offers": skill, "language": "en"} for (skill,) in offered]
    if wanted is not None:
        queries.append({"wants": wanted[0], "region": "ssa"})
    if surname is not None and surname[0]:
        queries.append({"q": surname[0]})
    rng.shuffle(usernames)
    return Workload(usernames, ids, queries)


@contextmanager
def template_copy(admin_url: str, template: str) -> Iterator[str]:
    """A new database copied from ``template``; its URL. Dropped afterwards."""
    name = f"capex_capacity_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(testing.admin_dsn(admin_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        testing.discard_database(url, admin_url=admin_url)


@contextmanager
def baseline_checkout(ref: str) -> Iterator[Path]:
    """``ref`` of this repository checked out in a temporary worktree."""
    directory = Path(tempfile.mkdtemp(prefix="capex-baseline-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(directory), ref],
        check=True,
        capture_output=True,
    )
    try:
        yield directory
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(directory)],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


class Client:
    """One simulated person: a keep-alive connection, a token, a stream of reads."""

    def __init__(self, base: str, load: Workload, rng: random.Random) -> None:
        self.http = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS)
        self.load = load
        self.rng = rng
        self.token = ""

    def timed(
        self, record: dict[str, Samples], name: str, request: httpx.Request
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.http.send(request)
        except httpx.HTTPError as error:
            record[name].failures[type(error).__name__] += 1
            raise
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code < 400:
            record[name].ms.append(elapsed)
        else:
            record[name].failures[str(response.status_code)] += 1
        return response

    def sign_in_api(self, record: dict[str, Samples], username: str) -> bool:
        request = self.http.build_request(
            "POST", "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        response = self.timed(record, "sign-in (API)", request)
        if response.status_code != 200:
            return False
        self.token = response.json()["access_token"]
        return True

    def sign_in_web(self, record: dict[str, Samples], username: str) -> bool:
        # The form's CSRF token first (not timed: it is a page view, not the sign-in).
        page = self.http.get("/sign-in")
        found = CSRF_FIELD.search(page.text)
        if found is None:
            record["sign-in (web)"].failures["no form"] += 1
            return False
        form = {"username": username, "password": PASSWORD, "csrf_token": found.group(1)}
        request = self.http.build_request("POST", "/sign-in", data=form)
        response = self.timed(record, "sign-in (web)", request)
        token = self.http.cookies.get("capex_session")
        if response.status_code != 303 or not token:
            return False
        self.token = token
        return True

    def read(self, record: dict[str, Samples]) -> None:
        names = [name for name, _ in READS]
        (kind,) = self.rng.choices(names, weights=[w for _, w in READS])
        headers = {"Authorization": f"Bearer {self.token}"}
        if kind == "directory":
            params = self.rng.choice(self.load.directory_queries)
            request = self.http.build_request(
                "GET", "/api/v1/volunteers", params=params, headers=headers
            )
        elif kind == "matches":
            side = self.rng.choice(("learner", "mentor"))
            request = self.http.build_request(
                "GET", "/api/v1/me/matches", params={"as": side, "limit": 10}, headers=headers
            )
        elif kind == "me":
            request = self.http.build_request("GET", "/api/v1/me", headers=headers)
        else:
            volunteer = self.rng.choice(self.load.volunteer_ids)
            request = self.http.build_request(
                "GET", f"/api/v1/volunteers/{volunteer}", headers=headers
            )
        self.timed(record, kind, request)


def run_load(
    base: str,
    load: Workload,
    args: argparse.Namespace,
    rng: random.Random,
    on_counting: threading.Event,
) -> tuple[dict[str, Samples], float]:
    """Drive the load against ``base``; the samples of the counted window and its length."""
    warm: dict[str, Samples] = defaultdict(Samples)
    counted: dict[str, Samples] = defaultdict(Samples)
    names = iter(load.usernames)
    names_lock = threading.Lock()

    def next_name() -> str:
        with names_lock:
            return next(names)

    start_barrier = threading.Barrier(args.clients + 1)
    signed_in = threading.Barrier(args.clients + 1)
    go = threading.Event()
    phase: dict[str, float] = {}

    def person(index: int) -> None:
        client = Client(base, load, random.Random(rng.random()))
        try:
            start_barrier.wait()
            sign_in = client.sign_in_web if index % 2 else client.sign_in_api
            # A demo user may be deactivated since the template was read: take another.
            for _ in range(5):
                try:
                    if sign_in(counted, next_name()):
                        break
                except httpx.HTTPError:
                    continue
            signed_in.wait()
            go.wait()
            while time.monotonic() < phase["end"]:
                record = counted if time.monotonic() >= phase["counting"] else warm
                try:
                    client.read(record)
                except httpx.HTTPError:
                    time.sleep(0.1)
        finally:
            client.http.close()

    def arrive() -> None:
        client = Client(base, load, random.Random(rng.random()))
        try:
            with suppress(httpx.HTTPError, StopIteration):
                client.sign_in_api(counted, next_name())
        finally:
            client.http.close()

    def arrivals() -> None:
        # Open loop: people arrive on time whether or not the ones before got in.
        arrived: list[threading.Thread] = []
        while time.monotonic() < phase["end"]:
            due = time.monotonic() + 1 / args.sign_ins_per_second
            if time.monotonic() >= phase["counting"]:
                arrived.append(threading.Thread(target=arrive))
                arrived[-1].start()
            time.sleep(max(0.0, due - time.monotonic()))
        for thread in arrived:
            thread.join()

    threads = [threading.Thread(target=person, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    start_barrier.wait()
    signed_in.wait()
    now = time.monotonic()
    phase["counting"] = now + args.warmup
    phase["end"] = phase["counting"] + args.seconds
    go.set()
    on_counting.set()
    side = None
    if args.sign_ins_per_second > 0:
        side = threading.Thread(target=arrivals)
        side.start()
    for thread in threads:
        thread.join()
    if side is not None:
        side.join()
    return counted, args.seconds


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes ``pids`` have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def backend_pids(admin_url: str, database: str) -> list[int]:
    """The PostgreSQL server processes serving ``database`` now."""
    with psycopg.connect(testing.admin_dsn(admin_url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
    return [row[0] for row in rows]


def profile_server(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy over ``pid`` and its children for ``seconds``, as collapsed stacks."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--subprocesses",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "50",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Innermost frames of a thread that waits for work, not for the CPU: the event loop in
# select, pool threads waiting for a job, a request waiting for PostgreSQL's answer.
IDLE_FRAMES = (
    "select (selectors",
    "Runner.run (asyncio",
    "Condition.wait (threading",
    "Event.wait (threading",
    "Thread.join (threading",
    "_worker (concurrent",
    "Connection._recv (multiprocessing",
    "Connection.wait (psycopg",
)
ROUTE = re.compile(r"^(\w+) \(capex/(?:api|web)/routes/")


def summarise_profile(path: Path) -> list[tuple[str, float]]:
    """Where the workers' busy samples went: by the package of the innermost frame, and
    by the endpoint whose code (or dependencies) they were in; in % of busy samples.

    Busy includes waiting for the GIL: py-spy cannot tell it apart, and a thread that
    comes back from a libpq call (psycopg's ``_execute_send``, ``_exec_command``) and
    waits to run again shows there.
    """
    if not path.exists():
        return []
    packages: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    busy = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_FRAMES):
            idle += int(number)
            continue
        busy += int(number)
        found = re.search(r"\(([^:)]+)", frames[-1])
        parts = (found.group(1) if found else frames[-1]).split("/")
        packages[parts[0] if parts[0] != "capex" else "/".join(parts[:2])] += int(number)
        routes = [m.group(1) for frame in frames if (m := ROUTE.match(frame))]
        if "_poll (capex/services/matches.py" in stack:
            endpoint = "(matching index poll, in my_matches)"
        elif routes:
            endpoint = routes[0]
        elif "volunteer_for_token" in stack:
            endpoint = "(the bearer token's lookup)"
        elif "stats_snapshot" in stack:
            endpoint = "(statistics snapshot refresh)"
        else:
            endpoint = "(event loop: HTTP, middleware, dependencies, thread hand-offs)"
        endpoints[endpoint] += int(number)
    if not busy:
        return []
    shares = [("**busy share of all samples**", 100 * busy / (busy + idle))]
    shares += [(f"package: {name}", 100 * n / busy) for name, n in packages.most_common(10)]
    shares += [(f"in: {name}", 100 * n / busy) for name, n in endpoints.most_common()]
    return shares


def measure(
    name: str,
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    load: Workload,
    args: argparse.Namespace,
    result: Result,
    rng: random.Random,
    profile: Path | None,
) -> None:
    with (
        template_copy(args.admin_url, args.template) as url,
        testing.live_server(
            url,
            command=lambda port: [*command, "--port", str(port), "--workers", str(args.workers)],
            cwd=cwd,
            env=env,
            start_timeout=300,
        ) as server,
    ):
        # Both workers build their matching index at start; wait until matches answer.
        with httpx.Client(base_url=server.base, timeout=300) as http:
            token = http.post(
                "/api/v1/auth/token", data={"username": load.usernames[-1], "password": PASSWORD}
            ).json()["access_token"]
            for _ in range(4 * args.workers):
                http.get("/api/v1/me/matches", headers={"Authorization": f"Bearer {token}"})
        counting = threading.Event()
        spy: subprocess.Popen[bytes] | None = None
        database = make_url(url).database or ""
        used: dict[str, float] = {}

        def snapshot() -> dict[str, float]:
            backends = {pid: cpu_seconds([pid]) for pid in backend_pids(args.admin_url, database)}
            return {
                "server": cpu_seconds(process_tree(server.pid)),
                "client": sum(os.times()[:2]),
                **{f"pg{pid}": seconds for pid, seconds in backends.items()},
            }

        def start_profile() -> None:
            nonlocal spy
            counting.wait()
            time.sleep(args.warmup)
            if profile is not None:
                spy = profile_server(server.pid, args.seconds - 1, profile)
            before = snapshot()
            time.sleep(args.seconds)
            after = snapshot()
            used["server"] = after["server"] - before["server"]
            used["client"] = after["client"] - before["client"]
            used["postgresql"] = sum(
                seconds - before.get(key, 0.0)
                for key, seconds in after.items()
                if key.startswith("pg")
            )

        starter = threading.Thread(target=start_profile)
        starter.start()
        samples, seconds = run_load(server.base, load, args, rng, counting)
        starter.join()
        if spy is not None:
            spy.wait()
            result.profile = summarise_profile(profile) if profile else []
    result.seconds += seconds
    for part, seconds_used in used.items():
        result.cpu[part] += seconds_used
    for endpoint, taken in samples.items():
        result.endpoints[endpoint].ms.extend(taken.ms)
        result.endpoints[endpoint].failures.update(taken.failures)
    print(
        f"  {name}: {sum(len(s.ms) for s in samples.values()) / seconds:.1f} answers/s",
        file=sys.stderr,
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.clients} clients, {args.workers} workers, {args.seconds:.0f} s counted "
        f"x {args.rounds} round(s), {args.sign_ins_per_second}/s sign-ins beside them; "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}\n"
    )
    print("| configuration | endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | failures |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    order = ["directory", "matches", "me", "profile", "sign-in (API)", "sign-in (web)"]
    for result in results:
        for endpoint in sorted(result.endpoints, key=lambda e: ([*order, e]).index(e)):
            taken = result.endpoints[endpoint]
            failures = ", ".join(f"{k}: {v}" for k, v in taken.failures.items()) or ""
            print(
                f"| {result.name} | {endpoint} | {len(taken.ms)} | "
                f"{len(taken.ms) / result.seconds:.1f} | {taken.quantile(0.5):.0f} | "
                f"{taken.quantile(0.95):.0f} | {taken.quantile(0.99):.0f} | {failures} |"
            )
        print(
            f"| {result.name} | **all reads** | {result.reads} | "
            f"{result.reads / result.seconds:.1f} |  |  |  |  |"
        )
    print(
        "\nCPU per request answered in the counted window (ms; the machine has "
        f"{os.cpu_count()} cores, {1000 * (os.cpu_count() or 1):.0f} ms of CPU a second):\n"
    )
    print("| configuration | capex workers | PostgreSQL | load client | all |")
    print("|---|---:|---:|---:|---:|")
    for result in results:
        answered = sum(len(s.ms) for s in result.endpoints.values()) or 1
        parts = [result.cpu[p] * 1000 / answered for p in ("server", "postgresql", "client")]
        print(
            f"| {result.name} | {parts[0]:.1f} | {parts[1]:.1f} | {parts[2]:.1f} | "
            f"{sum(parts):.1f} |"
        )
    for current in results[1:]:
        baseline = results[0]
        print(
            f"\n| endpoint | req/s {current.name}/{baseline.name} | "
            f"p50 {baseline.name}/{current.name} | p99 {baseline.name}/{current.name} |"
        )
        print("|---|---:|---:|---:|")
        for endpoint in order:
            before, after = baseline.endpoints.get(endpoint), current.endpoints.get(endpoint)
            if not before or not after or not before.ms or not after.ms:
                continue
            rate = (len(after.ms) / current.seconds) / (len(before.ms) / baseline.seconds)
            print(
                f"| {endpoint} | {rate:.2f}x | "
                f"{before.quantile(0.5) / after.quantile(0.5):.2f}x | "
                f"{before.quantile(0.99) / after.quantile(0.99):.2f}x |"
            )
        rate = (current.reads / current.seconds) / (baseline.reads / baseline.seconds)
        print(f"| **all reads** | {rate:.2f}x |  |  |")
    for result in results:
        if result.profile:
            print(f"\nWhere the workers' busy time went ({result.name}, py-spy, %):\n")
            print("| | % |\n|---|---:|")
            for bucket, share in result.profile:
                print(f"| {bucket} | {share:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", required=True, help="PostgreSQL database to copy")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN)
    parser.add_argument("--baseline-ref", help="also serve this git revision (e.g. main)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sign-ins-per-second", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="directory for py-spy's collapsed stacks")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="this checkout with other settings too, e.g. slots-4:CAPEX_PASSWORD_HASH_SLOTS=4",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    per_round = args.clients + int(args.sign_ins_per_second * (args.seconds + 5)) + 10
    load = workload(args.admin_url, args.template, per_round, rng)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    serve = [sys.executable, "-m", "capex.cli", "serve"]
    env = {"CAPEX_LOG_LEVEL": "INFO"}
    results: list[Result] = []
    with contextlib_nullable(args.baseline_ref) as baseline_dir:
        configurations: list[tuple[str, Path, dict[str, str]]] = []
        if baseline_dir is not None:
            configurations.append(
                ("baseline", baseline_dir, {**env, "PYTHONPATH": str(baseline_dir)})
            )
        configurations.append(("current", ROOT, {**env, "PYTHONPATH": str(ROOT)}))
        for variant in args.variant:
            name, _, assignments = variant.partition(":")
            extra = dict(item.split("=", 1) for item in assignments.split(",") if item)
            configurations.append((name, ROOT, {**env, "PYTHONPATH": str(ROOT), **extra}))
        results = [Result(name) for name, _, _ in configurations]
        for round_number in range(args.rounds):
            for result, (name, cwd, environment) in zip(results, configurations, strict=True):
                print(f"round {round_number + 1}: {name}", file=sys.stderr)
                last = round_number == args.rounds - 1
                out = args.profile / f"{name}.txt" if args.profile and last else None
                round_load = Workload(load.usernames[:], load.volunteer_ids, load.directory_queries)
                random.Random(rng.random()).shuffle(round_load.usernames)
                measure(name, serve, cwd, environment, round_load, args, result, rng, out)
    report(results, args)


@contextmanager
def contextlib_nullable(ref: str | None) -> Iterator[Path | None]:
    if ref is None:
        yield None
        return
    with baseline_checkout(ref) as directory:
        yield directory


if __name__ == "__main__":
    main()
