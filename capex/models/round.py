"""Coordinators' matching rounds: a snapshot of pairs, published as exchanges once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from capex.models.base import Base, UTCDateTime, Vocabulary, utcnow
from capex.vocabulary import RoundMode, RoundStatus, sql_in


class Round(Base):
    """One run of the round solver for a cohort: its question, its metrics, its status.

    The pairs are kept as they were when the round ran (``RoundPair``): profiles that change
    afterwards do not change them; publishing checks each pair again.
    """

    __tablename__ = "rounds"
    __table_args__ = (
        CheckConstraint(sql_in("mode", RoundMode), name="mode_known"),
        CheckConstraint(sql_in("status", RoundStatus), name="status_known"),
        CheckConstraint("max_per_learner >= 1", name="max_per_learner_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[RoundMode] = mapped_column(Vocabulary(RoundMode))
    status: Mapped[RoundStatus] = mapped_column(Vocabulary(RoundStatus), default=RoundStatus.DRAFT)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The question: which skills, learners and mentors (None: all), the lowest score, and
    # how many pairs one learner may get.
    skills: Mapped[list[str] | None] = mapped_column(JSON)
    learner_ids: Mapped[list[int] | None] = mapped_column(JSON)
    mentor_ids: Mapped[list[int] | None] = mapped_column(JSON)
    min_score: Mapped[float] = mapped_column(Float, default=0.0)
    max_per_learner: Mapped[int] = mapped_column(SmallInteger, default=1)
    # The answer's metrics, as computed when it ran.
    learners: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    total_score: Mapped[float] = mapped_column(Float, default=0.0)
    mean_score: Mapped[float | None] = mapped_column(Float)
    mentor_load_gini: Mapped[float | None] = mapped_column(Float)
    blocking_pairs: Mapped[int] = mapped_column(Integer, default=0)
    # The learners of the cohort the round could not place, by id.
    unmatched_learner_ids: Mapped[list[int]] = mapped_column(JSON, default=list)


class RoundPair(Base):
    """One pair of a round: who would learn what from whom, its score and its reasons."""

    __tablename__ = "round_pairs"
    __table_args__ = (
        CheckConstraint("learner_id <> mentor_id", name="not_self"),
        Index("ix_round_pairs_round_id", "round_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    learner_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    # The mentor's offered skill the exchange is about, and the learner's want it serves.
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="RESTRICT"))
    wanted_skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="RESTRICT"))
    score: Mapped[float] = mapped_column(Float)
    # The engine's reasons for the score (skill similarity, level fit, overlap, languages).
    reasons: Mapped[dict[str, object]] = mapped_column(JSON)
    # After publishing: the exchange it became, or why it could not become one.
    exchange_id: Mapped[int | None] = mapped_column(ForeignKey("exchanges.id", ondelete="SET NULL"))
    not_published: Mapped[str | None] = mapped_column(Text)
