"""Skill-swap rings: volunteers who teach each other directly, two or three at a time.

A ring is made of pairs the matching lists (``MatchIndex.candidates``: a shared language,
overlapping time where both gave availability, the teacher's open slot, never oneself), so
a ring is a set of exchanges each volunteer could also have asked for one by one. The rings
themselves and the exact choice of disjoint rings are the engine's
(``capex.matching.swaps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from capex.matching import Match
from capex.matching import swaps as engine
from capex.matching.candidates import Candidates
from capex.matching.index import MatchIndex
from capex.models import SkillOffer, SkillWant, Volunteer
from capex.services.matches import MatchingService
from capex.services.profiles import VolunteerRef, volunteer_refs

# The coordinators' packing considers each swapper's best teachers among the other swappers:
# with 10 the exact packing is proven within seconds at 100k volunteers; with 20 or more
# HiGHS leaves a gap (measured in bench/swaps.py and docs/rounds.md).
TEACHERS_PER_LEARNER = 10


@dataclass(frozen=True, slots=True)
class RingStep:
    """One exchange of a ring: ``volunteer`` teaches ``learner`` the skill ``teaches``."""

    volunteer: VolunteerRef
    teaches: str
    learner: VolunteerRef
    wanted_skill: str
    score: float


@dataclass(frozen=True, slots=True)
class RingView:
    members: list[RingStep]
    score: float


@dataclass(frozen=True, slots=True)
class RingSet:
    """Disjoint rings with the greatest total score, and whether that is proven."""

    items: list[RingView]
    total_score: float
    optimal: bool
    upper_bound: float
    rings_found: int


def swappers(session: Session, among: Iterable[int] | None = None) -> list[int]:
    """Who can be in a ring (of ``among``, or of everyone): active, offering and wanting
    something, with an open slot."""
    statement = (
        select(Volunteer.id)
        .where(
            Volunteer.is_active.is_(True),
            Volunteer.accepted_as_mentor < Volunteer.mentor_capacity,
            exists().where(SkillOffer.volunteer_id == Volunteer.id),
            exists().where(SkillWant.volunteer_id == Volunteer.id),
        )
        .order_by(Volunteer.id)
    )
    if among is not None:
        statement = statement.where(Volunteer.id.in_(sorted(set(among))))
    return list(session.scalars(statement))


def _edges(*parts: Candidates) -> engine.TeachingEdges:
    """Teaching edges (mentor -> learner) from candidate pairs, the best one per ordered pair
    (two parts may hold the same pair)."""

    def names(part: Candidates, positions: Any) -> Any:
        return np.asarray(part.skill_ids, dtype=np.str_)[positions] if part.skill_ids else []

    return engine.TeachingEdges.best_per_pair(
        np.concatenate([part.mentor_ids for part in parts]),
        np.concatenate([part.learner_ids for part in parts]),
        np.concatenate([np.asarray(names(part, part.skills), dtype=np.str_) for part in parts]),
        np.concatenate(
            [np.asarray(names(part, part.wanted_skills), dtype=np.str_) for part in parts]
        ),
        np.concatenate([part.scores for part in parts]),
    )


def _from_matches(teacher: int, matches: list[Match]) -> Candidates:
    """``teacher``'s matches as a mentor, as candidate pairs (learner, mentor = teacher)."""
    skill_ids = tuple(sorted({m.skill for m in matches} | {m.wanted_skill for m in matches}))
    position = {skill: n for n, skill in enumerate(skill_ids)}
    learners = np.array([m.volunteer_id for m in matches], dtype=np.int64)
    return Candidates(
        learner_ids=learners,
        mentor_ids=np.full(len(matches), teacher, dtype=np.int64),
        skills=np.array([position[m.skill] for m in matches], dtype=np.int64),
        wanted_skills=np.array([position[m.wanted_skill] for m in matches], dtype=np.int64),
        scores=np.array([m.score for m in matches], dtype=np.float64),
        skill_ids=skill_ids,
        learners=np.unique(learners),
        mentors=np.array([teacher], dtype=np.int64),
        open_slots=np.array([1], dtype=np.int64),
    )


def _held(index: MatchIndex, ids: list[int]) -> list[int]:
    return [volunteer_id for volunteer_id in ids if volunteer_id in index]


def _views(session: Session, rings: tuple[engine.Ring, ...] | list[engine.Ring]) -> list[RingView]:
    people = {step.volunteer for ring in rings for step in ring.members}
    refs = volunteer_refs(session, people)
    return [
        RingView(
            members=[
                RingStep(
                    refs[step.volunteer],
                    step.teaches,
                    refs[step.learner],
                    step.wanted_skill,
                    step.score,
                )
                for step in ring.members
            ],
            score=ring.score,
        )
        for ring in rings
        if all(step.volunteer in refs for step in ring.members)
    ]


def my_rings(
    session: Session,
    matching: MatchingService,
    volunteer: Volunteer,
    *,
    max_length: int = 3,
    limit: int = 20,
) -> list[RingView]:
    """The rings ``volunteer`` is in, best first: whom they could teach, who could teach
    them, and who of the first could teach one of the second."""
    index = matching.fresh_index()
    if volunteer.id not in index or not swappers(session, [volunteer.id]):
        return []
    # Whom I can teach (one query as a mentor), and who can teach me (my candidates).
    learners = index.query(volunteer.id, role="mentor", limit=max(len(index), 1))
    teachers = index.candidates([volunteer.id])
    able = set(
        swappers(session, {m.volunteer_id for m in learners} | set(teachers.mentor_ids.tolist()))
    )
    taught = [match for match in learners if match.volunteer_id in able]
    teach_me = teachers.take(np.flatnonzero(np.isin(teachers.mentor_ids, sorted(able))))
    if not taught or not len(teach_me):
        return []
    parts = [_from_matches(volunteer.id, taught), teach_me]
    if max_length >= 3:
        # B (whom I teach) teaches C (who teaches me): the third side of a ring of three.
        parts.append(
            index.candidates(
                sorted(set(teach_me.mentor_ids.tolist())),
                mentors=sorted({match.volunteer_id for match in taught}),
            )
        )
    rings = engine.rings_of(_edges(*parts), volunteer.id, max_length=max_length)
    return _views(session, rings[:limit])


def best_rings(session: Session, matching: MatchingService, *, max_length: int = 3) -> RingSet:
    """Disjoint rings over everyone who can swap, with the greatest total score (exact,
    unless the solver ran out of time: then ``optimal`` is False)."""
    index = matching.fresh_index()
    people = _held(index, swappers(session))
    if len(people) < 2:
        return RingSet([], 0.0, True, 0.0, 0)
    edges = _edges(index.candidates(people, mentors=people, k=TEACHERS_PER_LEARNER))
    packing = engine.best_disjoint_rings(edges, max_length=max_length)
    return RingSet(
        items=_views(session, packing.rings),
        total_score=packing.total_score,
        optimal=packing.optimal,
        upper_bound=packing.upper_bound,
        rings_found=packing.rings_found,
    )
