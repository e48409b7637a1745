"""The directory: active volunteers filtered by skill, language, region and text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import Session

from capex.errors import Invalid, field_error
from capex.models import SkillOffer, SkillWant, Volunteer, VolunteerLanguage
from capex.services import skills as skill_service
from capex.services.profiles import (
    PROFILE_COLUMNS,
    PublicProfile,
    profile_options,
    public_profiles_from_rows,
)

# Any select over volunteers: of whole rows (search) or of some columns (browse).
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True, slots=True)
class DirectoryQuery:
    offers: str | None = None
    wants: str | None = None
    language: str | None = None
    region: str | None = None
    q: str | None = None
    after_id: int | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    """One page of public profiles, and whether another page follows."""

    items: list[PublicProfile]
    more: bool


def browse(session: Session, query: DirectoryQuery) -> DirectoryPage:
    """One page of the directory: the public profiles of the volunteers ``search`` finds.

    The page's rows, then their collections, as plain rows (``public_profiles_from_rows``):
    the same answer as loading the volunteers with their collections, for half the CPU.
    """
    rows = list(session.execute(_filtered(session, query, select(*PROFILE_COLUMNS))))
    page = public_profiles_from_rows(session, rows[: query.limit])
    return DirectoryPage(page, len(rows) > query.limit)


def search(session: Session, query: DirectoryQuery) -> tuple[list[Volunteer], bool]:
    """One page of volunteers in id order, and whether another page follows.

    A skill filter includes the skills below it: ``offers=technology`` finds everyone who
    offers any technology skill.
    """
    statement = _filtered(session, query, select(Volunteer).options(*profile_options()))
    rows = list(session.scalars(statement))
    return rows[: query.limit], len(rows) > query.limit


def _filtered(session: Session, query: DirectoryQuery, statement: SelectT) -> SelectT:
    """``statement`` (over volunteers) restricted to one page of what ``query`` asks for."""
    statement = (
        statement.where(Volunteer.is_active.is_(True)).order_by(Volunteer.id).limit(query.limit + 1)
    )
    tree: dict[str, str | None] | None = None
    for param, table in (("offers", SkillOffer), ("wants", SkillWant)):
        skill = getattr(query, param)
        if skill is None:
            continue
        tree = tree if tree is not None else skill_service.parents(session)
        if skill not in tree:
            raise Invalid(
                f"unknown skill {skill!r}", [field_error(["query", param], "unknown skill")]
            )
        ids = skill_service.subtree_ids(tree, skill)
        skill_match = table.skill_id == skill if len(ids) == 1 else table.skill_id.in_(ids)
        # IN, not a correlated EXISTS: SQLite then walks the (skill_id, volunteer_id) index
        # in id order instead of probing every volunteer (60 -> 14 ms for a rare skill).
        statement = statement.where(Volunteer.id.in_(select(table.volunteer_id).where(skill_match)))
    if query.language is not None:
        column = VolunteerLanguage.code if "-" in query.language else VolunteerLanguage.language
        statement = statement.where(
            exists().where(VolunteerLanguage.volunteer_id == Volunteer.id, column == query.language)
        )
    if query.region is not None:
        statement = statement.where(Volunteer.region == query.region)
    if query.q:
        pattern = skill_service.contains_pattern(query.q)
        statement = statement.where(
            or_(
                Volunteer.display_name.ilike(pattern, escape="\\"),
                Volunteer.username.ilike(pattern, escape="\\"),
                Volunteer.bio.ilike(pattern, escape="\\"),
            )
        )
    if query.after_id is not None:
        statement = statement.where(Volunteer.id > query.after_id)
    return statement
