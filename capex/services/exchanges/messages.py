"""Messages: the thread between an exchange's learner and mentor, read-only once it closes.

Only the two participants read and write it: a coordinator who sees the exchange is refused
(403), anyone else gets 404 as if the exchange did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.errors import Conflict
from capex.models import ExchangeMessage, Skill, Volunteer
from capex.models.base import utcnow

# Imported as a module: profiles imports this package (mentor_ratings) in turn.
from capex.services import profiles
from capex.services.exchanges.lifecycle import effective_state, participant
from capex.services.notifications import notify
from capex.vocabulary import NotificationKind, Side

PRIVATE = "messages are private to the learner and the mentor"
# How much of a message its notification quotes.
PREVIEW_LENGTH = 80


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message of a thread, with its author named."""

    id: int
    exchange_id: int
    author: profiles.VolunteerRef
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MessagePage:
    """One page of a thread, oldest first, and whether newer messages follow."""

    items: list[MessageView]
    more: bool


def post_message(
    session: Session,
    settings: Settings,
    exchange_id: int,
    author: Volunteer,
    body: str,
    now: datetime | None = None,
) -> MessageView:
    """A participant writes to the other; 409 once the exchange is closed."""
    now = now or utcnow()
    exchange, side = participant(session, exchange_id, author, refusal=PRIVATE)
    # Read the state again under a row lock (PostgreSQL; SQLite's write transaction already
    # holds the database): a transition waits for this message, or this message sees the
    # closed state; and two messages to one exchange take their ids in the order they commit,
    # so a reader paging by id never skips one. NO KEY UPDATE leaves rows that merely refer
    # to the exchange (events, notifications) free to be written meanwhile.
    session.refresh(exchange, with_for_update={"key_share": True})
    if not effective_state(exchange, settings, now).is_open:
        raise Conflict("this exchange is closed; its messages are read-only")
    message = ExchangeMessage(
        exchange_id=exchange.id, author_id=author.id, body=body, created_at=now
    )
    session.add(message)
    recipient = exchange.mentor_id if side == Side.LEARNER else exchange.learner_id
    skill = session.get_one(Skill, exchange.skill_id)
    notify(
        session,
        settings,
        recipient,
        NotificationKind.MESSAGE_RECEIVED,
        f"{author.display_name} wrote about {skill.name}: {_preview(body)}",
        exchange.id,
    )
    session.flush()
    return MessageView(
        id=message.id,
        exchange_id=exchange.id,
        author=profiles.VolunteerRef(
            id=author.id, username=author.username, display_name=author.display_name
        ),
        body=message.body,
        created_at=message.created_at,
    )


def thread(
    session: Session, exchange_id: int, viewer: Volunteer, *, limit: int, after_id: int | None
) -> MessagePage:
    """An exchange's messages oldest first, after the message ``after_id`` if given."""
    participant(session, exchange_id, viewer, refusal=PRIVATE)
    query = (
        select(ExchangeMessage)
        .where(ExchangeMessage.exchange_id == exchange_id)
        .order_by(ExchangeMessage.id)
        .limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(ExchangeMessage.id > after_id)
    rows = list(session.scalars(query))
    shown = rows[:limit]
    refs = profiles.volunteer_refs(session, {row.author_id for row in shown})
    items = [
        MessageView(
            id=row.id,
            exchange_id=row.exchange_id,
            author=refs[row.author_id],
            body=row.body,
            created_at=row.created_at,
        )
        for row in shown
    ]
    return MessagePage(items, more=len(rows) > limit)


def _preview(body: str) -> str:
    """The message on one line, cut to PREVIEW_LENGTH characters (an ellipsis if cut)."""
    line = " ".join(body.split())
    return line if len(line) <= PREVIEW_LENGTH else f"{line[:PREVIEW_LENGTH]}…"
