"""The one adapter between the database and the matching engine.

Each worker process keeps one :class:`MatchingService`: a ``MatchIndex`` built from the
database (under ``capex serve``, once per host and mapped by every worker:
``capex.services.matching_index``), kept fresh from ``volunteers.updated_at`` (every
profile change bumps it) when PostgreSQL notifies a change, or by polling, so a change made
through any worker shows in every worker's matches within moments; the asker's own
profile is read afresh on every query, and full rebuilds run beside the queries.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capex.db import log_failure
from capex.errors import CapexError, Invalid, field_error
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
from capex.services.matching_index import ChangeListener, GenerationMeta, Generations
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.vocabulary import ProfileChangeKind, Side

# A transaction that stamped updated_at before our last poll may commit after it; looking
# this far back on every poll catches it (upserts are idempotent).
POLL_OVERLAP = timedelta(seconds=30)

logger = logging.getLogger("capex.matching")

# The engine keeps its own words for the sides (it imports nothing of capex).
_ENGINE_ROLE: dict[Side, EngineRole] = {Side(role): role for role in ROLES}


def load_records(session: Session, ids: Iterable[int] | None = None) -> list[VolunteerRecord]:
    """Engine records for the given volunteers (all volunteers when ``ids`` is None).

    Plain column queries, one per table, so that 100,000 volunteers load in seconds. The
    volunteers' own row (with ``updated_at``, the record's ``version``) is read first: on
    PostgreSQL each statement sees the commits made before it, so the rows read after it
    are at least that new.
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
    return [
        VolunteerRecord(
            id=volunteer_id,
            active=bool(active),
            timezone=timezone,
            languages=tuple(languages.get(volunteer_id, ())),
            slots=tuple(sorted(slots.get(volunteer_id, ()))),
            offers=tuple(offers.get(volunteer_id, ())),
            wants=tuple(wants.get(volunteer_id, ())),
            open_slots=int(open_slots),
            version=version_of(updated_at),
        )
        for volunteer_id, active, timezone, open_slots, updated_at in volunteers
    ]


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
    week_start: datetime
    taxonomy: tuple[int, datetime | None]
    watermark: datetime
    polled_at: float
    # The shared file this index maps (0: built by this process) and its rows then: what
    # was upserted since lives in this process's own memory.
    generation: int = 0
    base_rows: int = 0


def _older(held: int | None, version: int) -> bool:
    return held is None or held < version


def version_of(updated_at: datetime) -> int:
    """A volunteer's ``updated_at`` as the engine's row version: microseconds since 1970."""
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    return (updated_at - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def build_state(
    session_factory: sessionmaker[Session], week_start: datetime, clock: Callable[[], datetime]
) -> _State:
    """A fresh index of every active volunteer, for ``week_start``."""
    started = clock()
    with session_factory() as session:
        taxonomy = _taxonomy_version(session)
        tree = {row.id: row.parent_id for row in session.execute(select(Skill.id, Skill.parent_id))}
        skills = SkillSpace(tree)
        index = MatchIndex(skills, week_start)
        records = load_records(session)
        # A skill created after the tree was read is left out until the next rebuild.
        index.build(_known_skills_only(record, skills) for record in records if record.active)
    return _State(index, week_start, taxonomy, started, time.monotonic(), 0, index.n_rows_)


def build_generation(
    session_factory: sessionmaker[Session],
    generations: Generations,
    *,
    clock: Callable[[], datetime] = utcnow,
    headroom: float = 0.25,
) -> GenerationMeta:
    """Build the index from the database and publish it as the folder's next generation."""
    latest = generations.latest()
    number = (latest.number if latest else 0) + 1
    state = build_state(session_factory, next_week_start(clock()), clock)
    meta = GenerationMeta(number, state.week_start, state.taxonomy, state.watermark)
    started = time.monotonic()
    path = generations.publish(state.index, meta, headroom=headroom)
    logger.info(
        "matching: generation %d published: %d volunteers, %.1f MB, written in %.2f s",
        number,
        len(state.index),
        path.stat().st_size / 1e6,
        time.monotonic() - started,
    )
    return meta


class GenerationBuilder:
    """Builds a host's next generation: in this process for a small population, in a process
    of its own (``capex matching build``) from ``in_process_below`` volunteers on, so that
    the build's transient memory (a million records' Python objects) goes back to the
    system when it ends rather than staying in a worker. The child gets the database's
    address through its environment, not its command line (which every user can read)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        database_url: str,
        *,
        in_process_below: int = 20_000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.database_url = database_url
        self.in_process_below = in_process_below
        self.clock = clock
        self._child: subprocess.Popen[str] | None = None
        self._stopped = False

    def __call__(self, directory: Path) -> None:
        with self.session_factory() as session:
            population = session.scalar(select(func.count()).select_from(Volunteer)) or 0
        if population < self.in_process_below:
            build_generation(self.session_factory, Generations(directory), clock=self.clock)
            return
        environment = {**os.environ, "CAPEX_DATABASE_URL": self.database_url}
        command = [sys.executable, "-m", "capex.cli", "matching", "build", str(directory)]
        if self._stopped:
            return
        self._child = subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _, errors = self._child.communicate()
        if self._child.returncode != 0:
            last = (errors.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"capex matching build exited {self._child.returncode}: {last}")

    def stop(self) -> None:
        """End a build under way in a child process (the server is stopping)."""
        self._stopped = True
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()


class MatchingNotReady(CapexError):
    """No matching index yet: the first is being built. Retry later."""

    status = 503
    title = "Service unavailable"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "matches are not ready yet: the matching index is being built; "
            f"try again in {retry_after_seconds} seconds",
            headers={"Retry-After": str(retry_after_seconds)},
        )
        self.retry_after_seconds = retry_after_seconds


class MatchingService:
    """A process-wide matching index over the database, refreshed incrementally.

    Other volunteers' changes reach the index within moments: on PostgreSQL a ``LISTEN``ing
    thread is woken by every committed change to volunteers or skills (``listen_dsn``),
    elsewhere, or while that connection is down, queries poll every ``poll_interval``. The
    asking volunteer's own record is read afresh on every query whose index holds an older
    version of them, so a volunteer always sees matches for the profile they just saved,
    whichever worker answers. A full rebuild (a new week, a taxonomy change) runs beside
    the queries, which keep being answered from the previous index.

    With ``generations`` (``capex serve`` gives one folder to all its workers), the index is
    built once per host, by whichever worker first takes the folder's build lock, in a
    process of its own, and every worker maps the file; each keeps only its changes since
    in its own memory, and asks for the next generation when those grow past
    ``rebuild_share`` of the rows.

    Parameters
    ----------
    session_factory : sessionmaker
        Where the index reads volunteers from.
    poll_interval : float, default 0.5
        Seconds between looks for changed profiles, when not listening.
    clock : callable, default utcnow
        The current aware UTC time (tests move it).
    rebuild_in_background : bool, default True
        False rebuilds inside the query that finds the index out of date (for tests whose
        sessions share one connection, which a second thread must not use).
    wait_for_first_build : bool, default True
        True: the first query builds the index and waits for it. False (a server): the
        first build starts at ``start()`` and queries before it is ready raise
        ``MatchingNotReady`` (503 with Retry-After), so no request waits for a build.
    generations : Generations, optional
        The host's shared index folder; None keeps a private index in this process.
    listen_dsn : str, optional
        A PostgreSQL address to ``LISTEN`` on for changes.
    retry_after_seconds : int, default 5
        What ``MatchingNotReady`` tells clients.
    rebuild_share : float, default 0.05
        With ``generations``: ask for a new generation once this share of the rows (and
        at least 1000) was upserted since the mapped one was built.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], datetime] = utcnow,
        rebuild_in_background: bool = True,
        wait_for_first_build: bool = True,
        generations: Generations | None = None,
        listen_dsn: str | None = None,
        retry_after_seconds: int = 5,
        rebuild_share: float = 0.05,
    ) -> None:
        self.session_factory = session_factory
        self.poll_interval = poll_interval
        self.clock = clock
        self.rebuild_in_background = rebuild_in_background
        self.wait_for_first_build = wait_for_first_build
        self.generations = generations
        self.retry_after_seconds = retry_after_seconds
        self.rebuild_share = rebuild_share
        self.listener = (
            None
            if listen_dsn is None
            else ChangeListener(listen_dsn, on_change=self._catch_up, on_tick=self._tick)
        )
        self._state: _State | None = None
        self._first_build = threading.Lock()
        self._polling = threading.Lock()
        self._rebuilding = threading.Lock()
        self._first_build_failed = False
        # Shared builds: one thread at a time in this process, backing off after failures.
        self._build_thread: threading.Thread | None = None
        self._build_not_before = 0.0
        self._build_failures = 0
        self.builds_started = 0

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the first build (or map the host's index) and the listener; never waits."""
        if self.listener is not None:
            self.listener.start()
        try:
            self._current()
        except MatchingNotReady:
            pass
        except Exception as error:  # the database is away: the next query tries again
            logger.warning("matching: could not start the index (%s)", type(error).__name__)

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        if self.generations is not None:
            self.generations.stop()

    def ready(self) -> bool:
        """Whether matches can be answered now (a readiness check asks this)."""
        if self._state is not None or self.wait_for_first_build:
            return True
        try:
            self._current()
        except MatchingNotReady:
            return False
        return True

    @property
    def listening(self) -> bool:
        return self.listener is not None and self.listener.listening

    # -- the index ---------------------------------------------------------------------------

    def index(self) -> MatchIndex:
        """The index to answer from now: never waited for, except a first build when
        ``wait_for_first_build``; raises ``MatchingNotReady`` before there is one."""
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
            state = self._first_state()
        if not self.listening:
            self._maintain(state, poll=True)
        elif self.listener is not None and self.listener.pending:
            # A change was committed and notified but not read yet: read it before answering.
            with self._polling:
                if self.listener.pending:
                    self._poll(self._state or state)
        return self._state or state

    def _first_state(self) -> _State:
        with self._first_build:
            if self._state is not None:
                return self._state
            if self.generations is not None:
                if self._attach_newer(0):
                    assert self._state is not None
                    return self._state
                self._request_build(0)
                raise MatchingNotReady(self.retry_after_seconds)
            if self.wait_for_first_build:
                self._state = self._build(next_week_start(self.clock()))
                return self._state
            self._rebuild(next_week_start(self.clock()))
            raise MatchingNotReady(self.retry_after_seconds)

    def _maintain(self, state: _State, *, poll: bool) -> None:
        """What a query does when nobody listens, and the listener every tick: a new week,
        a newer shared generation, and (for a query) a due poll."""
        week_start = next_week_start(self.clock())
        if state.week_start != week_start:
            if self.generations is None:
                self._rebuild(week_start)
            else:
                self._request_build(state.generation)
        if self.generations is not None:
            latest = self.generations.latest()
            if latest is not None and latest.number > state.generation:
                if self._polling.acquire(blocking=False):
                    try:
                        self._attach_newer(state.generation)
                    finally:
                        self._polling.release()
                return
        if not poll:
            return
        if time.monotonic() - state.polled_at >= self.poll_interval and self._polling.acquire(
            blocking=False
        ):
            try:
                self._poll(state)
            finally:
                self._polling.release()

    def _catch_up(self) -> None:
        """The listener's call after a change was committed: poll now."""
        state = self._state
        if state is None:
            with contextlib.suppress(MatchingNotReady):
                self._current()
            return
        with self._polling:
            self._poll(self._state or state)

    def _tick(self) -> None:
        state = self._state
        if state is None:
            with contextlib.suppress(MatchingNotReady):
                self._current()
        else:
            self._maintain(state, poll=False)

    # -- private builds ----------------------------------------------------------------------

    def _build(self, week_start: datetime) -> _State:
        return build_state(self.session_factory, week_start, self.clock)

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
            except Exception as error:
                if not background:
                    raise
                log_failure(
                    logger, "building the matching index failed; kept the previous one", error
                )
            finally:
                self._rebuilding.release()

        if background:
            threading.Thread(target=rebuild, name="capex-matching-rebuild", daemon=True).start()
        else:
            rebuild()

    # -- shared generations ------------------------------------------------------------------

    def _attach_newer(self, than: int) -> bool:
        """Map the host's newest generation if it is newer than ``than`` and catch it up
        with the changes since it was built; whether this process now answers from it."""
        assert self.generations is not None
        latest = self.generations.latest()
        if latest is None or latest.number <= than:
            return False
        attached = self.generations.attach(latest)
        if attached is None:
            return False
        index, meta = attached
        state = _State(
            index,
            meta.week_start,
            meta.taxonomy,
            meta.watermark,
            0.0,
            meta.number,
            index.n_rows_,
        )
        self._poll(state)
        self._state = state
        logger.info(
            "matching: answering from generation %d (%d volunteers)", meta.number, len(index)
        )
        return True

    def _request_build(self, stale: int) -> None:
        """Have the host build a generation newer than ``stale``, unless one is on its way:
        a thread waits for the build lock's holder, or builds itself."""
        assert self.generations is not None
        generations = self.generations
        now = time.monotonic()
        thread = self._build_thread
        if (thread is not None and thread.is_alive()) or now < self._build_not_before:
            return
        self._build_not_before = now + 1.0

        def build() -> None:
            try:
                with generations.build_lock() as mine:
                    if not mine:
                        return  # another worker builds; its file will show in the manifest
                    latest = generations.latest()
                    if latest is not None and latest.number > stale:
                        return  # built while this thread waited
                    self.builds_started += 1
                    generations.build()
                self._build_failures = 0
            except Exception as error:
                self._build_failures += 1
                pause = min(60.0, 2.0**self._build_failures)
                self._build_not_before = time.monotonic() + pause
                logger.warning(
                    "matching: building the index failed (%s); next try in %.0f s",
                    error,
                    pause,
                )
                return
            with self._polling:
                state = self._state
                self._attach_newer(0 if state is None else state.generation)

        self._build_thread = threading.Thread(
            target=build, name="capex-matching-build", daemon=True
        )
        self._build_thread.start()

    # -- incremental changes -----------------------------------------------------------------

    def _poll(self, state: _State) -> None:
        started = self.clock()
        if self.listener is not None:
            # Whatever was notified before this point is committed, so this poll reads it.
            self.listener.pending = False
        with self.session_factory() as session:
            if _taxonomy_version(session) != state.taxonomy:
                if self.generations is None:
                    self._rebuild(state.week_start)
                else:
                    self._request_build(state.generation)
            changed = list(
                session.scalars(
                    select(Volunteer.id).where(
                        Volunteer.updated_at > state.watermark - POLL_OVERLAP
                    )
                )
            )
            loaded = load_records(session, changed) if changed else []
        index = state.index
        skills = index.skill_space
        # Changes looked at again (the overlap) are already held at their version.
        newer = [
            record
            for record in loaded
            if not record.active or _older(index.version_of(record.id), record.version)
        ]
        index.upsert(_known_skills_only(r, skills) for r in newer if r.active)
        index.remove(record.id for record in newer if not record.active)
        state.watermark = started
        state.polled_at = time.monotonic()
        if self.generations is not None and state.index.n_rows_ - state.base_rows > max(
            1000, self.rebuild_share * state.base_rows
        ):
            self._request_build(state.generation)

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
        if _older(index.version_of(volunteer.id), version_of(volunteer.updated_at)):
            (record,) = load_records(session, [volunteer.id])
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
