"""Skill-swap rings over the demo population: edges, enumeration, exact packing, greedy beside it.

The demo generator makes ``--volunteers`` volunteers in memory (as ``bench/matching.py``
does); those who can be in a ring (``swap_volunteers``: active, an offer, a want, an open
slot) get a match index of their own, and each asks it for its best ``--limit`` learners as
a mentor (``teaching_edges``, one ``MatchIndex.query`` per volunteer). Then, timed apart:
every ring of two and three enumerated, the exact disjoint packing
(``best_disjoint_rings``: enumeration, components, ``scipy.optimize.milp``), the greedy
packing, and ``rings_of`` for a sample of volunteers (what ``GET /me/swaps`` costs).

    .venv/bin/python bench/swaps.py --volunteers 100000 --limit 10,20

Issue 10's target: swap rings over 100k volunteers in under 30 s (edges, enumeration and
exact packing together).

Measured (2026-12-01, this 2-core machine, other work sharing it; ``--limit 10,20,40
--time-limit 15``): 20,701 of the 100,000 can swap. With 10 learners per teacher, 6,488
rings, optimum 4958.2 proven, 9.0 s in all, greedy 85 % of it. With 20, 25,333 rings in one
big component, 8954.2 within 2.5e-4 of the bound after the 15 s limit (not proven), 27 s,
greedy 78 %. With 40, 105,923 rings, 12719.9 within 3.3 % of the bound, 36 s, greedy 77 %.
Edges (one query per volunteer) take 8-13 s of each; enumeration 0.05-1.2 s; ``rings_of``
0.1-0.5 ms median.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matching import demo_records, taxonomy  # noqa: E402  (bench/matching.py)

from capex.matching import MatchIndex, SkillSpace, VolunteerRecord, next_week_start  # noqa: E402
from capex.matching.swaps import (  # noqa: E402
    _enumerate_rings,  # the enumeration alone, to time it apart from the packing
    best_disjoint_rings,
    greedy_disjoint_rings,
    rings_of,
    swap_volunteers,
    teaching_edges,
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Report:
    limit: int
    swappers: int
    edges: int
    index_s: float
    edges_s: float
    enumerate_s: float
    packing_s: float
    greedy_s: float
    rings_two: int
    rings_three: int
    components: int
    largest_component: int
    chosen: int
    chosen_three: int
    total: float
    upper_bound: float
    gap: float
    optimal: bool
    greedy_chosen: int
    greedy_total: float
    rings_of_ms: list[float]

    @property
    def target_s(self) -> float:
        """What the issue's 30 s covers: edges (with their index) and the exact packing."""
        return self.index_s + self.edges_s + self.packing_s


def measure(
    records: list[VolunteerRecord],
    space: SkillSpace,
    limit: int,
    time_limit: float,
    sample: int,
    seed: int,
) -> Report:
    week = next_week_start(datetime.now(UTC))
    swappers = swap_volunteers(records)
    chosen = set(swappers)
    started = time.perf_counter()
    index = MatchIndex(space, week).build(r for r in records if r.id in chosen)
    index_s = time.perf_counter() - started

    started = time.perf_counter()
    edges = teaching_edges(index, swappers, limit=limit)
    edges_s = time.perf_counter() - started

    started = time.perf_counter()
    found = _enumerate_rings(edges, 3)
    enumerate_s = time.perf_counter() - started
    threes = int((found.edges[:, 2] >= 0).sum())

    started = time.perf_counter()
    packing = best_disjoint_rings(edges, time_limit=time_limit)
    packing_s = time.perf_counter() - started

    started = time.perf_counter()
    greedy = greedy_disjoint_rings(edges)
    greedy_s = time.perf_counter() - started

    rng = np.random.default_rng(seed)
    asked = rng.choice(np.array(swappers), size=min(sample, len(swappers)), replace=False)
    rings_of_ms = []
    for volunteer_id in asked.tolist():
        t0 = time.perf_counter()
        rings_of(edges, volunteer_id)
        rings_of_ms.append((time.perf_counter() - t0) * 1000)

    return Report(
        limit=limit,
        swappers=len(swappers),
        edges=len(edges),
        index_s=index_s,
        edges_s=edges_s,
        enumerate_s=enumerate_s,
        packing_s=packing_s,
        greedy_s=greedy_s,
        rings_two=len(found) - threes,
        rings_three=threes,
        components=packing.components,
        largest_component=packing.largest_component,
        chosen=len(packing.rings),
        chosen_three=sum(len(ring) == 3 for ring in packing.rings),
        total=packing.total_score,
        upper_bound=packing.upper_bound,
        gap=packing.gap,
        optimal=packing.optimal,
        greedy_chosen=len(greedy),
        greedy_total=sum(ring.score for ring in greedy),
        rings_of_ms=rings_of_ms,
    )


def print_table(volunteers: int, reports: list[Report]) -> None:
    print()
    print(
        "| volunteers | swap volunteers | limit | edges | index s | edges s | enumeration s "
        "| exact packing s | greedy s | index + edges + packing s | rings of 2 / 3 "
        "| components (largest) | chosen (of 3) | optimum total | proven | greedy chosen "
        "| greedy total | greedy / optimum | rings_of median / max ms |"
    )
    print("|" + "---:|" * 14 + "---|" + "---:|" * 4)
    for r in reports:
        proven = "yes" if r.optimal else f"no: bound {r.upper_bound:.3f}, gap {r.gap:.1e}"
        ratio = r.greedy_total / r.total if r.total else 1.0
        print(
            f"| {volunteers:,} | {r.swappers:,} | {r.limit} | {r.edges:,} | {r.index_s:.2f} "
            f"| {r.edges_s:.2f} | {r.enumerate_s:.2f} | {r.packing_s:.2f} | {r.greedy_s:.2f} "
            f"| {r.target_s:.1f} | {r.rings_two:,} / {r.rings_three:,} "
            f"| {r.components:,} ({r.largest_component:,}) | {r.chosen:,} ({r.chosen_three:,}) "
            f"| {r.total:.3f} | {proven} | {r.greedy_chosen:,} | {r.greedy_total:.3f} "
            f"| {ratio:.4f} | {statistics.median(r.rings_of_ms):.2f} / {max(r.rings_of_ms):.2f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--limit", default="20", help="learners per teacher, comma-separated")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per milp solve")
    parser.add_argument("--sample", type=int, default=1000, help="volunteers asking rings_of")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    machine = platform.processor() or platform.machine()
    print(
        f"capex swap rings bench, {datetime.now(UTC):%Y-%m-%d}, {machine}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    started = time.perf_counter()
    records = demo_records(args.volunteers, args.seed)
    space = SkillSpace({skill: parent for skill, parent, _ in taxonomy()})
    print(f"population generated in {time.perf_counter() - started:.1f} s", flush=True)
    reports = []
    for limit in (int(value) for value in args.limit.split(",")):
        reports.append(measure(records, space, limit, args.time_limit, args.sample, args.seed))
        print_table(args.volunteers, reports[-1:])
    print("\nAll limits:")
    print_table(args.volunteers, reports)
    print(f"\npeak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
