"""What the console's round pages show, each made by one call: a round with one page of its
pairs (their skills' names and, once published, their exchanges' states, each read in one
query), two rounds of the same cohort compared, a cohort named by usernames, and one
question run in both modes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from capex.errors import NotFound
from capex.models import Exchange, Round, RoundPair, Volunteer
from capex.schemas.rounds import RoundCreate
from capex.services import rounds
from capex.services.accounts import username_key
from capex.services.exchange_pages import skill_names
from capex.services.matches import MatchingService
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.services.rounds import RoundMetrics, RoundSummary, RoundView
from capex.vocabulary import ExchangeState, RoundMode

# Pairs one page of a round shows, best first.
PAIRS_PER_PAGE = 100
# Unmatched learners, and differing pairs of a comparison, shown at most (the rest counted).
PEOPLE_SHOWN = 200
# Named learners or mentors the review page lists by name (more are counted).
NAMED_SHOWN = 30


@dataclass(frozen=True, slots=True)
class PairLine:
    """One pair as the console shows it: names for its skills, its exchange's state."""

    learner: VolunteerRef
    mentor: VolunteerRef
    skill: str
    skill_name: str
    wanted_skill: str
    wanted_skill_name: str
    score: float
    skill_similarity: float
    level_fit: float
    shared_languages: tuple[str, ...]
    overlap_minutes_per_week: int | None
    exchange_id: int | None
    exchange_state: ExchangeState | None
    not_published: str | None


@dataclass(frozen=True, slots=True)
class Question:
    """What a round was asked: its skills (id, name), the people named, its limits."""

    skills: tuple[tuple[str, str], ...] | None
    learners: int | None
    mentors: int | None
    learner_names: tuple[VolunteerRef, ...]
    mentor_names: tuple[VolunteerRef, ...]
    min_score: float
    max_per_learner: int


@dataclass(frozen=True, slots=True)
class RoundPage:
    """A round, one page of its pairs (``page`` of ``pages``, counted from 1), the learners
    it left, and, once published, how many of its exchanges are in each state."""

    round: RoundSummary
    question: Question
    pairs: list[PairLine]
    pair_count: int
    page: int
    pages: int
    unmatched_learners: list[VolunteerRef]
    unmatched_count: int
    published_pairs: int
    not_published_pairs: int
    states: dict[ExchangeState, int]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two rounds side by side: their metrics and the pairs only one of them has."""

    a: RoundSummary
    b: RoundSummary
    same_cohort: bool
    only_a: list[PairLine]
    only_b: list[PairLine]
    only_a_count: int
    only_b_count: int
    shared_count: int


def _row(session: Session, round_id: int) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise NotFound(f"no round with id {round_id}")
    return row


def _summary(row: Round) -> RoundSummary:
    return RoundSummary(
        id=row.id,
        name=row.name,
        mode=row.mode,
        status=row.status,
        created_at=row.created_at,
        published_at=row.published_at,
        metrics=RoundMetrics(
            learners=row.learners,
            matched=row.matched,
            total_score=row.total_score,
            mean_score=row.mean_score,
            mentor_load_gini=row.mentor_load_gini,
            blocking_pairs=row.blocking_pairs,
        ),
    )


def _lines(session: Session, pairs: Sequence[RoundPair]) -> list[PairLine]:
    """The pairs named: people, skills and exchanges' states, one query each."""
    people = volunteer_refs(session, {p.learner_id for p in pairs} | {p.mentor_id for p in pairs})
    names = skill_names(session, {p.skill_id for p in pairs} | {p.wanted_skill_id for p in pairs})
    exchange_ids = [p.exchange_id for p in pairs if p.exchange_id is not None]
    states: dict[int, ExchangeState] = {}
    if exchange_ids:
        states = {
            exchange_id: ExchangeState(state)
            for exchange_id, state in session.execute(
                select(Exchange.id, Exchange.state).where(Exchange.id.in_(exchange_ids))
            )
        }
    lines = []
    for pair in pairs:
        reasons: dict[str, Any] = pair.reasons
        overlap = reasons.get("overlap_minutes_per_week")
        lines.append(
            PairLine(
                learner=people[pair.learner_id],
                mentor=people[pair.mentor_id],
                skill=pair.skill_id,
                skill_name=names.get(pair.skill_id, pair.skill_id),
                wanted_skill=pair.wanted_skill_id,
                wanted_skill_name=names.get(pair.wanted_skill_id, pair.wanted_skill_id),
                score=pair.score,
                skill_similarity=float(reasons.get("skill_similarity", 0.0)),
                level_fit=float(reasons.get("level_fit", 0.0)),
                shared_languages=tuple(reasons.get("shared_languages", ())),
                overlap_minutes_per_week=None if overlap is None else int(overlap),
                exchange_id=pair.exchange_id,
                exchange_state=states.get(pair.exchange_id) if pair.exchange_id else None,
                not_published=pair.not_published,
            )
        )
    return lines


def _question(session: Session, row: Round) -> Question:
    named = [*(row.learner_ids or ())[:NAMED_SHOWN], *(row.mentor_ids or ())[:NAMED_SHOWN]]
    people = volunteer_refs(session, named)
    skills = None
    if row.skills is not None:
        names = skill_names(session, row.skills)
        skills = tuple((skill, names.get(skill, skill)) for skill in row.skills)
    return Question(
        skills=skills,
        learners=None if row.learner_ids is None else len(row.learner_ids),
        mentors=None if row.mentor_ids is None else len(row.mentor_ids),
        learner_names=tuple(
            people[i] for i in (row.learner_ids or ())[:NAMED_SHOWN] if i in people
        ),
        mentor_names=tuple(people[i] for i in (row.mentor_ids or ())[:NAMED_SHOWN] if i in people),
        min_score=row.min_score,
        max_per_learner=row.max_per_learner,
    )


def round_page(session: Session, round_id: int, *, page: int = 1) -> RoundPage:
    """One round as its review page shows it: ``page`` of its pairs, best first."""
    row = _row(session, round_id)
    pair_count = session.scalar(
        select(func.count()).select_from(RoundPair).where(RoundPair.round_id == row.id)
    )
    pages = max(1, -(-(pair_count or 0) // PAIRS_PER_PAGE))
    page = min(max(page, 1), pages)
    pairs = list(
        session.scalars(
            select(RoundPair)
            .where(RoundPair.round_id == row.id)
            .order_by(RoundPair.score.desc(), RoundPair.id)
            .offset((page - 1) * PAIRS_PER_PAGE)
            .limit(PAIRS_PER_PAGE)
        )
    )
    states = {
        ExchangeState(state): count
        for state, count in session.execute(
            select(Exchange.state, func.count())
            .join(RoundPair, RoundPair.exchange_id == Exchange.id)
            .where(RoundPair.round_id == row.id)
            .group_by(Exchange.state)
        )
    }
    not_published = session.scalar(
        select(func.count())
        .select_from(RoundPair)
        .where(RoundPair.round_id == row.id, RoundPair.not_published.is_not(None))
    )
    unmatched_ids = row.unmatched_learner_ids[:PEOPLE_SHOWN]
    unmatched = volunteer_refs(session, unmatched_ids)
    return RoundPage(
        round=_summary(row),
        question=_question(session, row),
        pairs=_lines(session, pairs),
        pair_count=pair_count or 0,
        page=page,
        pages=pages,
        unmatched_learners=[unmatched[i] for i in unmatched_ids if i in unmatched],
        unmatched_count=len(row.unmatched_learner_ids),
        published_pairs=sum(states.values()),
        not_published_pairs=not_published or 0,
        states=states,
    )


def _asked(row: Round) -> tuple[object, ...]:
    """A round's question without its name and mode: equal for rounds of the same cohort."""
    return (
        sorted(row.skills) if row.skills is not None else None,
        row.learner_ids,
        row.mentor_ids,
        row.min_score,
        row.max_per_learner,
    )


def compare_rounds(session: Session, a_id: int, b_id: int) -> Comparison:
    """Rounds ``a`` and ``b`` side by side: metrics, and the pairs only one of them has."""
    a, b = _row(session, a_id), _row(session, b_id)

    def pairs_of(row: Round) -> list[RoundPair]:
        return list(
            session.scalars(
                select(RoundPair)
                .where(RoundPair.round_id == row.id)
                .order_by(RoundPair.score.desc(), RoundPair.id)
            )
        )

    def key(pair: RoundPair) -> tuple[int, int, str]:
        return pair.learner_id, pair.mentor_id, pair.skill_id

    pairs_a, pairs_b = pairs_of(a), pairs_of(b)
    keys_a, keys_b = {key(p) for p in pairs_a}, {key(p) for p in pairs_b}
    only_a = [p for p in pairs_a if key(p) not in keys_b]
    only_b = [p for p in pairs_b if key(p) not in keys_a]
    lines = _lines(session, [*only_a[:PEOPLE_SHOWN], *only_b[:PEOPLE_SHOWN]])
    shown_a = min(len(only_a), PEOPLE_SHOWN)
    return Comparison(
        a=_summary(a),
        b=_summary(b),
        same_cohort=_asked(a) == _asked(b),
        only_a=lines[:shown_a],
        only_b=lines[shown_a:],
        only_a_count=len(only_a),
        only_b_count=len(only_b),
        shared_count=len(keys_a & keys_b),
    )


def volunteers_named(session: Session, usernames: Iterable[str]) -> dict[str, int]:
    """The active volunteers of these usernames (any case), by the username as given."""
    wanted = {name: username_key(name) for name in usernames}
    if not wanted:
        return {}
    rows = session.execute(
        select(Volunteer.username_key, Volunteer.id).where(
            Volunteer.username_key.in_(set(wanted.values())), Volunteer.is_active.is_(True)
        )
    )
    found = {key: volunteer_id for key, volunteer_id in rows}
    return {name: found[key] for name, key in wanted.items() if key in found}


def run_both(
    session: Session, matching: MatchingService, coordinator: Volunteer, data: RoundCreate
) -> tuple[RoundView, RoundView]:
    """The same question run as an optimal and as a stable round: two drafts."""
    optimal = rounds.run(
        session, matching, coordinator, data.model_copy(update={"mode": RoundMode.OPTIMAL.value})
    )
    stable = rounds.run(
        session, matching, coordinator, data.model_copy(update={"mode": RoundMode.STABLE.value})
    )
    return optimal, stable
