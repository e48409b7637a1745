"""Exchanges (one learner learning one skill from one mentor), their audit trail, feedback,
messages, notifications and idempotency keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from capex.models.base import Base, UTCDateTime, Vocabulary, utcnow
from capex.vocabulary import (
    OPEN_STATES,
    ExchangeAction,
    ExchangeState,
    NotificationKind,
    Origin,
    Side,
    sql_in,
)

_OPEN = sql_in("state", OPEN_STATES)


class Exchange(Base):
    __tablename__ = "exchanges"
    __table_args__ = (
        CheckConstraint(sql_in("state", ExchangeState), name="state_known"),
        CheckConstraint(sql_in("origin", Origin), name="origin_known"),
        CheckConstraint("learner_id <> mentor_id", name="not_self"),
        # At most one open exchange per learner, mentor and skill: held by the database.
        Index(
            "uq_exchanges_open_pair",
            "learner_id",
            "mentor_id",
            "skill_id",
            unique=True,
            sqlite_where=text(_OPEN),
            postgresql_where=text(_OPEN),
        ),
        Index("ix_exchanges_learner_state", "learner_id", "state"),
        Index("ix_exchanges_mentor_state", "mentor_id", "state"),
        Index("ix_exchanges_state_created_at", "state", "created_at"),
        # The statistics snapshot rereads the exchanges changed since its last look.
        Index("ix_exchanges_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="RESTRICT"))
    state: Mapped[ExchangeState] = mapped_column(
        Vocabulary(ExchangeState), default=ExchangeState.REQUESTED
    )
    origin: Mapped[Origin] = mapped_column(Vocabulary(Origin), default=Origin.REQUEST)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the mentor answered (accepted or declined): response times for the statistics.
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExchangeEvent(Base):
    """One transition of one exchange: who, from which state to which, why, when."""

    __tablename__ = "exchange_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(
        ForeignKey("exchanges.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # None when the system acted (expiry).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("volunteers.id", ondelete="SET NULL"))
    action: Mapped[ExchangeAction] = mapped_column(Vocabulary(ExchangeAction))
    from_state: Mapped[ExchangeState | None] = mapped_column(Vocabulary(ExchangeState))
    to_state: Mapped[ExchangeState] = mapped_column(Vocabulary(ExchangeState))
    note: Mapped[str] = mapped_column(Text, default="")


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("exchange_id", "author_id", name="uq_feedback_exchange_author"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        Index("ix_feedback_subject", "subject_id"),
        Index("ix_feedback_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    # The other participant, whom the rating is about.
    subject_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    author_role: Mapped[Side] = mapped_column(Vocabulary(Side))
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExchangeMessage(Base):
    """One message of the thread between an exchange's learner and mentor."""

    __tablename__ = "exchange_messages"
    __table_args__ = (
        # A thread is read oldest first, paged by id.
        Index("ix_exchange_messages_exchange_id", "exchange_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_volunteer_id", "volunteer_id", "id"),
        Index(
            "ix_notifications_unsent",
            "id",
            sqlite_where=text("email_status = 'pending'"),
            postgresql_where=text("email_status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(Vocabulary(NotificationKind, 32))
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # 'none' (no mail configured), 'pending', 'sending', 'sent' or 'failed' (gave up).
    email_status: Mapped[str] = mapped_column(String(16), default="none")
    email_attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    # When a server process took it for mailing ('sending'); see notifications._claim.
    email_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("volunteer_id", "key", name="uq_idempotency_keys_volunteer_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # A digest of the request body: the same key with another body is refused.
    request_digest: Mapped[str] = mapped_column(String(64))
    # Claimed before the exchange exists, so that a concurrent retry waits on the key.
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
