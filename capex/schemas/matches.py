"""Matching schemas."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_serializer

from capex.schemas.common import Schema, SideWord
from capex.schemas.profiles import VolunteerRef
from capex.vocabulary import ProfileChangeKind

# Scores are sums of float products (0.9700000000000001); four places tell every
# ranking apart that a person could, and read cleanly.
SCORE_DECIMALS = 4


def _rounded(value: float) -> float:
    return round(value, SCORE_DECIMALS)


class MatchReasons(Schema):
    skill_similarity: float = Field(
        description="taxonomy similarity of the wanted and offered skill"
    )
    level_fit: float = Field(description="1 when the mentor's level reaches the target")
    overlap_minutes_per_week: int | None = Field(
        description="shared available minutes in the coming week; null when one side gave none"
    )
    shared_languages: list[str] = Field(description="languages both speak, best shared first")
    wanted_skill: str = Field(description="the learner's wanted skill this pairing serves")

    _round = field_serializer("skill_similarity", "level_fit")(_rounded)


class MatchRead(Schema):
    volunteer: VolunteerRef
    skill: str = Field(description="the mentor's offered skill an exchange would be about")
    score: float = Field(ge=0, le=1)
    reasons: MatchReasons

    _round = field_serializer("score")(_rounded)


class AvailabilityChangeRead(Schema):
    """Add a weekly slot; it lies on none of my slots, so it can be added as it is."""

    kind: Literal[ProfileChangeKind.AVAILABILITY]
    weekday: int = Field(ge=0, le=6, description="0 Monday .. 6 Sunday")
    start: str = Field(examples=["06:00"], description="on my own wall clock, 'HH:MM'")
    end: str = Field(examples=["12:00"], description="on my own wall clock; '24:00' is midnight")


class LanguageChangeRead(Schema):
    """Add a language, at any level."""

    kind: Literal[ProfileChangeKind.LANGUAGE]
    language: str = Field(examples=["es"], description="a primary language subtag")


class SkillChangeRead(Schema):
    """Add a skill next to this one in the taxonomy: a want as learner, an offer as mentor."""

    kind: Literal[ProfileChangeKind.SKILL]
    skill: str = Field(description="a skill id: the parent, a sibling or a child")


ProfileChangeRead = Annotated[
    AvailabilityChangeRead | LanguageChangeRead | SkillChangeRead, Field(discriminator="kind")
]


class SuggestionRead(Schema):
    change: ProfileChangeRead
    would_add: int = Field(
        ge=1,
        description="how many more counterparts listing the skill (for a skill change, the "
        "new skill) the matches would list after the change",
    )


class SkillExplainRead(Schema):
    """Of the counterparts listing one of my skills on the other side, how many pass each
    rule of matching in turn, and the changes to my profile that would add the most."""

    skill: str = Field(description="my skill: a want as learner, an offer as mentor")
    offering: int = Field(
        ge=0, description="active volunteers listing it on the other side (offering or wanting)"
    )
    sharing_language: int = Field(ge=0, description="of those, who share a language with me")
    overlapping: int = Field(
        ge=0, description="of those, who are free when I am (or either gave no availability)"
    )
    with_open_slot: int = Field(
        ge=0,
        description="of those, whose pair has a mentor with an open slot (as a learner, the "
        "mentor's; as a mentor, mine: all or none); the matches list exactly these, and "
        "may list more with near skills",
    )
    suggestions: list[SuggestionRead] = Field(description="at most 3, the most added first")


class MatchList(Schema):
    role: SideWord
    items: list[MatchRead]
    explain: list[SkillExplainRead] = Field(
        description="per skill of mine on that side (or the skill asked for), by skill id"
    )
