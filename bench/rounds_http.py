"""Matching rounds and swap rings through the real HTTP API, on the demo population.

For each database: a fresh database with ``--volunteers`` demo volunteers; a uvicorn
server (one worker); a coordinator signs in; then, timed as a client sees them:

- ``POST /rounds`` for everyone (optimal, then stable): the matching index polled, every
  listed pair of every learner, the solver, each pair's reasons and the stored round;
- ``POST /rounds/{id}/publish`` of the optimal one (each pair checked again, one request
  per pair);
- ``GET /swaps`` (the exact disjoint packing over everyone who can swap) and
  ``GET /me/swaps`` for a few volunteers.

The engine alone, at 10k x 2k and 100k learners, is ``bench/rounds.py`` and
``bench/swaps.py``.

    .venv/bin/python bench/rounds_http.py --volunteers 20000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from directory import (  # noqa: E402
    DEFAULT_POSTGRES,
    database_kinds,
    fresh_database,
    populate,
    server,
)
from sqlalchemy import select  # noqa: E402

from capex.db import open_database, session_scope  # noqa: E402
from capex.demo import DEFAULT_DEMO_PASSWORD  # noqa: E402
from capex.models import Volunteer  # noqa: E402
from capex.services import accounts  # noqa: E402
from capex.vocabulary import Role  # noqa: E402


def token(url: str, base: str, username: str, role: Role | None = None) -> dict[str, str]:
    if role is not None:
        with open_database(url) as sessions, session_scope(sessions, write=True) as session:
            accounts.set_role(session, accounts.volunteer_named(session, username), role)
    signed_in = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"username": username, "password": DEFAULT_DEMO_PASSWORD},
        timeout=60,
    )
    signed_in.raise_for_status()
    return {"Authorization": f"Bearer {signed_in.json()['access_token']}"}


def timed(client: httpx.Client, method: str, path: str, **kw: Any) -> tuple[float, Any]:
    """One call's wall time and its JSON answer."""
    started = time.perf_counter()
    response = client.request(method, path, **kw)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, response.json()


def my_swaps(url: str, base: str, count: int, label: str) -> tuple[str, str, str]:
    """``GET /me/swaps`` for ``count`` active volunteers: the median and the slowest."""
    with open_database(url) as sessions, sessions() as session:
        active = session.scalars(
            select(Volunteer.username)
            .where(Volunteer.is_active.is_(True), Volunteer.username != "demo1")
            .order_by(Volunteer.id)
            .limit(count)
        ).all()
    mine = []
    for username in active:
        headers = token(url, base, username)
        started = time.perf_counter()
        httpx.get(f"{base}/api/v1/me/swaps", headers=headers, timeout=60).raise_for_status()
        mine.append((time.perf_counter() - started) * 1000)
    return (
        f"GET /me/swaps ({label})",
        f"{statistics.median(mine):.0f} ms median",
        f"{len(mine)} volunteers, max {max(mine):.0f} ms",
    )


def run_database(kind: str, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    print(f"\n{kind}", flush=True)
    rows = []
    with fresh_database(kind, args.postgres_admin_url, False) as url:
        populate(url, args.volunteers, True)
        with server(url, {"CAPEX_WARM_MATCHING_INDEX": "true"}) as base:
            boss = token(url, base, "demo1", Role.COORDINATOR)
            with httpx.Client(base_url=f"{base}/api/v1", timeout=600, headers=boss) as client:
                for mode in ("optimal", "stable"):
                    seconds, round_ = timed(
                        client, "POST", "/rounds", json={"name": f"all, {mode}", "mode": mode}
                    )
                    m = round_["metrics"]
                    rows.append(
                        (
                            f"POST /rounds ({mode})",
                            f"{seconds:.1f} s",
                            f"{m['learners']} learners, {m['matched']} matched, "
                            f"{len(round_['pairs'])} pairs, total {m['total_score']:.1f}, "
                            f"Gini {m['mentor_load_gini']:.3f}, blocking {m['blocking_pairs']}",
                        )
                    )
                    print(f"  {rows[-1]}", flush=True)
                    if mode == "optimal":
                        optimal_id = round_["id"]
                seconds, packing = timed(client, "GET", "/swaps")
                rows.append(
                    (
                        "GET /swaps",
                        f"{seconds:.1f} s",
                        f"{len(packing['items'])} rings chosen of {packing['rings_found']}, "
                        f"total {packing['total_score']:.1f}, proven {packing['optimal']}",
                    )
                )
                print(f"  {rows[-1]}", flush=True)
                rows.append(my_swaps(url, base, args.swappers, "before publishing"))
                print(f"  {rows[-1]}", flush=True)
                seconds, published = timed(client, "POST", f"/rounds/{optimal_id}/publish")
                rows.append(
                    (
                        "POST /rounds/{id}/publish",
                        f"{seconds:.1f} s",
                        f"{published['published']} requests, {published['not_published']} left out",
                    )
                )
                print(f"  {rows[-1]}", flush=True)
                # Within 30 s of publishing, every poll of the matching index rereads the
                # 15k learners the requests touched (its overlap for late commits).
                rows.append(my_swaps(url, base, args.swappers, "just after publishing"))
                print(f"  {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volunteers", type=int, default=20_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--swappers", type=int, default=20, help="volunteers asking /me/swaps")
    parser.add_argument(
        "--postgres-admin-url",
        default=os.environ.get("CAPEX_BENCH_POSTGRES_URL", DEFAULT_POSTGRES),
    )
    args = parser.parse_args()
    reports = {kind: run_database(kind, args) for kind in database_kinds(parser, args.databases)}
    print(
        f"\nRounds and swaps over HTTP, {args.volunteers} demo volunteers; {os.cpu_count()} "
        f"CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}\n"
    )
    print("| database | call | time | what it gave |")
    print("|---|---|---:|---|")
    for kind, rows in reports.items():
        for call, seconds, what in rows:
            print(f"| {kind} | {call} | {seconds} | {what} |")


if __name__ == "__main__":
    main()
