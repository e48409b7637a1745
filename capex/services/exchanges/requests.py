"""A learner's request: the checks, the learner's places for waiting requests, idempotency."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Conflict, Invalid, NotFound, field_error
from capex.models import Exchange, IdempotencyKey, SkillOffer, Volunteer
from capex.models.base import utcnow
from capex.services.exchanges.lifecycle import NO_SYNC, OPENING, expire_stale, move
from capex.vocabulary import OPEN_STATES, ExchangeState, Origin

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Created:
    """The exchange a request made, and whether it is an earlier request's (a retry)."""

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
    origin: Origin = Origin.REQUEST,
) -> Created:
    """A learner asks a mentor for a skill; returns the new (or the replayed) exchange."""
    if idempotency_key is not None:
        digest = _digest(mentor_id, skill, message)
        replay = _claim_key(session, learner.id, idempotency_key, digest)
        if replay is not None:
            return Created(replay, replayed=True)
    _check_mentor(session, learner, mentor_id, skill)
    _hold_request_place(session, settings, learner.id)
    exchange = _insert_exchange(session, learner.id, mentor_id, skill, message, origin)
    move(session, settings, exchange, OPENING, learner, message[:200])
    if idempotency_key is not None:
        _bind_key(session, learner.id, idempotency_key, exchange.id)
    return Created(exchange, replayed=False)


def _check_mentor(session: Session, learner: Volunteer, mentor_id: int, skill: str) -> None:
    """422 unless the mentor is someone else, active, and offers ``skill`` (404: no such)."""
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


# -- the learner's places for waiting requests ---------------------------------------------


def _hold_request_place(session: Session, settings: Settings, learner_id: int) -> None:
    """Take one of the learner's ``max_open_requests`` places, or 409 when all are held."""
    # Requests past their time hold places until their expiry is written: when the learner
    # seems full, write it and try once more.
    if _take_request_place(session, settings, learner_id):
        return
    if expire_stale(session, settings, volunteer_id=learner_id) and _take_request_place(
        session, settings, learner_id
    ):
        return
    raise Conflict(
        f"you already have {settings.max_open_requests} requests waiting for an answer; "
        "cancel one or wait for the mentors"
    )


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


def _insert_exchange(
    session: Session, learner_id: int, mentor_id: int, skill: str, message: str, origin: Origin
) -> Exchange:
    """The new exchange, waiting for the mentor; 409 when the pair already has one open."""
    now = utcnow()
    exchange = Exchange(
        learner_id=learner_id,
        mentor_id=mentor_id,
        skill_id=skill,
        state=ExchangeState.REQUESTED,
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
                Exchange.learner_id == learner_id,
                Exchange.mentor_id == mentor_id,
                Exchange.skill_id == skill,
                Exchange.state.in_(OPEN_STATES),
            )
        )
        raise Conflict(
            f"you already have an open exchange with this mentor for {skill!r} (#{open_id})"
        ) from error
    return exchange


# -- idempotency ---------------------------------------------------------------------------


def _digest(mentor_id: int, skill: str, message: str) -> str:
    body = json.dumps([mentor_id, skill, message], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


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


def _bind_key(session: Session, learner_id: int, key: str, exchange_id: int) -> None:
    """Record which exchange the claimed key made, for its retries."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.volunteer_id == learner_id, IdempotencyKey.key == key)
        .values(exchange_id=exchange_id),
        execution_options=NO_SYNC,
    )
