"""Exchange, feedback and notification schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_serializer

from capex.schemas.common import MAX_ID, InputSchema
from capex.schemas.profiles import VolunteerRef
from capex.schemas.skills import SkillId

State = Literal["requested", "accepted", "declined", "cancelled", "expired", "completed"]
Reason = Annotated[str, Field(max_length=1000)]


def _utc(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class ExchangeCreate(InputSchema):
    mentor_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    skill: SkillId
    message: Annotated[str, Field(max_length=2000)] = ""


class ReasonIn(InputSchema):
    reason: Reason = ""


class FeedbackCreate(InputSchema):
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=2000)] = ""


class ExchangeRead(BaseModel):
    id: int
    state: State
    learner: VolunteerRef
    mentor: VolunteerRef
    skill: str
    message: str
    origin: Literal["request", "round"]
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    expires_at: datetime | None = Field(description="when a waiting request expires")

    @field_serializer(
        "created_at", "updated_at", "responded_at", "accepted_at", "closed_at", "expires_at"
    )
    def _times(self, value: datetime | None) -> str | None:
        return _utc(value)


class EventRead(BaseModel):
    at: datetime
    actor: VolunteerRef | None = Field(description="null when capex acted (expiry)")
    action: str
    from_state: State | None
    to_state: State
    note: str

    @field_serializer("at")
    def _time(self, value: datetime) -> str | None:
        return _utc(value)


class EventList(BaseModel):
    items: list[EventRead]


class FeedbackRead(BaseModel):
    exchange_id: int
    rating: int
    comment: str
    author_role: Literal["learner", "mentor"]
    created_at: datetime

    @field_serializer("created_at")
    def _time(self, value: datetime) -> str | None:
        return _utc(value)


class FeedbackList(BaseModel):
    items: list[FeedbackRead]


class NotificationRead(BaseModel):
    id: int
    kind: str
    text: str
    exchange_id: int | None
    created_at: datetime
    read: bool

    @field_serializer("created_at")
    def _time(self, value: datetime) -> str | None:
        return _utc(value)


class NotificationPage(BaseModel):
    items: list[NotificationRead]
    next_cursor: str | None
    unread_count: int


class MarkRead(InputSchema):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000, description="these; leave out for all"
    )


class UnreadCount(BaseModel):
    unread_count: int
