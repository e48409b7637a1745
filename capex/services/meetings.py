"""Meeting times of an accepted exchange: when learner and mentor are both free, and the
iCalendar event for one of those times."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Conflict, Invalid, NotFound, field_error
from capex.matching.availability import load_zone
from capex.models import AvailabilitySlot, Skill, Volunteer
from capex.services.exchanges.lifecycle import effective_state, participant
from capex.services.exchanges.reading import ExchangeView, view
from capex.services.meeting_times import Interval, ics_event, shared_times
from capex.services.profiles import VolunteerRef
from capex.vocabulary import ExchangeState

MIN_WEEKS, MAX_WEEKS = 1, 8
MAX_ITEMS = 50
# A shared stretch shorter than this is not worth offering as a meeting.
MIN_MEETING_MINUTES = 30
# The offered times start at the next quarter hour, not at the very second asked: a time
# already under way keeps the same start for a quarter of an hour, long enough to download it.
_QUARTER = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """A meeting on one participant's wall clock: aware datetimes in their ``timezone``."""

    start: datetime
    end: datetime
    timezone: str


@dataclass(frozen=True, slots=True)
class MeetingTime:
    """A stretch both participants are free (UTC), and how each of them reads it."""

    start: datetime
    end: datetime
    learner_local: LocalTime
    mentor_local: LocalTime


@dataclass(frozen=True, slots=True)
class MeetingPlan:
    """The coming times both are free, soonest first; ``without_availability`` names the
    participants who gave no time zone or no weekly slots (then there are no items)."""

    exchange: ExchangeView
    items: list[MeetingTime]
    without_availability: tuple[VolunteerRef, ...]


@dataclass(frozen=True, slots=True)
class _Shared:
    exchange: ExchangeView
    learner_zone: str | None
    mentor_zone: str | None
    times: list[Interval]
    without_availability: tuple[VolunteerRef, ...]


def window_start(now: datetime) -> datetime:
    """Where offered times begin: ``now`` (aware) rounded up to the quarter hour, in UTC."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    quarters = -(-(now - epoch) // _QUARTER)
    return epoch + quarters * _QUARTER


def _known_zone(timezone: str | None) -> bool:
    """Whether ``timezone`` names a zone this tz database has (a profile's was checked when
    saved; a later tz database might have dropped it)."""
    if timezone is None:
        return False
    try:
        load_zone(timezone)
    except ValueError:
        return False
    return True


def _shared(
    session: Session,
    settings: Settings,
    exchange_id: int,
    viewer: Volunteer,
    *,
    weeks: int,
    now: datetime,
) -> _Shared:
    if not MIN_WEEKS <= weeks <= MAX_WEEKS:
        raise Invalid(
            f"weeks is {MIN_WEEKS}..{MAX_WEEKS}",
            [field_error(["query", "weeks"], f"between {MIN_WEEKS} and {MAX_WEEKS}")],
        )
    exchange, _ = participant(
        session,
        exchange_id,
        viewer,
        refusal="only the learner and the mentor see their meeting times",
    )
    if effective_state(exchange, settings, now) != ExchangeState.ACCEPTED:
        raise Conflict("meeting times are offered once the mentor has accepted")
    seen = view(session, settings, exchange)
    ids = (exchange.learner_id, exchange.mentor_id)
    zones: dict[int, str | None] = {
        volunteer_id: zone
        for volunteer_id, zone in session.execute(
            select(Volunteer.id, Volunteer.timezone).where(Volunteer.id.in_(ids))
        )
    }
    slots: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for volunteer_id, weekday, first, last in session.execute(
        select(
            AvailabilitySlot.volunteer_id,
            AvailabilitySlot.weekday,
            AvailabilitySlot.start_minute,
            AvailabilitySlot.end_minute,
        ).where(AvailabilitySlot.volunteer_id.in_(ids))
    ):
        slots[volunteer_id].append((weekday, first, last))
    refs = {seen.learner.id: seen.learner, seen.mentor.id: seen.mentor}
    missing = tuple(
        refs[i] for i in dict.fromkeys(ids) if not _known_zone(zones.get(i)) or not slots[i]
    )
    learner_zone, mentor_zone = zones.get(exchange.learner_id), zones.get(exchange.mentor_id)
    times: list[Interval] = []
    if not missing and learner_zone is not None and mentor_zone is not None:
        start = window_start(now)
        times = shared_times(
            slots[exchange.learner_id],
            learner_zone,
            slots[exchange.mentor_id],
            mentor_zone,
            start,
            start + timedelta(weeks=weeks),
            min_minutes=MIN_MEETING_MINUTES,
        )
    return _Shared(seen, learner_zone, mentor_zone, times, missing)


def _local(interval: Interval, timezone: str) -> LocalTime:
    zone = load_zone(timezone)
    return LocalTime(
        interval.start_utc.astimezone(zone), interval.end_utc.astimezone(zone), timezone
    )


def _meeting(interval: Interval, learner_zone: str, mentor_zone: str) -> MeetingTime:
    return MeetingTime(
        start=interval.start_utc,
        end=interval.end_utc,
        learner_local=_local(interval, learner_zone),
        mentor_local=_local(interval, mentor_zone),
    )


def meeting_times(
    session: Session,
    settings: Settings,
    exchange_id: int,
    viewer: Volunteer,
    *,
    weeks: int,
    now: datetime,
) -> MeetingPlan:
    """The times in the coming ``weeks`` (1..8) when learner and mentor are both free for at
    least 30 minutes, soonest first, at most 50, from the next quarter hour after ``now``.

    Participants only (others 404, coordinators who take no part 403); 409 unless the
    exchange is accepted.
    """
    shared = _shared(session, settings, exchange_id, viewer, weeks=weeks, now=now)
    items = []
    if shared.learner_zone is not None and shared.mentor_zone is not None:
        items = [
            _meeting(interval, shared.learner_zone, shared.mentor_zone)
            for interval in shared.times[:MAX_ITEMS]
        ]
    return MeetingPlan(shared.exchange, items, shared.without_availability)


def _clock(moment: LocalTime) -> str:
    return f"{moment.start:%a %d %b %H:%M}-{moment.end:%H:%M} {moment.timezone}"


def meeting_ics(
    session: Session,
    settings: Settings,
    exchange_id: int,
    viewer: Volunteer,
    start: datetime,
    now: datetime,
) -> tuple[str, str]:
    """The iCalendar file (name, text) of the offered meeting time that begins at ``start``
    (aware), looked for in the coming 8 weeks; 404 when no offered time begins then."""
    if start.utcoffset() is None:
        raise Invalid("start needs a time zone", [field_error(["query", "start"], "no offset")])
    shared = _shared(session, settings, exchange_id, viewer, weeks=MAX_WEEKS, now=now)
    try:
        wanted = start.astimezone(UTC)
    except OverflowError:  # an instant past year 9999 in UTC: certainly not offered
        wanted = None
    found = next((i for i in shared.times if i.start_utc == wanted), None)
    if found is None or shared.learner_zone is None or shared.mentor_zone is None:
        raise NotFound("no shared time starts then; pick one from the meeting times")
    meeting = _meeting(found, shared.learner_zone, shared.mentor_zone)
    exchange = shared.exchange
    learner, mentor = exchange.learner, exchange.mentor
    skill = session.get(Skill, exchange.skill)
    skill_name = skill.name if skill is not None else exchange.skill
    stamp = found.start_utc.strftime("%Y%m%dT%H%MZ")
    description = "\n".join(
        [
            f"{learner.display_name} ({learner.username}) learns {skill_name} from "
            f"{mentor.display_name} ({mentor.username}).",
            f"{learner.display_name}: {_clock(meeting.learner_local)}",
            f"{mentor.display_name}: {_clock(meeting.mentor_local)}",
            f"The exchange: /exchanges/{exchange.id}",
        ]
    )
    text = ics_event(
        uid=f"exchange-{exchange.id}-{stamp}@capex",
        start=found.start_utc,
        end=found.end_utc,
        summary=f"capex: {skill_name} \u2014 {learner.display_name} and {mentor.display_name}",
        description=description,
        now=now,
    )
    return f"capex-exchange-{exchange.id}-{stamp}.ics", text
