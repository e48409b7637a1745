"""Skill-swap rings: two or three volunteers who each teach the next what that one wants.

A ring of two is A teaches B while B teaches A; a ring of three is A teaches B, B teaches C,
C teaches A. Rings are cycles in a directed graph of **teaching edges** (teacher -> learner,
the teacher's offered skill, the learner's wanted skill it serves, the pair's score in
(0, 1]), at most one edge per ordered pair: the best. Whatever makes a pair listable by
matching (a shared language, overlapping time where both gave availability, an open slot of
the teacher, never oneself) is decided when the edges are made, so a ring is only ever made
of pairs that ``MatchIndex.query`` would list; :func:`teaching_edges` makes them from an
index.

**Ring score: the sum of its edges' scores.** A ring of ``n`` volunteers is ``n``
exchanges, each as good as its pair's score, so the sum is the total score of the exchanges
the ring starts, in ``(0, n]``. This makes :func:`best_disjoint_rings` maximise the total
score of all the exchanges it starts, the same quantity an optimal matching round maximises.
With the mean, a ring of three would count no more than a ring of two of the same quality,
so a packing could drop a ring that serves three learners for one that serves two. The same
score orders the rings of one volunteer (:func:`rings_of`), so a volunteer sees their rings
in the order a coordinator's packing values them; the mean is ``score / len(ring)``.

**Enumeration.** The edges are sorted by (teacher, learner) once (:class:`TeachingEdges`), so
an edge is found by binary search on ``teacher * n + learner``. A ring is listed once,
starting at its smallest volunteer id ``u``: rings of two are the edges ``u -> v`` with
``u < v`` whose reverse exists; rings of three expand each such edge by every out-edge
``v -> w`` with ``w > u`` (vectorised, in chunks of a few million paths) and keep the paths
closed by an edge ``w -> u``. Work is proportional to the two-edge paths, about the number of
edges times the mean out-degree.

**Packing.** A set of vertex-disjoint rings with the greatest total score is the cycle
formulation of the kidney-exchange problem: one binary per ring, one ``<= 1`` constraint per
volunteer, maximise the sum of chosen ring scores, solved by ``scipy.optimize.milp``
(HiGHS). Disjoint means each volunteer teaches at most one learner and learns from at most
one teacher in the chosen set, so a teacher uses exactly one open slot. The rings are first
split into the connected components of the ring-overlap graph (two rings touch when they
share a volunteer): a ring alone in its component is in every optimum (scores are positive);
the other components are solved in batches of whole components: the LP relaxation first
(when its optimum is integral, that proves it), then the integer programme, each solve
with ``time_limit``. A batch that runs out of time keeps the best of HiGHS's incumbent, a
greedy packing and a greedy packing led by the LP values, and the result says so
(``optimal=False``; ``upper_bound`` is the smaller of the LP bound and the solver's dual
bound); it is never reported as optimal.

**Limits.** Packing sets of three is NP-hard and its LP relaxation is not always integral.
On the demo population of 100,000 (20,701 who can swap; ``bench/swaps.py``), with each
teacher's best 10 learners as edges the optimum is proven in 0.3 s; with 20, one component
holds 25,227 rings and HiGHS does not close the last 2.5e-4 of the gap in 15 s (nor in 60);
with 40, 105,915 rings, the gap left after 15 s is 3 %. Rings are exact only over the edges
given: fewer learners per teacher means fewer rings, and a smaller optimum.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from capex.matching.index import MatchIndex
from capex.matching.types import VolunteerRecord

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

RING_LENGTHS = (2, 3)
_NO_EDGE = -1
_PATHS_PER_CHUNK = 4_000_000  # two-edge paths expanded at once: ~200 MB of temporaries


@dataclass(frozen=True, slots=True)
class RingMember:
    """One edge of a ring: ``volunteer`` teaches ``learner`` the skill ``teaches``.

    Attributes
    ----------
    volunteer : int
        The teacher.
    teaches : str
        The teacher's offered skill the exchange is about.
    learner : int
        The next volunteer in the ring.
    wanted_skill : str
        The learner's wanted skill it serves (``teaches`` or a related skill).
    score : float
        The pair's matching score, in (0, 1].
    """

    volunteer: int
    teaches: str
    learner: int
    wanted_skill: str
    score: float


@dataclass(frozen=True, slots=True)
class Ring:
    """A skill-swap ring: each member teaches the next, the last teaches the first.

    Attributes
    ----------
    members : tuple of RingMember
        Two or three edges in ring order: ``members[i].learner == members[i + 1].volunteer``
        and the last member's learner is the first member's volunteer.
    score : float
        The sum of the members' scores, in (0, len(members)].
    """

    members: tuple[RingMember, ...]
    score: float

    @property
    def volunteers(self) -> tuple[int, ...]:
        """The volunteers in ring order, each once."""
        return tuple(member.volunteer for member in self.members)

    def __len__(self) -> int:
        return len(self.members)


@dataclass(frozen=True, slots=True)
class RingPacking:
    """Vertex-disjoint rings chosen for the greatest total score.

    Attributes
    ----------
    rings : tuple of Ring
        The chosen rings, best first; no volunteer is in two of them.
    total_score : float
        The sum of the chosen rings' scores.
    optimal : bool
        True when every solve proved its optimum (to HiGHS's absolute gap of 1e-6). False
        when a solve hit ``time_limit`` or failed: ``rings`` is then the best packing found,
        not necessarily the best there is.
    upper_bound : float
        No disjoint set of these rings scores more than this; ``total_score`` (up to the
        solver's tolerance) when ``optimal``.
    rings_found : int
        Rings enumerated (the integer programme's variables).
    components : int
        Connected components of the ring-overlap graph.
    largest_component : int
        Rings in the largest component.
    unproven_rings : int
        Rings in batches whose solve did not prove its optimum; 0 when ``optimal``.
    """

    rings: tuple[Ring, ...]
    total_score: float
    optimal: bool
    upper_bound: float
    rings_found: int
    components: int
    largest_component: int
    unproven_rings: int

    @property
    def gap(self) -> float:
        """How far ``total_score`` may be below the optimum, relative to ``upper_bound``."""
        if self.upper_bound <= 0.0:
            return 0.0
        return max(0.0, (self.upper_bound - self.total_score) / self.upper_bound)


class TeachingEdges:
    """Directed teaching edges (teacher -> learner), validated and sorted by (teacher, learner).

    Parameters
    ----------
    teacher : array_like of int, shape (m,)
        Volunteer ids of the teachers.
    learner : array_like of int, shape (m,)
        Volunteer ids of the learners; never the teacher of the same edge.
    teaches : array_like of str, shape (m,)
        The teacher's offered skill of each edge.
    wanted : array_like of str, shape (m,)
        The learner's wanted skill each edge serves.
    score : array_like of float, shape (m,)
        The pair's score, in (0, 1].

    At most one edge per ordered (teacher, learner) pair; :meth:`best_per_pair` keeps the best
    of several.

    Attributes
    ----------
    teacher, learner, teaches, wanted, score : ndarray, shape (m,)
        The edges, sorted by (teacher, learner).
    volunteer_ids_ : ndarray of int64, shape (n,)
        Every volunteer on an edge, ascending.
    """

    def __init__(
        self,
        teacher: npt.ArrayLike,
        learner: npt.ArrayLike,
        teaches: npt.ArrayLike,
        wanted: npt.ArrayLike,
        score: npt.ArrayLike,
    ) -> None:
        teacher_ids = _ids_array(teacher, "teacher")
        learner_ids = _ids_array(learner, "learner")
        teaches_skills = np.asarray(teaches, dtype=np.str_)
        wanted_skills = np.asarray(wanted, dtype=np.str_)
        scores = np.asarray(score, dtype=np.float64)
        m = teacher_ids.size
        for name, column in (
            ("learner", learner_ids),
            ("teaches", teaches_skills),
            ("wanted", wanted_skills),
            ("score", scores),
        ):
            if column.ndim != 1 or column.size != m:
                raise ValueError(f"{name} must be 1-D with as many items as teacher ({m})")
        if not np.all((scores > 0.0) & (scores <= 1.0)):  # also rejects NaN
            bad = int(np.flatnonzero(~((scores > 0.0) & (scores <= 1.0)))[0])
            raise ValueError(f"scores must be in (0, 1], got {scores[bad]!r} at edge {bad}")
        if np.any(teacher_ids == learner_ids):
            bad = int(np.flatnonzero(teacher_ids == learner_ids)[0])
            raise ValueError(f"volunteer {teacher_ids[bad]} teaches themself at edge {bad}")

        order = np.lexsort((learner_ids, teacher_ids))
        self.teacher: IntArray = teacher_ids[order]
        self.learner: IntArray = learner_ids[order]
        self.teaches: StrArray = teaches_skills[order]
        self.wanted: StrArray = wanted_skills[order]
        self.score: FloatArray = scores[order]
        repeated = (self.teacher[1:] == self.teacher[:-1]) & (self.learner[1:] == self.learner[:-1])
        if repeated.any():
            bad = int(np.flatnonzero(repeated)[0])
            raise ValueError(
                f"two edges from {self.teacher[bad]} to {self.learner[bad]}: keep the best "
                "(TeachingEdges.best_per_pair)"
            )

        # Compact vertices 0..n-1 in id order, so that "smallest vertex" is "smallest id".
        self.volunteer_ids_: IntArray = np.unique(np.concatenate([self.teacher, self.learner]))
        n = self.volunteer_ids_.size
        self._tail: IntArray = np.searchsorted(self.volunteer_ids_, self.teacher)
        self._head: IntArray = np.searchsorted(self.volunteer_ids_, self.learner)
        self._keys: IntArray = self._tail * n + self._head  # ascending, as the edges are sorted
        self._offsets: IntArray = np.concatenate(
            ([0], np.cumsum(np.bincount(self._tail, minlength=n)))
        ).astype(np.int64)

    @classmethod
    def best_per_pair(
        cls,
        teacher: npt.ArrayLike,
        learner: npt.ArrayLike,
        teaches: npt.ArrayLike,
        wanted: npt.ArrayLike,
        score: npt.ArrayLike,
    ) -> TeachingEdges:
        """Edges from candidates that may repeat an ordered pair: the best score of each pair.

        Ties keep the first candidate given. Shapes as in the constructor.
        """
        teacher_ids = _ids_array(teacher, "teacher")
        learner_ids = _ids_array(learner, "learner")
        scores = np.asarray(score, dtype=np.float64)
        teaches_skills = np.asarray(teaches, dtype=np.str_)
        wanted_skills = np.asarray(wanted, dtype=np.str_)
        if not (
            teacher_ids.size
            == learner_ids.size
            == teaches_skills.size
            == wanted_skills.size
            == scores.size
        ):
            raise ValueError("teacher, learner, teaches, wanted and score must have one length")
        # Stable sort by pair, best score first within a pair (the first given among equals).
        order = np.lexsort((np.arange(scores.size), -scores, learner_ids, teacher_ids))
        t, lrn = teacher_ids[order], learner_ids[order]
        first = np.ones(order.size, dtype=np.bool_)
        first[1:] = (t[1:] != t[:-1]) | (lrn[1:] != lrn[:-1])
        keep = order[first]
        return cls(
            teacher_ids[keep],
            learner_ids[keep],
            teaches_skills[keep],
            wanted_skills[keep],
            scores[keep],
        )

    def __len__(self) -> int:
        return int(self.teacher.size)

    @property
    def n_volunteers_(self) -> int:
        return int(self.volunteer_ids_.size)

    def _vertex(self, volunteer_id: int) -> int | None:
        """The compact vertex of ``volunteer_id``, None if it is on no edge."""
        position = int(np.searchsorted(self.volunteer_ids_, volunteer_id))
        if position < self.volunteer_ids_.size and self.volunteer_ids_[position] == volunteer_id:
            return position
        return None

    def _out_edges(self, vertex: int) -> IntArray:
        return np.arange(self._offsets[vertex], self._offsets[vertex + 1], dtype=np.int64)

    def _edge_index(self, tails: IntArray, heads: IntArray) -> IntArray:
        """The edge ``tails[i] -> heads[i]`` for each i, or -1 where there is none; shape (k,)."""
        if self._keys.size == 0:
            return np.full(tails.size, _NO_EDGE, dtype=np.int64)
        keys = tails * self.volunteer_ids_.size + heads
        positions = np.searchsorted(self._keys, keys)
        clipped = np.minimum(positions, self._keys.size - 1)
        found = self._keys[clipped] == keys
        return np.where(found, clipped, _NO_EDGE)

    def _expand(self, first: IntArray) -> tuple[IntArray, IntArray]:
        """Every two-edge path ``first[i]`` then an out-edge of its head; shapes (p,), (p,)."""
        starts = self._offsets[self._head[first]]
        counts = self._offsets[self._head[first] + 1] - starts
        total = int(counts.sum())
        path_first = np.repeat(first, counts)
        begins = np.cumsum(counts) - counts
        second = np.arange(total, dtype=np.int64) + np.repeat(starts - begins, counts)
        return path_first, second

    def _chunks(self, first: IntArray) -> Iterator[IntArray]:
        """``first`` cut into pieces of at most about ``_PATHS_PER_CHUNK`` two-edge paths."""
        if first.size == 0:
            return
        counts = self._offsets[self._head[first] + 1] - self._offsets[self._head[first]]
        cumulative = np.cumsum(counts)
        cuts = np.searchsorted(
            cumulative, np.arange(_PATHS_PER_CHUNK, int(cumulative[-1]), _PATHS_PER_CHUNK)
        )
        yield from np.split(first, np.unique(cuts))


def _ids_array(values: npt.ArrayLike, name: str) -> IntArray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer volunteer ids, got dtype {array.dtype}")
    return array.astype(np.int64)


def _check_max_length(max_length: int) -> None:
    if max_length not in RING_LENGTHS or isinstance(max_length, bool):
        raise ValueError(f"max_length must be 2 or 3, got {max_length!r}")


# -- enumeration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rings:
    """Rings as arrays, each starting at its smallest vertex.

    ``edges`` has shape (r, 3): edge indices in ring order, -1 after the end of a ring of
    two; ``score`` has shape (r,).
    """

    edges: IntArray
    score: FloatArray

    def __len__(self) -> int:
        return int(self.score.size)


def _ring_scores(edges: TeachingEdges, ring_edges: IntArray) -> FloatArray:
    padded = np.append(edges.score, 0.0)  # index -1 is the padding's 0
    scores: FloatArray = padded[ring_edges].sum(axis=1)
    return scores


def _enumerate_rings(edges: TeachingEdges, max_length: int) -> _Rings:
    """Every ring of 2..max_length volunteers, once each, best first."""
    tail, head = edges._tail, edges._head
    first = np.flatnonzero(tail < head)  # the ring's smallest vertex teaches first
    reverse = edges._edge_index(head[first], tail[first])
    twos = reverse != _NO_EDGE
    pieces = [
        np.column_stack(
            [first[twos], reverse[twos], np.full(int(twos.sum()), _NO_EDGE, dtype=np.int64)]
        )
    ]
    if max_length >= 3:
        for chunk in edges._chunks(first):
            path_first, second = edges._expand(chunk)
            smallest = tail[path_first]
            closing_tail = head[second]
            later = closing_tail > smallest  # u stays the smallest; also excludes w == u
            path_first, second = path_first[later], second[later]
            smallest, closing_tail = smallest[later], closing_tail[later]
            third = edges._edge_index(closing_tail, smallest)
            closed = third != _NO_EDGE
            pieces.append(np.column_stack([path_first[closed], second[closed], third[closed]]))
    ring_edges = np.concatenate(pieces).astype(np.int64)
    return _sorted_rings(edges, ring_edges)


def _sorted_rings(edges: TeachingEdges, ring_edges: IntArray) -> _Rings:
    """Rings ordered by score descending, then by their volunteers in ring order."""
    scores = _ring_scores(edges, ring_edges)
    tails = np.where(ring_edges >= 0, edges._tail[ring_edges], -1)
    order = np.lexsort((tails[:, 2], tails[:, 1], tails[:, 0], -scores))
    return _Rings(ring_edges[order], scores[order])


def _ring(edges: TeachingEdges, ring_edges: Iterable[int], score: float) -> Ring:
    members = tuple(
        RingMember(
            volunteer=int(edges.teacher[e]),
            teaches=str(edges.teaches[e]),
            learner=int(edges.learner[e]),
            wanted_skill=str(edges.wanted[e]),
            score=float(edges.score[e]),
        )
        for e in ring_edges
        if e != _NO_EDGE
    )
    return Ring(members, float(score))


def _rings_out(edges: TeachingEdges, rings: _Rings, which: IntArray | None = None) -> list[Ring]:
    chosen = np.arange(len(rings)) if which is None else which
    return [_ring(edges, rings.edges[i].tolist(), float(rings.score[i])) for i in chosen.tolist()]


def all_rings(edges: TeachingEdges, max_length: int = 3) -> list[Ring]:
    """Every ring of 2..``max_length`` volunteers in ``edges``, once each, best first.

    Each ring starts at its smallest volunteer id; ties in score are ordered by the
    volunteers' ids in ring order.
    """
    _check_max_length(max_length)
    return _rings_out(edges, _enumerate_rings(edges, max_length))


def rings_of(edges: TeachingEdges, volunteer_id: int, max_length: int = 3) -> list[Ring]:
    """The rings ``volunteer_id`` is in, best first, each starting with what they teach.

    Only the volunteer's own out-edges and their neighbours' are read (about the out-degree
    squared), so this answers one volunteer without enumerating every ring. A volunteer on
    no edge is in no ring. Ties in score are ordered by the volunteers' ids in ring order.
    """
    _check_max_length(max_length)
    vertex = edges._vertex(volunteer_id)
    if vertex is None:
        return []
    tail, head = edges._tail, edges._head
    first = edges._out_edges(vertex)
    reverse = edges._edge_index(head[first], tail[first])
    twos = reverse != _NO_EDGE
    pieces = [
        np.column_stack(
            [first[twos], reverse[twos], np.full(int(twos.sum()), _NO_EDGE, dtype=np.int64)]
        )
    ]
    if max_length >= 3 and first.size:
        path_first, second = edges._expand(first)
        back = head[second] != vertex
        path_first, second = path_first[back], second[back]
        third = edges._edge_index(head[second], np.full(second.size, vertex, dtype=np.int64))
        closed = third != _NO_EDGE
        pieces.append(np.column_stack([path_first[closed], second[closed], third[closed]]))
    ring_edges = np.concatenate(pieces).astype(np.int64)
    return _rings_out(edges, _sorted_rings(edges, ring_edges))


# -- packing -----------------------------------------------------------------------------------


def _ring_components(edges: TeachingEdges, rings: _Rings) -> IntArray:
    """The connected component of the ring-overlap graph each ring is in, shape (r,)."""
    members = np.where(rings.edges >= 0, edges._tail[rings.edges], -1)
    n = edges.n_volunteers_
    # Join each ring's members to its first: rings that share a volunteer end up together.
    rows = np.concatenate([members[:, 0], members[:, 0]])
    cols = np.concatenate([members[:, 1], members[:, 2]])
    real = cols >= 0
    graph = sp.coo_array(
        (np.ones(int(real.sum()), dtype=np.int32), (rows[real], cols[real])), shape=(n, n)
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    components: IntArray = labels[members[:, 0]].astype(np.int64)
    return components


def _greedy(members: IntArray, scores: FloatArray) -> BoolArray:
    """Best-first greedy packing: take each ring, in score order, whose members are all free.

    ``members`` has shape (r, 3) (compact vertices, -1 padding) and is ordered best first.
    """
    taken = np.zeros(int(members.max(initial=-1)) + 2, dtype=np.bool_)  # last cell: padding
    chosen = np.zeros(scores.size, dtype=np.bool_)
    for i, (a, b, c) in enumerate(members.tolist()):
        if not (taken[a] or taken[b] or taken[c]):
            chosen[i] = True
            taken[a] = taken[b] = True
            if c >= 0:
                taken[c] = True
    return chosen


@dataclass(frozen=True)
class _Solve:
    chosen: BoolArray
    optimal: bool
    upper_bound: float


def _solve_packing(members: IntArray, scores: FloatArray, time_limit: float | None) -> _Solve:
    """The cycle formulation over one batch of rings (shape (r, 3) members, (r,) scores).

    The LP relaxation is solved first: its optimum bounds the packing's and is often
    integral already, which proves it. Otherwise the integer programme is solved; if that
    runs out of time, the best of its incumbent, a greedy packing and a greedy packing led by
    the LP values is kept, bounded by the smaller of the LP and the solver's dual bound.
    """
    n_rings = scores.size
    ring_of_cell = np.repeat(np.arange(n_rings), 3)
    cells = members.ravel()
    real = cells >= 0
    vertices, rows = np.unique(cells[real], return_inverse=True)
    packing = sp.csr_array(
        (np.ones(int(real.sum())), (rows, ring_of_cell[real])), shape=(vertices.size, n_rings)
    )
    constraint = LinearConstraint(packing, -np.inf, 1.0)
    options: dict[str, float | bool] = {"disp": False}
    if time_limit is not None:
        options["time_limit"] = float(time_limit)

    def feasible(x: FloatArray | None) -> BoolArray | None:
        if x is None:
            return None
        chosen = np.asarray(x) > 0.5
        return chosen if np.all(packing @ chosen.astype(np.float64) <= 1.0) else None

    # Interior point (with HiGHS's crossover to a vertex): on the largest components it takes
    # seconds where the simplex method took more than 30 (106k rings, 21k volunteers).
    relaxed = linprog(
        -scores,
        A_ub=packing,
        b_ub=np.ones(vertices.size),
        bounds=(0.0, 1.0),
        method="highs-ipm",
        options=options,
    )
    bounds: list[float] = []
    lp_values: FloatArray | None = None
    if relaxed.status == 0 and relaxed.x is not None:
        lp_values = np.asarray(relaxed.x, dtype=np.float64)
        lp_bound = float(-relaxed.fun)
        bounds.append(lp_bound)
        rounded = feasible(lp_values)
        integral = bool(np.all(np.minimum(lp_values, 1.0 - lp_values) < 1e-9))
        if integral and rounded is not None and scores[rounded].sum() >= lp_bound - 1e-6:
            return _Solve(rounded, True, max(lp_bound, float(scores[rounded].sum())))

    result = milp(
        -scores,
        integrality=np.ones(n_rings),
        bounds=Bounds(0.0, 1.0),
        constraints=constraint,
        options={**options, "mip_rel_gap": 0.0},
    )
    solution = feasible(result.x)
    if result.mip_dual_bound is not None and np.isfinite(result.mip_dual_bound):
        bounds.append(float(-result.mip_dual_bound))
    if result.status == 0 and solution is not None:
        total = float(scores[solution].sum())
        return _Solve(solution, True, max(total, min(bounds, default=total)))

    # Out of time or failed: the best packing at hand, never called optimal.
    candidates = [_greedy(members, scores)]
    if solution is not None:
        candidates.append(solution)
    if lp_values is not None:
        led = np.lexsort((np.arange(n_rings), -lp_values))  # LP value first, then best first
        by_lp = np.zeros(n_rings, dtype=np.bool_)
        by_lp[led[_greedy(members[led], scores[led])]] = True
        candidates.append(by_lp)
    best = max(candidates, key=lambda chosen: float(scores[chosen].sum()))
    if not bounds:
        # Each chosen ring's score spread evenly over its members; a volunteer gets at most
        # the best share among their rings.
        lengths = (members >= 0).sum(axis=1)
        shares = np.repeat(scores / lengths, 3)[real]
        best_share = np.zeros(vertices.size)
        np.maximum.at(best_share, rows, shares)
        bounds.append(float(best_share.sum()))
    return _Solve(best, False, max(min(bounds), float(scores[best].sum())))


def _batches(sizes: IntArray, batch_rings: int) -> Iterator[IntArray]:
    """Component numbers grouped into batches of at most ``batch_rings`` rings (or one)."""
    order = np.argsort(sizes, kind="stable")
    batch: list[int] = []
    held = 0
    for component in order.tolist():
        size = int(sizes[component])
        if batch and held + size > batch_rings:
            yield np.array(batch, dtype=np.int64)
            batch, held = [], 0
        batch.append(component)
        held += size
    if batch:
        yield np.array(batch, dtype=np.int64)


def best_disjoint_rings(
    edges: TeachingEdges,
    max_length: int = 3,
    *,
    time_limit: float | None = 10.0,
    batch_rings: int = 20_000,
) -> RingPacking:
    """Vertex-disjoint rings with the greatest total score, chosen exactly.

    Parameters
    ----------
    edges : TeachingEdges
        The teaching edges.
    max_length : {2, 3}, default 3
        Longest ring considered.
    time_limit : float or None, default 10.0
        Seconds allowed to each solve (per batch, the LP relaxation and then the integer
        programme); None for no limit. A batch that runs out keeps its best packing and
        makes the result ``optimal=False``.
    batch_rings : int, default 20000
        Components of the ring-overlap graph are solved together up to this many rings per
        solve (a larger component is solved alone), so that thousands of small components do
        not each pay a solver call.

    Returns
    -------
    RingPacking
        The chosen rings, best first, with the proof status and an upper bound.
    """
    _check_max_length(max_length)
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 or None, got {time_limit!r}")
    if not isinstance(batch_rings, int) or batch_rings < 1:
        raise ValueError(f"batch_rings must be an integer >= 1, got {batch_rings!r}")
    rings = _enumerate_rings(edges, max_length)
    if len(rings) == 0:
        return RingPacking((), 0.0, True, 0.0, 0, 0, 0, 0)
    members = np.where(rings.edges >= 0, edges._tail[rings.edges], -1)
    labels = _ring_components(edges, rings)
    _, component, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    chosen = sizes[component] == 1  # a ring that touches no other ring is in every optimum
    optimal = True
    upper_bound = float(rings.score[chosen].sum())
    unproven = 0
    shared = np.flatnonzero(sizes > 1)
    if shared.size:
        for batch in _batches(sizes[shared], batch_rings):
            ring_indices = np.flatnonzero(np.isin(component, shared[batch]))  # best first
            solve = _solve_packing(members[ring_indices], rings.score[ring_indices], time_limit)
            chosen[ring_indices[solve.chosen]] = True
            upper_bound += solve.upper_bound
            if not solve.optimal:
                optimal = False
                unproven += ring_indices.size
    picked = np.flatnonzero(chosen)  # ascending, so best first
    total = float(rings.score[picked].sum())
    return RingPacking(
        rings=tuple(_rings_out(edges, rings, picked)),
        total_score=total,
        optimal=optimal,
        upper_bound=max(upper_bound, total),
        rings_found=len(rings),
        components=int(sizes.size),
        largest_component=int(sizes.max()),
        unproven_rings=unproven,
    )


def greedy_disjoint_rings(edges: TeachingEdges, max_length: int = 3) -> tuple[Ring, ...]:
    """The baseline: take rings best first while all their volunteers are still free."""
    _check_max_length(max_length)
    rings = _enumerate_rings(edges, max_length)
    if len(rings) == 0:
        return ()
    members = np.where(rings.edges >= 0, edges._tail[rings.edges], -1)
    return tuple(_rings_out(edges, rings, np.flatnonzero(_greedy(members, rings.score))))


# -- edges from the match index ----------------------------------------------------------------


def swap_volunteers(records: Iterable[VolunteerRecord]) -> list[int]:
    """Ids of the volunteers who can be in a ring: active, with an offer, a want and an open slot.

    In a ring everyone teaches one learner and learns from one teacher, so nobody else can
    take part.
    """
    return [
        record.id
        for record in records
        if record.active and record.offers and record.wants and record.open_slots > 0
    ]


def teaching_edges(
    index: MatchIndex, volunteer_ids: Iterable[int], *, limit: int = 20
) -> TeachingEdges:
    """Teaching edges among ``volunteer_ids``, from each one's best learners in ``index``.

    Each volunteer asks ``index.query(volunteer, role="mentor", limit=limit)``; a match whose
    learner is also in ``volunteer_ids`` becomes the edge (volunteer -> learner,
    ``match.skill``, ``match.wanted_skill``, ``match.score``): every edge is a pair that
    ``query`` lists, with its rules (language, time, open slot, never oneself) and its best
    skill pair. A ring passes only through volunteers who teach and learn, so give the ids of
    :func:`swap_volunteers`. The top ``limit`` are taken over every learner in the index:
    over an index that holds only those volunteers, each teacher's edges are its best
    ``limit`` learners among them; over the full index, learners outside the ids take places
    in the top ``limit`` and fewer edges are left.

    Parameters
    ----------
    index : MatchIndex
        Holds every id in ``volunteer_ids`` (else ``query`` raises KeyError).
    volunteer_ids : iterable of int
        Who may teach and learn in a ring.
    limit : int, default 20
        Learners asked for per teacher: at most ``limit`` out-edges each.
    """
    asked = list(dict.fromkeys(int(volunteer_id) for volunteer_id in volunteer_ids))
    members = set(asked)
    teacher: list[int] = []
    learner: list[int] = []
    teaches: list[str] = []
    wanted: list[str] = []
    score: list[float] = []
    for volunteer_id in asked:
        for match in index.query(volunteer_id, role="mentor", limit=limit):
            if match.volunteer_id in members:
                teacher.append(volunteer_id)
                learner.append(match.volunteer_id)
                teaches.append(match.skill)
                wanted.append(match.wanted_skill)
                score.append(match.score)
    return TeachingEdges(
        np.array(teacher, dtype=np.int64),
        np.array(learner, dtype=np.int64),
        np.array(teaches, dtype=np.str_),
        np.array(wanted, dtype=np.str_),
        np.array(score, dtype=np.float64),
    )
