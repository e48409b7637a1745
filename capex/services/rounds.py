"""Coordinators' matching rounds: run one for a cohort, keep it, publish it once.

A round is a snapshot. Its pairs are the solver's answer over the matching index's scores
when it ran (``run``), stored with their reasons; profiles that change afterwards do not
change them. ``publish`` turns each pair into an exchange in ``requested`` with
``origin: "round"``, checking each pair again first (the mentor may have filled up,
someone may have left); a pair that no longer holds is reported with the reason, and the
rest are published all the same. A round is published once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import CapexError, Conflict, Invalid, NotFound, field_error
from capex.matching import MatchIndex
from capex.matching import rounds as engine
from capex.matching.candidates import Candidates
from capex.models import Round, RoundPair, Volunteer
from capex.models.base import utcnow
from capex.schemas.rounds import RoundCreate
from capex.services import skills as skill_service
from capex.services.exchanges.requests import request
from capex.services.matches import MatchingService
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.vocabulary import Origin, RoundMode, RoundStatus

# How many of each learner's mentors the solver may choose from: all the matching lists.
# Cutting to the best k loses most of the optimum when scores follow popularity (measured in
# capex/matching/rounds.py and docs/rounds.md).
CANDIDATES_PER_LEARNER: int | None = None
# The steps of a run, for a progress bar: (step, steps done, steps in all).
Progress = Callable[[str, float, int], None]


@dataclass(frozen=True, slots=True)
class RoundMetrics:
    learners: int
    matched: int
    total_score: float
    mean_score: float | None
    mentor_load_gini: float | None
    blocking_pairs: int


@dataclass(frozen=True, slots=True)
class RoundPairView:
    learner: VolunteerRef
    mentor: VolunteerRef
    skill: str
    score: float
    reasons: dict[str, Any]
    exchange_id: int | None
    not_published: str | None


@dataclass(frozen=True, slots=True)
class RoundSummary:
    id: int
    name: str
    mode: RoundMode
    status: RoundStatus
    created_at: datetime
    published_at: datetime | None
    metrics: RoundMetrics


@dataclass(frozen=True, slots=True)
class RoundView(RoundSummary):
    pairs: list[RoundPairView]
    unmatched_learners: list[VolunteerRef]


@dataclass(frozen=True, slots=True)
class Published:
    round: RoundView
    published: int
    not_published: int


def _columns(row: Round, view: type[Any], **given: Any) -> Any:
    """``view`` filled from the row's columns of the same names (``given`` beside them)."""
    names = [name for name in view.__dataclass_fields__ if name not in given]
    return view(**{name: getattr(row, name) for name in names}, **given)


def _summary(row: Round) -> RoundSummary:
    summary: RoundSummary = _columns(row, RoundSummary, metrics=_columns(row, RoundMetrics))
    return summary


def _round(session: Session, round_id: int) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise NotFound(f"no round with id {round_id}")
    return row


def read_round(session: Session, round_id: int) -> RoundView:
    """One round with its pairs (best first) and the learners it could not place."""
    row = _round(session, round_id)
    return _view(session, row, _best_first(session, row))


def _best_first(session: Session, row: Round) -> list[RoundPair]:
    return list(
        session.scalars(
            select(RoundPair)
            .where(RoundPair.round_id == row.id)
            .order_by(RoundPair.score.desc(), RoundPair.id)
        )
    )


def _view(session: Session, row: Round, pairs: list[RoundPair]) -> RoundView:
    """The round and ``pairs`` (its pairs, best first), everyone named."""
    people = {pair.learner_id for pair in pairs} | {pair.mentor_id for pair in pairs}
    refs = volunteer_refs(session, people | set(row.unmatched_learner_ids))
    summary = _summary(row)
    return RoundView(
        **{field: getattr(summary, field) for field in RoundSummary.__dataclass_fields__},
        pairs=[
            RoundPairView(
                learner=refs[pair.learner_id],
                mentor=refs[pair.mentor_id],
                skill=pair.skill_id,
                score=pair.score,
                reasons=pair.reasons,
                exchange_id=pair.exchange_id,
                not_published=pair.not_published,
            )
            for pair in pairs
        ],
        unmatched_learners=[refs[i] for i in row.unmatched_learner_ids if i in refs],
    )


def list_rounds(session: Session, *, before: int | None, limit: int) -> list[RoundSummary]:
    """Rounds, newest first (``limit`` of them below id ``before``)."""
    statement = select(Round).order_by(Round.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(Round.id < before)
    return [_summary(row) for row in session.scalars(statement)]


def _named_volunteers(session: Session, ids: list[int] | None, field: str) -> list[int] | None:
    """The ids as given, or 422 naming those that are no active volunteer."""
    if ids is None:
        return None
    found = set(
        session.scalars(
            select(Volunteer.id).where(Volunteer.id.in_(ids), Volunteer.is_active.is_(True))
        )
    )
    unknown = sorted(set(ids) - found)
    if unknown:
        shown = ", ".join(map(str, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise Invalid(
            f"no active volunteer with id {shown}",
            [field_error(["body", field], "unknown or inactive volunteer ids")],
        )
    return sorted(set(ids))


def _cohort_skills(session: Session, skills: list[str] | None) -> list[str] | None:
    """The round's skills and every skill below them; 422 for an unknown one."""
    if skills is None:
        return None
    tree = skill_service.parents(session)
    unknown = sorted(set(skills) - tree.keys())
    if unknown:
        raise Invalid(
            f"unknown skill {', '.join(unknown)}",
            [field_error(["body", "skills"], "not in the taxonomy")],
        )
    return sorted(set().union(*(skill_service.subtree_ids(tree, skill) for skill in skills)))


def run(
    session: Session,
    matching: MatchingService,
    coordinator: Volunteer | None,
    data: RoundCreate,
    *,
    k: int | None = CANDIDATES_PER_LEARNER,
    progress: Progress | None = None,
) -> RoundView:
    """Pair the cohort's learners with mentors at once and keep the round as a draft.

    The pairs come from the matching index as it is now (so each is a pair ``/me/matches``
    would list), ``k`` best mentors per learner (None: all); the engine chooses among them
    (``capex.matching.rounds``) and the round is stored with each pair's reasons.
    """
    steps = 4

    def step(name: str, done: float) -> None:
        if progress is not None:
            progress(name, done, steps)

    learners = _named_volunteers(session, data.learners, "learners")
    mentors = _named_volunteers(session, data.mentors, "mentors")
    wanted = _cohort_skills(session, data.skills)
    step("candidate pairs", 0)
    index = matching.fresh_index()
    candidates = index.candidates(
        # Named volunteers the index has not seen (no profile yet) cannot be paired.
        None if learners is None else [i for i in learners if i in index],
        k=k,
        wanted_skills=wanted,
        mentors=None if mentors is None else [i for i in mentors if i in index],
        per_wanted_skill=data.max_per_learner > 1,
        min_score=data.min_score,
        progress=None
        if progress is None
        else lambda done, total: progress("candidate pairs", 0, steps),
    )
    step("solving", 1)
    mode = RoundMode(data.mode)
    if mode == RoundMode.OPTIMAL:
        chosen = engine.optimal(candidates, max_per_learner=data.max_per_learner)
    else:
        chosen = engine.stable(candidates, max_per_learner=data.max_per_learner)
    figures = engine.metrics(candidates, chosen, max_per_learner=data.max_per_learner)
    step("reasons", 2)
    # Named learners the index could not pair (no profile, no want in the round) count too.
    outside = set(learners or ()) - set(candidates.learners.tolist())
    unmatched = set(engine.unmatched_learners(candidates, chosen).tolist()) | outside
    row = Round(
        name=data.name,
        mode=mode,
        created_by_id=None if coordinator is None else coordinator.id,
        skills=data.skills,
        learner_ids=learners,
        mentor_ids=mentors,
        min_score=data.min_score,
        max_per_learner=data.max_per_learner,
        learners=len(candidates.learners) + len(outside),
        matched=figures.matched,
        total_score=figures.total_score,
        mean_score=figures.mean_score if figures.pairs else None,
        mentor_load_gini=figures.mentor_load_gini if candidates.mentors.size else None,
        blocking_pairs=figures.blocking_pairs,
        unmatched_learner_ids=sorted(unmatched),
    )
    session.add(row)
    session.flush()
    step("storing", 3)
    pairs = _pairs(row.id, index, candidates, chosen.rows)
    session.add_all(pairs)
    session.flush()
    step("stored", 4)
    # In the order reading gives: best first, then in id order.
    return _view(session, row, sorted(pairs, key=lambda pair: (-pair.score, pair.id)))


def _pairs(round_id: int, index: MatchIndex, candidates: Candidates, rows: Any) -> list[RoundPair]:
    """The chosen pairs as rows, each with the engine's reasons for its score (the query's
    ``Match`` for the pair's wanted skill, read from the index right after the solve)."""
    chosen = np.asarray(rows, dtype=np.int64)
    try:
        explained = index.explain(candidates, chosen)
    except KeyError:
        # A volunteer of the round left the index (deactivated) while it was solved.
        raise Conflict("a volunteer of this round left while it ran; run it again") from None
    return [
        RoundPair(
            round_id=round_id,
            learner_id=int(candidates.learner_ids[position]),
            mentor_id=int(candidates.mentor_ids[position]),
            skill_id=candidates.skill_ids[int(candidates.skills[position])],
            wanted_skill_id=candidates.skill_ids[int(candidates.wanted_skills[position])],
            score=float(candidates.scores[position]),
            reasons=match.reasons,
        )
        for position, match in zip(chosen.tolist(), explained, strict=True)
    ]


def publish(session: Session, settings: Settings, round_id: int) -> Published:
    """Every pair that still holds becomes a request; the others say why not. Once."""
    row = _round(session, round_id)
    # The status flips first, conditionally: of two publishes racing, one finds it draft.
    flipped = session.execute(
        update(Round)
        .where(Round.id == row.id, Round.status == RoundStatus.DRAFT)
        .values(status=RoundStatus.PUBLISHED, published_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if flipped.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"round {row.id} ({row.name}) is already published")
    session.refresh(row)
    published = failed = 0
    pairs = _best_first(session, row)
    # Requests sent to each mentor by this publish: never more than their open slots now.
    sent: dict[int, int] = {}
    for pair in pairs:
        reason = _publish_pair(session, settings, row, pair, sent.get(pair.mentor_id, 0))
        if reason is None:
            published += 1
            sent[pair.mentor_id] = sent.get(pair.mentor_id, 0) + 1
        else:
            pair.not_published = reason
            failed += 1
    session.flush()
    return Published(_view(session, row, pairs), published, failed)


def _publish_pair(
    session: Session, settings: Settings, row: Round, pair: RoundPair, sent: int
) -> str | None:
    """Make ``pair`` a request; None when it became one, else why it could not. ``sent``:
    the requests this publish already made to the pair's mentor."""
    # Read afresh: the rows in this session may predate the exchanges of meanwhile.
    learner = session.get(Volunteer, pair.learner_id, populate_existing=True)
    mentor = session.get(Volunteer, pair.mentor_id, populate_existing=True)
    if learner is None or not learner.is_active:
        return "the learner has left"
    if mentor is None or not mentor.is_active:
        return "the mentor has left"
    open_slots = mentor.mentor_capacity - mentor.accepted_as_mentor
    if sent >= open_slots:
        return (
            f"{mentor.username} has no open slot left for it now "
            f"({max(open_slots, 0)} open, {sent} already asked by this round)"
        )
    try:
        with session.begin_nested():
            created = request(
                session,
                settings,
                learner,
                mentor_id=mentor.id,
                skill=pair.skill_id,
                message=f"Proposed by the round “{row.name}”."[:2000],
                origin=Origin.ROUND,
            )
    except CapexError as error:
        return error.detail
    pair.exchange_id = created.exchange.id
    return None
