"""An exchange history for the demo population: requests, answers, completions, feedback.

``generate_history`` draws ``exchanges`` requests over the last ``window_days`` from one
seeded ``np.random.Generator``: a learner asks a mentor who offers a skill they want (so
popular skills draw more requests), mentors with more requests per place accept less, some
requests expire unanswered after ``request_ttl_days``, completions come weeks after the
acceptance and feedback follows some of them. Each exchange's events walk the lifecycle's
table (``OPENING``, ``TRANSITIONS``, ``EXPIRY``) from ``requested`` to its state, and the
open ones keep the database's invariants: one open exchange per learner, mentor and skill,
accepted exchanges within the mentor's capacity, waiting requests within
``max_open_requests``. ``write_history`` writes the rows in batches (Core executemany; COPY
on PostgreSQL) and sets the volunteers' counters: 1,000,000 exchanges among 100,000
volunteers (2.2M events, 0.2M ratings) take ~100 s on SQLite and on PostgreSQL (2 cores).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np
from sqlalchemy import Table, and_, func, insert, select, text, update
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.demo.database import DemoResult
from capex.demo.parameters import HISTORY_PARAMETERS, HistoryParameters
from capex.demo.sampling import BoolArray, FloatArray, IntArray, draw
from capex.demo.tables import Row
from capex.errors import Invalid
from capex.models import Exchange, SkillOffer, SkillWant, Volunteer
from capex.models.base import utcnow
from capex.services.exchanges.lifecycle import EXPIRY, OPENING, TRANSITIONS, Transition
from capex.vocabulary import ExchangeAction, ExchangeState, Origin, Side

BATCH_SIZE = 20_000
DAY = 86_400.0
HOUR = 3_600.0

# Final states, as codes in the arrays.
STATES = (
    ExchangeState.REQUESTED,
    ExchangeState.ACCEPTED,
    ExchangeState.DECLINED,
    ExchangeState.CANCELLED,
    ExchangeState.EXPIRED,
    ExchangeState.COMPLETED,
)
_REQUESTED, _ACCEPTED, _DECLINED, _CANCELLED, _EXPIRED, _COMPLETED = range(len(STATES))
# Who closed an exchange: codes in ``closer``.
_LEARNER, _MENTOR, _SYSTEM = 0, 1, 2


def _transition(action: ExchangeAction, from_state: ExchangeState) -> Transition:
    return next(t for t in TRANSITIONS if t.action == action and t.from_state == from_state)


_ACCEPT = _transition(ExchangeAction.ACCEPT, ExchangeState.REQUESTED)
_DECLINE = _transition(ExchangeAction.DECLINE, ExchangeState.REQUESTED)
_CANCEL_WAITING = _transition(ExchangeAction.CANCEL, ExchangeState.REQUESTED)
_CANCEL_ACCEPTED = _transition(ExchangeAction.CANCEL, ExchangeState.ACCEPTED)
_COMPLETE = _transition(ExchangeAction.COMPLETE, ExchangeState.ACCEPTED)


@dataclass(frozen=True, slots=True)
class Pool:
    """Who can take part: active volunteers, their offers and wants (indices into ``ids``)."""

    ids: IntArray
    # Sign-up, in seconds before now.
    signup_ages: FloatArray
    capacity: IntArray
    skill_ids: list[str]
    offer_volunteer: IntArray
    offer_skill: IntArray
    want_volunteer: IntArray
    want_skill: IntArray


@dataclass(frozen=True, slots=True)
class History:
    """The drawn exchanges, one entry per exchange; times in seconds before now (>= 0)."""

    learner: IntArray
    mentor: IntArray
    skill: IntArray
    state: IntArray
    created: FloatArray
    # NaN where the exchange never got there.
    responded: FloatArray
    accepted: FloatArray
    closed: FloatArray
    closer: IntArray
    # Feedback: which exchanges, by whom (learner True), rating and age.
    feedback_exchange: IntArray
    feedback_by_learner: BoolArray
    feedback_rating: IntArray
    feedback_age: FloatArray


@dataclass(frozen=True, slots=True)
class HistoryResult:
    exchanges: int
    events: int
    feedback: int
    seconds: float


def draw_history(
    rng: np.random.Generator,
    pool: Pool,
    exchanges: int,
    settings: Settings,
    parameters: HistoryParameters = HISTORY_PARAMETERS,
) -> History:
    """``exchanges`` requests and what became of them, as arrays (see ``History``)."""
    p = parameters
    ttl = settings.request_ttl_days * DAY
    learner, mentor, skill = _pairs(rng, pool, exchanges)
    count = len(learner)
    window = p.window_days * DAY
    # Not before either participant signed up, nor before the window.
    latest_start = np.minimum(
        np.minimum(pool.signup_ages[learner], pool.signup_ages[mentor]), window
    )
    created = latest_start * rng.random(count)

    # Busy mentors accept less: requests per place and month over the window.
    months = p.window_days / 30.0
    load = np.bincount(mentor, minlength=len(pool.ids)) / np.maximum(pool.capacity, 1) / months
    accept_chance = p.accept_base / (1.0 + p.accept_load_slope * load[mentor])

    fate = rng.random(count)
    withdrawn = fate < p.withdrawn
    unanswered = ~withdrawn & (fate < p.withdrawn + p.unanswered)
    answered = ~withdrawn & ~unanswered
    accepts = answered & (rng.random(count) < accept_chance)
    answer_delay = np.minimum(rng.exponential(p.answer_mean_hours * HOUR, count), 0.9 * ttl)
    withdraw_delay = rng.random(count) * 0.9 * ttl
    expiry_delay = ttl + rng.random(count) * p.expiry_lag_hours * HOUR
    completes = rng.random(count) < p.completed
    run = np.where(
        completes,
        p.completion_min_days * DAY
        + rng.gamma(p.completion_gamma[0], p.completion_gamma[1] * DAY, count),
        rng.random(count) * p.cancel_within_days * DAY,
    )
    closer = np.where(rng.random(count) < p.mentor_closes, _MENTOR, _LEARNER)

    nan = np.full(count, np.nan)
    state = np.full(count, _REQUESTED)
    responded, accepted, closed = nan.copy(), nan.copy(), nan.copy()
    # Times count down to now (0): an event at age <= 0 has not happened yet.
    withdraw_at = created - withdraw_delay
    done = withdrawn & (withdraw_at > 0)
    state[done], closed[done], closer[done] = _CANCELLED, withdraw_at[done], _LEARNER
    expire_at = np.maximum(created - expiry_delay, 0.0)
    done = unanswered & (created > ttl)
    state[done], closed[done], closer[done] = _EXPIRED, expire_at[done], _SYSTEM
    answer_at = created - answer_delay
    done = answered & (answer_at > 0)
    responded[done] = answer_at[done]
    declined = done & ~accepts
    state[declined], closed[declined], closer[declined] = _DECLINED, answer_at[declined], _MENTOR
    taken = done & accepts
    state[taken], accepted[taken] = _ACCEPTED, answer_at[taken]
    end_at = answer_at - run
    ended = taken & (end_at > 0)
    state[ended] = np.where(completes[ended], _COMPLETED, _CANCELLED)
    closed[ended] = end_at[ended]

    history = History(
        learner=learner,
        mentor=mentor,
        skill=skill,
        state=state,
        created=created,
        responded=responded,
        accepted=accepted,
        closed=closed,
        closer=closer,
        feedback_exchange=np.zeros(0, dtype=np.int64),
        feedback_by_learner=np.zeros(0, dtype=np.bool_),
        feedback_rating=np.zeros(0, dtype=np.int64),
        feedback_age=np.zeros(0),
    )
    _keep_invariants(rng, history, pool, settings)
    return _with_feedback(rng, history, p)


def _pairs(rng: np.random.Generator, pool: Pool, exchanges: int) -> tuple[IntArray, ...]:
    """(learner, mentor, skill) per request: a want, and a mentor offering that skill."""
    n_skills = len(pool.skill_ids)
    order = np.argsort(pool.offer_skill, kind="stable")
    offers_of = np.bincount(pool.offer_skill, minlength=n_skills)
    first_offer = np.concatenate(([0], np.cumsum(offers_of)[:-1]))
    wants = np.flatnonzero(offers_of[pool.want_skill] > 0)
    if not len(wants) or exchanges < 1:
        raise Invalid("the demo population has no learner who wants a skill someone offers")
    parts: list[tuple[IntArray, IntArray, IntArray]] = []
    found = 0
    for _ in range(20):
        size = int((exchanges - found) * 1.1) + 16
        want = wants[rng.integers(0, len(wants), size)]
        learner, skill = pool.want_volunteer[want], pool.want_skill[want]
        offset = (rng.random(size) * offers_of[skill]).astype(np.int64)
        mentor = pool.offer_volunteer[order[first_offer[skill] + offset]]
        # Nobody mentors themselves: take the skill's next mentor instead, if there is one.
        offset = np.where(mentor == learner, (offset + 1) % offers_of[skill], offset)
        mentor = pool.offer_volunteer[order[first_offer[skill] + offset]]
        keep = mentor != learner
        parts.append((learner[keep], mentor[keep], skill[keep]))
        found += int(keep.sum())
        if found >= exchanges:
            break
    else:
        raise Invalid("too few mentors for the demo history; load more volunteers")
    learner, mentor, skill = (
        np.concatenate(column)[:exchanges] for column in zip(*parts, strict=True)
    )
    return learner, mentor, skill


def _ranks(groups: IntArray, times: FloatArray) -> IntArray:
    """Each entry's rank within its group, earliest (oldest: largest age) first."""
    order = np.lexsort((-times, groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_groups[1:] != sorted_groups[:-1])))
    first = np.repeat(starts, np.diff(np.concatenate((starts, [len(order)]))))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - first
    return ranks


def _keep_invariants(rng: np.random.Generator, h: History, pool: Pool, settings: Settings) -> None:
    """Close the open exchanges the database would refuse, in place.

    A second open exchange of the same learner, mentor and skill is cancelled by the
    learner; accepts past the mentor's capacity become declines; waiting requests past
    ``max_open_requests`` are cancelled by the learner.
    """
    n_skills = len(pool.skill_ids)
    n = len(pool.ids)
    open_ = np.flatnonzero((h.state == _REQUESTED) | (h.state == _ACCEPTED))
    if len(open_):
        key = (h.learner[open_] * n + h.mentor[open_]) * n_skills + h.skill[open_]
        extra = open_[_ranks(key, h.created[open_]) > 0]
        last = np.where(h.state[extra] == _ACCEPTED, h.accepted[extra], h.created[extra])
        h.closed[extra] = last * rng.random(len(extra))
        h.state[extra], h.closer[extra] = _CANCELLED, _LEARNER

    taken = np.flatnonzero(h.state == _ACCEPTED)
    if len(taken):
        full = taken[_ranks(h.mentor[taken], h.accepted[taken]) >= pool.capacity[h.mentor[taken]]]
        h.state[full], h.closer[full] = _DECLINED, _MENTOR
        h.closed[full], h.accepted[full] = h.responded[full], np.nan

    waiting = np.flatnonzero(h.state == _REQUESTED)
    if len(waiting):
        many = waiting[_ranks(h.learner[waiting], h.created[waiting]) >= settings.max_open_requests]
        h.closed[many] = h.created[many] * rng.random(len(many))
        h.state[many], h.closer[many] = _CANCELLED, _LEARNER


def _with_feedback(rng: np.random.Generator, h: History, p: HistoryParameters) -> History:
    completed = np.flatnonzero(h.state == _COMPLETED)
    by_learner = rng.random(len(completed)) < p.learner_feedback
    by_mentor = rng.random(len(completed)) < p.mentor_feedback
    exchange = np.concatenate((completed[by_learner], completed[by_mentor]))
    learner = np.concatenate((np.ones(by_learner.sum(), bool), np.zeros(by_mentor.sum(), bool)))
    order = np.argsort(exchange, kind="stable")
    exchange, learner = exchange[order], learner[order]
    delay = rng.exponential(p.feedback_mean_days * DAY, len(exchange))
    age = np.maximum(h.closed[exchange] - delay, 0.0)
    rating = draw(rng, p.rating, len(exchange))
    return replace(
        h,
        feedback_exchange=exchange.astype(np.int64),
        feedback_by_learner=learner,
        feedback_rating=rating,
        feedback_age=age,
    )


# -- rows ----------------------------------------------------------------------------------

RowBatch = tuple[list[Row], list[Row], list[Row]]


def history_rows(
    h: History,
    pool: Pool,
    now: datetime,
    *,
    first_exchange_id: int,
    first_event_id: int,
    first_feedback_id: int,
) -> Iterator[tuple[int, RowBatch]]:
    """(exchanges so far, (exchange rows, event rows, feedback rows)) batch by batch."""
    ids = pool.ids
    event_id = first_event_id
    feedback_id = first_feedback_id
    feedback_start = 0
    count = len(h.state)
    for start in range(0, count, BATCH_SIZE):
        stop = min(start + BATCH_SIZE, count)
        exchanges: list[Row] = []
        events: list[Row] = []
        for index in range(start, stop):
            learner_id, mentor_id = int(ids[h.learner[index]]), int(ids[h.mentor[index]])
            exchange_id = first_exchange_id + index
            state = int(h.state[index])
            created = _at(now, h.created[index])
            responded = _maybe_at(now, h.responded[index])
            accepted = _maybe_at(now, h.accepted[index])
            closed = _maybe_at(now, h.closed[index])
            walk: list[tuple[Transition, datetime, int | None]] = [(OPENING, created, learner_id)]
            closer = int(h.closer[index])
            closer_id = None if closer == _SYSTEM else (learner_id, mentor_id)[closer]
            if accepted is not None:
                walk.append((_ACCEPT, accepted, mentor_id))
            if closed is not None:
                walk.append((_closing(state, accepted is not None), closed, closer_id))
            exchanges.append(
                {
                    "id": exchange_id,
                    "learner_id": learner_id,
                    "mentor_id": mentor_id,
                    "skill_id": pool.skill_ids[h.skill[index]],
                    "state": STATES[state],
                    "origin": Origin.REQUEST,
                    "message": "",
                    "created_at": created,
                    "updated_at": walk[-1][1],
                    "responded_at": responded,
                    "accepted_at": accepted,
                    "closed_at": closed,
                }
            )
            for transition, at, actor_id in walk:
                events.append(
                    {
                        "id": event_id,
                        "exchange_id": exchange_id,
                        "at": at,
                        "actor_id": actor_id,
                        "action": transition.action,
                        "from_state": transition.from_state,
                        "to_state": transition.to_state,
                        "note": "unanswered" if transition is EXPIRY else "",
                    }
                )
                event_id += 1
        feedback_stop = int(np.searchsorted(h.feedback_exchange, stop))
        feedback: list[Row] = []
        for index in range(feedback_start, feedback_stop):
            exchange = int(h.feedback_exchange[index])
            learner_id, mentor_id = int(ids[h.learner[exchange]]), int(ids[h.mentor[exchange]])
            by_learner = bool(h.feedback_by_learner[index])
            feedback.append(
                {
                    "id": feedback_id,
                    "exchange_id": first_exchange_id + exchange,
                    "author_id": learner_id if by_learner else mentor_id,
                    "subject_id": mentor_id if by_learner else learner_id,
                    "author_role": Side.LEARNER if by_learner else Side.MENTOR,
                    "rating": int(h.feedback_rating[index]),
                    "comment": "",
                    "created_at": _at(now, h.feedback_age[index]),
                }
            )
            feedback_id += 1
        feedback_start = feedback_stop
        yield stop, (exchanges, events, feedback)


def _closing(state: int, accepted: bool) -> Transition:
    """The transition that closed an exchange in ``state``."""
    if state == _DECLINED:
        return _DECLINE
    if state == _EXPIRED:
        return EXPIRY
    if state == _COMPLETED:
        return _COMPLETE
    return _CANCEL_ACCEPTED if accepted else _CANCEL_WAITING


def _at(now: datetime, age: float) -> datetime:
    """``now`` less ``age`` seconds, to the whole second."""
    return now - timedelta(seconds=int(age))


def _maybe_at(now: datetime, age: float) -> datetime | None:
    """``_at``, or None for NaN (never happened)."""
    return None if np.isnan(age) else _at(now, age)


# -- the database --------------------------------------------------------------------------


def read_pool(session: Session, first_id: int, last_id: int, now: datetime) -> Pool:
    """The active volunteers with ids ``first_id`` .. ``last_id``, their offers and wants."""
    people = session.execute(
        select(Volunteer.id, Volunteer.created_at, Volunteer.mentor_capacity)
        .where(Volunteer.id.between(first_id, last_id), Volunteer.is_active.is_(True))
        .order_by(Volunteer.id)
    ).all()
    ids = np.array([row.id for row in people], dtype=np.int64)
    ages = np.array([max((now - row.created_at).total_seconds(), 0.0) for row in people])
    capacity = np.array([row.mentor_capacity for row in people], dtype=np.int64)
    index = {int(volunteer_id): position for position, volunteer_id in enumerate(ids)}
    skills: dict[str, int] = {}

    def links(model: type[SkillOffer] | type[SkillWant]) -> tuple[IntArray, IntArray]:
        rows = session.execute(
            select(model.volunteer_id, model.skill_id)
            .where(model.volunteer_id.between(first_id, last_id))
            .order_by(model.volunteer_id, model.position)
        ).all()
        rows = [row for row in rows if row[0] in index]
        volunteer = np.array([index[row[0]] for row in rows], dtype=np.int64)
        skill = np.array([skills.setdefault(row[1], len(skills)) for row in rows], np.int64)
        return volunteer, skill

    offer_volunteer, offer_skill = links(SkillOffer)
    want_volunteer, want_skill = links(SkillWant)
    return Pool(
        ids=ids,
        signup_ages=ages,
        capacity=capacity,
        skill_ids=list(skills),
        offer_volunteer=offer_volunteer,
        offer_skill=offer_skill,
        want_volunteer=want_volunteer,
        want_skill=want_skill,
    )


def write_history(
    session: Session,
    settings: Settings,
    population: DemoResult,
    *,
    exchanges: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> HistoryResult:
    """Write ``exchanges`` exchanges among the volunteers ``populate`` just wrote.

    None of them is in an exchange yet: their
    counters are set to the open exchanges written here. The same seed, clock and
    population give the same history. ``progress`` gets the number of exchanges written so
    far after each batch. Flushes but does not commit.
    """
    started = time.perf_counter()
    now = clock().astimezone(UTC).replace(microsecond=0)
    session.flush()
    pool = read_pool(session, population.first_id, population.last_id, now)
    history = draw_history(np.random.default_rng(seed), pool, exchanges, settings)
    tables = tuple(
        Volunteer.metadata.tables[name] for name in ("exchanges", "exchange_events", "feedback")
    )
    first_ids = [_reserve_ids(session, table) for table in tables]
    written = [0, 0, 0]
    for stop, batch in history_rows(
        history,
        pool,
        now,
        first_exchange_id=first_ids[0],
        first_event_id=first_ids[1],
        first_feedback_id=first_ids[2],
    ):
        for which, (table, rows) in enumerate(zip(tables, batch, strict=True)):
            if rows:
                _insert(session, table, rows)
                written[which] += len(rows)
        if progress is not None:
            progress(stop)
    for table, first, count in zip(tables, first_ids, written, strict=True):
        _advance_sequence(session, table, first + count - 1)
    _set_counters(session, population.first_id, population.last_id)
    session.flush()
    return HistoryResult(
        exchanges=written[0],
        events=written[1],
        feedback=written[2],
        seconds=time.perf_counter() - started,
    )


def _insert(session: Session, table: Table, rows: list[Row]) -> None:
    """Bulk insert: COPY on PostgreSQL (several times faster), executemany elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    names = list(rows[0])
    driver = session.connection().connection.driver_connection
    statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row([_copied(row[name]) for name in names])


def _copied(value: object) -> object:
    """A value as COPY takes it: words as their text, times in UTC."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def _reserve_ids(session: Session, table: Table) -> int:
    return int(session.scalar(select(func.max(table.c.id))) or 0) + 1


def _advance_sequence(session: Session, table: Table, last: int) -> None:
    """On PostgreSQL, let rows inserted later get ids after the ones given here."""
    if session.get_bind().dialect.name == "postgresql" and last > 0:
        session.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :last)"),
            {"last": last},
        )


def _set_counters(session: Session, first_id: int, last_id: int) -> None:
    """``accepted_as_mentor`` and ``requested_as_learner`` from the exchanges as written."""

    def open_count(column: object, state: ExchangeState) -> object:
        return (
            select(func.count())
            .select_from(Exchange)
            .where(and_(column == Volunteer.id, Exchange.state == state))
            .scalar_subquery()
        )

    session.execute(
        update(Volunteer)
        .where(Volunteer.id.between(first_id, last_id))
        .values(
            accepted_as_mentor=open_count(Exchange.mentor_id, ExchangeState.ACCEPTED),
            requested_as_learner=open_count(Exchange.learner_id, ExchangeState.REQUESTED),
        ),
        execution_options={"synchronize_session": False},
    )
