"""Candidate pairs for a round: many learners' best mentors at once, as flat arrays.

:meth:`MatchIndex.candidates <capex.matching.index.MatchIndex.candidates>` gives, for every
learner of a round, the mentors ``query(learner, role="learner", limit=k)`` would list, with the
same scores, skill choices, exclusions and order, computed for blocks of learners at once:

1. Every ``(wanted skill, related offered skill, mentor level, learner target)`` combination
   has a **rank** in the order the query's skill choice uses (``sim * fit`` descending, then
   ``sim`` descending, then wanted id, then offered id), so that a pair's best skill pair is
   the combination of smallest rank.
2. For a block of learners, their wants are joined with the related skills (the similarity's
   CSR rows) and those with the offer postings of the round's mentors: one entry per
   ``(learner, want, offer, mentor)``, the work a sparse product ``W @ S @ O`` does before it
   sums. Sorting ``(pair, rank)`` keys keeps each pair's smallest rank.
3. The pairs left are filtered (never oneself, overlapping time where both gave availability,
   a shared language), scored with the query's formula and float operations, and cut to the
   best ``k`` per learner (score descending, mentor id ascending).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Candidates:
    """The pairs a round may use, one row per (learner, mentor[, wanted skill]).

    Attributes
    ----------
    learner_ids, mentor_ids : ndarray of int64, shape (n,)
        The two volunteers of each pair.
    skills : ndarray of int64, shape (n,)
        The pair's skill, the mentor's offered skill, as a position in ``skill_ids``.
    wanted_skills : ndarray of int64, shape (n,)
        The learner's want it serves, as a position in ``skill_ids``.
    scores : ndarray of float64, shape (n,)
        The pair's score, finite and >= 0 (in (0, 1] from the engine).
    skill_ids : tuple of str
        The skill vocabulary the positions refer to.
    learners : ndarray of int64, shape (n_learners,)
        The round's learners, ascending: every learner the round is for, also those with no
        candidate pair (they stay unmatched).
    mentors : ndarray of int64, shape (n_mentors,)
        The round's mentors, ascending: every mentor with at least one pair the engine lists
        for a round learner (before any cut to the best ``k``). The mentor load Gini counts
        exactly these.
    open_slots : ndarray of int64, shape (n_mentors,)
        Each of ``mentors``' open slots (>= 0): at most this many pairs.
    """

    learner_ids: IntArray
    mentor_ids: IntArray
    skills: IntArray
    wanted_skills: IntArray
    scores: FloatArray
    skill_ids: tuple[str, ...]
    learners: IntArray
    mentors: IntArray
    open_slots: IntArray

    def __post_init__(self) -> None:
        n = self.learner_ids.shape
        for name in ("mentor_ids", "skills", "wanted_skills", "scores"):
            if getattr(self, name).shape != n:
                raise ValueError(f"{name} must have the shape of learner_ids, {n}")
        if self.open_slots.shape != self.mentors.shape:
            raise ValueError("open_slots must have the shape of mentors")
        if self.scores.size and not (np.isfinite(self.scores).all() and self.scores.min() >= 0):
            raise ValueError("scores must be finite and >= 0")
        if self.open_slots.size and self.open_slots.min() < 0:
            raise ValueError("open_slots must be >= 0")
        for name in ("learners", "mentors"):
            ids = getattr(self, name)
            if ids.size > 1 and not (np.diff(ids) > 0).all():
                raise ValueError(f"{name} must be ascending and unique")
        if not _all_in(self.learner_ids, self.learners):
            raise ValueError("every pair's learner must be one of learners")
        if not _all_in(self.mentor_ids, self.mentors):
            raise ValueError("every pair's mentor must be one of mentors")
        n_skills = len(self.skill_ids)
        for name in ("skills", "wanted_skills"):
            codes = getattr(self, name)
            if codes.size and not (codes.min() >= 0 and codes.max() < n_skills):
                raise ValueError(f"{name} must be positions in skill_ids")

    def __len__(self) -> int:
        return int(self.learner_ids.size)

    @classmethod
    def from_pairs(
        cls,
        learner_ids: npt.ArrayLike,
        mentor_ids: npt.ArrayLike,
        wanted_skills: list[str],
        scores: npt.ArrayLike,
        open_slots: dict[int, int],
        *,
        skills: list[str] | None = None,
        learners: npt.ArrayLike | None = None,
    ) -> Candidates:
        """Candidates from plain lists (tests, callers that score pairs themselves).

        ``open_slots`` names every mentor of the round; ``skills`` (the offered skills)
        default to the wanted ones; ``learners`` default to those of the pairs.
        """
        offered = wanted_skills if skills is None else skills
        vocabulary = tuple(sorted(set(offered) | set(wanted_skills)))
        position = {skill: i for i, skill in enumerate(vocabulary)}
        learner_array = np.asarray(learner_ids, dtype=np.int64)
        mentors = np.array(sorted(open_slots), dtype=np.int64)
        round_learners = learner_array if learners is None else np.asarray(learners, np.int64)
        return cls(
            learner_ids=learner_array,
            mentor_ids=np.asarray(mentor_ids, dtype=np.int64),
            skills=np.array([position[s] for s in offered], dtype=np.int64),
            wanted_skills=np.array([position[s] for s in wanted_skills], dtype=np.int64),
            scores=np.asarray(scores, dtype=np.float64),
            skill_ids=vocabulary,
            learners=np.unique(round_learners),
            mentors=mentors,
            open_slots=np.array([open_slots[m] for m in mentors.tolist()], dtype=np.int64),
        )

    def take(self, rows: npt.ArrayLike) -> Candidates:
        """The same round with only the pairs ``rows`` (learners and mentors kept)."""
        index = np.asarray(rows, dtype=np.int64)
        return Candidates(
            learner_ids=self.learner_ids[index],
            mentor_ids=self.mentor_ids[index],
            skills=self.skills[index],
            wanted_skills=self.wanted_skills[index],
            scores=self.scores[index],
            skill_ids=self.skill_ids,
            learners=self.learners,
            mentors=self.mentors,
            open_slots=self.open_slots,
        )

    def learner_order(self) -> IntArray:
        """Rows by learner id, score descending, mentor id (then position), shape (n,).

        ``MatchIndex.candidates`` gives rows in this order already; then no sort is needed.
        """
        learners, scores, mentors = self.learner_ids, self.scores, self.mentor_ids
        if len(self) < 2:
            return np.arange(len(self), dtype=np.int64)
        step = learners[1:] - learners[:-1]
        next_is_worse = (scores[1:] < scores[:-1]) | (
            (scores[1:] == scores[:-1]) & (mentors[1:] >= mentors[:-1])
        )
        ordered = (step > 0) | ((step == 0) & next_is_worse)
        if ordered.all():
            return np.arange(len(self), dtype=np.int64)
        order: IntArray = np.lexsort((mentors, -scores, learners))
        return order

    def score_order(self) -> IntArray:
        """Rows by score descending, learner id, mentor id (then position), shape (n,)."""
        by_learner = self.learner_order()
        order: IntArray = by_learner[np.argsort(-self.scores[by_learner], kind="stable")]
        return order

    def mentor_order(self, score_order: IntArray | None = None) -> IntArray:
        """Rows by mentor id, score descending, learner id (then position), shape (n,)."""
        by_score = self.score_order() if score_order is None else score_order
        order: IntArray = by_score[np.argsort(self.mentor_ids[by_score], kind="stable")]
        return order

    def top(self, k: int | None, mentor_k: int | None = None) -> Candidates:
        """Only each learner's best ``k`` pairs (score descending, then mentor id ascending),
        and with ``mentor_k`` also each mentor's best ``mentor_k`` (score descending, then
        learner id ascending); None keeps every pair on that side.
        """
        for name, value in (("k", k), ("mentor_k", mentor_k)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
        keep = np.zeros(len(self), dtype=np.bool_)
        if k is None:
            keep[:] = True
        else:
            order = self.learner_order()
            keep[order[rank_in_groups(self.learner_ids[order]) < k]] = True
        if mentor_k is not None and k is not None:
            order = self.mentor_order()
            keep[order[rank_in_groups(self.mentor_ids[order]) < mentor_k]] = True
        return self.take(np.flatnonzero(keep))


def _all_in(values: IntArray, ascending: IntArray) -> bool:
    """Whether every one of ``values`` is in the ascending array ``ascending``."""
    if values.size == 0:
        return True
    if ascending.size == 0:
        return False
    found = np.minimum(np.searchsorted(ascending, values), ascending.size - 1)
    return bool((ascending[found] == values).all())


def first_of_groups(keys: IntArray) -> npt.NDArray[np.bool_]:
    """True at the first element of each run of equal, sorted ``keys``."""
    first = np.ones(keys.size, dtype=np.bool_)
    first[1:] = keys[1:] != keys[:-1]
    return first


def rank_in_groups(groups: IntArray) -> IntArray:
    """Position of each element within its run of equal, sorted ``groups`` (0, 1, ...)."""
    starts = np.flatnonzero(first_of_groups(groups))
    lengths = np.diff(np.r_[starts, groups.size])
    ranks: IntArray = np.arange(groups.size, dtype=np.int64) - np.repeat(starts, lengths)
    return ranks
