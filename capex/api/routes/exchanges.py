"""Exchanges: request, answer, follow, complete, rate."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response, status
from sqlalchemy.orm import Session

from capex.api.deps import CurrentUser, IdPath, PageDep, SessionDep, SettingsDep
from capex.config import Settings
from capex.errors import Forbidden
from capex.models import Exchange, Feedback, Volunteer
from capex.schemas.common import (
    Page,
    PlainText,
    Problem,
    encode_cursor,
)
from capex.schemas.exchanges import (
    EventList,
    ExchangeCreate,
    ExchangeRead,
    FeedbackCreate,
    FeedbackList,
    FeedbackRead,
    ReasonIn,
    State,
)
from capex.services import exchanges
from capex.services.profiles import volunteer_refs

router = APIRouter(prefix="/exchanges", tags=["exchanges"])

_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}


def views(session: Session, settings: Settings, rows: list[Exchange]) -> list[dict[str, Any]]:
    refs = volunteer_refs(session, {r.learner_id for r in rows} | {r.mentor_id for r in rows})
    ttl = timedelta(days=settings.request_ttl_days)
    result = []
    for row in rows:
        state = exchanges.effective_state(row, settings)
        result.append(
            {
                "id": row.id,
                "state": state,
                "learner": refs[row.learner_id],
                "mentor": refs[row.mentor_id],
                "skill": row.skill_id,
                "message": row.message,
                "origin": row.origin,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
                "responded_at": row.responded_at,
                "accepted_at": row.accepted_at,
                "closed_at": row.closed_at,
                "expires_at": row.created_at + ttl if state == "requested" else None,
            }
        )
    return result


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
) -> dict[str, Any]:
    """Ask a mentor to teach me one of the skills they offer."""
    created = exchanges.request(
        session,
        settings,
        me,
        mentor_id=data.mentor_id,
        skill=data.skill,
        message=data.message,
        idempotency_key=idempotency_key,
    )
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return views(session, settings, [created.exchange])[0]


@router.get("", response_model=Page[ExchangeRead], responses=_errors)
def list_exchanges(
    me: CurrentUser,
    session: SessionDep,
    page: PageDep,
    settings: SettingsDep,
    state: Annotated[State | None, Query()] = None,
    role: Annotated[Literal["learner", "mentor"] | None, Query(alias="as")] = None,
    scope: Annotated[
        Literal["mine", "all"], Query(description="all: everyone's (coordinators)")
    ] = "mine",
) -> dict[str, Any]:
    """My exchanges, newest first; a coordinator may ask for everyone's."""
    if scope == "all" and me.role != "coordinator":
        raise Forbidden("only coordinators may list everyone's exchanges")
    rows, more = exchanges.list_exchanges(
        session,
        settings,
        me,
        state=state,
        role=role,
        everyone=scope == "all",
        before_id=page.position("before", int),
        limit=page.limit,
    )
    return {
        "items": views(session, settings, rows),
        "next_cursor": encode_cursor({"before": rows[-1].id}) if more else None,
    }


@router.get("/{exchange_id}", response_model=ExchangeRead, responses=_errors)
def read_exchange(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """One exchange, for its participants and coordinators."""
    return views(session, settings, [exchanges.visible(session, exchange_id, me)])[0]


def _act(
    action: exchanges.Action,
    exchange_id: int,
    me: Volunteer,
    session: Session,
    settings: Settings,
    note: str = "",
) -> dict[str, Any]:
    exchange = exchanges.apply(session, settings, exchange_id, action, me, note)
    return views(session, settings, [exchange])[0]


@router.post("/{exchange_id}/accept", response_model=ExchangeRead, responses=_errors)
def accept(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """The mentor takes the request (409 when all their slots are taken)."""
    return _act("accept", exchange_id, me, session, settings)


@router.post("/{exchange_id}/decline", response_model=ExchangeRead, responses=_errors)
def decline(
    exchange_id: IdPath,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    data: Annotated[ReasonIn | None, Body()] = None,
) -> dict[str, Any]:
    """The mentor turns the request down, optionally saying why."""
    return _act("decline", exchange_id, me, session, settings, data.reason if data else "")


@router.post("/{exchange_id}/cancel", response_model=ExchangeRead, responses=_errors)
def cancel(
    exchange_id: IdPath,
    me: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    data: Annotated[ReasonIn | None, Body()] = None,
) -> dict[str, Any]:
    """Either participant calls off a waiting or accepted exchange."""
    return _act("cancel", exchange_id, me, session, settings, data.reason if data else "")


@router.post("/{exchange_id}/complete", response_model=ExchangeRead, responses=_errors)
def complete(
    exchange_id: IdPath, me: CurrentUser, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Either participant marks an accepted exchange done."""
    return _act("complete", exchange_id, me, session, settings)


def _feedback_view(given: Feedback) -> dict[str, Any]:
    return {
        "exchange_id": given.exchange_id,
        "rating": given.rating,
        "comment": given.comment,
        "author_role": given.author_role,
        "created_at": given.created_at,
    }


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
) -> dict[str, Any]:
    """Rate the other participant, once, after completion."""
    given = exchanges.leave_feedback(
        session, settings, exchange_id, me, rating=data.rating, comment=data.comment
    )
    return _feedback_view(given)


@router.get("/{exchange_id}/feedback", response_model=FeedbackList, responses=_errors)
def read_feedback(exchange_id: IdPath, me: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Both participants' feedback once given, oldest first."""
    return {
        "items": [_feedback_view(row) for row in exchanges.feedback_on(session, exchange_id, me)]
    }


@router.get("/{exchange_id}/events", response_model=EventList, responses=_errors)
def exchange_events(exchange_id: IdPath, me: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """The audit trail, oldest first."""
    exchanges.visible(session, exchange_id, me)
    rows = exchanges.events(session, exchange_id)
    refs = volunteer_refs(session, {row.actor_id for row in rows if row.actor_id is not None})
    return {
        "items": [
            {
                "at": row.at,
                "actor": refs.get(row.actor_id) if row.actor_id is not None else None,
                "action": row.action,
                "from_state": row.from_state,
                "to_state": row.to_state,
                "note": row.note,
            }
            for row in rows
        ]
    }
