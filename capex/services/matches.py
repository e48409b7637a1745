"""The one adapter between the database and the matching engine.

Each worker process keeps one :class:`MatchingService`: an in-memory ``MatchIndex`` built
from the database, kept fresh by polling ``volunteers.updated_at`` (every profile change
bumps it), so a change made through any worker shows in every worker's matches within
``poll_interval`` seconds; the asker's own profile is read afresh on every query, and full
rebuilds run in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capex.errors import Invalid, field_error
from capex.matching import (
    Match,
    MatchIndex,
    SkillExplanation,
    SkillSpace,
    VolunteerRecord,
    next_week_start,
)
from capex.matching import types as engine
from capex.matching.types import ROLES
from capex.matching.types import Role as EngineRole
from capex.models import (
    AvailabilitySlot,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.schemas.profiles import format_time
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.vocabulary import ProfileChangeKind, Side

# A transaction that stamped updated_at before our last poll may commit after it; looking
# this far back on every poll catches it (upserts are idempotent).
POLL_OVERLAP = timedelta(seconds=30)

logger = logging.getLogger("capex.matching")

# The engine keeps its own words for the sides (it imports nothing of capex).
_ENGINE_ROLE: dict[Side, EngineRole] = {Side(role): role for role in ROLES}


@dataclass(frozen=True)
class LoadedRecords:
    """Engine records and, per volunteer id, the ``updated_at`` they are at least as new as."""

    records: list[VolunteerRecord]
    stamps: dict[int, datetime]


def load_records(session: Session, ids: Iterable[int] | None = None) -> LoadedRecords:
    """Engine records for the given volunteers (all volunteers when ``ids`` is None).

    Plain column queries, one per table, so that 100,000 volunteers load in seconds. The
    volunteers' own row (with ``updated_at``) is read first: on PostgreSQL each statement
    sees the commits made before it, so the rows read after it are at least that new.
    """
    id_list = None if ids is None else list(ids)

    def restrict(statement: Any, column: Any) -> Any:
        return statement if id_list is None else statement.where(column.in_(id_list))

    volunteers = session.execute(
        restrict(
            select(
                Volunteer.id,
                Volunteer.is_active,
                Volunteer.timezone,
                Volunteer.mentor_capacity - Volunteer.accepted_as_mentor,
                Volunteer.updated_at,
            ),
            Volunteer.id,
        ).order_by(Volunteer.id)
    ).all()
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
    records = [
        VolunteerRecord(
            id=volunteer_id,
            active=bool(active),
            timezone=timezone,
            languages=tuple(languages.get(volunteer_id, ())),
            slots=tuple(sorted(slots.get(volunteer_id, ()))),
            offers=tuple(offers.get(volunteer_id, ())),
            wants=tuple(wants.get(volunteer_id, ())),
            open_slots=int(open_slots),
        )
        for volunteer_id, active, timezone, open_slots, _ in volunteers
    ]
    return LoadedRecords(records, {row[0]: row[4] for row in volunteers})


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


def _known_skills_only(record: VolunteerRecord, skills: SkillSpace) -> VolunteerRecord:
    """``record`` without the skills ``skills`` does not hold.

    A skill added to the taxonomy after an index was built is unknown to it until the
    rebuild that follows; meanwhile it can match nobody in that index, so it is left out
    rather than failing the whole batch.
    """
    offers = tuple(entry for entry in record.offers if entry[0] in skills)
    wants = tuple(entry for entry in record.wants if entry[0] in skills)
    if len(offers) == len(record.offers) and len(wants) == len(record.wants):
        return record
    return replace(record, offers=offers, wants=wants)


@dataclass
class _State:
    index: MatchIndex
    # Per indexed volunteer: the updated_at its row in the index is at least as new as.
    stamps: dict[int, datetime]
    week_start: datetime
    taxonomy: tuple[int, datetime | None]
    watermark: datetime
    polled_at: float


class MatchingService:
    """A process-wide matching index over the database, refreshed incrementally.

    Other volunteers' changes reach the index by polling, within ``poll_interval``; the
    asking volunteer's own record is read afresh on every query, so a volunteer always sees
    matches for the profile they just saved, whichever worker answers. A full rebuild (a
    new week, a taxonomy change) runs in a background thread while queries keep being
    answered from the previous index; only the very first build is waited for.

    Parameters
    ----------
    session_factory : sessionmaker
        Where the index reads volunteers from.
    poll_interval : float, default 0.5
        Seconds between looks for changed profiles.
    clock : callable, default utcnow
        The current aware UTC time (tests move it).
    rebuild_in_background : bool, default True
        False rebuilds inside the query that finds the index out of date (for tests whose
        sessions share one connection, which a second thread must not use).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
        rebuild_in_background: bool = True,
    ) -> None:
        self.session_factory = session_factory
        self.poll_interval = poll_interval
        self.clock = clock
        self.rebuild_in_background = rebuild_in_background
        self._state: _State | None = None
        self._first_build = threading.Lock()
        self._polling = threading.Lock()
        self._rebuilding = threading.Lock()

    def index(self) -> MatchIndex:
        """The index to answer from now: built first if there is none yet, else never waited for.

        A due poll runs in the calling thread unless another thread is already polling; a
        due rebuild starts in the background.
        """
        return self._current().index

    def fresh_index(self) -> MatchIndex:
        """The index with every profile committed before this call: polls now, waiting for
        a poll under way. For whole-population work (a round, swap rings), where a profile
        saved a moment ago on another worker must count."""
        state = self._current()
        with self._polling:
            current = self._state or state
            self._poll(current)
        return (self._state or current).index

    def _current(self) -> _State:
        state = self._state
        if state is None:
            with self._first_build:
                if self._state is None:
                    self._state = self._build(next_week_start(self.clock()))
                return self._state
        week_start = next_week_start(self.clock())
        if state.week_start != week_start:
            self._rebuild(week_start)
        elif time.monotonic() - state.polled_at >= self.poll_interval and self._polling.acquire(
            blocking=False
        ):
            try:
                self._poll(state)
            finally:
                self._polling.release()
        return self._state or state

    def _build(self, week_start: datetime) -> _State:
        started = self.clock()
        with self.session_factory() as session:
            taxonomy = _taxonomy_version(session)
            tree = {
                row.id: row.parent_id for row in session.execute(select(Skill.id, Skill.parent_id))
            }
            skills = SkillSpace(tree)
            index = MatchIndex(skills, week_start)
            loaded = load_records(session)
            # A skill created after the tree was read is left out until the next rebuild.
            index.build(
                _known_skills_only(record, skills) for record in loaded.records if record.active
            )
        stamps = {record.id: loaded.stamps[record.id] for record in loaded.records if record.active}
        return _State(index, stamps, week_start, taxonomy, started, time.monotonic())

    def _rebuild(self, week_start: datetime) -> None:
        """Replace the index with a new build, in the background unless told otherwise.

        At most one rebuild runs at a time; a request for another while one runs is dropped,
        since the next poll after the swap sees whatever it missed and asks again.
        """
        if not self._rebuilding.acquire(blocking=False):
            return
        background = self.rebuild_in_background

        def rebuild() -> None:
            try:
                self._state = self._build(week_start)
            except Exception:
                if not background:
                    raise
                logger.exception("rebuilding the matching index failed; kept the previous one")
            finally:
                self._rebuilding.release()

        if background:
            threading.Thread(target=rebuild, name="capex-matching-rebuild", daemon=True).start()
        else:
            rebuild()

    def _poll(self, state: _State) -> None:
        started = self.clock()
        with self.session_factory() as session:
            if _taxonomy_version(session) != state.taxonomy:
                self._rebuild(state.week_start)
            changed = list(
                session.scalars(
                    select(Volunteer.id).where(
                        Volunteer.updated_at > state.watermark - POLL_OVERLAP
                    )
                )
            )
            loaded = load_records(session, changed) if changed else LoadedRecords([], {})
        skills = state.index.skill_space
        active = [record for record in loaded.records if record.active]
        inactive = [record.id for record in loaded.records if not record.active]
        for volunteer_id in inactive:
            state.stamps.pop(volunteer_id, None)
        state.index.upsert(_known_skills_only(record, skills) for record in active)
        state.index.remove(inactive)
        # Only now that the rows are in: a stamp must never claim a row not yet upserted.
        state.stamps.update((record.id, loaded.stamps[record.id]) for record in active)
        state.watermark = started
        state.polled_at = time.monotonic()

    def matches(
        self,
        session: Session,
        volunteer: Volunteer,
        *,
        role: Side,
        skill: str | None = None,
        limit: int = 20,
    ) -> list[Match]:
        """Ranked counterparts for one volunteer, best first (see ``docs/matching.md``).

        ``volunteer`` is the asker as this request's transaction sees them: the index's copy
        of them is used only when it is at least that new, else their record is read afresh,
        so that a volunteer is always ranked on the profile they have just saved.
        """
        found, _ = self._answer(session, volunteer, role, skill, limit, explain=False)
        return found

    def explained_matches(
        self,
        session: Session,
        volunteer: Volunteer,
        *,
        role: Side,
        skill: str | None = None,
        limit: int = 20,
    ) -> tuple[list[Match], list[SkillExplanation]]:
        """``matches``, and for each of the asker's skills on that side (or ``skill``) the
        funnel of counterparts and the changes that would add the most (``explain_skills``),
        both from the same copy of the asker."""
        return self._answer(session, volunteer, role, skill, limit, explain=True)

    def _answer(
        self,
        session: Session,
        volunteer: Volunteer,
        role: Side,
        skill: str | None,
        limit: int,
        *,
        explain: bool,
    ) -> tuple[list[Match], list[SkillExplanation]]:
        if skill is not None:
            _check_own_skill(session, volunteer.id, role, skill)
        engine_role = _ENGINE_ROLE[role]
        state = self._current()
        index = state.index
        if skill is not None and skill not in index.skill_space:
            # A skill newer than the index: nobody in it can offer or want it yet.
            return [], [SkillExplanation(skill, 0, 0, 0, 0, ())] if explain else []
        asker: int | VolunteerRecord = volunteer.id
        stamp = state.stamps.get(volunteer.id)
        if stamp is None or stamp < volunteer.updated_at or volunteer.id not in index:
            (record,) = load_records(session, [volunteer.id]).records
            asker = _known_skills_only(record, index.skill_space)
        found = index.query(asker, role=engine_role, skill=skill, limit=limit)
        explained = index.explain_skills(asker, role=engine_role, skill=skill) if explain else []
        return found, explained


def _check_own_skill(session: Session, volunteer_id: int, role: Side, skill: str) -> None:
    table: type[SkillOffer] | type[SkillWant] = SkillWant if role == Side.LEARNER else SkillOffer
    listed = session.scalar(
        select(func.count()).where(table.volunteer_id == volunteer_id, table.skill_id == skill)
    )
    if not listed:
        if session.get(Skill, skill) is None:
            message = f"unknown skill {skill!r}"
        else:
            verb = "want" if role == Side.LEARNER else "offer"
            message = f"you do not {verb} {skill!r}; add it to your profile first"
        raise Invalid(message, [field_error(["query", "skill"], message)])


@dataclass(frozen=True, slots=True)
class MatchView:
    """A ranked candidate, named, with the engine's match: the skill, the score and the
    reasons for it (skill similarity, level fit, overlap, shared languages, wanted skill)."""

    volunteer: VolunteerRef
    skill: str
    score: float
    reasons: Match


def ranked_matches(
    session: Session,
    matching: MatchingService,
    volunteer: Volunteer,
    *,
    side: Side,
    skill: str | None = None,
    limit: int = 20,
) -> list[MatchView]:
    """Ranked counterparts for ``volunteer`` taking ``side``, best first, each one named."""
    found = matching.matches(session, volunteer, role=side, skill=skill, limit=limit)
    return _named(session, found)


def _named(session: Session, found: list[Match]) -> list[MatchView]:
    refs = volunteer_refs(session, (match.volunteer_id for match in found))
    return [
        MatchView(refs[match.volunteer_id], match.skill, match.score, match)
        for match in found
        if match.volunteer_id in refs
    ]


@dataclass(frozen=True, slots=True)
class AvailabilityChange:
    """Add this weekly slot, on the volunteer's own wall clock ('06:00' to '12:00'); it lies
    on none of their slots, so it can be added to the profile as it is."""

    weekday: int
    start: str
    end: str

    @property
    def kind(self) -> ProfileChangeKind:
        return ProfileChangeKind.AVAILABILITY


@dataclass(frozen=True, slots=True)
class LanguageChange:
    """Add this language (a primary subtag: 'es'), at any level."""

    language: str

    @property
    def kind(self) -> ProfileChangeKind:
        return ProfileChangeKind.LANGUAGE


@dataclass(frozen=True, slots=True)
class SkillChange:
    """Add this skill on the side asked about: a want as learner, an offer as mentor."""

    skill: str

    @property
    def kind(self) -> ProfileChangeKind:
        return ProfileChangeKind.SKILL


ProfileChange = AvailabilityChange | LanguageChange | SkillChange


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A change to the asker's profile and how many more counterparts it would list."""

    change: ProfileChange
    would_add: int


@dataclass(frozen=True, slots=True)
class SkillExplain:
    """Why one of the asker's skills finds the counterparts it does (``docs/matching.md``,
    "Why so few"): of the counterparts listing it on the other side, how many share a
    language with the asker, of those how many are free when the asker is, and of those how
    many have an open mentor slot; and the changes that would add the most."""

    skill: str
    offering: int
    sharing_language: int
    overlapping: int
    with_open_slot: int
    suggestions: tuple[Suggestion, ...]


@dataclass(frozen=True, slots=True)
class ExplainedMatches:
    """Ranked, named counterparts, and why there are not more."""

    items: list[MatchView]
    explain: list[SkillExplain]


def _change(change: engine.ProfileChange) -> ProfileChange:
    if isinstance(change, engine.AvailabilityChange):
        return AvailabilityChange(
            change.weekday, format_time(change.start_minute), format_time(change.end_minute)
        )
    if isinstance(change, engine.LanguageChange):
        return LanguageChange(change.language)
    return SkillChange(change.skill)


def explained_matches(
    session: Session,
    matching: MatchingService,
    volunteer: Volunteer,
    *,
    side: Side,
    skill: str | None = None,
    limit: int = 20,
) -> ExplainedMatches:
    """``ranked_matches``, and per skill of ``volunteer`` on that side (or just ``skill``)
    the funnel of counterparts and the profile changes that would add the most."""
    found, explained = matching.explained_matches(
        session, volunteer, role=side, skill=skill, limit=limit
    )
    return ExplainedMatches(
        _named(session, found),
        [
            SkillExplain(
                skill=explanation.skill,
                offering=explanation.offering,
                sharing_language=explanation.sharing_language,
                overlapping=explanation.overlapping,
                with_open_slot=explanation.with_open_slot,
                suggestions=tuple(
                    Suggestion(_change(suggestion.change), suggestion.would_add)
                    for suggestion in explanation.suggestions
                ),
            )
            for explanation in explained
        ],
    )
