"""The one adapter between the database and the matching engine.

Each worker process keeps one :class:`MatchingService`: an in-memory ``MatchIndex`` built
from the database, kept fresh by polling ``volunteers.updated_at`` (every profile change
bumps it), so a change made through any worker shows in every worker's matches within
``poll_interval`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capex.errors import Invalid, field_error
from capex.matching import Match, MatchIndex, Role, SkillSpace, VolunteerRecord, next_week_start
from capex.models import (
    AvailabilitySlot,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.services.profiles import open_slots_by_id

# A transaction that stamped updated_at before our last poll may commit after it; looking
# this far back on every poll catches it (upserts are idempotent).
POLL_OVERLAP = timedelta(seconds=30)


def load_records(session: Session, ids: Iterable[int] | None = None) -> list[VolunteerRecord]:
    """Engine records for the given volunteers (all volunteers when ``ids`` is None).

    Plain column queries, one per table, so that 100,000 volunteers load in seconds.
    """
    id_list = None if ids is None else list(ids)

    def restrict(statement: Any, column: Any) -> Any:
        return statement if id_list is None else statement.where(column.in_(id_list))

    languages: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for volunteer_id, code, level in session.execute(
        restrict(
            select(VolunteerLanguage.volunteer_id, VolunteerLanguage.code, VolunteerLanguage.level),
            VolunteerLanguage.volunteer_id,
        ).order_by(VolunteerLanguage.volunteer_id, VolunteerLanguage.position)
    ):
        languages[volunteer_id].append((code, level))
    slots: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for volunteer_id, weekday, start, end in session.execute(
        restrict(
            select(
                AvailabilitySlot.volunteer_id,
                AvailabilitySlot.weekday,
                AvailabilitySlot.start_minute,
                AvailabilitySlot.end_minute,
            ),
            AvailabilitySlot.volunteer_id,
        )
    ):
        slots[volunteer_id].append((weekday, start, end))
    offers = _skill_entries(session, SkillOffer, restrict)
    wants = _skill_entries(session, SkillWant, restrict)
    open_slots = open_slots_by_id(session, id_list)
    records = []
    for volunteer_id, active, timezone in session.execute(
        restrict(
            select(Volunteer.id, Volunteer.is_active, Volunteer.timezone), Volunteer.id
        ).order_by(Volunteer.id)
    ):
        records.append(
            VolunteerRecord(
                id=volunteer_id,
                active=bool(active),
                timezone=timezone,
                languages=tuple(languages.get(volunteer_id, ())),
                slots=tuple(sorted(slots.get(volunteer_id, ()))),
                offers=tuple(offers.get(volunteer_id, ())),
                wants=tuple(wants.get(volunteer_id, ())),
                open_slots=open_slots.get(volunteer_id, 0),
            )
        )
    return records


def _skill_entries(
    session: Session, table: type[SkillOffer] | type[SkillWant], restrict: Callable[..., Any]
) -> dict[int, list[tuple[str, int]]]:
    entries: dict[int, list[tuple[str, int]]] = defaultdict(list)
    statement = restrict(
        select(table.volunteer_id, table.skill_id, table.level), table.volunteer_id
    ).order_by(table.volunteer_id, table.position)
    for volunteer_id, skill_id, level in session.execute(statement):
        entries[volunteer_id].append((skill_id, level))
    return entries


def _taxonomy_version(session: Session) -> tuple[int, datetime | None]:
    count, latest = session.execute(select(func.count(), func.max(Skill.updated_at))).one()
    return int(count), latest


@dataclass
class _State:
    index: MatchIndex
    week_start: datetime
    taxonomy: tuple[int, datetime | None]
    watermark: datetime
    polled_at: float


class MatchingService:
    """A process-wide matching index over the database, refreshed incrementally.

    Parameters
    ----------
    session_factory : sessionmaker
        Where the index reads volunteers from.
    poll_interval : float, default 0.5
        Seconds between looks for changed profiles; a query never sees data older than this.
    clock : callable, default utcnow
        The current aware UTC time (tests move it).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.poll_interval = poll_interval
        self.clock = clock
        self._state: _State | None = None
        self._lock = threading.Lock()

    def index(self) -> MatchIndex:
        """The index, built or refreshed first if it is due."""
        with self._lock:
            state = self._state
            week_start = next_week_start(self.clock())
            if state is None or state.week_start != week_start:
                state = self._state = self._build(week_start)
            elif time.monotonic() - state.polled_at >= self.poll_interval:
                self._poll(state)
            return state.index

    def _build(self, week_start: datetime) -> _State:
        started = self.clock()
        with self.session_factory() as session:
            taxonomy = _taxonomy_version(session)
            tree = {
                row.id: row.parent_id for row in session.execute(select(Skill.id, Skill.parent_id))
            }
            index = MatchIndex(SkillSpace(tree), week_start)
            index.build(record for record in load_records(session) if record.active)
        return _State(index, week_start, taxonomy, started, time.monotonic())

    def _poll(self, state: _State) -> None:
        started = self.clock()
        with self.session_factory() as session:
            if _taxonomy_version(session) != state.taxonomy:
                self._state = self._build(state.week_start)
                return
            changed = list(
                session.scalars(
                    select(Volunteer.id).where(
                        Volunteer.updated_at > state.watermark - POLL_OVERLAP
                    )
                )
            )
            records = load_records(session, changed) if changed else []
        state.index.upsert(record for record in records if record.active)
        state.index.remove(record.id for record in records if not record.active)
        state.watermark = started
        state.polled_at = time.monotonic()

    def matches(
        self,
        session: Session,
        volunteer_id: int,
        *,
        role: Role,
        skill: str | None = None,
        limit: int = 20,
    ) -> list[Match]:
        """Ranked counterparts for one volunteer, best first (see ``docs/matching.md``)."""
        index = self.index()
        if skill is not None:
            _check_own_skill(session, volunteer_id, role, skill)
        if volunteer_id in index:
            return index.query(volunteer_id, role=role, skill=skill, limit=limit)
        # Not indexed yet (registered within the poll interval): score the fresh record.
        (record,) = load_records(session, [volunteer_id])
        return index.query(record, role=role, skill=skill, limit=limit)


def _check_own_skill(session: Session, volunteer_id: int, role: Role, skill: str) -> None:
    table: type[SkillOffer] | type[SkillWant] = SkillWant if role == "learner" else SkillOffer
    listed = session.scalar(
        select(func.count()).where(table.volunteer_id == volunteer_id, table.skill_id == skill)
    )
    if not listed:
        if session.get(Skill, skill) is None:
            message = f"unknown skill {skill!r}"
        else:
            side = "want" if role == "learner" else "offer"
            message = f"you do not {side} {skill!r}; add it to your profile first"
        raise Invalid(message, [field_error(["query", "skill"], message)])
