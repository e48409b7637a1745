"""Profiles: load, replace, patch, and the public view of a volunteer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from capex.errors import Invalid, NotFound, field_error
from capex.models import (
    AvailabilitySlot,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.schemas.profiles import (
    LanguageIn,
    ProfileReplace,
    ProfileUpdate,
    SlotIn,
    format_time,
)
from capex.services import skills as skill_service
from capex.services.exchanges import mentor_ratings
from capex.vocabulary import Role

ProfileT = TypeVar("ProfileT", bound="PublicProfile")


def profile_options() -> list[LoaderOption]:
    """Load everything a profile shows, in one query per collection."""
    return [
        selectinload(Volunteer.languages),
        selectinload(Volunteer.availability),
        selectinload(Volunteer.offers).joinedload(SkillOffer.skill),
        selectinload(Volunteer.wants).joinedload(SkillWant.skill),
    ]


def load_profile(session: Session, volunteer_id: int, *, active_only: bool = True) -> Volunteer:
    query = select(Volunteer).options(*profile_options()).where(Volunteer.id == volunteer_id)
    if active_only:
        query = query.where(Volunteer.is_active.is_(True))
    volunteer = session.scalars(query.execution_options(populate_existing=True)).first()
    if volunteer is None:
        raise NotFound(f"no volunteer with id {volunteer_id}")
    return volunteer


def open_slots(session: Session, volunteers: Iterable[Volunteer]) -> dict[int, int]:
    """Mentor capacity not taken by accepted exchanges, per volunteer id."""
    return open_slots_by_id(session, [volunteer.id for volunteer in volunteers])


def open_slots_by_id(session: Session, ids: Iterable[int] | None) -> dict[int, int]:
    """Open mentor slots per volunteer id (every volunteer when ``ids`` is None).

    ``accepted_as_mentor`` moves with every accepted, cancelled and completed exchange.
    """
    statement = select(Volunteer.id, Volunteer.mentor_capacity - Volunteer.accepted_as_mentor)
    if ids is not None:
        statement = statement.where(Volunteer.id.in_(list(ids)))
    return {volunteer_id: int(slots) for volunteer_id, slots in session.execute(statement)}


def _check_skills(session: Session, changes: dict[str, Any]) -> None:
    wanted = {
        (field, index): entry.skill
        for field in ("offers", "wants")
        for index, entry in enumerate(changes.get(field) or [])
    }
    if not wanted:
        return
    known = skill_service.known_ids(session)
    errors = [
        field_error(["body", field, index, "skill"], f"unknown skill {skill!r}")
        for (field, index), skill in wanted.items()
        if skill not in known
    ]
    if errors:
        raise Invalid("the profile names skills that are not in the taxonomy", errors)


def _apply(volunteer: Volunteer, changes: dict[str, Any]) -> None:
    for field in ("display_name", "bio", "timezone", "region", "mentor_capacity"):
        if field in changes:
            setattr(volunteer, field, changes[field])
    if (languages := changes.get("languages")) is not None:
        volunteer.languages = [_language(item, position) for position, item in enumerate(languages)]
    if (slots := changes.get("availability")) is not None:
        volunteer.availability = [_slot(item) for item in slots]
    if (offers := changes.get("offers")) is not None:
        volunteer.offers = [
            SkillOffer(skill_id=item.skill, level=item.level, note=item.note, position=position)
            for position, item in enumerate(offers)
        ]
    if (wants := changes.get("wants")) is not None:
        volunteer.wants = [
            SkillWant(skill_id=item.skill, level=item.level, note=item.note, position=position)
            for position, item in enumerate(wants)
        ]


def _language(item: LanguageIn, position: int) -> VolunteerLanguage:
    return VolunteerLanguage(
        code=item.code, language=item.code.split("-")[0], level=item.level, position=position
    )


def _slot(item: SlotIn) -> AvailabilitySlot:
    return AvailabilitySlot(
        weekday=item.weekday, start_minute=item.start_minute, end_minute=item.end_minute
    )


def _changes(data: ProfileReplace | ProfileUpdate, *, replace: bool) -> dict[str, Any]:
    # Keep the nested models (model_dump would turn them into dicts).
    names = type(data).model_fields if replace else data.model_fields_set
    return {name: getattr(data, name) for name in names}


def save_profile(
    session: Session, volunteer_id: int, data: ProfileReplace | ProfileUpdate
) -> Volunteer:
    """Replace (PUT) or patch (PATCH) a profile; a rejected change changes nothing."""
    replace = isinstance(data, ProfileReplace)
    changes = _changes(data, replace=replace)
    if replace and changes.get("display_name") is None:
        changes.pop("display_name", None)
    _check_skills(session, changes)
    volunteer = load_profile(session, volunteer_id)
    timezone = changes.get("timezone", volunteer.timezone)
    slots = changes.get("availability", volunteer.availability)
    if slots and not timezone:
        raise Invalid(
            "availability is given in the volunteer's own time zone: set timezone too",
            [field_error(["body", "timezone"], "required while availability is given")],
        )
    capacity = changes.get("mentor_capacity")
    if capacity is not None and capacity < volunteer.accepted_as_mentor:
        raise Invalid(
            f"you mentor {volunteer.accepted_as_mentor} accepted exchanges now; "
            "complete or cancel some before lowering your capacity below that",
            [field_error(["body", "mentor_capacity"], "below your accepted exchanges")],
        )
    _apply(volunteer, changes)
    # Bumped even when only child rows changed: the matching index follows updated_at.
    volunteer.updated_at = utcnow()
    session.flush()
    return load_profile(session, volunteer_id)


@dataclass(frozen=True, slots=True)
class VolunteerRef:
    """A volunteer named in someone else's view: an exchange, an event, a match."""

    id: int
    username: str
    display_name: str


@dataclass(frozen=True, slots=True)
class WeeklySlot:
    """A weekly available time, on the profile's own wall clock ('18:00' to '20:30')."""

    weekday: int
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class SkillEntry:
    """A skill a volunteer offers or wants, with its name and their level."""

    skill: str
    name: str
    level: int
    note: str


@dataclass(frozen=True, slots=True)
class MentorRating:
    """The learners' mean rating of a mentor and how many rated (shown from 3 on)."""

    average: float
    count: int


@dataclass(frozen=True, slots=True)
class SpokenLanguage:
    """A language a volunteer speaks: its code ('pt-BR'), the language ('pt'), the level."""

    code: str
    language: str
    level: int


@dataclass(frozen=True, slots=True)
class PublicProfile:
    """A volunteer as any signed-in volunteer sees them (never the email)."""

    id: int
    username: str
    display_name: str
    bio: str
    timezone: str | None
    region: str | None
    languages: tuple[SpokenLanguage, ...]
    availability: tuple[WeeklySlot, ...]
    offers: tuple[SkillEntry, ...]
    wants: tuple[SkillEntry, ...]
    mentor_capacity: int
    open_slots: int
    rating: MentorRating | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OwnProfile(PublicProfile):
    """A volunteer's own profile: the public one and what only its owner sees."""

    email: str
    role: Role
    is_active: bool


def public_profiles(session: Session, volunteers: list[Volunteer]) -> list[PublicProfile]:
    """Public profiles, with open slots and (from 3 ratings on) the mentor rating."""
    slots, ratings = _slots_and_ratings(session, volunteers)
    return [
        _profile(PublicProfile, volunteer, slots[volunteer.id], ratings.get(volunteer.id))
        for volunteer in volunteers
    ]


def own_profile(session: Session, volunteer: Volunteer) -> OwnProfile:
    """The own profile of one volunteer."""
    slots, ratings = _slots_and_ratings(session, [volunteer])
    return _profile(
        OwnProfile,
        volunteer,
        slots[volunteer.id],
        ratings.get(volunteer.id),
        email=volunteer.email,
        role=volunteer.role,
        is_active=volunteer.is_active,
    )


def my_profile(session: Session, volunteer_id: int) -> OwnProfile:
    """An active volunteer's own profile, with their email and role; 404 for anyone else.

    Read as plain rows (``public_profiles_from_rows``); what this transaction flushed shows.
    """
    row = session.execute(
        select(*PROFILE_COLUMNS, Volunteer.email, Volunteer.role, Volunteer.is_active).where(
            Volunteer.id == volunteer_id, Volunteer.is_active.is_(True)
        )
    ).first()
    if row is None:
        raise NotFound(f"no volunteer with id {volunteer_id}")
    (public,) = public_profiles_from_rows(session, [row[: len(PROFILE_COLUMNS)]])
    shared = {name: getattr(public, name) for name in PublicProfile.__dataclass_fields__}
    return OwnProfile(**shared, email=row.email, role=row.role, is_active=row.is_active)


def edit_profile(
    session: Session, volunteer_id: int, data: ProfileReplace | ProfileUpdate
) -> OwnProfile:
    """Replace (PUT) or patch (PATCH) a profile; the profile as it now is."""
    save_profile(session, volunteer_id, data)
    return my_profile(session, volunteer_id)


def public_profile(session: Session, volunteer_id: int) -> PublicProfile:
    """One active volunteer's public profile; 404 for anyone else."""
    found = public_profiles_by_id(session, [volunteer_id], active_only=True)
    if not found:
        raise NotFound(f"no volunteer with id {volunteer_id}")
    return found[0]


# The columns of a public profile's own row, in the order ``public_profiles_from_rows``
# reads them.
PROFILE_COLUMNS = (
    Volunteer.id,
    Volunteer.username,
    Volunteer.display_name,
    Volunteer.bio,
    Volunteer.timezone,
    Volunteer.region,
    Volunteer.mentor_capacity,
    # As open_slots_by_id reads it, from the row itself.
    Volunteer.mentor_capacity - Volunteer.accepted_as_mentor,
    Volunteer.created_at,
)


def public_profiles_by_id(
    session: Session, ids: Sequence[int], *, active_only: bool = False
) -> list[PublicProfile]:
    """The public profiles of these volunteers, in the order of ``ids`` (unknown ones, and
    with ``active_only`` deactivated ones, left out); the same as ``public_profiles``."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    statement = select(*PROFILE_COLUMNS).where(Volunteer.id.in_(wanted))
    if active_only:
        statement = statement.where(Volunteer.is_active.is_(True))
    rows = {row[0]: row for row in session.execute(statement)}
    return public_profiles_from_rows(session, [rows[i] for i in wanted if i in rows])


def public_profiles_from_rows(
    session: Session, rows: Sequence[Sequence[Any]]
) -> list[PublicProfile]:
    """The public profiles of the volunteers whose ``PROFILE_COLUMNS`` are ``rows``, in order.

    Read as plain rows, one query per table, without ORM objects: what a directory page
    shows costs half the CPU of loading its volunteers with their collections
    (``bench/README.md``, Capacity).
    """
    found = [row[0] for row in rows]
    if not found:
        return []
    languages: dict[int, list[SpokenLanguage]] = defaultdict(list)
    for volunteer_id, code, language, level in session.execute(
        select(
            VolunteerLanguage.volunteer_id,
            VolunteerLanguage.code,
            VolunteerLanguage.language,
            VolunteerLanguage.level,
        )
        .where(VolunteerLanguage.volunteer_id.in_(found))
        .order_by(VolunteerLanguage.volunteer_id, VolunteerLanguage.position)
    ):
        languages[volunteer_id].append(SpokenLanguage(code, language, level))
    slots: dict[int, list[WeeklySlot]] = defaultdict(list)
    for volunteer_id, weekday, start, end in session.execute(
        select(
            AvailabilitySlot.volunteer_id,
            AvailabilitySlot.weekday,
            AvailabilitySlot.start_minute,
            AvailabilitySlot.end_minute,
        )
        .where(AvailabilitySlot.volunteer_id.in_(found))
        .order_by(
            AvailabilitySlot.volunteer_id, AvailabilitySlot.weekday, AvailabilitySlot.start_minute
        )
    ):
        slots[volunteer_id].append(WeeklySlot(weekday, format_time(start), format_time(end)))
    offers = _skill_entries(session, SkillOffer, found)
    wants = _skill_entries(session, SkillWant, found)
    ratings = mentor_ratings(session, found)
    return [
        PublicProfile(
            id=volunteer_id,
            username=row[1],
            display_name=row[2],
            bio=row[3],
            timezone=row[4],
            region=row[5],
            languages=tuple(languages.get(volunteer_id, ())),
            availability=tuple(slots.get(volunteer_id, ())),
            offers=tuple(offers.get(volunteer_id, ())),
            wants=tuple(wants.get(volunteer_id, ())),
            mentor_capacity=row[6],
            open_slots=row[7],
            rating=None if volunteer_id not in ratings else MentorRating(*ratings[volunteer_id]),
            created_at=row[8],
        )
        for row in rows
        for volunteer_id in (row[0],)
    ]


def _skill_entries(
    session: Session, table: type[SkillOffer] | type[SkillWant], ids: list[int]
) -> dict[int, list[SkillEntry]]:
    entries: dict[int, list[SkillEntry]] = defaultdict(list)
    for volunteer_id, skill_id, name, level, note in session.execute(
        select(table.volunteer_id, table.skill_id, Skill.name, table.level, table.note)
        .join(Skill, Skill.id == table.skill_id)
        .where(table.volunteer_id.in_(ids))
        .order_by(table.volunteer_id, table.position)
    ):
        entries[volunteer_id].append(SkillEntry(skill_id, name, level, note))
    return entries


def _slots_and_ratings(
    session: Session, volunteers: list[Volunteer]
) -> tuple[dict[int, int], dict[int, tuple[float, int]]]:
    return open_slots(session, volunteers), mentor_ratings(session, [v.id for v in volunteers])


def _profile(
    view: type[ProfileT],
    volunteer: Volunteer,
    slots_open: int,
    rating: tuple[float, int] | None,
    **owner_only: Any,
) -> ProfileT:
    return view(
        id=volunteer.id,
        username=volunteer.username,
        display_name=volunteer.display_name,
        bio=volunteer.bio,
        timezone=volunteer.timezone,
        region=volunteer.region,
        languages=tuple(
            SpokenLanguage(item.code, item.language, item.level) for item in volunteer.languages
        ),
        availability=tuple(
            WeeklySlot(slot.weekday, format_time(slot.start_minute), format_time(slot.end_minute))
            for slot in volunteer.availability
        ),
        offers=tuple(_entry(offer) for offer in volunteer.offers),
        wants=tuple(_entry(want) for want in volunteer.wants),
        mentor_capacity=volunteer.mentor_capacity,
        open_slots=slots_open,
        rating=None if rating is None else MentorRating(*rating),
        created_at=volunteer.created_at,
        **owner_only,
    )


def _entry(entry: SkillOffer | SkillWant) -> SkillEntry:
    return SkillEntry(entry.skill_id, entry.skill.name, entry.level, entry.note)


def volunteer_refs(session: Session, ids: Iterable[int]) -> dict[int, VolunteerRef]:
    """Each of these volunteers named, by id (deactivated ones too)."""
    rows = session.execute(
        select(Volunteer.id, Volunteer.username, Volunteer.display_name).where(
            Volunteer.id.in_(list(ids))
        )
    )
    return {
        row.id: VolunteerRef(id=row.id, username=row.username, display_name=row.display_name)
        for row in rows
    }
