"""Feedback: each participant rates the other once, after completion."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Conflict
from capex.models import Feedback, Volunteer
from capex.models.base import utcnow
from capex.services.exchanges.lifecycle import participant, visible
from capex.services.notifications import notify
from capex.vocabulary import ExchangeState, NotificationKind, Side

MIN_RATINGS_SHOWN = 3


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
    exchange, side = participant(
        session, exchange_id, author, refusal="only the participants give feedback"
    )
    if exchange.state != ExchangeState.COMPLETED:
        raise Conflict(f"the exchange is {exchange.state}; feedback comes after completion")
    subject = exchange.mentor_id if side == Side.LEARNER else exchange.learner_id
    feedback = Feedback(
        exchange_id=exchange.id,
        author_id=author.id,
        subject_id=subject,
        author_role=side,
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
        NotificationKind.FEEDBACK_RECEIVED,
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


def mentor_ratings(session: Session, ids: Iterable[int]) -> dict[int, tuple[float, int]]:
    """Average rating and count from learners, for mentors with at least 3 ratings."""
    rows = session.execute(
        select(Feedback.subject_id, func.avg(Feedback.rating), func.count())
        .where(Feedback.subject_id.in_(list(ids)), Feedback.author_role == Side.LEARNER)
        .group_by(Feedback.subject_id)
    )
    return {
        subject: (round(float(average), 2), int(count))
        for subject, average, count in rows
        if count >= MIN_RATINGS_SHOWN
    }
