"""The statistics answers, as JSON (``/stats/*``); ``capex.services.stats`` defines them."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from capex.schemas.common import RequiredUtcTimestamp, Schema
from capex.schemas.profiles import VolunteerRef

Rate = float | None

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _calendar_day(value: object) -> object:
    # Lax pydantic would read 0 as 1970-01-01 (a Unix time): only YYYY-MM-DD is a day here.
    if isinstance(value, str) and not _DAY.match(value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


# A calendar day in a query, such as 2026-05-01.
Day = Annotated[date, BeforeValidator(_calendar_day)]


class ExchangeCounts(Schema):
    """Exchanges by effective state: a request past its time counts as expired."""

    requested: int
    accepted: int
    declined: int
    cancelled: int
    completed: int
    expired: int


class OverviewRead(Schema):
    as_of: RequiredUtcTimestamp = Field(description="when these figures were taken")
    volunteers: int = Field(description="active accounts")
    active_volunteers_30d: int = Field(description="active accounts seen in the last 30 days")
    new_volunteers_30d: int = Field(description="accounts created in the last 30 days")
    mentors: int = Field(description="active volunteers who take learners and offer a skill")
    mentors_with_open_slots: int
    learners: int = Field(description="active volunteers who want a skill")
    exchanges: ExchangeCounts
    requests_waiting: int = Field(description="requests still waiting for the mentor")
    acceptance_rate: Rate = Field(description="ever accepted over the requests answered or ended")
    completion_rate: Rate = Field(description="completed over the accepted exchanges that ended")
    expiry_rate: Rate = Field(description="expired over the requests answered or ended")
    median_response_hours: float | None = Field(
        description="median time from a request to the mentor's answer"
    )


class SkillStatsRow(Schema):
    skill: str = Field(description="the skill's id (the area's, with level=area)")
    name: str
    offered: int = Field(description="mentors offering it")
    open_slots: int = Field(description="free places those mentors have")
    wanted: int = Field(description="learners wanting it")
    gap: int = Field(description="wanted minus open_slots")
    requested: int
    accepted: int = Field(description="requests ever accepted")
    completed: int
    expired: int
    median_response_hours: float | None


class SkillStatsRead(Schema):
    as_of: RequiredUtcTimestamp
    level: Literal["skill", "area"]
    items: list[SkillStatsRow] = Field(description="the largest gap first")


class FunnelStageRead(Schema):
    stage: Literal["requested", "answered", "accepted", "completed", "feedback"]
    count: int
    share_of_previous: float | None = Field(description="count over the previous stage's count")


class LostCounts(Schema):
    declined: int
    cancelled: int
    expired: int


class FunnelRead(Schema):
    as_of: RequiredUtcTimestamp
    stages: list[FunnelStageRead]
    lost: LostCounts


class TimelineRow(Schema):
    period: str = Field(description="YYYY-MM, or the ISO week YYYY-Www")
    new_volunteers: int
    requested: int
    accepted: int
    completed: int
    expired: int


class TimelineRead(Schema):
    as_of: RequiredUtcTimestamp
    interval: Literal["month", "week"]
    items: list[TimelineRow] = Field(description="oldest first, empty periods with zeros")


class ReachFields(Schema):
    volunteers: int
    mentors: int
    open_slots: int
    learners: int
    waiting_learners: int = Field(
        description="learners whom no mentor with an open slot can teach what they want"
    )
    requested: int = Field(description="requests by learners of this group")
    completed: int


class RegionStatsRow(ReachFields):
    region: str | None = Field(description="null: no region given")


class RegionStatsRead(Schema):
    as_of: RequiredUtcTimestamp
    items: list[RegionStatsRow]


class LanguageStatsRow(ReachFields):
    language: str = Field(description="a primary language subtag, such as pt")


class LanguageStatsRead(Schema):
    as_of: RequiredUtcTimestamp
    items: list[LanguageStatsRow]


class LoadRow(Schema):
    accepted_now: int = Field(description="learners a mentor has accepted and not finished")
    mentors: int


class WaitingRequestRead(Schema):
    exchange_id: int
    mentor: VolunteerRef
    skill: str
    waiting_days: float


class TopMentorRead(Schema):
    mentor: VolunteerRef
    completed: int
    rating: float | None = Field(description="mean of the learners' ratings, 1..5")
    ratings: int


class MentorStatsRead(Schema):
    as_of: RequiredUtcTimestamp
    load: list[LoadRow]
    waiting_requests: list[WaitingRequestRead] = Field(description="oldest first")
    top: list[TopMentorRead] = Field(description="most completed exchanges first")
