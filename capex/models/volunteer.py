"""Volunteers and what their profile holds: languages, availability, offers and wants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from capex.models.base import Base, TimestampMixin, UTCDateTime, Vocabulary
from capex.models.skill import Skill
from capex.vocabulary import Role, sql_in


class Volunteer(TimestampMixin, Base):
    __tablename__ = "volunteers"
    __table_args__ = (
        CheckConstraint("mentor_capacity BETWEEN 0 AND 20", name="mentor_capacity_range"),
        CheckConstraint(sql_in("role", Role), name="role_known"),
        # Counters kept in step with exchanges by conditional UPDATEs, so that two requests
        # racing for a mentor's last slot cannot both win; the checks are the backstop.
        CheckConstraint(
            "accepted_as_mentor >= 0 AND accepted_as_mentor <= mentor_capacity",
            name="accepted_within_capacity",
        ),
        CheckConstraint("requested_as_learner >= 0", name="requested_not_negative"),
        Index("ix_volunteers_region_id", "region", "id"),
        # Matching indexes in every worker poll for profiles changed since their last look.
        Index("ix_volunteers_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # Lower-cased copies keep "Alice" and "alice" from being two accounts.
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(80))
    bio: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(16))
    # The web client's language, when the volunteer chose one (else the browser's).
    locale: Mapped[str | None] = mapped_column(String(16))
    mentor_capacity: Mapped[int] = mapped_column(SmallInteger, default=2)
    accepted_as_mentor: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    requested_as_learner: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    role: Mapped[Role] = mapped_column(Vocabulary(Role), default=Role.VOLUNTEER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    languages: Mapped[list[VolunteerLanguage]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="VolunteerLanguage.position"
    )
    availability: Mapped[list[AvailabilitySlot]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="(AvailabilitySlot.weekday, AvailabilitySlot.start_minute)",
    )
    offers: Mapped[list[SkillOffer]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="SkillOffer.position"
    )
    wants: Mapped[list[SkillWant]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="SkillWant.position"
    )


class VolunteerLanguage(Base):
    __tablename__ = "volunteer_languages"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
        # The directory's language filter walks volunteers of one language in id order.
        Index("ix_volunteer_languages_language_volunteer", "language", "volunteer_id"),
        Index("ix_volunteer_languages_code_volunteer", "code", "volunteer_id"),
    )

    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(35), primary_key=True)
    # The primary subtag ("pt" for "pt-BR"), so that language=pt finds both.
    language: Mapped[str] = mapped_column(String(8))
    level: Mapped[int] = mapped_column(SmallInteger)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)


class AvailabilitySlot(Base):
    __tablename__ = "availability_slots"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint(
            "start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
            name="minutes_ordered",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_minute: Mapped[int] = mapped_column(SmallInteger)
    end_minute: Mapped[int] = mapped_column(SmallInteger)


class _SkillEntry:
    """One skill in a volunteer's list, at a level (offered: held; wanted: the target),
    in the volunteer's order."""

    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"), primary_key=True
    )
    level: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(String(280), default="")
    position: Mapped[int] = mapped_column(SmallInteger, default=0)

    @declared_attr
    def skill(cls) -> Mapped[Skill]:
        return relationship(Skill, lazy="raise")


def _skill_entry_table_args(table: str) -> tuple[Any, ...]:
    return (
        CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
        Index(f"ix_{table}_skill_volunteer", "skill_id", "volunteer_id"),
    )


class SkillOffer(_SkillEntry, Base):
    __tablename__ = "skill_offers"
    __table_args__ = _skill_entry_table_args(__tablename__)


class SkillWant(_SkillEntry, Base):
    __tablename__ = "skill_wants"
    __table_args__ = _skill_entry_table_args(__tablename__)
