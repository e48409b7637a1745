"""Matching rounds: speed, memory and totals of optimal, stable and greedy; candidate pruning.

For each size (default 10k learners x 2k mentors and 100k x 20k) a synthetic population is
made in memory: learners who want 1..3 skills, mentors who offer 1..3 with capacities 1..5,
a taxonomy of 21 skills per root area (one root per 80 mentors, so that a learner has about
50 candidate mentors at every size), skills drawn with a long tail, 1..3 languages, 0..3
weekly slots in a few time zones. The engine's index is built over it, then timed:
``MatchIndex.candidates`` (every listed pair, or each learner's best ``--k``), the optimal
round (OR-Tools min-cost flow), the stable round (deferred acceptance), the greedy baseline
and the metrics of all three. Peak memory is the process's peak
RSS after each size (sizes run smallest first).

``--solvers`` also times the optimal round with scipy's
``min_weight_full_bipartite_matching`` on the first size and on 5k x 1k with 5 slots each.

The pruning measurement: a population where scores follow popularity (a few "star" mentors,
level 4, available when everyone is, native speakers, score high for every learner; the rest
teach below the learners' targets), the optimum with each learner's best k mentors against
the optimum over every listed pair.

    .venv/bin/python bench/rounds.py [--sizes 10000:2000,100000:20000] [--solvers]

Targets (issue 10, this 2-core machine): 10k x 2k under 10 s and 4 GB; 100k learners under
60 s.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from capex.matching import MatchIndex, SkillSpace, VolunteerRecord, next_week_start  # noqa: E402
from capex.matching.candidates import Candidates  # noqa: E402
from capex.matching.rounds import greedy, metrics, optimal, stable  # noqa: E402

T = TypeVar("T")
ZONES = [None, "UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "America/Sao_Paulo"]
LANGUAGES = ["en", "es", "fr", "pt", "de", "hi", "ar", "sw"]
LANGUAGE_WEIGHTS = np.array([0.45, 0.12, 0.1, 0.1, 0.08, 0.07, 0.05, 0.03])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def taxonomy(n_roots: int) -> dict[str, str | None]:
    """``n_roots`` areas, each with 4 topics of 4 skills (21 skills an area)."""
    tree: dict[str, str | None] = {}
    for root in range(n_roots):
        area = f"a{root:04d}"
        tree[area] = None
        for child in range(4):
            topic = f"{area}.{child}"
            tree[topic] = area
            for grandchild in range(4):
                tree[f"{topic}.{grandchild}"] = topic
    return tree


def long_tail(rng: np.random.Generator, n: int, size: int, exponent: float = 0.5) -> np.ndarray:
    """``size`` draws of 0..n-1 with weight 1 / (rank + 1) ** exponent."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.choice(n, size=size, p=weights / weights.sum())


def person(
    rng: np.random.Generator,
    volunteer_id: int,
    skills: list[str],
    skill_order: np.ndarray,
    *,
    offers: bool,
    open_slots: int = 0,
) -> VolunteerRecord:
    n_skills = int(rng.integers(1, 4))
    chosen = sorted({skills[skill_order[i]] for i in long_tail(rng, len(skills), n_skills)})
    levelled = tuple((skill, int(rng.integers(1, 5))) for skill in chosen)
    n_languages = int(rng.integers(1, 4))
    languages = rng.choice(len(LANGUAGES), size=n_languages, replace=False, p=LANGUAGE_WEIGHTS)
    zone = ZONES[int(rng.integers(len(ZONES)))]
    slots = []
    if zone is not None:
        for day in sorted(rng.choice(7, size=int(rng.integers(0, 4)), replace=False).tolist()):
            start = int(rng.integers(0, 80)) * 15
            slots.append((day, start, min(1440, start + int(rng.integers(4, 17)) * 15)))
    return VolunteerRecord(
        id=volunteer_id,
        timezone=zone,
        languages=tuple((LANGUAGES[i], int(rng.integers(2, 6))) for i in languages),
        slots=tuple(slots),
        offers=levelled if offers else (),
        wants=() if offers else levelled,
        open_slots=open_slots,
    )


def population(
    n_learners: int, n_mentors: int, seed: int
) -> tuple[dict[str, str | None], list[VolunteerRecord]]:
    rng = np.random.default_rng(seed)
    tree = taxonomy(max(4, n_mentors // 80))
    skills = sorted(tree)
    skill_order = rng.permutation(len(skills))  # which skills the long tail favours
    records = [person(rng, i, skills, skill_order, offers=False) for i in range(1, n_learners + 1)]
    records += [
        person(
            rng,
            n_learners + i,
            skills,
            skill_order,
            offers=True,
            open_slots=int(rng.integers(1, 6)),
        )
        for i in range(1, n_mentors + 1)
    ]
    return tree, records


@dataclass
class SizeReport:
    learners: int
    mentors: int
    build_s: float
    candidates_s: float
    pairs: int
    listed_per_learner: float
    optimal_s: float
    stable_s: float
    greedy_s: float
    metrics_s: float
    explain_s: float
    optimal_total: float
    stable_total: float
    greedy_total: float
    optimal_matched: int
    stable_matched: int
    greedy_matched: int
    optimal_gini: float
    stable_gini: float
    stable_blocking: int
    peak_mb: float

    @property
    def round_s(self) -> float:
        return (
            self.candidates_s
            + self.optimal_s
            + self.stable_s
            + self.greedy_s
            + self.metrics_s
            + self.explain_s
        )


def measure_size(n_learners: int, n_mentors: int, seed: int, k: int | None) -> SizeReport:
    tree, records = population(n_learners, n_mentors, seed)
    week = next_week_start(datetime.now(UTC))
    started = time.perf_counter()
    index = MatchIndex(SkillSpace(tree), week).build(records)
    build_s = time.perf_counter() - started
    del records
    candidates, candidates_s = timed(lambda: index.candidates(k=k))
    if k is None:
        listed = len(candidates) / max(candidates.learners.size, 1)
    else:
        everything = index.candidates(k=None)
        listed = len(everything) / max(everything.learners.size, 1)
        del everything
    best, optimal_s = timed(lambda: optimal(candidates))
    fair, stable_s = timed(lambda: stable(candidates))
    base, greedy_s = timed(lambda: greedy(candidates))
    figures, metrics_s = timed(lambda: [metrics(candidates, a) for a in (best, fair, base)])
    _, explain_s = timed(lambda: index.explain(candidates, best.rows))
    return SizeReport(
        n_learners,
        n_mentors,
        build_s,
        candidates_s,
        len(candidates),
        listed,
        optimal_s,
        stable_s,
        greedy_s,
        metrics_s,
        explain_s,
        best.total_score,
        fair.total_score,
        base.total_score,
        figures[0].matched,
        figures[1].matched,
        figures[2].matched,
        figures[0].mentor_load_gini,
        figures[1].mentor_load_gini,
        figures[1].blocking_pairs,
        peak_rss_mb(),
    )


def print_sizes(reports: list[SizeReport]) -> None:
    print()
    print(
        "| learners x mentors | listed pairs / learner | index build s | candidates s "
        "| optimal s | stable s | greedy s | metrics (3 rounds) s | reasons of the optimal pairs s "
        "| round total s | peak RSS MB "
        "| total score optimal / stable / greedy (greedy / optimal) "
        "| matched optimal / stable / greedy | load Gini optimal / stable | stable blocking |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|")
    for r in reports:
        print(
            f"| {r.learners:,} x {r.mentors:,} | {r.listed_per_learner:.0f} | {r.build_s:.1f} "
            f"| {r.candidates_s:.2f} | {r.optimal_s:.2f} | {r.stable_s:.2f} | {r.greedy_s:.2f} "
            f"| {r.metrics_s:.2f} | {r.explain_s:.2f} | {r.round_s:.1f} | {r.peak_mb:,.0f} "
            f"| {r.optimal_total:,.1f} / {r.stable_total:,.1f} / {r.greedy_total:,.1f} "
            f"({r.greedy_total / r.optimal_total:.2%}) "
            f"| {r.optimal_matched:,} / {r.stable_matched:,} / {r.greedy_matched:,} "
            f"| {r.optimal_gini:.3f} / {r.stable_gini:.3f} | {r.stable_blocking} |"
        )


# -- solvers -----------------------------------------------------------------------------------


def compare_solvers(candidates: Candidates, label: str) -> None:
    flow, flow_s = timed(lambda: optimal(candidates, solver="ortools"))
    matching, matching_s = timed(lambda: optimal(candidates, solver="scipy"))
    print(
        f"| {label} | {len(candidates):,} | {flow_s:.2f} | {matching_s:.2f} "
        f"| {flow.total_score:,.6f} | {matching.total_score:,.6f} |",
        flush=True,
    )


def uniform_round(n_learners: int, n_mentors: int, slots: int, per_learner: int, seed: int):
    """The issue's solver case: random pairs, ``per_learner`` each, scores in (0, 1]."""
    rng = np.random.default_rng(seed)
    learners = np.repeat(np.arange(1, n_learners + 1), per_learner)
    mentors = (
        np.concatenate(
            [rng.choice(n_mentors, size=per_learner, replace=False) for _ in range(n_learners)]
        )
        + 10**6
    )
    return Candidates.from_pairs(
        learners,
        mentors,
        ["s"] * learners.size,
        rng.uniform(0.05, 1.0, size=learners.size),
        {10**6 + m: slots for m in range(n_mentors)},
    )


# -- pruning -----------------------------------------------------------------------------------


def popularity_population(
    n_learners: int, n_mentors: int, n_stars: int, seed: int, *, tied: bool = True
):
    """One area; ``n_stars`` mentors available all week who teach every skill in it.

    ``tied``: the stars are alike (level 4, native English), so a learner's scores for them
    tie; otherwise each star teaches each skill at level 3 or 4 and speaks English at 4 or 5.
    """
    rng = np.random.default_rng(seed)
    tree = taxonomy(1)
    skills = sorted(tree)
    week_slots = tuple((day, 0, 1440) for day in range(7))
    records = []
    for i in range(1, n_learners + 1):
        wants = rng.choice(len(skills), size=int(rng.integers(1, 3)), replace=False)
        records.append(
            VolunteerRecord(
                id=i,
                timezone="UTC",
                languages=(("en", int(rng.integers(3, 6))),),
                slots=((int(rng.integers(7)), 600, 720),),
                wants=tuple((skills[w], int(rng.integers(3, 5))) for w in sorted(wants)),
            )
        )
    for j in range(n_mentors):
        star = j < n_stars
        offers = skills if star else [skills[s] for s in sorted(rng.choice(len(skills), 6, False))]
        if star:
            english = 5 if tied else int(rng.integers(4, 6))
            levels = [4 if tied else int(rng.integers(3, 5)) for _ in offers]
        else:
            english = int(rng.integers(2, 5))
            levels = [int(rng.integers(1, 3)) for _ in offers]
        records.append(
            VolunteerRecord(
                id=n_learners + 1 + j,
                timezone="UTC",
                languages=(("en", english),),
                slots=week_slots if star else ((int(rng.integers(7)), 540, 780),),
                offers=tuple(zip(offers, levels, strict=True)),
                open_slots=int(rng.integers(1, 6)),
            )
        )
    return tree, records


def measure_pruning(
    n_learners: int, n_mentors: int, n_stars: int, seed: int, *, tied: bool = True
) -> None:
    tree, records = popularity_population(n_learners, n_mentors, n_stars, seed, tied=tied)
    index = MatchIndex(SkillSpace(tree), next_week_start(datetime.now(UTC))).build(records)
    everything = index.candidates(k=None)
    full, full_s = timed(lambda: optimal(everything))
    stars = set(range(n_learners + 1, n_learners + 1 + n_stars))
    star_slots = sum(r.open_slots for r in records if r.id in stars)
    print(
        f"\nPruning, popularity population: {n_learners:,} learners, {n_mentors:,} mentors of "
        f"whom {n_stars} {'alike' if tied else 'varied'} stars ({star_slots} slots) score "
        "high for everyone; "
        f"{len(everything) / everything.learners.size:.0f} listed pairs per learner; "
        f"unpruned optimum {full.total_score:,.1f} ({len(full):,} pairs) in {full_s:.2f} s\n"
    )
    print(
        "| learner k | mentor k | pairs kept | optimal s | total "
        "| share of the unpruned optimum | matched |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k, mentor_k in [
        (10, None),
        (25, None),
        (50, None),
        (100, None),
        (200, None),
        (400, None),
        (10, 10),
        (25, 10),
        (50, 10),
        (50, 25),
        (100, 25),
    ]:
        pruned = everything.top(k, mentor_k)
        best, best_s = timed(lambda pruned=pruned: optimal(pruned))
        print(
            f"| {k} | {mentor_k or '-'} | {len(pruned):,} | {best_s:.2f} | "
            f"{best.total_score:,.1f} | {best.total_score / full.total_score:.2%} "
            f"| {len(best):,} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000:2000,100000:20000")
    parser.add_argument(
        "--k", type=int, default=None, help="prune to each learner's best k (default: none)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--solvers", action="store_true", help="also time scipy's matching")
    parser.add_argument("--no-pruning", action="store_true")
    args = parser.parse_args()
    print(
        f"capex rounds bench, {datetime.now(UTC):%Y-%m-%d}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
    sizes = [tuple(int(n) for n in size.split(":")) for size in args.sizes.split(",")]
    reports = []
    for n_learners, n_mentors in sizes:
        print(f"measuring {n_learners:,} learners x {n_mentors:,} mentors ...", flush=True)
        reports.append(measure_size(n_learners, n_mentors, args.seed, args.k))
        print_sizes(reports[-1:])
    print("\nAll sizes:")
    print_sizes(reports)
    if args.solvers:
        print("\nOptimal round, OR-Tools min-cost flow against scipy's bipartite matching:\n")
        print("| round | pairs | min-cost flow s | scipy matching s | flow total | scipy total |")
        print("|---|---:|---:|---:|---:|---:|")
        n_learners, n_mentors = sizes[0]
        tree, records = population(n_learners, n_mentors, args.seed)
        index = MatchIndex(SkillSpace(tree), next_week_start(datetime.now(UTC))).build(records)
        compare_solvers(index.candidates(k=args.k), f"{n_learners:,} x {n_mentors:,} bench")
        compare_solvers(uniform_round(5000, 1000, 5, 50, args.seed), "5,000 x 1,000 x 5 slots")
    if not args.no_pruning:
        measure_pruning(4000, 1000, 150, args.seed)
        measure_pruning(4000, 1000, 150, args.seed, tied=False)


if __name__ == "__main__":
    main()
