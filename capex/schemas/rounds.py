"""Matching rounds: a coordinator's question, and the round as it was run."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_serializer

from capex.schemas.common import (
    MAX_ID,
    InputSchema,
    PlainText,
    RequiredUtcTimestamp,
    Schema,
    UtcTimestamp,
)
from capex.schemas.matches import MatchReasons, _rounded
from capex.schemas.profiles import VolunteerRef
from capex.schemas.skills import SkillId

VolunteerId = Annotated[int, Field(ge=1, le=MAX_ID)]
# A cohort is named by hand: a few thousand ids at most in one request body.
MAX_NAMED = 5000


class RoundCreate(InputSchema):
    name: PlainText = Field(
        min_length=1, max_length=200, description="e.g. the 2027 leadership cohort"
    )
    mode: Literal["optimal", "stable"] = Field(
        default="optimal",
        description="optimal: the greatest total score; stable: no learner and mentor would "
        "both rather be together than with whom they got",
    )
    skills: list[SkillId] | None = Field(
        default=None,
        max_length=500,
        description="only learners' wants among these skills (and below)",
    )
    learners: list[VolunteerId] | None = Field(
        default=None,
        max_length=MAX_NAMED,
        description="only these learners (default: everyone who wants a skill)",
    )
    mentors: list[VolunteerId] | None = Field(
        default=None,
        max_length=MAX_NAMED,
        description="only these mentors (default: everyone with an open slot)",
    )
    min_score: float = Field(default=0.0, ge=0, le=1, description="leave out pairs scoring less")
    max_per_learner: int = Field(default=1, ge=1, le=5, description="pairs one learner may get")


class RoundPairRead(Schema):
    learner: VolunteerRef
    mentor: VolunteerRef
    skill: str = Field(description="the mentor's offered skill the exchange is about")
    score: float = Field(ge=0, le=1)
    reasons: MatchReasons
    exchange_id: int | None = Field(description="the exchange it became, once published")
    not_published: str | None = Field(description="why publishing could not make it an exchange")

    _round = field_serializer("score")(_rounded)


class RoundMetrics(Schema):
    learners: int = Field(description="learners in the cohort (with at least one candidate or not)")
    matched: int = Field(description="learners given at least one pair")
    total_score: float
    mean_score: float | None = Field(description="total_score / pairs")
    mentor_load_gini: float | None = Field(
        description="inequality of pairs per mentor over the round's candidate mentors (0: even)"
    )
    blocking_pairs: int = Field(
        description="learner-mentor pairs who would both rather be together; 0 in a stable round"
    )


class RoundSummary(Schema):
    id: int
    name: str
    mode: Literal["optimal", "stable"]
    status: Literal["draft", "published"]
    created_at: RequiredUtcTimestamp
    published_at: UtcTimestamp | None
    metrics: RoundMetrics


class RoundRead(RoundSummary):
    pairs: list[RoundPairRead]
    unmatched_learners: list[VolunteerRef]


class PublishedRead(Schema):
    round: RoundRead
    published: int = Field(description="pairs that became exchanges")
    not_published: int = Field(description="pairs checked again and left out, each saying why")


class RingStepRead(Schema):
    volunteer: VolunteerRef = Field(description="teaches the next volunteer of the ring")
    teaches: str = Field(description="the skill, one the volunteer offers")
    learner: VolunteerRef
    wanted_skill: str = Field(description="the learner's want it serves")
    score: float = Field(ge=0, le=1, description="the pair's matching score")

    _round = field_serializer("score")(_rounded)


class RingRead(Schema):
    members: list[RingStepRead] = Field(description="in ring order: each teaches the next")
    score: float = Field(description="the sum of its pairs' scores")

    _round = field_serializer("score")(_rounded)


class RingList(Schema):
    items: list[RingRead] = Field(description="best first")


class RingSetRead(RingList):
    total_score: float
    optimal: bool = Field(description="false when the solver ran out of time: then the best found")
    upper_bound: float = Field(description="no disjoint set of rings scores more")
    rings_found: int = Field(description="rings there are to choose from")
