"""Matching rounds: place a cohort's learners with mentors at once.

A round takes :class:`~capex.matching.candidates.Candidates` (from
:meth:`MatchIndex.candidates <capex.matching.index.MatchIndex.candidates>`: every pair is one
``/me/matches`` would list) and chooses pairs so that

- no mentor gets more pairs than open slots,
- a learner gets at most one pair per wanted skill, at most one pair per mentor and at most
  ``max_per_learner`` pairs (default 1).

Three ways to choose:

``optimal``
    The greatest total score, exactly: a minimum-cost flow (learner -> [learner, wanted skill]
    -> [learner, mentor] -> mentor -> sink, with a learner -> sink bypass for "unmatched"; the
    middle layers only when ``max_per_learner > 1``).
``stable``
    Learner-proposing deferred acceptance, both sides ranking by the pair's score (ties: the
    smaller id first). No learner and mentor would both rather be together than with what they
    got (``blocking_pairs`` is 0); learners get the best partner any stable round could give.
``greedy``
    Pairs best-first (score descending, then learner id, then mentor id), taking each pair that
    still fits. With both sides ranking by the same score and these ties, this is exactly the
    stable round (the pair best for both is in every stable round; remove it and repeat), which
    the tests use as an independent check of the deferred-acceptance code.

The solver
----------
OR-Tools' ``SimpleMinCostFlow`` (a cost-scaling push-relabel in C++), chosen over
``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` (LAPJVsp) on slot-expanded columns
plus one dummy column per learner, measured on this 2-core machine (``bench/rounds.py
--solvers``; the same totals to 1e-6):

| round | pairs | min-cost flow | scipy matching |
|---|---:|---:|---:|
| 5k x 1k, 5 slots each, 50 random pairs a learner | 250,000 | 0.07 s | 0.25 s |
| bench 10k x 2k (slots 1..5), every listed pair | 505,586 | 0.39-0.89 s | 1.30 s |
| bench 100k x 20k (a sparser population) | 3,111,805 | 6.1 s | 28.3 s |

- Speed: 1.5-5x faster, and no slot expansion (a mentor with 5 slots is one node, not 5
  columns with 5 copies of every edge).
- Generality: ``max_per_learner > 1`` with one pair per wanted skill and per mentor is the same
  flow with two more node layers; the matching cannot express it (rows are learners).
- Robustness: the matching needs strictly positive integer costs and, as measured in issue 10,
  can run for minutes on near-ties or with ``maximize=True``; the flow takes any integer costs.
- Cost: the ``ortools`` wheel brings ``pandas``, ``protobuf``, ``absl-py`` and
  ``immutabledict``: about 170 MB installed (ortools 80 MB, pandas 84 MB) on a 776 MB
  environment, ~22 % more. Importing ``ortools.graph.python.min_cost_flow`` loads neither
  pandas nor protobuf (27 ms), and only when a round is solved. We take the size for the
  speed and for ``max_per_learner``; ``solver="scipy"`` stays for measuring against and as an
  independent check in the tests.

Pruning
-------
Keeping only each learner's best ``k`` mentors before solving (``Candidates.top``) is safe
when the mentors a learner keeps have room for her, and fails when scores follow popularity.
Measured (``bench/rounds.py``): 4,000 learners, 1,000 mentors of whom 150 "stars" (available
all week, teaching every skill of the area at level 3-4; about 450 slots) score high for
everyone, 266 listed pairs a learner. Share of the unpruned optimum kept:

| each learner's best k | 10 | 25 | 50 | 100 | 200 |
|---|---:|---:|---:|---:|---:|
| stars alike (scores tie, cut at the lowest ids) | 1.4 % | 4.5 % | 9.0 % | 17.7 % | 100 % |
| stars varied (level 3-4 a skill, English 4-5) | 8.3 % | 18.8 % | 24.7 % | 28.1 % | 100 % |

Adding each mentor's best 10 or 25 learners (``mentor_k``) recovers only 33-81 % (alike) and
40-90 % (varied). A ``k`` is safe only once it passes the number of mentors who score high for
everyone, which a round cannot know in advance, so rounds keep **every listed pair**
(``MatchIndex.candidates(k=None)``, the default): the bench round of 100k learners with all
~52 listed pairs each (5.2M pairs) is solved in 12 s. With one pair per learner, keeping per
learner at least as many mentors with open slots as the round has learners provably loses
nothing (some kept mentor is free for her); the tests check that, and that a pruned round
never beats the full one.

Integer costs
-------------
Both solvers need integer costs: a pair's score ``s`` becomes ``round(s * score_scale)``
(``score_scale = 10**9``). The round is exactly optimal for the scaled scores; each scaled score
is within ``0.5 / score_scale`` of the true one, so the true total of the chosen round is
within ``(p_chosen + p_best) * 0.5 / score_scale`` of the true optimum, where ``p`` counts the
pairs of each round (at most learners x ``max_per_learner``): under 1e-4 for 100k pairs.
Among rounds tied after scaling the solver picks any.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from capex.matching.candidates import Candidates, rank_in_groups

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

Mode = Literal["optimal", "stable", "greedy"]
Solver = Literal["ortools", "scipy"]

SCORE_SCALE = 10**9


@dataclass(frozen=True, eq=False)
class Assignment:
    """The pairs a round chose.

    Attributes
    ----------
    mode : {"optimal", "stable", "greedy"}
    rows : ndarray of int64, shape (p,)
        Ascending positions of the chosen pairs in the round's ``Candidates``.
    total_score : float
        The sum of their scores.
    """

    mode: Mode
    rows: IntArray
    total_score: float

    def __len__(self) -> int:
        return int(self.rows.size)


@dataclass(frozen=True)
class RoundMetrics:
    """What a coordinator reads about a round.

    Attributes
    ----------
    learners : int
        The round's learners (``Candidates.learners``), matched or not.
    matched : int
        Learners with at least one pair.
    pairs : int
        Pairs chosen.
    total_score, mean_score : float
        Sum and mean (over pairs; 0 without pairs) of the pairs' scores.
    mentor_load_gini : float
        Gini coefficient of pairs per mentor over ``Candidates.mentors`` (every mentor with at
        least one candidate pair, those given none counting 0): 0 when all carry the same
        load, towards 1 when a few carry it all; 0 without pairs.
    blocking_pairs : int
        Candidate pairs not chosen whose learner and mentor would both rather have them (see
        :func:`blocking_pairs`).
    """

    learners: int
    matched: int
    pairs: int
    total_score: float
    mean_score: float
    mentor_load_gini: float
    blocking_pairs: int


@dataclass(frozen=True, eq=False)
class _Indexed:
    """A round's pairs with learners and mentors as positions 0..n-1."""

    learner: IntArray  # (n,) position in candidates.learners
    mentor: IntArray  # (n,) position in candidates.mentors
    capacity: IntArray  # (n_mentors,)
    n_learners: int
    n_skills: int


def _index(candidates: Candidates) -> _Indexed:
    return _Indexed(
        learner=np.searchsorted(candidates.learners, candidates.learner_ids).astype(np.int64),
        mentor=np.searchsorted(candidates.mentors, candidates.mentor_ids).astype(np.int64),
        capacity=candidates.open_slots.astype(np.int64),
        n_learners=int(candidates.learners.size),
        n_skills=max(len(candidates.skill_ids), 1),
    )


def _check_max_per_learner(max_per_learner: int) -> None:
    if (
        not isinstance(max_per_learner, int)
        or isinstance(max_per_learner, bool)
        or max_per_learner < 1
    ):
        raise ValueError(f"max_per_learner must be an integer >= 1, got {max_per_learner!r}")


def _assignment(mode: Mode, candidates: Candidates, rows: npt.ArrayLike) -> Assignment:
    chosen = np.sort(np.asarray(rows, dtype=np.int64))
    return Assignment(mode, chosen, float(candidates.scores[chosen].sum()))


def _has_duplicate_pairs(pairs: _Indexed) -> bool:
    keys = np.sort(pairs.learner * max(int(pairs.capacity.size), 1) + pairs.mentor)
    return bool(keys.size > 1 and (keys[1:] == keys[:-1]).any())


# -- optimal ---------------------------------------------------------------------------------


def optimal(
    candidates: Candidates,
    *,
    max_per_learner: int = 1,
    solver: Solver = "ortools",
    score_scale: int = SCORE_SCALE,
) -> Assignment:
    """The round with the greatest total score (exact for scores scaled to integers).

    Parameters
    ----------
    candidates : Candidates
        The pairs that may be chosen.
    max_per_learner : int, default 1
        At most this many pairs per learner (and one per wanted skill, one per mentor).
    solver : {"ortools", "scipy"}, default "ortools"
        ``ortools``: OR-Tools' ``SimpleMinCostFlow``; ``scipy``:
        ``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` on slot-expanded
        columns (only ``max_per_learner=1``; slower, kept to measure against).
    score_scale : int, default 10**9
        Scores are rounded to multiples of ``1 / score_scale`` for the integer solver.

    Returns
    -------
    Assignment
    """
    _check_max_per_learner(max_per_learner)
    if not isinstance(score_scale, int) or not 1 <= score_scale <= 10**12:
        raise ValueError(f"score_scale must be an integer in 1..1e12, got {score_scale!r}")
    pairs = _index(candidates)
    if len(candidates) == 0:
        return _assignment("optimal", candidates, [])
    scaled = np.rint(candidates.scores * score_scale).astype(np.int64)
    if solver == "ortools":
        rows = _optimal_min_cost_flow(pairs, candidates, scaled, max_per_learner)
    elif solver == "scipy":
        if max_per_learner != 1:
            raise ValueError("the scipy solver handles max_per_learner=1 only")
        rows = _optimal_bipartite_matching(pairs, scaled)
    else:
        raise ValueError(f"solver must be 'ortools' or 'scipy', got {solver!r}")
    return _assignment("optimal", candidates, rows)


def _optimal_min_cost_flow(
    pairs: _Indexed, candidates: Candidates, scaled: IntArray, max_per_learner: int
) -> IntArray:
    from ortools.graph.python import min_cost_flow

    n = scaled.size
    # Costs stay >= 0: every unit of a learner's supply leaves by one pair arc (cost
    # top - score) or by the bypass (cost top), so minimising cost maximises the total score.
    top = int(scaled.max()) + 1
    learners, learner_node = np.unique(pairs.learner, return_inverse=True)
    mentors, mentor_node = np.unique(pairs.mentor, return_inverse=True)
    n_l, n_m = learners.size, mentors.size
    sink = n_l + n_m
    next_node = sink + 1
    tails: list[IntArray] = []
    heads: list[IntArray] = []
    capacities: list[IntArray] = []
    costs: list[IntArray] = []

    def arcs(
        tail: IntArray, head: IntArray, capacity: IntArray | int, cost: IntArray | int
    ) -> None:
        tails.append(tail)
        heads.append(head)
        capacities.append(np.broadcast_to(np.asarray(capacity, dtype=np.int64), tail.shape))
        costs.append(np.broadcast_to(np.asarray(cost, dtype=np.int64), tail.shape))

    learner_nodes = np.arange(n_l, dtype=np.int64)
    mentor_nodes = n_l + mentor_node
    arcs(learner_nodes, np.full(n_l, sink, dtype=np.int64), max_per_learner, top)
    arcs(n_l + np.arange(n_m, dtype=np.int64), np.full(n_m, sink), pairs.capacity[mentors], 0)
    if max_per_learner == 1:
        pair_tail = learner_node
        pair_head = mentor_nodes
    else:
        # (learner, wanted skill) nodes hold one pair per wanted skill.
        wanted_key = learner_node * pairs.n_skills + candidates.wanted_skills
        wanted_keys, wanted_of_row = np.unique(wanted_key, return_inverse=True)
        wanted_nodes = next_node + np.arange(wanted_keys.size, dtype=np.int64)
        next_node += wanted_keys.size
        arcs(wanted_keys // pairs.n_skills, wanted_nodes, 1, 0)
        pair_tail = wanted_nodes[wanted_of_row]
        pair_head = mentor_nodes
        if _has_duplicate_pairs(pairs):
            # (learner, mentor) nodes hold one pair per mentor when a mentor serves two wants.
            mentor_key = learner_node * n_m + mentor_node
            mentor_keys, mentor_of_row = np.unique(mentor_key, return_inverse=True)
            pair_nodes = next_node + np.arange(mentor_keys.size, dtype=np.int64)
            next_node += mentor_keys.size
            arcs(pair_nodes, n_l + mentor_keys % n_m, 1, 0)
            pair_head = pair_nodes[mentor_of_row]
    first_pair_arc = sum(t.size for t in tails)
    arcs(pair_tail, pair_head, 1, top - scaled)

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails),
        np.concatenate(heads),
        np.concatenate(capacities),
        np.concatenate(costs),
    )
    supplies = np.zeros(next_node, dtype=np.int64)
    supplies[:n_l] = max_per_learner
    supplies[sink] = -max_per_learner * n_l
    flow.set_nodes_supplies(np.arange(next_node, dtype=np.int64), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the min-cost flow solver failed with status {status}")
    used = flow.flows(np.arange(first_pair_arc, first_pair_arc + n, dtype=np.int64))
    chosen: IntArray = np.flatnonzero(np.asarray(used) > 0)
    return chosen


def _optimal_bipartite_matching(pairs: _Indexed, scaled: IntArray) -> IntArray:
    import scipy.sparse as sp
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    # The best row of each (learner, mentor): with one pair per learner, only it can count.
    n_m = max(int(pairs.capacity.size), 1)
    order = np.lexsort((-scaled, pairs.learner * n_m + pairs.mentor))
    keys = (pairs.learner * n_m + pairs.mentor)[order]
    best = order[np.r_[True, keys[1:] != keys[:-1]]]
    learners, row_of = np.unique(pairs.learner[best], return_inverse=True)
    mentor = pairs.mentor[best]
    # A mentor needs no more slot columns than learners who could take them.
    demand = np.bincount(mentor, minlength=pairs.capacity.size)
    slots = np.minimum(pairs.capacity, demand)
    slot_start = np.cumsum(slots) - slots
    copies = slots[mentor]
    edge = np.repeat(np.arange(best.size, dtype=np.int64), copies)
    copy = rank_in_groups(edge)
    n_slots = int(slots.sum())
    top = int(scaled.max()) + 1
    # Costs >= 1 (explicit zeros would vanish from the sparse matrix); a learner's own dummy
    # column means "unmatched".
    rows = np.r_[row_of[edge], np.arange(learners.size)]
    columns = np.r_[slot_start[mentor[edge]] + copy, n_slots + np.arange(learners.size)]
    weights = np.r_[top + 1 - scaled[best[edge]], np.full(learners.size, top + 1)]
    graph = sp.csr_array(
        (weights.astype(np.float64), (rows, columns)),
        shape=(learners.size, n_slots + learners.size),
    )
    matched_rows, matched_columns = min_weight_full_bipartite_matching(graph)
    real = matched_columns < n_slots
    slot_mentor = np.repeat(np.arange(slots.size, dtype=np.int64), slots)
    chosen_keys = learners[matched_rows[real]] * n_m + slot_mentor[matched_columns[real]]
    best_keys = pairs.learner[best] * n_m + pairs.mentor[best]
    by_key = np.argsort(best_keys)
    chosen: IntArray = best[by_key[np.searchsorted(best_keys[by_key], chosen_keys)]]
    return chosen


# -- greedy and stable -------------------------------------------------------------------------


def greedy(candidates: Candidates, *, max_per_learner: int = 1) -> Assignment:
    """Pairs best-first (score descending, then learner id, mentor id), each if it still fits.

    The baseline an optimal round is measured against; see the module docstring.
    """
    _check_max_per_learner(max_per_learner)
    pairs = _index(candidates)
    order = candidates.score_order()
    remaining = pairs.capacity.tolist()
    taken = [0] * pairs.n_learners
    learner, mentor = pairs.learner.tolist(), pairs.mentor.tolist()
    wanted = candidates.wanted_skills.tolist()
    chosen: list[int] = []
    if max_per_learner == 1:
        for row in order.tolist():
            l_, m = learner[row], mentor[row]
            if taken[l_] == 0 and remaining[m] > 0:
                taken[l_] = 1
                remaining[m] -= 1
                chosen.append(row)
    else:
        held: set[tuple[int, int]] = set()  # (learner, wanted skill) and (learner, -1 - mentor)
        for row in order.tolist():
            l_, m, w = learner[row], mentor[row], wanted[row]
            if (
                taken[l_] < max_per_learner
                and remaining[m] > 0
                and (l_, w) not in held
                and (l_, -1 - m) not in held
            ):
                taken[l_] += 1
                remaining[m] -= 1
                held.add((l_, w))
                held.add((l_, -1 - m))
                chosen.append(row)
    return _assignment("greedy", candidates, chosen)


def stable(candidates: Candidates, *, max_per_learner: int = 1) -> Assignment:
    """Learner-proposing deferred acceptance with mentor capacities.

    Learners rank their pairs by score descending, then mentor id; mentors rank theirs by
    score descending, then learner id. Each free learner proposes her best pair not yet
    rejected that fits with the pairs she holds; a mentor holds its best ``open_slots``
    proposals in a min-heap and rejects the worst. No recursion: a stack of free learners.
    Stable (no blocking pair) whenever each (learner, mentor) has one row, as ``candidates``
    gives by default; with ``max_per_learner > 1`` a learner scans her list for each proposal.

    Returns
    -------
    Assignment
    """
    _check_max_per_learner(max_per_learner)
    pairs = _index(candidates)
    n = len(candidates)
    preference = candidates.learner_order()
    starts: list[int] = np.searchsorted(
        pairs.learner[preference], np.arange(pairs.n_learners + 1)
    ).tolist()
    preference_list: list[int] = preference.tolist()
    scores: list[float] = candidates.scores.tolist()
    learner_ids: list[int] = candidates.learner_ids.tolist()
    learner: list[int] = pairs.learner.tolist()
    mentor: list[int] = pairs.mentor.tolist()
    wanted: list[int] = candidates.wanted_skills.tolist()
    capacity: list[int] = pairs.capacity.tolist()
    # Per mentor, a min-heap of held proposals keyed (score, -learner id, -row): the worst on
    # top (the row only orders two rows of one learner, which a valid round never holds).
    held_by_mentor: list[list[tuple[float, int, int]]] = [[] for _ in capacity]
    cursor = starts[:-1]  # next pair to propose, per learner (max_per_learner == 1)
    holding = [0] * pairs.n_learners
    rejected = [False] * n
    held_rows = [False] * n
    free = [l_ for l_ in range(pairs.n_learners) if starts[l_] < starts[l_ + 1]]
    free.reverse()

    def next_proposal(l_: int) -> int:
        if max_per_learner == 1:
            position = cursor[l_]
            if position == starts[l_ + 1]:
                return -1
            cursor[l_] = position + 1
            return preference_list[position]
        skills_held: set[int] = set()
        mentors_held: set[int] = set()
        for position in range(starts[l_], starts[l_ + 1]):
            row = preference_list[position]
            if held_rows[row]:
                skills_held.add(wanted[row])
                mentors_held.add(mentor[row])
        for position in range(starts[l_], starts[l_ + 1]):
            row = preference_list[position]
            if not (
                rejected[row]
                or held_rows[row]
                or wanted[row] in skills_held
                or mentor[row] in mentors_held
            ):
                return row
        return -1

    while free:
        l_ = free.pop()
        if holding[l_] >= max_per_learner:
            continue  # pushed twice (accepted, then freed by another rejection)
        row = next_proposal(l_)
        if row < 0:
            continue
        m = mentor[row]
        heap = held_by_mentor[m]
        key = (scores[row], -learner_ids[row], -row)
        loser = row
        if capacity[m] == 0:
            pass
        elif len(heap) < capacity[m]:
            heapq.heappush(heap, key)
            loser = -1
        elif key > heap[0]:
            loser = -heapq.heapreplace(heap, key)[2]
        if loser != row:
            held_rows[row] = True
            holding[l_] += 1
            if holding[l_] < max_per_learner:
                free.append(l_)
        if loser >= 0:
            rejected[loser] = True
            if loser != row:
                held_rows[loser] = False
                holding[learner[loser]] -= 1
            free.append(learner[loser])
    chosen = [-row for heap in held_by_mentor for _, _, row in heap]
    return _assignment("stable", candidates, chosen)


# -- metrics ---------------------------------------------------------------------------------


def blocking_pairs(candidates: Candidates, rows: npt.ArrayLike, *, max_per_learner: int = 1) -> int:
    """Candidate pairs not in ``rows`` that their learner and their mentor would both take.

    Both sides rank as in :func:`stable`. The learner would take pair ``r`` (mentor ``m``,
    wanted skill ``w``) if, choosing best-first among her pairs and ``r``, she keeps ``r``:
    her pairs that clash with it (same wanted skill or same mentor) all rank below it, and
    if none clash she holds fewer than ``max_per_learner`` or her worst ranks below it. The
    mentor would take it if it has a free slot or its worst pair ranks below it (compared
    with the learner's own pair there, when it holds one of hers). Vectorised: O(n log n).
    """
    _check_max_per_learner(max_per_learner)
    pairs = _index(candidates)
    n = len(candidates)
    if n == 0:
        return 0
    chosen = np.zeros(n, dtype=np.bool_)
    chosen[np.asarray(rows, dtype=np.int64)] = True
    # Rank of each pair in its learner's and its mentor's order (0 = best).
    by_learner = candidates.learner_order()
    learner_rank = np.empty(n, dtype=np.int64)
    learner_rank[by_learner] = rank_in_groups(pairs.learner[by_learner])
    by_mentor = candidates.mentor_order()
    mentor_rank = np.empty(n, dtype=np.int64)
    mentor_rank[by_mentor] = rank_in_groups(pairs.mentor[by_mentor])

    held = np.flatnonzero(chosen)
    learner_count = np.bincount(pairs.learner[held], minlength=pairs.n_learners)
    learner_worst = np.full(pairs.n_learners, -1, dtype=np.int64)
    np.maximum.at(learner_worst, pairs.learner[held], learner_rank[held])
    n_mentors = pairs.capacity.size
    mentor_count = np.bincount(pairs.mentor[held], minlength=n_mentors)
    mentor_worst = np.full(n_mentors, -1, dtype=np.int64)
    np.maximum.at(mentor_worst, pairs.mentor[held], mentor_rank[held])

    def held_row_at(keys_held: IntArray, keys: IntArray) -> IntArray:
        """The held row with each key (-1 if none); held keys are unique in a valid round."""
        order = np.argsort(keys_held, kind="stable")
        sorted_keys = keys_held[order]
        found = np.minimum(np.searchsorted(sorted_keys, keys), max(sorted_keys.size - 1, 0))
        if sorted_keys.size == 0:
            return np.full(keys.size, -1, dtype=np.int64)
        hit = sorted_keys[found] == keys
        return np.where(hit, held[order[found]], -1)

    skill_key = pairs.learner * pairs.n_skills + candidates.wanted_skills
    mentor_key = pairs.learner * n_mentors + pairs.mentor
    same_skill = held_row_at(skill_key[held], skill_key)
    same_mentor = held_row_at(mentor_key[held], mentor_key)
    safe_skill, safe_mentor = np.maximum(same_skill, 0), np.maximum(same_mentor, 0)
    beats_skill = (same_skill < 0) | (learner_rank < learner_rank[safe_skill])
    beats_mentor = (same_mentor < 0) | (learner_rank < learner_rank[safe_mentor])
    clashes = (same_skill >= 0) | (same_mentor >= 0)
    learner_takes = np.where(
        clashes,
        beats_skill & beats_mentor,
        (learner_count[pairs.learner] < max_per_learner)
        | (learner_rank < learner_worst[pairs.learner]),
    )
    mentor_takes = np.where(
        same_mentor >= 0,
        mentor_rank < mentor_rank[safe_mentor],
        (mentor_count[pairs.mentor] < pairs.capacity[pairs.mentor])
        | (mentor_rank < mentor_worst[pairs.mentor]),
    )
    return int((~chosen & learner_takes & mentor_takes).sum())


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of non-negative ``values`` (0 for none or all zero)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    i = np.arange(1, x.size + 1)
    return float(2.0 * (i * x).sum() / (x.size * total) - (x.size + 1) / x.size)


def metrics(
    candidates: Candidates, assignment: Assignment, *, max_per_learner: int = 1
) -> RoundMetrics:
    """The figures of ``assignment`` over ``candidates`` (see :class:`RoundMetrics`)."""
    rows = assignment.rows
    pairs = _index(candidates)
    total = float(candidates.scores[rows].sum())
    load = np.bincount(pairs.mentor[rows], minlength=candidates.mentors.size)
    return RoundMetrics(
        learners=int(candidates.learners.size),
        matched=int(np.unique(candidates.learner_ids[rows]).size),
        pairs=int(rows.size),
        total_score=total,
        mean_score=total / rows.size if rows.size else 0.0,
        mentor_load_gini=gini(load),
        blocking_pairs=blocking_pairs(candidates, rows, max_per_learner=max_per_learner),
    )


def unmatched_learners(candidates: Candidates, assignment: Assignment) -> IntArray:
    """The round's learners without a pair, ascending, shape (u,)."""
    matched = candidates.learner_ids[assignment.rows]
    unmatched: IntArray = candidates.learners[~np.isin(candidates.learners, matched)]
    return unmatched


def check_round(candidates: Candidates, rows: npt.ArrayLike, *, max_per_learner: int = 1) -> None:
    """Raise ValueError unless ``rows`` keep every capacity and per-learner limit."""
    pairs = _index(candidates)
    chosen = np.asarray(rows, dtype=np.int64)
    if np.unique(chosen).size != chosen.size:
        raise ValueError("a pair is chosen twice")
    load = np.bincount(pairs.mentor[chosen], minlength=pairs.capacity.size)
    if (load > pairs.capacity).any():
        raise ValueError("a mentor has more pairs than open slots")
    if np.bincount(pairs.learner[chosen], minlength=1).max(initial=0) > max_per_learner:
        raise ValueError("a learner has more than max_per_learner pairs")
    for key in (
        pairs.learner[chosen] * pairs.n_skills + candidates.wanted_skills[chosen],
        pairs.learner[chosen] * max(int(pairs.capacity.size), 1) + pairs.mentor[chosen],
    ):
        if np.unique(key).size != key.size:
            raise ValueError("a learner has two pairs for one wanted skill or one mentor")
