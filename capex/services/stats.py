"""Statistics for coordinators: aggregates over volunteers and exchanges, in SQL.

Every figure is one ``GROUP BY`` query (or a few) that runs on SQLite and PostgreSQL; no
function here loads rows into Python to count them. Each answer is a frozen dataclass
with ``as_of``, the time the ``clock`` gave when the figures were taken.

Definitions where the API leaves a choice (what a coordinator would expect):

- A *mentor* is an active volunteer with ``mentor_capacity > 0`` who offers at least one
  skill; ``offered`` for a skill counts such mentors offering it. A mentor's *open slots*
  are ``mentor_capacity - accepted_as_mentor``; ``open_slots`` sums them over the mentors
  counted. A *learner* is an active volunteer who wants at least one skill; ``wanted``
  counts active learners wanting the skill. ``gap = wanted - open_slots`` (negative when
  there are more free places than learners). Wants stay in a profile after an exchange
  completes, so completing frees a slot but does not lower ``wanted``.
- ``volunteers`` counts active accounts; ``new_volunteers_30d`` counts accounts created in
  the 30 days before ``as_of`` (deactivated ones too: they did join);
  ``active_volunteers_30d`` active accounts seen in those 30 days.
- States are the *effective* ones (``lifecycle.effective_state``): a ``requested``
  exchange older than ``request_ttl_days`` counts as ``expired``. ``accepted`` in the
  skill table and the funnel counts exchanges ever accepted (``accepted_at`` set: still
  accepted, completed, or cancelled after acceptance).
- ``acceptance_rate`` and ``expiry_rate``: ever accepted, and expired, over the requests
  no longer waiting for an answer (all minus ``requests_waiting``). ``completion_rate``:
  completed over the accepted exchanges that have ended (completed, or cancelled after
  acceptance). A rate with nothing to divide by is ``None``.
- ``median_response_hours``: the median of ``responded_at - created_at`` over the requests
  the mentor answered (accepted or declined), in hours.
- Funnel: requested (every exchange) -> answered (``responded_at`` set) -> accepted (ever)
  -> completed -> feedback (completed with at least one feedback); ``share_of_previous``
  is the stage's count over the previous stage's (``None`` for the first, or after 0).
  ``lost`` counts the declined, cancelled and expired ones.

Filters (``StatsFilter``): ``since``/``until`` are dates (inclusive, UTC) on the exchange's
``created_at``; ``area`` keeps the skills under that root skill, for exchanges, offers and
wants alike; ``region`` and ``language`` (a primary subtag such as ``pt``, or a full code
such as ``pt-BR``, as in the directory) keep volunteers of that region or language, and
exchanges whose *learner* is of that region or language. Volunteer counts ignore
``since``/``until``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, sessionmaker

from capex.config import Settings
from capex.db import session_scope
from capex.errors import Invalid, field_error
from capex.models import (
    Exchange,
    Feedback,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.services import skills as skill_service
from capex.services.exchanges.lifecycle import expiry_cutoff
from capex.services.profiles import VolunteerRef
from capex.vocabulary import ExchangeState, Side

Clock = Callable[[], datetime]
_ColumnLike = ColumnElement[Any] | InstrumentedAttribute[Any]
RECENT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class StatsFilter:
    region: str | None = None
    language: str | None = None
    area: str | None = None
    since: date | None = None
    until: date | None = None


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """What a statistics answer is asked of: the settings (the request TTL), the filters, and
    the clock that says when ``as_of`` is and which requests have expired."""

    settings: Settings
    filters: StatsFilter = StatsFilter()
    clock: Clock = utcnow


@dataclass(frozen=True, slots=True)
class Overview:
    as_of: datetime
    volunteers: int
    active_volunteers_30d: int
    new_volunteers_30d: int
    mentors: int
    mentors_with_open_slots: int
    learners: int
    exchanges: dict[ExchangeState, int]
    requests_waiting: int
    acceptance_rate: float | None
    completion_rate: float | None
    expiry_rate: float | None
    median_response_hours: float | None


@dataclass(frozen=True, slots=True)
class SkillRow:
    skill: str
    name: str
    offered: int
    open_slots: int
    wanted: int
    gap: int
    requested: int
    accepted: int
    completed: int
    expired: int
    median_response_hours: float | None


@dataclass(frozen=True, slots=True)
class SkillTable:
    as_of: datetime
    level: str
    items: list[SkillRow]


@dataclass(frozen=True, slots=True)
class FunnelStage:
    stage: str
    count: int
    share_of_previous: float | None


@dataclass(frozen=True, slots=True)
class Funnel:
    as_of: datetime
    stages: list[FunnelStage]
    lost: dict[ExchangeState, int]


FUNNEL_STAGES = ("requested", "answered", "accepted", "completed", "feedback")
LOST_STATES = (ExchangeState.DECLINED, ExchangeState.CANCELLED, ExchangeState.EXPIRED)
LEVELS = ("skill", "area")


# -- filters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    """A filter resolved against the database: the skills it keeps, the expiry cutoff."""

    filters: StatsFilter
    skills: set[str] | None
    cutoff: datetime
    now: datetime


def _scope(session: Session, query: StatsQuery) -> _Scope:
    """The filters made concrete: the area's skills, the expiry cutoff, the clock read once."""
    filters, now = query.filters, query.clock()
    skills: set[str] | None = None
    if filters.area is not None:
        tree = skill_service.parents(session)
        if filters.area not in tree or tree[filters.area] is not None:
            raise Invalid(
                f"unknown area {filters.area!r}: an area is a root skill",
                [field_error(["query", "area"], "not a root skill")],
            )
        skills = skill_service.subtree_ids(tree, filters.area)
    return _Scope(filters, skills, expiry_cutoff(query.settings, now), now)


def _speaks(volunteer_id: Any, language: str) -> ColumnElement[bool]:
    column = VolunteerLanguage.code if "-" in language else VolunteerLanguage.language
    return exists().where(VolunteerLanguage.volunteer_id == volunteer_id, column == language)


def _volunteer_conditions(scope: _Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Volunteer.is_active.is_(True)]
    if scope.filters.region is not None:
        conditions.append(Volunteer.region == scope.filters.region)
    if scope.filters.language is not None:
        conditions.append(_speaks(Volunteer.id, scope.filters.language))
    return conditions


def _exchange_conditions(scope: _Scope) -> list[ColumnElement[bool]]:
    filters = scope.filters
    conditions: list[ColumnElement[bool]] = []
    if filters.since is not None:
        conditions.append(Exchange.created_at >= datetime.combine(filters.since, time(), UTC))
    if filters.until is not None:
        end = datetime.combine(filters.until + timedelta(days=1), time(), UTC)
        conditions.append(Exchange.created_at < end)
    conditions.extend(_skill_in(Exchange.skill_id, scope))
    if filters.region is not None:
        conditions.append(
            Exchange.learner_id.in_(select(Volunteer.id).where(Volunteer.region == filters.region))
        )
    if filters.language is not None:
        conditions.append(_speaks(Exchange.learner_id, filters.language))
    return conditions


def _skill_in(column: Any, scope: _Scope) -> list[ColumnElement[bool]]:
    return [] if scope.skills is None else [column.in_(sorted(scope.skills))]


# -- SQL pieces ----------------------------------------------------------------------------


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _stale(scope: _Scope) -> ColumnElement[bool]:
    return and_(Exchange.state == ExchangeState.REQUESTED, Exchange.created_at <= scope.cutoff)


def _effectively(state: ExchangeState, scope: _Scope) -> ColumnElement[bool]:
    """SQL for 'the effective state is ``state``' at the scope's time."""
    if state == ExchangeState.REQUESTED:
        return and_(Exchange.state == state, Exchange.created_at > scope.cutoff)
    if state == ExchangeState.EXPIRED:
        return (Exchange.state == state) | _stale(scope)
    return Exchange.state == state


def _response_hours(session: Session) -> ColumnElement[float]:
    """Hours from the request to the mentor's answer, in each dialect's date arithmetic."""
    if session.get_bind().dialect.name == "postgresql":
        seconds = func.extract("epoch", Exchange.responded_at - Exchange.created_at)
        return cast(cast(seconds, Float) / 3600.0, Float)
    days = func.julianday(Exchange.responded_at) - func.julianday(Exchange.created_at)
    return cast(days * 24.0, Float)


def _medians(
    session: Session, key: _ColumnLike, conditions: Sequence[ColumnElement[bool]]
) -> dict[Any, float]:
    """The median response time per ``key``, by window functions (no MEDIAN in SQLite)."""
    hours = _response_hours(session)
    ranked = (
        select(
            key.label("key"),
            hours.label("hours"),
            func.row_number().over(partition_by=key, order_by=hours).label("rank"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(Exchange.responded_at.is_not(None), *conditions)
        .subquery()
    )
    # The middle row (odd n) or the two middle rows (even n): n <= 2 * rank <= n + 2.
    middle = (
        select(ranked.c.key, func.avg(ranked.c.hours))
        .where(2 * ranked.c.rank >= ranked.c.n, 2 * ranked.c.rank <= ranked.c.n + 2)
        .group_by(ranked.c.key)
    )
    return {row_key: round(float(value), 2) for row_key, value in session.execute(middle)}


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


# -- overview ------------------------------------------------------------------------------


def overview(session: Session, query: StatsQuery) -> Overview:
    """The headline figures: people, exchanges by state, rates, response time."""
    scope = _scope(session, query)
    people = _volunteer_conditions(scope)
    recent = scope.now - RECENT
    joined = session.execute(
        select(
            _count_if(Volunteer.is_active.is_(True)),
            _count_if(and_(Volunteer.is_active.is_(True), Volunteer.last_seen_at >= recent)),
            _count_if(Volunteer.created_at >= recent),
        ).where(*people[1:])
    ).one()
    mentors = session.execute(
        select(
            func.count(),
            _count_if(Volunteer.accepted_as_mentor < Volunteer.mentor_capacity),
        ).where(*people, _mentor(scope))
    ).one()
    learners = session.scalar(
        select(func.count()).where(*people, _learner(scope)).select_from(Volunteer)
    )
    by_state = _states(session, scope)
    waiting = by_state[ExchangeState.REQUESTED]
    decided = sum(by_state.values()) - waiting
    conditions = _exchange_conditions(scope)
    ever_accepted, accepted_ended = session.execute(
        select(
            _count_if(Exchange.accepted_at.is_not(None)),
            _count_if(
                and_(Exchange.accepted_at.is_not(None), Exchange.state != ExchangeState.ACCEPTED)
            ),
        ).where(*conditions)
    ).one()
    median = _medians(session, literal(1), conditions).get(1)
    return Overview(
        as_of=scope.now,
        volunteers=int(joined[0]),
        active_volunteers_30d=int(joined[1]),
        new_volunteers_30d=int(joined[2]),
        mentors=int(mentors[0]),
        mentors_with_open_slots=int(mentors[1]),
        learners=int(learners or 0),
        exchanges=by_state,
        requests_waiting=waiting,
        acceptance_rate=_rate(int(ever_accepted), decided),
        completion_rate=_rate(by_state[ExchangeState.COMPLETED], int(accepted_ended)),
        expiry_rate=_rate(by_state[ExchangeState.EXPIRED], decided),
        median_response_hours=median,
    )


def _states(session: Session, scope: _Scope) -> dict[ExchangeState, int]:
    """Exchanges by effective state, every state present."""
    counts = dict.fromkeys(ExchangeState, 0)
    rows = session.execute(
        select(Exchange.state, func.count(), _count_if(Exchange.created_at <= scope.cutoff))
        .where(*_exchange_conditions(scope))
        .group_by(Exchange.state)
    )
    for state, count, old in rows:
        if state == ExchangeState.REQUESTED:
            counts[ExchangeState.REQUESTED] += int(count) - int(old)
            counts[ExchangeState.EXPIRED] += int(old)
        else:
            counts[ExchangeState(state)] += int(count)
    return counts


# -- skills --------------------------------------------------------------------------------


def _root_of(skill_id: _ColumnLike) -> tuple[ColumnElement[str], list[Any]]:
    """The root skill of ``skill_id`` (the taxonomy is at most three deep), and the joins."""
    own, parent, grandparent = aliased(Skill), aliased(Skill), aliased(Skill)
    joins = [
        (own, own.id == skill_id),
        (parent, parent.id == own.parent_id),
        (grandparent, grandparent.id == parent.parent_id),
    ]
    return func.coalesce(grandparent.id, parent.id, own.id), joins


def _keyed(
    statement: Select[Any], skill_id: _ColumnLike, level: str
) -> tuple[Select[Any], _ColumnLike]:
    if level == "skill":
        return statement, skill_id
    root, joins = _root_of(skill_id)
    for index, (table, on) in enumerate(joins):
        statement = statement.join(table, on) if index == 0 else statement.outerjoin(table, on)
    return statement, root


def skills(session: Session, query: StatsQuery, *, level: str = "skill") -> SkillTable:
    """Supply, demand and exchanges per skill, or per root area (``level='area'``).

    Every skill of the taxonomy (or every area) has a row, those with the largest gap first.
    """
    if level not in LEVELS:
        raise Invalid(
            f"unknown level {level!r}", [field_error(["query", "level"], "skill or area")]
        )
    scope = _scope(session, query)
    people = _volunteer_conditions(scope)

    # One row per (key, mentor) first: at area level a mentor of two skills counts once.
    offer_key_base, offer_key = _keyed(
        select().select_from(SkillOffer).join(Volunteer, Volunteer.id == SkillOffer.volunteer_id),
        SkillOffer.skill_id,
        level,
    )
    per_mentor = (
        offer_key_base.add_columns(
            offer_key.label("key"),
            Volunteer.id.label("volunteer_id"),
            (Volunteer.mentor_capacity - Volunteer.accepted_as_mentor).label("open_slots"),
        )
        .where(*people, Volunteer.mentor_capacity > 0)
        .where(*_skill_in(SkillOffer.skill_id, scope))
        .distinct()
        .subquery()
    )
    supply = {
        key: (int(count), int(slots))
        for key, count, slots in session.execute(
            select(per_mentor.c.key, func.count(), func.sum(per_mentor.c.open_slots)).group_by(
                per_mentor.c.key
            )
        )
    }
    want_base, want_key = _keyed(
        select().select_from(SkillWant).join(Volunteer, Volunteer.id == SkillWant.volunteer_id),
        SkillWant.skill_id,
        level,
    )
    demand = {
        key: int(count)
        for key, count in session.execute(
            want_base.add_columns(want_key, func.count(distinct(SkillWant.volunteer_id)))
            .where(*people)
            .where(*_skill_in(SkillWant.skill_id, scope))
            .group_by(want_key)
        )
    }
    conditions = _exchange_conditions(scope)
    exchange_base, exchange_key = _keyed(select().select_from(Exchange), Exchange.skill_id, level)
    flows = {
        key: (int(requested), int(accepted), int(completed), int(expired))
        for key, requested, accepted, completed, expired in session.execute(
            exchange_base.add_columns(
                exchange_key,
                func.count(),
                _count_if(Exchange.accepted_at.is_not(None)),
                _count_if(Exchange.state == ExchangeState.COMPLETED),
                _count_if(_effectively(ExchangeState.EXPIRED, scope)),
            )
            .where(*conditions)
            .group_by(exchange_key)
        )
    }
    if level == "skill":
        medians = _medians(session, Exchange.skill_id, conditions)
    else:
        medians = _area_medians(session, conditions)
    names = select(Skill.id, Skill.name)
    if level == "area":
        names = names.where(Skill.parent_id.is_(None))
    if scope.skills is not None:
        names = names.where(Skill.id.in_(sorted(scope.skills)))
    items = []
    for skill_id, name in session.execute(names):
        offered, open_slots = supply.get(skill_id, (0, 0))
        wanted = demand.get(skill_id, 0)
        requested, accepted, completed, expired = flows.get(skill_id, (0, 0, 0, 0))
        items.append(
            SkillRow(
                skill=skill_id,
                name=name,
                offered=offered,
                open_slots=open_slots,
                wanted=wanted,
                gap=wanted - open_slots,
                requested=requested,
                accepted=accepted,
                completed=completed,
                expired=expired,
                median_response_hours=medians.get(skill_id),
            )
        )
    items.sort(key=lambda row: (-row.gap, row.skill))
    return SkillTable(as_of=scope.now, level=level, items=items)


def _area_medians(session: Session, conditions: Sequence[ColumnElement[bool]]) -> dict[Any, float]:
    # The window needs the root as a plain column: the skill -> root map is small.
    tree = skill_service.parents(session)
    roots: dict[str, str] = {}
    for skill_id in tree:
        current = skill_id
        while tree[current] is not None:
            current = tree[current]  # type: ignore[assignment]
        roots[skill_id] = current
    by_root: dict[str, list[str]] = {}
    for skill_id, root in roots.items():
        by_root.setdefault(root, []).append(skill_id)
    key = case(
        *((Exchange.skill_id.in_(sorted(members)), root) for root, members in by_root.items()),
        else_=Exchange.skill_id,
    )
    return _medians(session, key, conditions)


# -- funnel --------------------------------------------------------------------------------


def funnel(session: Session, query: StatsQuery) -> Funnel:
    """How requests fare from asking to feedback, and where the others were lost."""
    scope = _scope(session, query)
    with_feedback = exists().where(Feedback.exchange_id == Exchange.id)
    row = session.execute(
        select(
            func.count(),
            _count_if(Exchange.responded_at.is_not(None)),
            _count_if(Exchange.accepted_at.is_not(None)),
            _count_if(Exchange.state == ExchangeState.COMPLETED),
            _count_if(and_(Exchange.state == ExchangeState.COMPLETED, with_feedback)),
            *(_count_if(_effectively(state, scope)) for state in LOST_STATES),
        ).where(*_exchange_conditions(scope))
    ).one()
    counts = [int(value) for value in row]
    stages = []
    previous: int | None = None
    for stage, count in zip(FUNNEL_STAGES, counts, strict=False):
        share = None if not previous else count / previous
        stages.append(FunnelStage(stage, count, share))
        previous = count
    lost = dict(zip(LOST_STATES, counts[len(FUNNEL_STAGES) :], strict=True))
    return Funnel(as_of=scope.now, stages=stages, lost=lost)


# -- timeline ------------------------------------------------------------------------------

INTERVALS = ("month", "week")
TIMELINE_FIGURES = ("new_volunteers", "requested", "accepted", "completed", "expired")


@dataclass(frozen=True, slots=True)
class TimelineRow:
    period: str
    new_volunteers: int
    requested: int
    accepted: int
    completed: int
    expired: int


@dataclass(frozen=True, slots=True)
class Timeline:
    as_of: datetime
    interval: str
    items: list[TimelineRow]


def period_of(day: date, interval: str) -> str:
    """'YYYY-MM' for a month, the ISO week 'YYYY-Www' for a week."""
    if interval == "month":
        return f"{day.year:04d}-{day.month:02d}"
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def _day_of(session: Session, column: _ColumnLike) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp, as 'YYYY-MM-DD', in each dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


def _daily(
    session: Session, column: _ColumnLike, conditions: Sequence[ColumnElement[bool]]
) -> list[tuple[date, int]]:
    day = _day_of(session, column)
    rows = session.execute(
        select(day, func.count()).where(column.is_not(None), *conditions).group_by(day)
    )
    return [(date.fromisoformat(str(text)), int(count)) for text, count in rows]


def timeline(session: Session, query: StatsQuery, *, interval: str = "month") -> Timeline:
    """Volunteers joining and exchanges moving, per month or ISO week, oldest first.

    Each figure falls in the period of its own event: ``requested`` when the request was
    made, ``accepted`` when accepted, ``completed`` and ``expired`` when closed so (a stale
    request that the periodic task has not written yet: ``request_ttl_days`` after it was
    made). ``new_volunteers`` ignores ``since``/``until`` and ``area``. Every period from
    the first with a figure to the last is listed, empty ones with zeros.
    """
    if interval not in INTERVALS:
        raise Invalid(
            f"unknown interval {interval!r}",
            [field_error(["query", "interval"], "month or week")],
        )
    scope = _scope(session, query)
    conditions = _exchange_conditions(scope)
    people = _volunteer_conditions(scope)[1:]
    daily: dict[str, list[tuple[date, int]]] = {
        "new_volunteers": _daily(session, Volunteer.created_at, people),
        "requested": _daily(session, Exchange.created_at, conditions),
        "accepted": _daily(session, Exchange.accepted_at, conditions),
        "completed": _daily(
            session, Exchange.closed_at, [*conditions, Exchange.state == ExchangeState.COMPLETED]
        ),
        "expired": _daily(
            session, Exchange.closed_at, [*conditions, Exchange.state == ExchangeState.EXPIRED]
        ),
    }
    # A stale request expires request_ttl_days after it was made (the day, near enough).
    ttl = timedelta(days=query.settings.request_ttl_days)
    stale = _daily(session, Exchange.created_at, [*conditions, _stale(scope)])
    daily["expired"] += [((datetime.combine(d, time()) + ttl).date(), n) for d, n in stale]
    counts: dict[str, dict[str, int]] = {}
    days = [d for figure in daily.values() for d, _ in figure]
    if days:
        day, last = min(days), max(days)
        while day <= last:
            counts.setdefault(period_of(day, interval), dict.fromkeys(TIMELINE_FIGURES, 0))
            day += timedelta(days=1)
    for figure, rows in daily.items():
        for day, count in rows:
            counts[period_of(day, interval)][figure] += count
    items = [TimelineRow(period, **figures) for period, figures in sorted(counts.items())]
    return Timeline(as_of=scope.now, interval=interval, items=items)


# -- regions and languages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reach:
    """People and exchanges in one region or one language."""

    volunteers: int
    mentors: int
    open_slots: int
    learners: int
    waiting_learners: int
    requested: int
    completed: int


@dataclass(frozen=True, slots=True)
class RegionRow(Reach):
    region: str | None


@dataclass(frozen=True, slots=True)
class LanguageRow(Reach):
    language: str


@dataclass(frozen=True, slots=True)
class RegionTable:
    as_of: datetime
    items: list[RegionRow]


@dataclass(frozen=True, slots=True)
class LanguageTable:
    as_of: datetime
    items: list[LanguageRow]


def _mentor(scope: _Scope) -> ColumnElement[bool]:
    """The volunteer is a mentor: takes learners and offers a skill (in the area)."""
    offers = select(SkillOffer.volunteer_id).where(*_skill_in(SkillOffer.skill_id, scope))
    return and_(Volunteer.mentor_capacity > 0, Volunteer.id.in_(offers))


def _learner(scope: _Scope) -> ColumnElement[bool]:
    wants = select(SkillWant.volunteer_id).where(*_skill_in(SkillWant.skill_id, scope))
    return Volunteer.id.in_(wants)


def _someone_can_teach(
    scope: _Scope, learner_id: Any, language: Any | None = None
) -> ColumnElement[bool]:
    """An active mentor with an open slot offers a skill the learner wants (in the area),
    speaking ``language`` if given."""
    mentor = aliased(Volunteer)
    want, offer = aliased(SkillWant), aliased(SkillOffer)
    conditions = [
        want.volunteer_id == learner_id,
        offer.skill_id == want.skill_id,
        mentor.id == offer.volunteer_id,
        mentor.id != learner_id,
        mentor.is_active.is_(True),
        mentor.accepted_as_mentor < mentor.mentor_capacity,
        *_skill_in(want.skill_id, scope),
    ]
    if language is not None:
        spoken = aliased(VolunteerLanguage)
        conditions += [spoken.volunteer_id == mentor.id, spoken.language == language]
    return exists().where(*conditions)


def _people_by(
    session: Session,
    scope: _Scope,
    key: _ColumnLike,
    waiting: ColumnElement[bool],
    joined: Select[Any],
) -> dict[Any, tuple[int, int, int, int, int]]:
    """Volunteers, mentors, open slots, learners and waiting learners per ``key``."""
    mentor, learner = _mentor(scope), _learner(scope)
    open_slots = Volunteer.mentor_capacity - Volunteer.accepted_as_mentor
    rows = session.execute(
        joined.add_columns(
            key,
            func.count(),
            _count_if(mentor),
            func.coalesce(func.sum(case((mentor, open_slots), else_=0)), 0),
            _count_if(learner),
            _count_if(and_(learner, ~waiting)),
        )
        .where(*_volunteer_conditions(scope))
        .group_by(key)
    )
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}  # type: ignore[misc]


def _flows_by(
    session: Session, scope: _Scope, key: _ColumnLike, joined: Select[Any]
) -> dict[Any, tuple[int, int]]:
    rows = session.execute(
        joined.add_columns(key, func.count(), _count_if(Exchange.state == ExchangeState.COMPLETED))
        .where(*_exchange_conditions(scope))
        .group_by(key)
    )
    return {group: (int(requested), int(completed)) for group, requested, completed in rows}


def regions(session: Session, query: StatsQuery) -> RegionTable:
    """People and exchanges per region (``None``: no region given), learners' regions for
    exchanges. A waiting learner is one whom no active mentor with an open slot, anywhere,
    offers a skill they want."""
    scope = _scope(session, query)
    people = _people_by(
        session,
        scope,
        Volunteer.region,
        _someone_can_teach(scope, Volunteer.id),
        select().select_from(Volunteer),
    )
    flows = _flows_by(
        session,
        scope,
        Volunteer.region,
        select().select_from(Exchange).join(Volunteer, Volunteer.id == Exchange.learner_id),
    )
    items = [
        RegionRow(*people.get(region, (0, 0, 0, 0, 0)), *flows.get(region, (0, 0)), region=region)
        for region in sorted(people.keys() | flows.keys(), key=lambda r: (r is None, r or ""))
    ]
    return RegionTable(as_of=scope.now, items=items)


def languages(session: Session, query: StatsQuery) -> LanguageTable:
    """People and exchanges per language (primary subtag), learners' languages for
    exchanges. A waiting learner speaks the language and no active mentor with an open
    slot who speaks it too offers a skill they want."""
    scope = _scope(session, query)
    # One row per volunteer and primary subtag: "pt" and "pt-BR" both speak pt, once.
    speakers = (
        select(VolunteerLanguage.volunteer_id, VolunteerLanguage.language).distinct().subquery()
    )
    spoken = speakers.c.language
    people = _people_by(
        session,
        scope,
        spoken,
        _someone_can_teach(scope, Volunteer.id, spoken),
        select().select_from(Volunteer).join(speakers, speakers.c.volunteer_id == Volunteer.id),
    )
    flows = _flows_by(
        session,
        scope,
        spoken,
        select()
        .select_from(Exchange)
        .join(speakers, speakers.c.volunteer_id == Exchange.learner_id),
    )
    keep = scope.filters.language.split("-")[0] if scope.filters.language is not None else None
    items = [
        LanguageRow(
            *people.get(language, (0, 0, 0, 0, 0)), *flows.get(language, (0, 0)), language=language
        )
        for language in sorted(people.keys() | flows.keys())
        if keep is None or language == keep
    ]
    return LanguageTable(as_of=scope.now, items=items)


# -- mentors -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadRow:
    accepted_now: int
    mentors: int


@dataclass(frozen=True, slots=True)
class WaitingRequest:
    exchange_id: int
    mentor: VolunteerRef
    skill: str
    waiting_days: float


@dataclass(frozen=True, slots=True)
class TopMentor:
    mentor: VolunteerRef
    completed: int
    rating: float | None
    ratings: int


@dataclass(frozen=True, slots=True)
class MentorStats:
    as_of: datetime
    load: list[LoadRow]
    waiting_requests: list[WaitingRequest]
    top: list[TopMentor]


def mentors(session: Session, query: StatsQuery, *, limit: int = 20) -> MentorStats:
    """How loaded mentors are, the requests waiting longest, and who completes most.

    ``load``: mentors by the number of exchanges they have accepted now, every number from
    0 to the highest. ``waiting_requests``: the ``limit`` oldest requests still waiting for
    an answer (not yet expired), oldest first. ``top``: the ``limit`` mentors with the most
    completed exchanges, with the average of their learners' ratings on those exchanges
    (``None`` before any). ``load`` counts the mentors of the region and language asked
    for; the other two, like every exchange figure, the exchanges of such learners.
    """
    scope = _scope(session, query)
    people = _volunteer_conditions(scope)
    histogram = {
        int(accepted): int(count)
        for accepted, count in session.execute(
            select(Volunteer.accepted_as_mentor, func.count())
            .where(*people, _mentor(scope))
            .group_by(Volunteer.accepted_as_mentor)
        )
    }
    load = [
        LoadRow(accepted, histogram.get(accepted, 0))
        for accepted in range(max(histogram, default=-1) + 1)
    ]
    exchange_conditions = _exchange_conditions(scope)
    waiting = session.execute(
        select(
            Exchange.id,
            Volunteer.id,
            Volunteer.username,
            Volunteer.display_name,
            Exchange.skill_id,
            Exchange.created_at,
        )
        .join(Volunteer, Volunteer.id == Exchange.mentor_id)
        .where(_effectively(ExchangeState.REQUESTED, scope), *exchange_conditions)
        .order_by(Exchange.created_at, Exchange.id)
        .limit(limit)
    )
    waiting_requests = [
        WaitingRequest(
            exchange_id,
            VolunteerRef(mentor_id, username, display_name),
            skill,
            round((scope.now - created).total_seconds() / 86400, 2),
        )
        for exchange_id, mentor_id, username, display_name, skill, created in waiting
    ]
    completed = (
        select(Exchange.mentor_id.label("mentor_id"), func.count().label("completed"))
        .where(Exchange.state == ExchangeState.COMPLETED, *exchange_conditions)
        .group_by(Exchange.mentor_id)
        .subquery()
    )
    ratings = (
        select(
            Feedback.subject_id.label("mentor_id"),
            func.avg(Feedback.rating).label("rating"),
            func.count().label("ratings"),
        )
        .join(Exchange, Exchange.id == Feedback.exchange_id)
        .where(Feedback.author_role == Side.LEARNER, *exchange_conditions)
        .group_by(Feedback.subject_id)
        .subquery()
    )
    top = session.execute(
        select(
            Volunteer.id,
            Volunteer.username,
            Volunteer.display_name,
            completed.c.completed,
            ratings.c.rating,
            ratings.c.ratings,
        )
        .join(completed, completed.c.mentor_id == Volunteer.id)
        .outerjoin(ratings, ratings.c.mentor_id == Volunteer.id)
        .order_by(completed.c.completed.desc(), Volunteer.id)
        .limit(limit)
    )
    return MentorStats(
        as_of=scope.now,
        load=load,
        waiting_requests=waiting_requests,
        top=[
            TopMentor(
                VolunteerRef(mentor_id, username, display_name),
                int(count),
                None if rating is None else round(float(rating), 2),
                int(rated or 0),
            )
            for mentor_id, username, display_name, count, rating, rated in top
        ],
    )


# -- the answers as one object -------------------------------------------------------------


class StatsSource(Protocol):
    """Where the statistics come from: each answer of this module, given a query."""

    def overview(self, query: StatsQuery) -> Overview: ...
    def skills(self, query: StatsQuery, *, level: str = "skill") -> SkillTable: ...
    def funnel(self, query: StatsQuery) -> Funnel: ...
    def timeline(self, query: StatsQuery, *, interval: str = "month") -> Timeline: ...
    def regions(self, query: StatsQuery) -> RegionTable: ...
    def languages(self, query: StatsQuery) -> LanguageTable: ...
    def mentors(self, query: StatsQuery, *, limit: int = 20) -> MentorStats: ...


class SqlStats:
    """Every answer aggregated in the database on each call, in a read transaction."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def overview(self, query: StatsQuery) -> Overview:
        with session_scope(self.session_factory) as session:
            return overview(session, query)

    def skills(self, query: StatsQuery, *, level: str = "skill") -> SkillTable:
        with session_scope(self.session_factory) as session:
            return skills(session, query, level=level)

    def funnel(self, query: StatsQuery) -> Funnel:
        with session_scope(self.session_factory) as session:
            return funnel(session, query)

    def timeline(self, query: StatsQuery, *, interval: str = "month") -> Timeline:
        with session_scope(self.session_factory) as session:
            return timeline(session, query, interval=interval)

    def regions(self, query: StatsQuery) -> RegionTable:
        with session_scope(self.session_factory) as session:
            return regions(session, query)

    def languages(self, query: StatsQuery) -> LanguageTable:
        with session_scope(self.session_factory) as session:
            return languages(session, query)

    def mentors(self, query: StatsQuery, *, limit: int = 20) -> MentorStats:
        with session_scope(self.session_factory) as session:
            return mentors(session, query, limit=limit)
