"""Matching engine speed and memory on the demo population, beside the naive way.

For each size (default 10k, 100k and 1M volunteers) the demo generator
(``capex.demo.generate``, the rows ``capex demo`` writes) makes a population in
memory; the engine's index is built over it (time, memory), then top-10 queries are timed
for 1,000 random learners (``as=learner``) and 1,000 random mentors (``as=mentor``). In the
same process and on the same records, the naive way that typical mentorship apps use, a
Python loop scoring every pair with sets and dicts (same formulas), answers a sample of the
same learners within a time budget; its answers are checked against the engine's.

With ``--api``, the demo population of ``--api-volunteers`` is written to a fresh SQLite
file and a fresh PostgreSQL database and ``GET /api/v1/me/matches`` is timed through a real
uvicorn server, signed in as demo learners.

    .venv/bin/python bench/matching.py --api

Targets (issue 3, on this 2-core machine): at 100k, top-10 in under 5 ms median and 20 ms
p95, index built in under 10 s, at least 100x faster than the naive loop; at 1M, under
100 ms p95 in under 4 GB; through the API at 100k, under 50 ms p95.
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex import demo  # noqa: E402
from capex.matching import (  # noqa: E402
    Match,
    MatchIndex,
    SkillSpace,
    VolunteerRecord,
    next_week_start,
)
from capex.matching.availability import slot_intervals  # noqa: E402
from capex.services import skills as skill_service  # noqa: E402

QUARTER = 15
SATURATION = 120


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the population ----------------------------------------------------------------------------


def taxonomy() -> list[tuple[str, str | None, str]]:
    skills = skill_service.starting_taxonomy()
    return sorted((s["id"], s.get("parent"), s["name"]) for s in skills)


def demo_records(volunteers: int, seed: int) -> list[VolunteerRecord]:
    """The demo population as engine records (open slots = capacity: no exchanges yet)."""
    records: list[VolunteerRecord] = []
    for _, (people, languages, slots, offers, wants) in demo.generate(
        taxonomy(), volunteers=volunteers, seed=seed
    ):
        by_id: dict[str, dict[int, list[tuple]]] = {
            name: defaultdict(list) for name in ("languages", "slots", "offers", "wants")
        }
        for row in languages:
            by_id["languages"][row["volunteer_id"]].append(
                (row["position"], row["code"], row["level"])
            )
        for row in slots:
            by_id["slots"][row["volunteer_id"]].append(
                (row["weekday"], row["start_minute"], row["end_minute"])
            )
        for name, rows in (("offers", offers), ("wants", wants)):
            for row in rows:
                by_id[name][row["volunteer_id"]].append(
                    (row["position"], row["skill_id"], row["level"])
                )
        for person in people:
            vid = person["id"]
            records.append(
                VolunteerRecord(
                    id=vid,
                    active=person["is_active"],
                    timezone=person["timezone"],
                    languages=tuple((c, lv) for _, c, lv in sorted(by_id["languages"][vid])),
                    slots=tuple(sorted(by_id["slots"][vid])),
                    offers=tuple((s, lv) for _, s, lv in sorted(by_id["offers"][vid])),
                    wants=tuple((s, lv) for _, s, lv in sorted(by_id["wants"][vid])),
                    open_slots=person["mentor_capacity"],
                )
            )
    return records


# -- the naive way ---------------------------------------------------------------------------


@dataclass
class NaiveVolunteer:
    id: int
    languages: dict[str, int]
    quarters: frozenset[int] | None  # UTC quarter hours of the coming week
    offers: list[tuple[str, int]]
    wants: list[tuple[str, int]]
    open_slots: int


class NaiveMatcher:
    """What a typical mentorship app does: score every pair in a Python loop, then sort.

    Each profile is read once into sets and dicts (slots turned into the set of UTC quarter
    hours they cover); a query then scores every other volunteer with the same formulas as
    the engine, drops the excluded pairs and sorts what is left.
    """

    def __init__(self, records: list[VolunteerRecord], space: SkillSpace, week: datetime):
        self.similarity = {
            a: {b: space.similarity(a, b) for b in space.skill_ids} for a in space.skill_ids
        }
        self.people = [self._prepare(r, week) for r in records if r.active]
        self.by_id = {person.id: person for person in self.people}

    @staticmethod
    def _prepare(record: VolunteerRecord, week: datetime) -> NaiveVolunteer:
        quarters = None
        if record.slots and record.timezone:
            quarters = frozenset(
                quarter % 672
                for start, end in slot_intervals(record.slots, record.timezone, week)
                for quarter in range(start // QUARTER, end // QUARTER)
            )
        languages: dict[str, int] = {}
        for code, level in record.languages:
            primary = code.split("-")[0].lower()
            languages[primary] = max(level, languages.get(primary, 0))
        return NaiveVolunteer(
            record.id,
            languages,
            quarters,
            list(record.offers),
            list(record.wants),
            record.open_slots,
        )

    def top(self, learner_id: int, limit: int = 10) -> list[tuple[int, float]]:
        me = self.by_id[learner_id]
        scored = []
        for other in self.people:
            if other.id == me.id:
                continue
            best = 0.0
            for wanted, target in me.wants:
                for offered, level in other.offers:
                    fit = 1.0 if level >= target else 0.5 ** (target - level)
                    best = max(best, self.similarity[wanted][offered] * fit)
            shared = me.languages.keys() & other.languages.keys()
            lang = max((min(me.languages[c], other.languages[c]) for c in shared), default=0) / 5
            both_gave = me.quarters is not None and other.quarters is not None
            overlap = len(me.quarters & other.quarters) * QUARTER if both_gave else None  # type: ignore[operator]
            avail = 0.5 if overlap is None else min(overlap, SATURATION) / SATURATION
            score = min(1.0, best * (0.55 + 0.30 * avail + 0.15 * lang))
            if best > 0 and shared and overlap != 0 and other.open_slots > 0:
                scored.append((-score, other.id))
        scored.sort()
        return [(vid, -negative) for negative, vid in scored[:limit]]


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class SizeReport:
    volunteers: int
    generate_s: float
    build_s: float
    index_mb: float
    peak_mb: float
    learner_ms: list[float]
    mentor_ms: list[float]
    naive_ms: list[float]
    naive_prepare_s: float
    agreed: int


def measure_size(volunteers: int, queries: int, naive_seconds: float, seed: int) -> SizeReport:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    records = demo_records(volunteers, seed)
    generate_s = time.perf_counter() - started
    tree = {skill: parent for skill, parent, _ in taxonomy()}
    space = SkillSpace(tree)
    week = next_week_start(datetime.now(UTC))
    started = time.perf_counter()
    index = MatchIndex(space, week).build(r for r in records if r.active)
    build_s = time.perf_counter() - started
    # What the index holds, counted by tracemalloc (numpy reports its buffers to it) in a
    # second, untimed build. A difference of RSS said "0 MB" whenever the allocator reused
    # what generating the population had freed.
    gc.collect()
    tracemalloc.start()
    held = MatchIndex(space, week).build(r for r in records if r.active)
    index_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    del held

    learners = [r.id for r in records if r.active and r.wants]
    mentors = [r.id for r in records if r.active and r.offers and r.open_slots > 0]
    asked = rng.choice(learners, size=queries, replace=len(learners) < queries)
    teaching = rng.choice(mentors, size=queries, replace=len(mentors) < queries)

    def timed(ids: np.ndarray, role: str) -> tuple[list[float], dict[int, list[Match]]]:
        samples, answers = [], {}
        for vid in ids.tolist():
            t0 = time.perf_counter()
            answers[vid] = index.query(vid, role=role, limit=10)  # type: ignore[arg-type]
            samples.append((time.perf_counter() - t0) * 1000)
        return samples, answers

    timed(asked[:20], "learner")  # warm-up
    learner_ms, answers = timed(asked, "learner")
    mentor_ms, _ = timed(teaching, "mentor")

    started = time.perf_counter()
    naive = NaiveMatcher(records, space, week)
    naive_prepare_s = time.perf_counter() - started
    naive_ms: list[float] = []
    agreed = 0
    deadline = time.monotonic() + naive_seconds
    for vid in asked.tolist():
        t0 = time.perf_counter()
        expected = naive.top(vid)
        naive_ms.append((time.perf_counter() - t0) * 1000)
        got = [(m.volunteer_id, m.score) for m in answers[vid]]
        if [v for v, _ in got] == [v for v, _ in expected] and all(
            abs(a - b) < 1e-9 for (_, a), (_, b) in zip(got, expected, strict=True)
        ):
            agreed += 1
        if len(naive_ms) >= 3 and time.monotonic() > deadline:
            break
    return SizeReport(
        volunteers,
        generate_s,
        build_s,
        index_mb,
        peak_rss_bytes() / 2**20,
        learner_ms,
        mentor_ms,
        naive_ms,
        naive_prepare_s,
        agreed,
    )


def print_engine_table(reports: list[SizeReport]) -> None:
    print()
    print(
        "| volunteers | index build s | index memory MB | peak RSS MB "
        "| learner top-10 median / p95 ms | mentor top-10 median / p95 ms "
        "| naive loop median ms (n) | naive / engine | same answers |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        engine = statistics.median(r.learner_ms)
        naive = statistics.median(r.naive_ms)
        print(
            f"| {r.volunteers:,} | {r.build_s:.2f} | {r.index_mb:.0f} | {r.peak_mb:.0f} "
            f"| {engine:.2f} / {percentile(r.learner_ms, 0.95):.2f} "
            f"| {statistics.median(r.mentor_ms):.2f} / {percentile(r.mentor_ms, 0.95):.2f} "
            f"| {naive:.0f} ({len(r.naive_ms)}) | {naive / engine:.0f}x "
            f"| {r.agreed}/{len(r.naive_ms)} |"
        )
    print()
    for r in reports:
        print(
            f"- {r.volunteers:,}: generated in {r.generate_s:.1f} s; naive preparation "
            f"(bitmask ints, similarity dicts) {r.naive_prepare_s:.1f} s"
        )


def measure_explain(volunteers: int, queries: int, seed: int) -> None:
    """Median and p95 of what ``/me/matches`` asks of the engine (``query``, limit 20), without
    and with ``explain_skills``, for the same random learners and mentors."""
    rng = np.random.default_rng(seed)
    records = demo_records(volunteers, seed)
    space = SkillSpace({skill: parent for skill, parent, _ in taxonomy()})
    index = MatchIndex(space, next_week_start(datetime.now(UTC)))
    index.build(r for r in records if r.active)
    print("| as | queries | query median / p95 ms | query + explain median / p95 ms |")
    print("|---|---:|---:|---:|")
    for role, pool in (
        ("learner", [r.id for r in records if r.active and r.wants]),
        ("mentor", [r.id for r in records if r.active and r.offers and r.open_slots > 0]),
    ):
        asked = rng.choice(pool, size=queries, replace=len(pool) < queries).tolist()
        alone: list[float] = []
        explained: list[float] = []
        for vid in asked[:20]:  # warm-up
            index.query(vid, role=role, limit=20)  # type: ignore[arg-type]
            index.explain_skills(vid, role=role)  # type: ignore[arg-type]
        for vid in asked:
            t0 = time.perf_counter()
            index.query(vid, role=role, limit=20)  # type: ignore[arg-type]
            t1 = time.perf_counter()
            index.explain_skills(vid, role=role)  # type: ignore[arg-type]
            t2 = time.perf_counter()
            alone.append((t1 - t0) * 1000)
            explained.append((t2 - t0) * 1000)
        print(
            f"| {role} | {queries} | {statistics.median(alone):.2f} / "
            f"{percentile(alone, 0.95):.2f} | {statistics.median(explained):.2f} / "
            f"{percentile(explained, 0.95):.2f} |",
            flush=True,
        )


# -- through the API -------------------------------------------------------------------------


def measure_api(volunteers: int, requests: int, databases: list[str]) -> None:
    import httpx
    from directory import fresh_database, populate, server  # bench/directory.py
    from sqlalchemy import select

    from capex.db import make_engine, make_session_factory
    from capex.models import SkillWant, Volunteer

    print()
    print(
        "| database | requests | /me/matches median ms | p95 ms | first request (index build) s |"
    )
    print("|---|---:|---:|---:|---:|")
    for kind in databases:
        with fresh_database(
            kind, "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", False
        ) as url:
            populate(url, volunteers, analyze=True)
            engine = make_engine(url)
            with make_session_factory(engine)() as session:
                names = list(
                    session.scalars(
                        select(Volunteer.username)
                        .where(
                            Volunteer.is_active.is_(True),
                            Volunteer.id.in_(select(SkillWant.volunteer_id)),
                        )
                        .order_by(Volunteer.id)
                        .limit(20)
                    )
                )
            engine.dispose()
            with server(url) as base, httpx.Client(base_url=base, timeout=60) as client:
                tokens = []
                for name in names:
                    answer = client.post(
                        "/api/v1/auth/token",
                        data={"username": name, "password": demo.DEFAULT_DEMO_PASSWORD},
                    )
                    answer.raise_for_status()
                    tokens.append({"Authorization": f"Bearer {answer.json()['access_token']}"})
                t0 = time.perf_counter()
                client.get("/api/v1/me/matches", headers=tokens[0]).raise_for_status()
                first_s = time.perf_counter() - t0
                samples = []
                for i in range(requests):
                    t0 = time.perf_counter()
                    response = client.get(
                        "/api/v1/me/matches", params={"limit": 10}, headers=tokens[i % len(tokens)]
                    )
                    samples.append((time.perf_counter() - t0) * 1000)
                    response.raise_for_status()
            print(
                f"| {kind} | {requests} | {statistics.median(samples):.1f} "
                f"| {percentile(samples, 0.95):.1f} | {first_s:.1f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--naive-seconds",
        type=float,
        default=60.0,
        help="time budget of the naive loop per size (at least 3 queries)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--api", action="store_true", help="also time /me/matches over HTTP")
    parser.add_argument("--api-volunteers", type=int, default=100_000)
    parser.add_argument("--api-requests", type=int, default=500)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="only time query against query + explain_skills (what /me/matches asks)",
    )
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(
        f"capex matching bench, {datetime.now(UTC):%Y-%m-%d}, {machine}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    if args.explain:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"\n{size:,} volunteers:", flush=True)
            measure_explain(size, args.queries, args.seed)
        return
    reports = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"measuring {size:,} volunteers ...", flush=True)
        reports.append(measure_size(size, args.queries, args.naive_seconds, args.seed))
        print_engine_table(reports[-1:])
    print("\nAll sizes:")
    print_engine_table(reports)
    if args.api:
        measure_api(args.api_volunteers, args.api_requests, args.databases.split(","))


if __name__ == "__main__":
    main()
