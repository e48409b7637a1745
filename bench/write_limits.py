"""What the write limits cost a write, and how fast a refused write is answered.

For each database (SQLite, PostgreSQL), three ``capex serve --workers 1``, each on a fresh
database of its own: the write limits off; on, with limits too high to be reached (every
write counted and accepted); on, with one write per account (every write after the first
refused with 429). One volunteer on each, signed in, sends ``PATCH /api/v1/me/profile``:
``--writes`` one after the other on a kept-alive connection, then ``--clients`` threads at
once (one connection each, ``--writes`` each). Each client takes the three servers in
turn, write by write, so that the other work of a shared machine falls on the three alike.
The table has the latency of each variant, alone and with the concurrent clients; and the
cost of the counting itself, ``write_limits.count_write`` called in this process, beside it.

    .venv/bin/python bench/write_limits.py [--writes 200] [--clients 4] [--databases ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex.config import Settings  # noqa: E402
from capex.db import make_engine, make_session_factory  # noqa: E402
from capex.models.base import utcnow  # noqa: E402
from capex.services import write_limits  # noqa: E402
from capex.testing import POSTGRES_ADMIN_URL, live_server, throwaway_database  # noqa: E402

PASSWORD = "a long enough password"
VARIANTS = {
    "off": {"CAPEX_WRITE_LIMIT_PER_ACCOUNT": "0", "CAPEX_WRITE_LIMIT_PER_ADDRESS": "0"},
    "on, accepted": {
        "CAPEX_WRITE_LIMIT_PER_ACCOUNT": "100000000",
        "CAPEX_WRITE_LIMIT_PER_ADDRESS": "100000000",
    },
    "on, refused (429)": {
        "CAPEX_WRITE_LIMIT_PER_ACCOUNT": "1",
        "CAPEX_WRITE_LIMIT_PER_ADDRESS": "100000000",
        # One window for the whole run: a new one would accept a write again.
        "CAPEX_WRITE_LIMIT_WINDOW_SECONDS": "86400",
    },
}
BASE_ENV = {
    "CAPEX_ENVIRONMENT": "test",
    "CAPEX_SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    "CAPEX_LOG_LEVEL": "WARNING",
    "CAPEX_WARM_MATCHING_INDEX": "false",
    "PYTHONPATH": str(ROOT),
}


def _sign_in(base: str, username: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=60) as client:
        registered = client.post(
            "/api/v1/auth/register",
            json={"username": username, "email": f"{username}@example.org", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        token = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _write(client: httpx.Client, headers: dict[str, str], n: int) -> tuple[int, float]:
    started = time.perf_counter()
    answer = client.patch("/api/v1/me/profile", json={"bio": f"write {n}"}, headers=headers)
    return answer.status_code, (time.perf_counter() - started) * 1000


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


def measure(
    servers: dict[str, tuple[str, dict[str, str]]], writes: int, clients: int
) -> dict[str, dict[str, object]]:
    """Per variant: p50/p95 alone and with ``clients`` at once (ms), and the statuses."""
    alone: dict[str, list[float]] = {variant: [] for variant in servers}
    together: dict[str, list[float]] = {variant: [] for variant in servers}
    statuses: dict[str, Counter[int]] = {variant: Counter() for variant in servers}
    lock = threading.Lock()

    def one_client(into: dict[str, list[float]]) -> None:
        connections = {
            variant: httpx.Client(base_url=base, timeout=60)
            for variant, (base, _) in servers.items()
        }
        try:
            for n in range(writes):
                for variant, (_, headers) in servers.items():
                    status, took = _write(connections[variant], headers, n)
                    with lock:
                        statuses[variant][status] += 1
                        into[variant].append(took)
        finally:
            for connection in connections.values():
                connection.close()

    # The one write that the variant of one write per account is allowed.
    for base, headers in servers.values():
        with httpx.Client(base_url=base, timeout=60) as client:
            _write(client, headers, -1)
    one_client(alone)
    threads = [threading.Thread(target=one_client, args=(together,)) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        variant: {
            "alone": _percentiles(alone[variant]),
            "together": _percentiles(together[variant]),
            "statuses": dict(sorted(statuses[variant].items())),
        }
        for variant in servers
    }


def counting_cost(url: str, calls: int) -> tuple[float, float]:
    """p50/p95 of one ``count_write`` (a token looked up, two counts raised), in ms."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        settings = Settings(
            database_url=url, write_limit_per_account=10**8, write_limit_per_address=10**8
        )
        latencies = []
        for _ in range(calls):
            started = time.perf_counter()
            write_limits.count_write(
                factory, settings, token="no-such-token", address="192.0.2.1", now=utcnow()
            )
            latencies.append((time.perf_counter() - started) * 1000)
        return _percentiles(latencies)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="capex-bench-write-limits-"))
    rows = []
    for backend in args.databases.split(","):
        with ExitStack() as stack:
            servers = {}
            for variant, env in VARIANTS.items():
                url = stack.enter_context(
                    throwaway_database(
                        backend, work, prefix="capex_bench", admin_url=args.postgres_admin_url
                    )
                )
                server = stack.enter_context(
                    live_server(
                        url,
                        workers=1,
                        env={**BASE_ENV, **env},
                        log=work / f"{backend}-{len(servers)}-serve.log",
                        cwd=ROOT,
                    )
                )
                servers[variant] = (server.base, _sign_in(server.base, "writer"))
            found = measure(servers, args.writes, args.clients)
            cost = counting_cost(url, args.writes)
        for variant, figures in found.items():
            rows.append((backend, variant, figures))
        rows.append((backend, "count_write alone, in process", {"alone": cost}))
    print(
        f"\n{args.writes} writes one after the other, then {args.clients} clients at once "
        f"({args.writes} writes each); capex serve --workers 1 per variant\n"
    )
    columns = ["database", "write limits", "p50 ms", "p95 ms", "p50 ms, clients at once"]
    print("| " + " | ".join([*columns, "p95 ms", "statuses"]) + " |")
    print("|---|---|---:|---:|---:|---:|---|")
    for backend, variant, figures in rows:
        alone = figures["alone"]
        together = figures.get("together")
        shown = f"{together[0]:.1f} | {together[1]:.1f}" if together else " | "
        print(
            f"| {backend} | {variant} | {alone[0]:.1f} | {alone[1]:.1f} | {shown} | "
            f"{figures.get('statuses', '')} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
