"""What the statistics can be filtered by: the choices a coordinator's filter form lists."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from capex.models import Skill, Volunteer, VolunteerLanguage
from capex.regions import REGIONS


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """Regions (id, English name), the primary subtags that active volunteers speak, and
    the areas (root skills: id, name), each sorted."""

    regions: list[tuple[str, str]]
    languages: list[str]
    areas: list[tuple[str, str]]


def filter_choices(session: Session) -> FilterChoices:
    """The regions, the languages volunteers speak, and the root skills."""
    languages = session.scalars(
        select(VolunteerLanguage.language)
        .join(Volunteer, Volunteer.id == VolunteerLanguage.volunteer_id)
        .where(Volunteer.is_active.is_(True))
        .distinct()
        .order_by(VolunteerLanguage.language)
    )
    areas = session.execute(
        select(Skill.id, Skill.name).where(Skill.parent_id.is_(None)).order_by(Skill.name)
    )
    return FilterChoices(
        regions=sorted(REGIONS.items()),
        languages=list(languages),
        areas=[(skill_id, name) for skill_id, name in areas],
    )
