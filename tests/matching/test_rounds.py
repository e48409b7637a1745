"""Rounds: the optimum against an independent exact solver, stability by brute force, limits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from capex.matching import MatchIndex, SkillSpace
from capex.matching.candidates import Candidates
from capex.matching.rounds import (
    SCORE_SCALE,
    Assignment,
    blocking_pairs,
    check_round,
    gini,
    greedy,
    metrics,
    optimal,
    stable,
    unmatched_learners,
)
from tests.matching.helpers import SUMMER_WEEK, TAXONOMY, volunteer

round_settings = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SKILLS = ["lua", "python", "speaking"]


@dataclass(frozen=True)
class Instance:
    candidates: Candidates
    max_per_learner: int


@st.composite
def instances(draw: st.DrawFn, *, one_row_per_pair: bool = True) -> Instance:
    """A small round: up to 7 learners, 5 mentors (0..3 slots), random pairs and scores.

    Scores come from a small set half of the time, so that ties are common.
    """
    n_learners = draw(st.integers(1, 7))
    n_mentors = draw(st.integers(1, 5))
    learners = list(range(1, n_learners + 1))
    mentors = list(range(101, 101 + n_mentors))
    tied = draw(st.booleans())
    score = st.sampled_from([0.25, 0.5, 0.75, 1.0]) if tied else st.floats(0.01, 1.0)
    rows: dict[tuple[int, int, str], float] = {}
    for learner in learners:
        for mentor in mentors:
            if not draw(st.integers(0, 2)):
                continue
            wants = draw(st.lists(st.sampled_from(SKILLS), min_size=1, max_size=2, unique=True))
            for want in wants if not one_row_per_pair else wants[:1]:
                rows[(learner, mentor, want)] = draw(score)
    keys = sorted(rows)
    open_slots = {mentor: draw(st.integers(0, 3)) for mentor in mentors}
    candidates = Candidates.from_pairs(
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        [rows[key] for key in keys],
        open_slots,
        learners=learners,
    )
    return Instance(candidates, draw(st.sampled_from([1, 1, 2, 3])))


def milp_optimum(candidates: Candidates, max_per_learner: int) -> float:
    """The best total by scipy's mixed-integer solver (HiGHS), with the same constraints."""
    n = len(candidates)
    if n == 0:
        return 0.0
    groups = []
    limits = []
    for mentor, slots in zip(
        candidates.mentors.tolist(), candidates.open_slots.tolist(), strict=True
    ):
        groups.append(candidates.mentor_ids == mentor)
        limits.append(slots)
    for learner in candidates.learners.tolist():
        mine = candidates.learner_ids == learner
        groups.append(mine)
        limits.append(max_per_learner)
        for wanted in np.unique(candidates.wanted_skills[mine]).tolist():
            groups.append(mine & (candidates.wanted_skills == wanted))
            limits.append(1)
        for mentor in np.unique(candidates.mentor_ids[mine]).tolist():
            groups.append(mine & (candidates.mentor_ids == mentor))
            limits.append(1)
    matrix = sp.csr_array(np.array(groups, dtype=np.float64))
    result = milp(
        -candidates.scores,
        constraints=LinearConstraint(matrix, -np.inf, np.array(limits, dtype=np.float64)),
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0},
    )
    assert result.success
    return float(-result.fun)


def learner_choice(rows: list[int], candidates: Candidates, max_per_learner: int) -> set[int]:
    """A learner's pick among ``rows``: best first (score, then mentor id), if it still fits."""
    ranked = sorted(rows, key=lambda r: (-candidates.scores[r], int(candidates.mentor_ids[r]), r))
    kept: list[int] = []
    for r in ranked:
        if len(kept) < max_per_learner and all(
            candidates.wanted_skills[r] != candidates.wanted_skills[o]
            and candidates.mentor_ids[r] != candidates.mentor_ids[o]
            for o in kept
        ):
            kept.append(r)
    return set(kept)


def mentor_choice(rows: list[int], candidates: Candidates, slots: int) -> set[int]:
    """A mentor's pick: best first (score, then learner id), one pair per learner, ``slots``."""
    ranked = sorted(rows, key=lambda r: (-candidates.scores[r], int(candidates.learner_ids[r]), r))
    kept: list[int] = []
    for r in ranked:
        if len(kept) < slots and all(
            candidates.learner_ids[r] != candidates.learner_ids[o] for o in kept
        ):
            kept.append(r)
    return set(kept)


def brute_force_blocking_pairs(
    candidates: Candidates, chosen: np.ndarray, max_per_learner: int
) -> int:
    """Every pair not chosen that both its learner and its mentor would pick, one by one."""
    held = set(chosen.tolist())
    slots = dict(zip(candidates.mentors.tolist(), candidates.open_slots.tolist(), strict=True))
    count = 0
    for r in range(len(candidates)):
        if r in held:
            continue
        learner, mentor = int(candidates.learner_ids[r]), int(candidates.mentor_ids[r])
        mine = [o for o in held if candidates.learner_ids[o] == learner]
        theirs = [o for o in held if candidates.mentor_ids[o] == mentor]
        if r in learner_choice([*mine, r], candidates, max_per_learner) and r in mentor_choice(
            [*theirs, r], candidates, slots[mentor]
        ):
            count += 1
    return count


def assert_valid(candidates: Candidates, assignment: Assignment, max_per_learner: int) -> None:
    check_round(candidates, assignment.rows, max_per_learner=max_per_learner)
    assert assignment.total_score == pytest.approx(
        float(candidates.scores[assignment.rows].sum()), abs=1e-12
    )


@round_settings
@given(instance=instances(one_row_per_pair=False))
def test_optimal_total_is_the_exact_optimum_and_never_below_greedy(instance: Instance) -> None:
    candidates, q = instance.candidates, instance.max_per_learner
    best = optimal(candidates, max_per_learner=q)
    assert_valid(candidates, best, q)
    exact = milp_optimum(candidates, q)
    # The flow is exact for scores rounded to 1e-9; each pair moves the total by <= 0.5e-9.
    bound = (len(best) + candidates.learners.size * q) * 0.5 / SCORE_SCALE
    assert abs(best.total_score - exact) <= max(bound, 1e-6 * exact)
    assert best.total_score >= exact - bound
    baseline = greedy(candidates, max_per_learner=q)
    assert_valid(candidates, baseline, q)
    assert best.total_score >= baseline.total_score - bound
    if q == 1:
        by_scipy = optimal(candidates, solver="scipy")
        assert_valid(candidates, by_scipy, q)
        assert by_scipy.total_score == pytest.approx(best.total_score, abs=2 * bound)


@round_settings
@given(instance=instances())
def test_stable_rounds_have_no_blocking_pair_and_equal_greedy(instance: Instance) -> None:
    candidates, q = instance.candidates, instance.max_per_learner
    round_ = stable(candidates, max_per_learner=q)
    assert_valid(candidates, round_, q)
    assert brute_force_blocking_pairs(candidates, round_.rows, q) == 0
    assert blocking_pairs(candidates, round_.rows, max_per_learner=q) == 0
    # Both sides rank by the same score with consistent ties: the stable round is greedy's.
    assert round_.rows.tolist() == greedy(candidates, max_per_learner=q).rows.tolist()


@round_settings
@given(instance=instances(one_row_per_pair=False), data=st.data())
def test_blocking_pairs_counts_what_brute_force_counts(
    instance: Instance, data: st.DataObject
) -> None:
    candidates, q = instance.candidates, instance.max_per_learner
    rounds = [optimal(candidates, max_per_learner=q), greedy(candidates, max_per_learner=q)]
    for round_ in rounds:
        assert blocking_pairs(candidates, round_.rows, max_per_learner=q) == (
            brute_force_blocking_pairs(candidates, round_.rows, q)
        )
    # Any valid round: a random subset that keeps the limits (greedy over random order).
    order = data.draw(st.permutations(range(len(candidates))))
    chosen: list[int] = []
    for r in order:
        try:
            check_round(candidates, [*chosen, r], max_per_learner=q)
        except ValueError:
            continue
        if data.draw(st.booleans()):
            chosen.append(r)
    rows = np.array(sorted(chosen), dtype=np.int64)
    assert blocking_pairs(candidates, rows, max_per_learner=q) == brute_force_blocking_pairs(
        candidates, rows, q
    )


def trap() -> Candidates:
    # A likes X best; B can only have X. Best-first gives A X and leaves B alone.
    return Candidates.from_pairs(
        [1, 1, 2], [10, 11, 10], ["lua", "lua", "lua"], [1.0, 0.9, 0.8], {10: 1, 11: 1}
    )


def test_the_classic_trap_greedy_one_pair_optimum_two() -> None:
    candidates = trap()
    assert greedy(candidates).rows.tolist() == [0]
    assert stable(candidates).rows.tolist() == [0]
    assert unmatched_learners(candidates, greedy(candidates)).tolist() == [2]
    assert unmatched_learners(candidates, optimal(candidates)).tolist() == []
    best = optimal(candidates)
    assert best.rows.tolist() == [1, 2]
    assert best.total_score == pytest.approx(1.7)
    assert optimal(candidates, solver="scipy").rows.tolist() == [1, 2]
    figures = metrics(candidates, best)
    assert (figures.learners, figures.matched, figures.pairs) == (2, 2, 2)
    assert figures.mean_score == pytest.approx(0.85)
    assert figures.mentor_load_gini == 0.0
    # A and X would both rather be together: the optimum is not stable.
    assert figures.blocking_pairs == 1
    assert metrics(candidates, greedy(candidates)).blocking_pairs == 0


def test_a_learner_gets_at_most_one_pair_per_wanted_skill_and_per_mentor() -> None:
    candidates = Candidates.from_pairs(
        [1, 1, 1, 1],
        [10, 11, 10, 12],
        ["lua", "lua", "speaking", "python"],
        [0.9, 0.8, 0.7, 0.1],
        {10: 3, 11: 3, 12: 3},
    )
    for solve in (optimal, greedy):
        round_ = solve(candidates, max_per_learner=3)
        check_round(candidates, round_.rows, max_per_learner=3)
    # lua from 11, speaking from 10, python from 12: 0.8 + 0.7 + 0.1 beats 0.9 + 0.1.
    assert optimal(candidates, max_per_learner=3).rows.tolist() == [1, 2, 3]
    assert greedy(candidates, max_per_learner=3).rows.tolist() == [0, 3]
    assert optimal(candidates, max_per_learner=2).rows.tolist() == [1, 2]


def test_mentors_without_open_slots_get_nobody() -> None:
    candidates = Candidates.from_pairs([1, 2], [10, 10], ["lua", "lua"], [0.5, 0.6], {10: 0})
    for solve in (optimal, stable, greedy):
        assert len(solve(candidates)) == 0


def test_gini_of_loads() -> None:
    assert gini([]) == 0.0
    assert gini([0, 0]) == 0.0
    assert gini([2, 2, 2]) == 0.0
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)  # (n - 1) / n: one mentor carries all
    assert gini([1, 3]) == pytest.approx(0.25)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="max_per_learner"):
        optimal(trap(), max_per_learner=0)
    with pytest.raises(ValueError, match="scipy"):
        optimal(trap(), max_per_learner=2, solver="scipy")
    with pytest.raises(ValueError, match="learners"):
        Candidates.from_pairs([1], [10], ["lua"], [0.5], {10: 1}, learners=[2])
    with pytest.raises(ValueError, match="scores"):
        Candidates.from_pairs([1], [10], ["lua"], [-0.5], {10: 1})


@round_settings
@given(instance=instances(), k=st.integers(1, 4))
def test_pruned_rounds_never_beat_the_full_one_and_enough_candidates_lose_nothing(
    instance: Instance, k: int
) -> None:
    candidates = instance.candidates
    full = optimal(candidates).total_score
    assert optimal(candidates.top(k)).total_score <= full + 1e-9
    # With one pair each, a learner keeping her best n_learners mentors with open slots always
    # finds one that nobody else holds: pruning to that many loses nothing.
    enough = int(candidates.learners.size + (candidates.open_slots == 0).sum())
    assert optimal(candidates.top(enough)).total_score == pytest.approx(full, abs=1e-8)


def test_a_round_over_the_index() -> None:
    """End to end: candidates from the index, then the three rounds, all within the rules."""
    records = [volunteer(i, wants=(("lua", 2),)) for i in range(1, 7)] + [
        volunteer(10, offers=(("lua", 4),), open_slots=2),
        volunteer(11, offers=(("python", 4),), open_slots=2),
        volunteer(12, offers=(("lua", 1),), open_slots=5),
    ]
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build(records)
    candidates = index.candidates()
    assert candidates.learners.tolist() == [1, 2, 3, 4, 5, 6]
    best, fair, base = optimal(candidates), stable(candidates), greedy(candidates)
    for round_ in (best, fair, base):
        check_round(candidates, round_.rows)
        assert len(round_) == 6  # 2 + 2 + 5 slots for six learners
    assert best.total_score == pytest.approx(fair.total_score)  # one skill: no trade-off
    assert metrics(candidates, best).matched == 6
    assert metrics(candidates, fair).blocking_pairs == 0


@round_settings
@given(instance=instances(), data=st.data())
def test_the_order_of_the_rows_changes_no_round(instance: Instance, data: st.DataObject) -> None:
    candidates, q = instance.candidates, instance.max_per_learner
    # From the learner order (as the index gives them) and from a shuffle.
    permutations = [candidates.learner_order()]
    permutations.append(np.array(data.draw(st.permutations(range(len(candidates)))), np.int64))
    for permutation in permutations:
        moved = candidates.take(permutation)
        for solve in (greedy, stable):
            assert sorted(permutation[solve(moved, max_per_learner=q).rows].tolist()) == (
                solve(candidates, max_per_learner=q).rows.tolist()
            )
        rows = greedy(candidates, max_per_learner=q).rows
        back = np.argsort(permutation)[rows]
        assert blocking_pairs(moved, back, max_per_learner=q) == blocking_pairs(
            candidates, rows, max_per_learner=q
        )
        assert optimal(moved, max_per_learner=q).total_score == pytest.approx(
            optimal(candidates, max_per_learner=q).total_score, abs=1e-8
        )


def test_index_candidates_come_in_learner_order() -> None:
    records = [volunteer(i, wants=(("lua", 1 + i % 4),)) for i in range(1, 30)] + [
        volunteer(100 + j, offers=(("lua", 1 + j % 4), ("python", 4)), open_slots=2)
        for j in range(8)
    ]
    candidates = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build(records).candidates()
    assert candidates.learner_order().tolist() == list(range(len(candidates)))
    by_score = candidates.score_order()
    keys = list(
        zip(
            (-candidates.scores[by_score]).tolist(),
            candidates.learner_ids[by_score].tolist(),
            candidates.mentor_ids[by_score].tolist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)
