"""Matching schemas."""

from __future__ import annotations

from pydantic import Field, field_serializer

from capex.schemas.common import Schema, SideWord
from capex.schemas.profiles import VolunteerRef

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


class MatchList(Schema):
    role: SideWord
    items: list[MatchRead]
