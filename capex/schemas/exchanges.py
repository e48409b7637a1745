"""Exchange, feedback, message and notification schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, PlainSerializer

from capex.schemas.common import (
    MAX_ID,
    ExchangeStateWord,
    InputSchema,
    OriginWord,
    RequiredUtcTimestamp,
    Schema,
    SideWord,
    UtcTimestamp,
)
from capex.schemas.profiles import VolunteerRef
from capex.schemas.skills import SkillId

Reason = Annotated[str, Field(max_length=1000)]
MAX_MESSAGE_LENGTH = 4000


class ExchangeCreate(InputSchema):
    mentor_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    skill: SkillId
    message: Annotated[str, Field(max_length=2000)] = ""


class ReasonIn(InputSchema):
    reason: Reason = ""


class FeedbackCreate(InputSchema):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=2000)] = ""


class ExchangeRead(Schema):
    id: int
    state: ExchangeStateWord
    learner: VolunteerRef
    mentor: VolunteerRef
    skill: str
    message: str
    origin: OriginWord
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    responded_at: UtcTimestamp | None
    accepted_at: UtcTimestamp | None
    closed_at: UtcTimestamp | None
    expires_at: UtcTimestamp | None = Field(description="when a waiting request expires")


class EventRead(Schema):
    at: UtcTimestamp
    actor: VolunteerRef | None = Field(description="null when capex acted (expiry)")
    action: str
    from_state: ExchangeStateWord | None
    to_state: ExchangeStateWord
    note: str


class EventList(Schema):
    items: list[EventRead]


class FeedbackRead(Schema):
    exchange_id: int
    rating: int
    comment: str
    author_role: SideWord
    created_at: UtcTimestamp


class FeedbackList(Schema):
    items: list[FeedbackRead]


class MessageCreate(InputSchema):
    # Stripped first (InputSchema): a blank message is too short.
    body: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_LENGTH)]


class MessageRead(Schema):
    id: int
    exchange_id: int
    author: VolunteerRef
    body: str
    created_at: RequiredUtcTimestamp


class MessageList(Schema):
    items: list[MessageRead]
    next_cursor: str | None = Field(description="the next page, oldest first; null at the end")


class NotificationRead(Schema):
    id: int
    kind: str
    text: str
    exchange_id: int | None
    created_at: UtcTimestamp
    read: bool


class NotificationPage(Schema):
    items: list[NotificationRead]
    next_cursor: str | None
    unread_count: int


class MarkRead(InputSchema):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000, description="these; leave out for all"
    )


class UnreadCount(Schema):
    unread_count: int


def _with_offset(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


# A time on someone's own wall clock: ISO 8601 with its UTC offset (2026-12-01T18:00:00-03:00).
LocalTimestamp = Annotated[datetime, PlainSerializer(_with_offset, return_type=str)]


class LocalTimeRead(Schema):
    start: LocalTimestamp
    end: LocalTimestamp
    timezone: str = Field(description="the participant's IANA time zone")


class MeetingTimeRead(Schema):
    start: UtcTimestamp
    end: UtcTimestamp
    learner_local: LocalTimeRead
    mentor_local: LocalTimeRead


class MeetingTimesRead(Schema):
    items: list[MeetingTimeRead] = Field(description="soonest first, at most 50")
    without_availability: list[VolunteerRef] = Field(
        description="participants who gave no time zone or no weekly slots (then no items)"
    )
