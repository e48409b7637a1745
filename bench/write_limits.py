"""What the write limits cost a write, and how fast a refused write is answered.

For each database (SQLite, PostgreSQL): a fresh database, ``capex serve --workers 1`` with
the write limits off, then on (limits too high to be reached: every write is counted and
accepted), then on with a limit of one write per account (every write after the first
refused with 429). One volunteer, signed in, sends ``--writes`` sequential
``PATCH /api/v1/me/profile`` on one kept-alive connection, then ``--clients`` threads send
``--writes`` each at once (one connection each). The table prints the latency of the
sequential writes (p50, p95) and the writes per second of the concurrent ones.

    .venv/bin/python bench/write_limits.py [--writes 200] [--clients 8] [--databases ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def _write(client: httpx.Client, headers: dict[str, str], n: int) -> int:
    answer = client.patch("/api/v1/me/profile", json={"bio": f"write {n}"}, headers=headers)
    return answer.status_code


def measure(base: str, headers: dict[str, str], writes: int, clients: int) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    latencies = []
    with httpx.Client(base_url=base, timeout=60) as client:
        _write(client, headers, -1)  # the connection made, the first write counted
        for n in range(writes):
            started = time.perf_counter()
            statuses[_write(client, headers, n)] += 1
            latencies.append((time.perf_counter() - started) * 1000)
    lock = threading.Lock()

    def one_client() -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            for n in range(writes):
                status = _write(client, headers, n)
                with lock:
                    statuses[status] += 1

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p95": latencies[int(len(latencies) * 0.95) - 1],
        "per_second": clients * writes / elapsed,
        "statuses": dict(sorted(statuses.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    args = parser.parse_args()
    rows = []
    work = Path(tempfile.mkdtemp(prefix="capex-bench-write-limits-"))
    for backend in args.databases.split(","):
        for variant, env in VARIANTS.items():
            with (
                throwaway_database(
                    backend, work, prefix="capex_bench", admin_url=args.postgres_admin_url
                ) as url,
                live_server(
                    url,
                    workers=1,
                    env={**BASE_ENV, **env},
                    log=work / f"{backend}-serve.log",
                    cwd=ROOT,
                ) as server,
            ):
                headers = _sign_in(server.base, "writer")
                found = measure(server.base, headers, args.writes, args.clients)
            rows.append((backend, variant, found))
            print(f"{backend:10} {variant:18} {found}", file=sys.stderr, flush=True)
    print(
        f"\n{args.writes} sequential writes (one connection), then {args.clients} clients x "
        f"{args.writes} writes at once; capex serve --workers 1\n"
    )
    print("| database | write limits | p50 ms | p95 ms | writes/s (concurrent) | statuses |")
    print("|---|---|---:|---:|---:|---|")
    for backend, variant, found in rows:
        print(
            f"| {backend} | {variant} | {found['p50']:.1f} | {found['p95']:.1f} | "
            f"{found['per_second']:.0f} | {found['statuses']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
