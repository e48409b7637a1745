"""Coordinators' matching rounds: run one for a cohort, keep it, publish it once.

A round is a snapshot. Its pairs are the solver's answer over the matching index's scores
when it ran (``run``), stored with their reasons; profiles that change afterwards do not
change them. ``publish`` turns each pair into an exchange in ``requested`` with
``origin: "round"``, checking each pair again first (the mentor may have filled up,
someone may have left); a pair that no longer holds is reported with the reason, and the
rest are published all the same. A round is published once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import CapexError, Conflict, NotFound
from capex.models import Round, RoundPair, Volunteer
from capex.models.base import utcnow
from capex.services.exchanges.requests import request
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.vocabulary import Origin, RoundMode, RoundStatus


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


def _metrics(row: Round) -> RoundMetrics:
    return RoundMetrics(
        learners=row.learners,
        matched=row.matched,
        total_score=row.total_score,
        mean_score=row.mean_score,
        mentor_load_gini=row.mentor_load_gini,
        blocking_pairs=row.blocking_pairs,
    )


def _summary(row: Round) -> RoundSummary:
    return RoundSummary(
        id=row.id,
        name=row.name,
        mode=row.mode,
        status=row.status,
        created_at=row.created_at,
        published_at=row.published_at,
        metrics=_metrics(row),
    )


def _round(session: Session, round_id: int) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise NotFound(f"no round with id {round_id}")
    return row


def read_round(session: Session, round_id: int) -> RoundView:
    """One round with its pairs (best first) and the learners it could not place."""
    row = _round(session, round_id)
    pairs = list(
        session.scalars(
            select(RoundPair)
            .where(RoundPair.round_id == row.id)
            .order_by(RoundPair.score.desc(), RoundPair.id)
        )
    )
    people = {pair.learner_id for pair in pairs} | {pair.mentor_id for pair in pairs}
    refs = volunteer_refs(session, people | set(row.unmatched_learner_ids))
    return RoundView(
        **{field: getattr(_summary(row), field) for field in RoundSummary.__dataclass_fields__},
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
    pairs = session.scalars(
        select(RoundPair)
        .where(RoundPair.round_id == row.id)
        .order_by(RoundPair.score.desc(), RoundPair.id)
    )
    # Requests sent to each mentor by this publish: never more than their open slots now.
    sent: dict[int, int] = {}
    for pair in list(pairs):
        reason = _publish_pair(session, settings, row, pair, sent.get(pair.mentor_id, 0))
        if reason is None:
            published += 1
            sent[pair.mentor_id] = sent.get(pair.mentor_id, 0) + 1
        else:
            pair.not_published = reason
            failed += 1
    session.flush()
    return Published(read_round(session, row.id), published, failed)


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
