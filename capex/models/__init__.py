"""ORM tables, one module per aggregate; importing this package registers them all."""

from capex.models.auth import AccessToken, LoginFailure
from capex.models.base import Base
from capex.models.skill import MAX_SKILL_DEPTH, Skill, SkillAlias
from capex.models.volunteer import (
    ROLES,
    AvailabilitySlot,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)

__all__ = [
    "MAX_SKILL_DEPTH",
    "ROLES",
    "AccessToken",
    "AvailabilitySlot",
    "Base",
    "LoginFailure",
    "Skill",
    "SkillAlias",
    "SkillOffer",
    "SkillWant",
    "Volunteer",
    "VolunteerLanguage",
]
