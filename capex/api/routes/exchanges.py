"""Exchanges: request, answer, follow, talk, complete, rate."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Response, status
from pydantic import AwareDatetime

from capex.api.deps import CurrentUser, IdPath, NowDep, PageDep, SessionDep, SettingsDep
from capex.errors import Forbidden, Invalid, field_error
from capex.schemas.common import (
    ExchangeStateWord,
    Page,
    PlainText,
    Problem,
    SideWord,
    encode_cursor,
)
from capex.schemas.exchanges import (
    EventList,
    ExchangeCreate,
    ExchangeRead,
    FeedbackCreate,
    FeedbackList,
    FeedbackRead,
    MeetingTimesRead,
    MessageCreate,
    MessageList,
    MessageRead,
    ReasonIn,
)
from capex.services import exchanges, meetings
from capex.services.exchanges import ExchangeView, MessageView
from capex.vocabulary import ExchangeAction, Role

router = APIRouter(prefix="/exchanges", tags=["exchanges"])


async def optional_reason(data: Annotated[ReasonIn | None, Body()] = None) -> str:
    """The reason an optional ``{"reason": ...}`` body gives; none is the empty reason."""
    return data.reason if data else ""


Reason = Annotated[str, Depends(optional_reason)]

_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ExchangeRead, responses=_errors
)
def request_exchange(
    data: ExchangeCreate,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[
        PlainText | None,
        Header(
            min_length=1,
            max_length=255,
            description="a retry with the same key returns the same exchange",
        ),
    ] = None,
) -> ExchangeView:
    """Ask a mentor to teach me one of the skills they offer."""
    asked = exchanges.ask(session, settings, me, data, idempotency_key)
    if asked.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return asked.exchange


@router.get("", response_model=Page[ExchangeRead], responses=_errors)
def list_exchanges(
    me: CurrentUser,
    session: SessionDep,
    page: PageDep,
    settings: SettingsDep,
    state: Annotated[ExchangeStateWord | None, Query()] = None,
    role: Annotated[SideWord | None, Query(alias="as")] = None,
    scope: Annotated[
        Literal["mine", "all"], Query(description="all: everyone's (coordinators)")
    ] = "mine",
) -> Page[ExchangeRead]:
    """My exchanges, newest first; a coordinator may ask for everyone's."""
    if scope == "all" and me.role != Role.COORDINATOR:
        raise Forbidden("only coordinators may list everyone's exchanges")
    found = exchanges.list_exchanges(
        session,
        settings,
        me,
        state=state,
        role=role,
        everyone=scope == "all",
        before_id=page.position("before", int),
        limit=page.limit,
    )
    return Page[ExchangeRead](
        items=found.items,
        next_cursor=encode_cursor({"before": found.items[-1].id}) if found.more else None,
    )


@router.get("/{exchange_id}", response_model=ExchangeRead, responses=_errors)
def read_exchange(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ExchangeView:
    """One exchange, for its participants and coordinators."""
    return exchanges.read(session, settings, exchange_id, me)


@router.post("/{exchange_id}/accept", response_model=ExchangeRead, responses=_errors)
def accept(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ExchangeView:
    """The mentor takes the request (409 when all their slots are taken)."""
    return exchanges.act(session, settings, exchange_id, ExchangeAction.ACCEPT, me)


@router.post("/{exchange_id}/decline", response_model=ExchangeRead, responses=_errors)
def decline(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep, reason: Reason
) -> ExchangeView:
    """The mentor turns the request down, optionally saying why."""
    return exchanges.act(session, settings, exchange_id, ExchangeAction.DECLINE, me, reason)


@router.post("/{exchange_id}/cancel", response_model=ExchangeRead, responses=_errors)
def cancel(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep, reason: Reason
) -> ExchangeView:
    """Either participant calls off a waiting or accepted exchange."""
    return exchanges.act(session, settings, exchange_id, ExchangeAction.CANCEL, me, reason)


@router.post("/{exchange_id}/complete", response_model=ExchangeRead, responses=_errors)
def complete(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> ExchangeView:
    """Either participant marks an accepted exchange done."""
    return exchanges.act(session, settings, exchange_id, ExchangeAction.COMPLETE, me)


@router.post(
    "/{exchange_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackRead,
    responses=_errors,
)
def feedback(
    exchange_id: IdPath,
    data: FeedbackCreate,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> FeedbackRead:
    """Rate the other participant, once, after completion."""
    given = exchanges.leave_feedback(
        session, settings, exchange_id, me, rating=data.rating, comment=data.comment
    )
    return FeedbackRead.model_validate(given)


@router.get("/{exchange_id}/feedback", response_model=FeedbackList, responses=_errors)
def read_feedback(exchange_id: IdPath, me: CurrentUser, session: SessionDep) -> FeedbackList:
    """Both participants' feedback once given, oldest first."""
    return FeedbackList(items=exchanges.feedback_on(session, exchange_id, me))


@router.get("/{exchange_id}/events", response_model=EventList, responses=_errors)
def exchange_events(exchange_id: IdPath, me: CurrentUser, session: SessionDep) -> EventList:
    """The audit trail, oldest first."""
    return EventList(items=exchanges.trail(session, exchange_id, me))


@router.get("/{exchange_id}/messages", response_model=MessageList, responses=_errors)
def read_messages(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, page: PageDep
) -> MessageList:
    """The thread between the learner and the mentor, oldest first."""
    found = exchanges.thread(
        session, exchange_id, me, limit=page.limit, after_id=page.position("after", int)
    )
    return MessageList(
        items=found.items,
        next_cursor=encode_cursor({"after": found.items[-1].id}) if found.more else None,
    )


@router.post(
    "/{exchange_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageRead,
    responses=_errors,
)
def post_message(
    exchange_id: IdPath,
    data: MessageCreate,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> MessageView:
    """Write to the other participant (409 once the exchange is closed)."""
    return exchanges.post_message(session, settings, exchange_id, me, data.body)


CALENDAR_MEDIA_TYPE = "text/calendar"

_MEETING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The meeting times (JSON), or with `format=ics&start=` the iCalendar "
        "event of the one that begins at `start`, as an attachment.",
        "content": {CALENDAR_MEDIA_TYPE: {"schema": {"type": "string"}}},
    },
    **_errors,
}


@router.get(
    "/{exchange_id}/meeting-times",
    response_model=MeetingTimesRead,
    responses=_MEETING_RESPONSES,
)
def meeting_times(
    exchange_id: IdPath,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    weeks: Annotated[
        int, Query(ge=meetings.MIN_WEEKS, le=meetings.MAX_WEEKS, description="how far ahead")
    ] = 2,
    format: Annotated[
        Literal["json", "ics"], Query(description="ics: the iCalendar event starting at start")
    ] = "json",
    start: Annotated[
        AwareDatetime | None,
        Query(description="with format=ics: the start of one of the meeting times (ISO 8601)"),
    ] = None,
) -> Any:
    """The coming times both participants of an accepted exchange are free, soonest first."""
    if format == "ics":
        if start is None:
            raise Invalid(
                "format=ics needs start: the start of one of the meeting times",
                [field_error(["query", "start"], "required with format=ics")],
            )
        filename, text = meetings.meeting_ics(session, settings, exchange_id, me, start, now)
        return Response(
            text,
            media_type=f"{CALENDAR_MEDIA_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    plan = meetings.meeting_times(session, settings, exchange_id, me, weeks=weeks, now=now)
    return MeetingTimesRead.model_validate(plan)
