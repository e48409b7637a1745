"""The exchange lifecycle: one transition table, one function that applies it.

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

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from capex.config import Settings
from capex.errors import Conflict, Forbidden, Invalid, NotFound, field_error
from capex.models import (
    Exchange,
    ExchangeEvent,
    Feedback,
    IdempotencyKey,
    SkillOffer,
    Volunteer,
)
from capex.models.base import utcnow
from capex.services.notifications import notify

Party = Literal["learner", "mentor", "system"]
Action = Literal["request", "accept", "decline", "cancel", "complete", "expire"]
IDEMPOTENCY_TTL = timedelta(hours=24)
# These UPDATEs change rows the request does not read again through its loaded objects:
# skip the ORM's matching of them against the session (a large share of a transition).
NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Transition:
    action: Action
    from_state: str
    to_state: str
    who: frozenset[Party]


# The whole lifecycle. Anything not in this table is refused: 403 when the caller's side
# never may take the action, 409 when the exchange is in another state.
TRANSITIONS: tuple[Transition, ...] = (
    Transition("accept", "requested", "accepted", frozenset({"mentor"})),
    Transition("decline", "requested", "declined", frozenset({"mentor"})),
    Transition("cancel", "requested", "cancelled", frozenset({"learner", "mentor"})),
    Transition("cancel", "accepted", "cancelled", frozenset({"learner", "mentor"})),
    Transition("complete", "accepted", "completed", frozenset({"learner", "mentor"})),
    Transition("expire", "requested", "expired", frozenset({"system"})),
)

_NOTIFY: dict[str, str] = {
    "accepted": "exchange_accepted",
    "declined": "exchange_declined",
    "cancelled": "exchange_cancelled",
    "expired": "exchange_expired",
    "completed": "exchange_completed",
}


def _party(exchange: Exchange, actor: Volunteer | None) -> Party | None:
    if actor is None:
        return "system"
    if actor.id == exchange.learner_id:
        return "learner"
    if actor.id == exchange.mentor_id:
        return "mentor"
    return None


def visible(session: Session, exchange_id: int, viewer: Volunteer) -> Exchange:
    """The exchange if ``viewer`` takes part in it or coordinates; else 404."""
    exchange = session.get(Exchange, exchange_id, populate_existing=True)
    if exchange is None or (
        viewer.role != "coordinator" and _party(exchange, viewer) not in ("learner", "mentor")
    ):
        raise NotFound(f"no exchange with id {exchange_id}")
    return exchange


def expiry_cutoff(settings: Settings, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=settings.request_ttl_days)


def effective_state(exchange: Exchange, settings: Settings, now: datetime | None = None) -> str:
    """The state as a reader must see it: a stale request is expired even before the
    periodic task has written so."""
    if exchange.state == "requested" and exchange.created_at <= expiry_cutoff(settings, now):
        return "expired"
    return exchange.state


def state_filter(state: str, settings: Settings) -> ColumnElement[bool]:
    """SQL for 'the effective state is ``state``'."""
    cutoff = expiry_cutoff(settings)
    if state == "requested":
        return and_(Exchange.state == "requested", Exchange.created_at > cutoff)
    if state == "expired":
        return or_(
            Exchange.state == "expired",
            and_(Exchange.state == "requested", Exchange.created_at <= cutoff),
        )
    return Exchange.state == state


def apply(
    session: Session,
    settings: Settings,
    exchange_id: int,
    action: Action,
    actor: Volunteer | None,
    note: str = "",
) -> Exchange:
    """Apply one action of the transition table, write its audit event and notifications.

    ``actor`` None is the system (expiry). Raises NotFound (not a participant), Forbidden
    (a participant on the wrong side), Conflict (wrong state, or the mentor is full).
    """
    exchange = session.get(Exchange, exchange_id, populate_existing=True)
    party = None if exchange is None else _party(exchange, actor)
    if exchange is None or party is None:
        if exchange is not None and actor is not None and actor.role == "coordinator":
            raise Forbidden("coordinators see exchanges but only participants act on them")
        raise NotFound(f"no exchange with id {exchange_id}")
    allowed = [t for t in TRANSITIONS if t.action == action]
    if not any(party in t.who for t in allowed):
        sides = sorted({side for t in allowed for side in t.who} - {"system"})
        raise Forbidden(f"only the {' or the '.join(sides)} may {action} this exchange")
    if action != "expire" and effective_state(exchange, settings) == "expired":
        raise Conflict(f"the request expired unanswered; it cannot be {allowed[0].to_state}")
    transition = next((t for t in allowed if t.from_state == exchange.state), None)
    if transition is None:
        raise Conflict(f"the exchange is {exchange.state}; it cannot be {allowed[0].to_state}")
    return _transition(session, settings, exchange, transition, actor, note)


def _transition(
    session: Session,
    settings: Settings,
    exchange: Exchange,
    transition: Transition,
    actor: Volunteer | None,
    note: str,
) -> Exchange:
    now = utcnow()
    values: dict[str, object] = {"state": transition.to_state, "updated_at": now}
    if transition.from_state == "requested" and transition.action in ("accept", "decline"):
        values["responded_at"] = now
    if transition.to_state == "accepted":
        values["accepted_at"] = now
    if transition.to_state in ("declined", "cancelled", "expired", "completed"):
        values["closed_at"] = now
    moved = session.execute(
        update(Exchange)
        .where(Exchange.id == exchange.id, Exchange.state == transition.from_state)
        .values(**values),
        execution_options=NO_SYNC,
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("the exchange changed meanwhile; read it again")
    if transition.from_state == "requested":
        session.execute(
            update(Volunteer)
            .where(Volunteer.id == exchange.learner_id)
            .values(requested_as_learner=Volunteer.requested_as_learner - 1),
            execution_options=NO_SYNC,
        )
    if transition.to_state == "accepted":
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
    if transition.from_state == "accepted":
        session.execute(
            update(Volunteer)
            .where(Volunteer.id == exchange.mentor_id)
            .values(accepted_as_mentor=Volunteer.accepted_as_mentor - 1, updated_at=now),
            execution_options=NO_SYNC,
        )
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
    _notify_transition(session, settings, exchange, transition, actor, note)
    session.flush()
    # The UPDATE above changed the row; tell the loaded object without reading it back.
    for column, value in values.items():
        set_committed_value(exchange, column, value)
    return exchange


def _notify_transition(
    session: Session,
    settings: Settings,
    exchange: Exchange,
    transition: Transition,
    actor: Volunteer | None,
    note: str,
) -> None:
    kind = _NOTIFY[transition.to_state]
    who = "capex" if actor is None else actor.display_name
    reason = f" ({note})" if note else ""
    text = (
        f"{who} {transition.to_state} the exchange #{exchange.id} about "
        f"{exchange.skill_id}{reason}."
    )
    if actor is None:
        text = f"The request #{exchange.id} about {exchange.skill_id} expired unanswered."
    recipients = [
        volunteer_id
        for volunteer_id in (exchange.learner_id, exchange.mentor_id)
        if actor is None or volunteer_id != actor.id
    ]
    for volunteer_id in recipients:
        notify(session, settings, volunteer_id, kind, text, exchange.id)


def _digest(mentor_id: int, skill: str, message: str) -> str:
    body = json.dumps([mentor_id, skill, message], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    exchange: Exchange
    replayed: bool


def request(
    session: Session,
    settings: Settings,
    learner: Volunteer,
    *,
    mentor_id: int,
    skill: str,
    message: str = "",
    idempotency_key: str | None = None,
    origin: str = "request",
) -> Created:
    """A learner asks a mentor for a skill; returns the new (or the replayed) exchange."""
    digest = _digest(mentor_id, skill, message)
    if idempotency_key is not None:
        replay = _claim_key(session, learner.id, idempotency_key, digest)
        if replay is not None:
            return Created(replay, replayed=True)
    if mentor_id == learner.id:
        raise Invalid(
            "you cannot be your own mentor",
            [field_error(["body", "mentor_id"], "that is you")],
        )
    mentor = session.execute(
        select(Volunteer.username, SkillOffer.skill_id)
        .outerjoin(
            SkillOffer,
            (SkillOffer.volunteer_id == Volunteer.id) & (SkillOffer.skill_id == skill),
        )
        .where(Volunteer.id == mentor_id, Volunteer.is_active.is_(True))
    ).first()
    if mentor is None:
        raise NotFound(f"no volunteer with id {mentor_id}")
    if mentor.skill_id is None:
        raise Invalid(
            f"{mentor.username} does not offer {skill!r}",
            [field_error(["body", "skill"], "not among the mentor's offered skills")],
        )
    # Requests past their time hold places until their expiry is written: when the learner
    # seems full, write it and try once more.
    if not _take_request_place(session, settings, learner.id) and not (
        expire_stale(session, settings, volunteer_id=learner.id)
        and _take_request_place(session, settings, learner.id)
    ):
        raise Conflict(
            f"you already have {settings.max_open_requests} requests waiting for an answer; "
            "cancel one or wait for the mentors"
        )
    now = utcnow()
    exchange = Exchange(
        learner_id=learner.id,
        mentor_id=mentor_id,
        skill_id=skill,
        state="requested",
        origin=origin,
        message=message,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(exchange)
            session.flush()
    except IntegrityError as error:
        open_id = session.scalar(
            select(Exchange.id).where(
                Exchange.learner_id == learner.id,
                Exchange.mentor_id == mentor_id,
                Exchange.skill_id == skill,
                Exchange.state.in_(("requested", "accepted")),
            )
        )
        raise Conflict(
            f"you already have an open exchange with this mentor for {skill!r} (#{open_id})"
        ) from error
    session.add(
        ExchangeEvent(
            exchange_id=exchange.id,
            at=now,
            actor_id=learner.id,
            action="request",
            from_state=None,
            to_state="requested",
            note=message[:200],
        )
    )
    notify(
        session,
        settings,
        mentor_id,
        "exchange_requested",
        f"{learner.display_name} asks you to mentor them in {skill} (exchange #{exchange.id}).",
        exchange.id,
    )
    if idempotency_key is not None:
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.volunteer_id == learner.id, IdempotencyKey.key == idempotency_key)
            .values(exchange_id=exchange.id),
            execution_options=NO_SYNC,
        )
    session.flush()
    return Created(exchange, replayed=False)


def _take_request_place(session: Session, settings: Settings, learner_id: int) -> bool:
    taken = session.execute(
        update(Volunteer)
        .where(
            Volunteer.id == learner_id,
            Volunteer.requested_as_learner < settings.max_open_requests,
        )
        .values(requested_as_learner=Volunteer.requested_as_learner + 1),
        execution_options=NO_SYNC,
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _claim_key(session: Session, learner_id: int, key: str, digest: str) -> Exchange | None:
    """The exchange an earlier request with this key made, or None after claiming the key.

    The key row is written first: a concurrent retry blocks on its unique index until the
    first request commits, then finds its exchange.
    """
    cutoff = utcnow() - IDEMPOTENCY_TTL
    session.execute(
        IdempotencyKey.__table__.delete().where(  # type: ignore[attr-defined]
            IdempotencyKey.volunteer_id == learner_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at <= cutoff,
        )
    )
    try:
        with session.begin_nested():
            session.add(
                IdempotencyKey(
                    volunteer_id=learner_id, key=key, request_digest=digest, created_at=utcnow()
                )
            )
            session.flush()
        return None
    except IntegrityError:
        pass
    earlier = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.volunteer_id == learner_id, IdempotencyKey.key == key
        )
    ).one()
    if earlier.request_digest != digest:
        raise Invalid(
            "this Idempotency-Key was used for a different request",
            [field_error(["header", "Idempotency-Key"], "reused with another body")],
        )
    if earlier.exchange_id is None:
        raise Conflict("a request with this Idempotency-Key is still being processed")
    return session.get_one(Exchange, earlier.exchange_id)


def expire_stale(
    session: Session, settings: Settings, *, volunteer_id: int | None = None, limit: int = 1000
) -> int:
    """Expire requests unanswered for ``request_ttl_days``; returns how many."""
    query = select(Exchange.id).where(
        Exchange.state == "requested", Exchange.created_at <= expiry_cutoff(settings)
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
                _transition(session, settings, exchange, TRANSITIONS[-1], None, "unanswered")
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
            Exchange.state.in_(("requested", "accepted")),
        )
    ).all()
    for exchange_id in open_ids:
        apply(session, settings, exchange_id, "cancel", volunteer, reason)
    return len(open_ids)


def list_exchanges(
    session: Session,
    settings: Settings,
    viewer: Volunteer,
    *,
    state: str | None,
    role: Literal["learner", "mentor"] | None,
    everyone: bool,
    before_id: int | None,
    limit: int,
) -> tuple[list[Exchange], bool]:
    """Newest first: the viewer's exchanges (a coordinator's ``everyone``: all)."""
    query = select(Exchange).order_by(Exchange.id.desc()).limit(limit + 1)
    if not everyone:
        sides = {
            "learner": [Exchange.learner_id == viewer.id],
            "mentor": [Exchange.mentor_id == viewer.id],
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
    return rows[:limit], len(rows) > limit


def events(session: Session, exchange_id: int) -> list[ExchangeEvent]:
    return list(
        session.scalars(
            select(ExchangeEvent)
            .where(ExchangeEvent.exchange_id == exchange_id)
            .order_by(ExchangeEvent.at, ExchangeEvent.id)
        )
    )


def leave_feedback(
    session: Session,
    settings: Settings,
    exchange_id: int,
    author: Volunteer,
    *,
    rating: int,
    comment: str,
) -> Feedback:
    """Each participant rates the other once, after completion."""
    exchange = session.get(Exchange, exchange_id)
    party = None if exchange is None else _party(exchange, author)
    if exchange is None or party not in ("learner", "mentor"):
        if exchange is not None and author.role == "coordinator":
            raise Forbidden("only the participants give feedback")
        raise NotFound(f"no exchange with id {exchange_id}")
    if exchange.state != "completed":
        raise Conflict(f"the exchange is {exchange.state}; feedback comes after completion")
    subject = exchange.mentor_id if party == "learner" else exchange.learner_id
    feedback = Feedback(
        exchange_id=exchange.id,
        author_id=author.id,
        subject_id=subject,
        author_role=party,
        rating=rating,
        comment=comment,
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(feedback)
            session.flush()
    except IntegrityError as error:
        raise Conflict("you already gave feedback on this exchange") from error
    notify(
        session,
        settings,
        subject,
        "feedback_received",
        f"{author.display_name} rated exchange #{exchange.id} {rating} of 5.",
        exchange.id,
    )
    return feedback


def feedback_on(session: Session, exchange_id: int, viewer: Volunteer) -> list[Feedback]:
    """Both sides' feedback on an exchange, oldest first, for its participants and
    coordinators (anyone else: 404)."""
    visible(session, exchange_id, viewer)
    return list(
        session.scalars(
            select(Feedback)
            .where(Feedback.exchange_id == exchange_id)
            .order_by(Feedback.created_at, Feedback.id)
        )
    )


MIN_RATINGS_SHOWN = 3


def mentor_ratings(session: Session, ids: Iterable[int]) -> dict[int, tuple[float, int]]:
    """Average rating and count from learners, for mentors with at least 3 ratings."""
    rows = session.execute(
        select(Feedback.subject_id, func.avg(Feedback.rating), func.count())
        .where(Feedback.subject_id.in_(list(ids)), Feedback.author_role == "learner")
        .group_by(Feedback.subject_id)
    )
    return {
        subject: (round(float(average), 2), int(count))
        for subject, average, count in rows
        if count >= MIN_RATINGS_SHOWN
    }
