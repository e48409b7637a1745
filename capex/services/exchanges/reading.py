"""What both front doors show of exchanges: each with both participants, and its trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Invalid, field_error
from capex.models import Exchange, ExchangeEvent, Volunteer
from capex.schemas.exchanges import ExchangeCreate

# Imported as a module: profiles imports this package (mentor_ratings) in turn.
from capex.services import profiles
from capex.services.exchanges.lifecycle import apply, effective_state, state_filter, visible
from capex.services.exchanges.requests import request
from capex.vocabulary import ExchangeAction, ExchangeState, Origin, Side


@dataclass(frozen=True, slots=True)
class ExchangeView:
    """An exchange as a reader sees it: both participants, the effective state, and when a
    waiting request expires."""

    id: int
    state: ExchangeState
    learner: profiles.VolunteerRef
    mentor: profiles.VolunteerRef
    skill: str
    message: str
    origin: Origin
    created_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    accepted_at: datetime | None
    closed_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventView:
    """One step of an exchange's audit trail; ``actor`` None when capex acted (expiry)."""

    at: datetime
    actor: profiles.VolunteerRef | None
    action: ExchangeAction
    from_state: ExchangeState | None
    to_state: ExchangeState
    note: str


@dataclass(frozen=True, slots=True)
class ExchangeList:
    """One page of exchanges, newest first, and whether older ones follow."""

    items: list[ExchangeView]
    more: bool


def views(session: Session, settings: Settings, rows: list[Exchange]) -> list[ExchangeView]:
    """The view of each exchange, in the order given (one query for all participants)."""
    refs = profiles.volunteer_refs(
        session, {r.learner_id for r in rows} | {r.mentor_id for r in rows}
    )
    ttl = timedelta(days=settings.request_ttl_days)
    found = []
    for row in rows:
        state = effective_state(row, settings)
        found.append(
            ExchangeView(
                id=row.id,
                state=state,
                learner=refs[row.learner_id],
                mentor=refs[row.mentor_id],
                skill=row.skill_id,
                message=row.message,
                origin=row.origin,
                created_at=row.created_at,
                updated_at=row.updated_at,
                responded_at=row.responded_at,
                accepted_at=row.accepted_at,
                closed_at=row.closed_at,
                expires_at=row.created_at + ttl if state == ExchangeState.REQUESTED else None,
            )
        )
    return found


def view(session: Session, settings: Settings, exchange: Exchange) -> ExchangeView:
    """The view of one exchange."""
    return views(session, settings, [exchange])[0]


@dataclass(frozen=True, slots=True)
class Asked:
    """The exchange a learner's request made, as they see it, and whether it is an earlier
    request's (a retry with the same Idempotency-Key)."""

    exchange: ExchangeView
    replayed: bool


def ask(
    session: Session,
    settings: Settings,
    learner: Volunteer,
    data: ExchangeCreate,
    idempotency_key: str | None = None,
) -> Asked:
    """A learner asks a mentor for one of the skills they offer (see ``requests.request``)."""
    created = request(
        session,
        settings,
        learner,
        mentor_id=data.mentor_id,
        skill=data.skill,
        message=data.message,
        idempotency_key=idempotency_key,
    )
    return Asked(view(session, settings, created.exchange), created.replayed)


def act(
    session: Session,
    settings: Settings,
    exchange_id: int,
    action: ExchangeAction,
    actor: Volunteer,
    note: str = "",
) -> ExchangeView:
    """A participant takes ``action`` (see ``lifecycle.apply``); the exchange as it now is."""
    return view(session, settings, apply(session, settings, exchange_id, action, actor, note))


def read(session: Session, settings: Settings, exchange_id: int, viewer: Volunteer) -> ExchangeView:
    """One exchange, for its participants and coordinators (anyone else: 404)."""
    return view(session, settings, visible(session, exchange_id, viewer))


def list_exchanges(
    session: Session,
    settings: Settings,
    viewer: Volunteer,
    *,
    state: ExchangeState | None,
    role: Side | None,
    everyone: bool,
    before_id: int | None,
    limit: int,
) -> ExchangeList:
    """Newest first: the viewer's exchanges (a coordinator's ``everyone``: all)."""
    query = select(Exchange).order_by(Exchange.id.desc()).limit(limit + 1)
    if not everyone:
        sides = {
            Side.LEARNER: [Exchange.learner_id == viewer.id],
            Side.MENTOR: [Exchange.mentor_id == viewer.id],
            None: [Exchange.learner_id == viewer.id, Exchange.mentor_id == viewer.id],
        }[role]
        query = query.where(or_(*sides))
    elif role is not None:
        raise Invalid(
            "as= picks my side; with scope=all it does not apply",
            [field_error(["query", "as"], "not with scope=all")],
        )
    if state is not None:
        query = query.where(state_filter(state, settings))
    if before_id is not None:
        query = query.where(Exchange.id < before_id)
    rows = list(session.scalars(query))
    return ExchangeList(views(session, settings, rows[:limit]), more=len(rows) > limit)


def trail(session: Session, exchange_id: int, viewer: Volunteer) -> list[EventView]:
    """An exchange's audit trail, oldest first, for its participants and coordinators."""
    visible(session, exchange_id, viewer)
    rows = session.scalars(
        select(ExchangeEvent)
        .where(ExchangeEvent.exchange_id == exchange_id)
        .order_by(ExchangeEvent.at, ExchangeEvent.id)
    ).all()
    refs = profiles.volunteer_refs(
        session, {row.actor_id for row in rows if row.actor_id is not None}
    )
    return [
        EventView(
            at=row.at,
            actor=refs.get(row.actor_id) if row.actor_id is not None else None,
            action=row.action,
            from_state=row.from_state,
            to_state=row.to_state,
            note=row.note,
        )
        for row in rows
    ]
