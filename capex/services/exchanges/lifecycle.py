"""The exchange lifecycle: one transition table, one function that carries a transition out.

Invariants that concurrent requests could race on are held by the database, never by a
read-then-write in Python:

- one open exchange per (learner, mentor, skill): a partial unique index;
- a mentor's accepted exchanges never exceed ``mentor_capacity``: the counter
  ``volunteers.accepted_as_mentor`` moves only through ``UPDATE ... WHERE accepted_as_mentor <
  mentor_capacity`` (and a CHECK backs it);
- at most ``max_open_requests`` waiting requests per learner: the same, on
  ``requested_as_learner``;
- a transition happens once: ``UPDATE exchanges ... WHERE id = :id AND state = :from``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from capex.config import Settings
from capex.errors import Conflict, Forbidden, NotFound
from capex.models import Exchange, ExchangeEvent, Volunteer
from capex.models.base import utcnow
from capex.services.notifications import notify
from capex.vocabulary import (
    OPEN_STATES,
    ExchangeAction,
    ExchangeState,
    NotificationKind,
    Party,
    Role,
    Side,
)

# These UPDATEs change rows the request does not read again through its loaded objects:
# skip the ORM's matching of them against the session (a large share of a transition).
NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed move: ``who`` may take ``action`` on an exchange in ``from_state``.

    ``from_state`` None is the first move, the request that creates the exchange.
    """

    action: ExchangeAction
    from_state: ExchangeState | None
    to_state: ExchangeState
    who: frozenset[Party]


_EITHER_SIDE = frozenset({Party.LEARNER, Party.MENTOR})

# A learner's request: the first event of every exchange (``requests.request``).
OPENING = Transition(
    ExchangeAction.REQUEST, None, ExchangeState.REQUESTED, frozenset({Party.LEARNER})
)
# capex itself closes a request nobody answered in time (``expire_stale``).
EXPIRY = Transition(
    ExchangeAction.EXPIRE,
    ExchangeState.REQUESTED,
    ExchangeState.EXPIRED,
    frozenset({Party.SYSTEM}),
)

# The whole lifecycle of an existing exchange. Anything not in this table is refused: 403
# when the caller's side never may take the action, 409 when the exchange is in another state.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        ExchangeAction.ACCEPT,
        ExchangeState.REQUESTED,
        ExchangeState.ACCEPTED,
        frozenset({Party.MENTOR}),
    ),
    Transition(
        ExchangeAction.DECLINE,
        ExchangeState.REQUESTED,
        ExchangeState.DECLINED,
        frozenset({Party.MENTOR}),
    ),
    Transition(
        ExchangeAction.CANCEL, ExchangeState.REQUESTED, ExchangeState.CANCELLED, _EITHER_SIDE
    ),
    Transition(
        ExchangeAction.CANCEL, ExchangeState.ACCEPTED, ExchangeState.CANCELLED, _EITHER_SIDE
    ),
    Transition(
        ExchangeAction.COMPLETE, ExchangeState.ACCEPTED, ExchangeState.COMPLETED, _EITHER_SIDE
    ),
    EXPIRY,
)

_NOTIFY: dict[ExchangeState, NotificationKind] = {
    ExchangeState.REQUESTED: NotificationKind.EXCHANGE_REQUESTED,
    ExchangeState.ACCEPTED: NotificationKind.EXCHANGE_ACCEPTED,
    ExchangeState.DECLINED: NotificationKind.EXCHANGE_DECLINED,
    ExchangeState.CANCELLED: NotificationKind.EXCHANGE_CANCELLED,
    ExchangeState.EXPIRED: NotificationKind.EXCHANGE_EXPIRED,
    ExchangeState.COMPLETED: NotificationKind.EXCHANGE_COMPLETED,
}


# -- who takes part ------------------------------------------------------------------------


def side_of(exchange: Exchange, volunteer: Volunteer) -> Side | None:
    """The side ``volunteer`` takes in ``exchange``, or None when they take no part."""
    if volunteer.id == exchange.learner_id:
        return Side.LEARNER
    if volunteer.id == exchange.mentor_id:
        return Side.MENTOR
    return None


def _seen_by(session: Session, exchange_id: int, viewer: Volunteer) -> tuple[Exchange, Side | None]:
    """The exchange and the viewer's side in it (None: a coordinator who takes no part).

    Anyone else who takes no part gets 404, as if it did not exist.
    """
    exchange = session.get(Exchange, exchange_id, populate_existing=True)
    side = None if exchange is None else side_of(exchange, viewer)
    if exchange is None or (side is None and viewer.role != Role.COORDINATOR):
        raise NotFound(f"no exchange with id {exchange_id}")
    return exchange, side


def visible(session: Session, exchange_id: int, viewer: Volunteer) -> Exchange:
    """The exchange if ``viewer`` takes part in it or coordinates; else 404."""
    return _seen_by(session, exchange_id, viewer)[0]


def participant(
    session: Session, exchange_id: int, volunteer: Volunteer, *, refusal: str
) -> tuple[Exchange, Side]:
    """The exchange and ``volunteer``'s side in it; a coordinator who takes no part is
    refused with ``refusal`` (403), anyone else gets 404."""
    exchange, side = _seen_by(session, exchange_id, volunteer)
    if side is None:
        raise Forbidden(refusal)
    return exchange, side


# -- expiry --------------------------------------------------------------------------------


def expiry_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    """Requests made at or before this time are expired."""
    return (now or utcnow()) - timedelta(days=settings.request_ttl_days)


def effective_state(
    exchange: Exchange, settings: Settings, now: datetime | None = None
) -> ExchangeState:
    """The state as a reader must see it: a stale request is expired even before the
    periodic task has written so."""
    if exchange.state == ExchangeState.REQUESTED and exchange.created_at <= expiry_cutoff(
        settings, now
    ):
        return ExchangeState.EXPIRED
    return exchange.state


def state_filter(state: ExchangeState, settings: Settings) -> ColumnElement[bool]:
    """SQL for 'the effective state is ``state``'."""
    cutoff = expiry_cutoff(settings)
    if state == ExchangeState.REQUESTED:
        return and_(Exchange.state == ExchangeState.REQUESTED, Exchange.created_at > cutoff)
    if state == ExchangeState.EXPIRED:
        return or_(
            Exchange.state == ExchangeState.EXPIRED,
            and_(Exchange.state == ExchangeState.REQUESTED, Exchange.created_at <= cutoff),
        )
    return Exchange.state == state


# -- applying the table --------------------------------------------------------------------


def apply(
    session: Session,
    settings: Settings,
    exchange_id: int,
    action: ExchangeAction,
    actor: Volunteer | None,
    note: str = "",
) -> Exchange:
    """Take one action of the transition table on an exchange, checked against the table.

    ``actor`` None is the system (expiry). Raises NotFound (not a participant), Forbidden
    (a participant on the wrong side, or a coordinator), Conflict (wrong state, or the
    mentor is full).
    """
    if actor is None:
        exchange = session.get(Exchange, exchange_id, populate_existing=True)
        if exchange is None:
            raise NotFound(f"no exchange with id {exchange_id}")
        party = Party.SYSTEM
    else:
        exchange, side = participant(
            session,
            exchange_id,
            actor,
            refusal="coordinators see exchanges but only participants act on them",
        )
        party = Party(side)
    allowed = [t for t in TRANSITIONS if t.action == action]
    if not any(party in t.who for t in allowed):
        sides = sorted({who for t in allowed for who in t.who} - {Party.SYSTEM})
        raise Forbidden(f"only the {' or the '.join(sides)} may {action} this exchange")
    expired = effective_state(exchange, settings) == ExchangeState.EXPIRED
    if expired and action != ExchangeAction.EXPIRE:
        raise Conflict(f"the request expired unanswered; it cannot be {allowed[0].to_state}")
    transition = next((t for t in allowed if t.from_state == exchange.state), None)
    if transition is None:
        raise Conflict(f"the exchange is {exchange.state}; it cannot be {allowed[0].to_state}")
    return move(session, settings, exchange, transition, actor, note)


def move(
    session: Session,
    settings: Settings,
    exchange: Exchange,
    transition: Transition,
    actor: Volunteer | None,
    note: str,
) -> Exchange:
    """Carry out one transition: the state, the counters, the audit event, the notifications.

    The one place where an exchange changes state. The caller has checked that ``actor`` may
    take it (``apply``). ``OPENING`` records a new exchange that the caller has just inserted
    in its first state; its event is dated at the exchange's creation.
    """
    if transition.from_state is None:
        now = exchange.created_at
        values: dict[str, object] = {}
    else:
        now = utcnow()
        values = _changed_columns(transition, now)
        _write_state(session, exchange, transition, values)
        _keep_counts(session, exchange, transition, now)
    session.add(
        ExchangeEvent(
            exchange_id=exchange.id,
            at=now,
            actor_id=None if actor is None else actor.id,
            action=transition.action,
            from_state=transition.from_state,
            to_state=transition.to_state,
            note=note,
        )
    )
    # Tell each participant who did not act.
    text = _notification_text(exchange, transition, actor, note)
    for volunteer_id in (exchange.learner_id, exchange.mentor_id):
        if actor is None or volunteer_id != actor.id:
            notify(session, settings, volunteer_id, _NOTIFY[transition.to_state], text, exchange.id)
    session.flush()
    # The UPDATE changed the row; tell the loaded object without reading it back.
    for column, value in values.items():
        set_committed_value(exchange, column, value)
    return exchange


def _changed_columns(transition: Transition, now: datetime) -> dict[str, object]:
    values: dict[str, object] = {"state": transition.to_state, "updated_at": now}
    if transition.from_state == ExchangeState.REQUESTED and transition.action in (
        ExchangeAction.ACCEPT,
        ExchangeAction.DECLINE,
    ):
        values["responded_at"] = now
    if transition.to_state == ExchangeState.ACCEPTED:
        values["accepted_at"] = now
    if not transition.to_state.is_open:
        values["closed_at"] = now
    return values


def _write_state(
    session: Session, exchange: Exchange, transition: Transition, values: dict[str, object]
) -> None:
    moved = session.execute(
        update(Exchange)
        .where(Exchange.id == exchange.id, Exchange.state == transition.from_state)
        .values(**values),
        execution_options=NO_SYNC,
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("the exchange changed meanwhile; read it again")


def _keep_counts(
    session: Session, exchange: Exchange, transition: Transition, now: datetime
) -> None:
    """Move the learner's waiting requests and the mentor's accepted exchanges along."""
    if transition.from_state == ExchangeState.REQUESTED:
        session.execute(
            update(Volunteer)
            .where(Volunteer.id == exchange.learner_id)
            .values(requested_as_learner=Volunteer.requested_as_learner - 1),
            execution_options=NO_SYNC,
        )
    if transition.to_state == ExchangeState.ACCEPTED:
        taken = session.execute(
            update(Volunteer)
            .where(
                Volunteer.id == exchange.mentor_id,
                Volunteer.accepted_as_mentor < Volunteer.mentor_capacity,
            )
            .values(accepted_as_mentor=Volunteer.accepted_as_mentor + 1, updated_at=now),
            execution_options=NO_SYNC,
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("the mentor has no open slot: every place is taken")
    if transition.from_state == ExchangeState.ACCEPTED:
        session.execute(
            update(Volunteer)
            .where(Volunteer.id == exchange.mentor_id)
            .values(accepted_as_mentor=Volunteer.accepted_as_mentor - 1, updated_at=now),
            execution_options=NO_SYNC,
        )


def _notification_text(
    exchange: Exchange, transition: Transition, actor: Volunteer | None, note: str
) -> str:
    if actor is None:
        return f"The request #{exchange.id} about {exchange.skill_id} expired unanswered."
    if transition.from_state is None:
        return (
            f"{actor.display_name} asks you to mentor them in {exchange.skill_id} "
            f"(exchange #{exchange.id})."
        )
    reason = f" ({note})" if note else ""
    return (
        f"{actor.display_name} {transition.to_state} the exchange #{exchange.id} about "
        f"{exchange.skill_id}{reason}."
    )


# -- in bulk -------------------------------------------------------------------------------


def expire_stale(
    session: Session, settings: Settings, *, volunteer_id: int | None = None, limit: int = 1000
) -> int:
    """Expire requests unanswered for ``request_ttl_days``; returns how many."""
    query = select(Exchange.id).where(
        Exchange.state == ExchangeState.REQUESTED, Exchange.created_at <= expiry_cutoff(settings)
    )
    if volunteer_id is not None:
        query = query.where(
            or_(Exchange.learner_id == volunteer_id, Exchange.mentor_id == volunteer_id)
        )
    expired = 0
    for exchange_id in session.scalars(query.order_by(Exchange.id).limit(limit)).all():
        exchange = session.get_one(Exchange, exchange_id)
        try:
            with session.begin_nested():
                move(session, settings, exchange, EXPIRY, None, "unanswered")
            expired += 1
        except Conflict:
            continue  # answered meanwhile
    return expired


def cancel_all_open(session: Session, settings: Settings, volunteer: Volunteer, reason: str) -> int:
    """Cancel every open exchange of a volunteer (on deactivation); returns how many."""
    expire_stale(session, settings, volunteer_id=volunteer.id)
    open_ids = session.scalars(
        select(Exchange.id).where(
            or_(Exchange.learner_id == volunteer.id, Exchange.mentor_id == volunteer.id),
            Exchange.state.in_(OPEN_STATES),
        )
    ).all()
    for exchange_id in open_ids:
        apply(session, settings, exchange_id, ExchangeAction.CANCEL, volunteer, reason)
    return len(open_ids)
