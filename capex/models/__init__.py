"""ORM tables, one module per aggregate; importing this package registers them all."""

from capex.models.auth import AccessToken, LoginFailure, PasswordReset, WriteCount
from capex.models.base import Base
from capex.models.exchange import (
    Exchange,
    ExchangeEvent,
    ExchangeMessage,
    Feedback,
    IdempotencyKey,
    Notification,
)
from capex.models.round import Round, RoundPair
from capex.models.skill import MAX_SKILL_DEPTH, Skill, SkillAlias
from capex.models.volunteer import (
    AvailabilitySlot,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)

__all__ = [
    "MAX_SKILL_DEPTH",
    "AccessToken",
    "AvailabilitySlot",
    "Base",
    "Exchange",
    "ExchangeEvent",
    "ExchangeMessage",
    "Feedback",
    "IdempotencyKey",
    "LoginFailure",
    "Notification",
    "PasswordReset",
    "Round",
    "RoundPair",
    "Skill",
    "SkillAlias",
    "SkillOffer",
    "SkillWant",
    "Volunteer",
    "VolunteerLanguage",
    "WriteCount",
]
