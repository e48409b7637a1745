"""The skill taxonomy: a forest of at most three levels under seven root areas."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from capex.models.base import Base, TimestampMixin

MAX_SKILL_DEPTH = 3


class Skill(TimestampMixin, Base):
    __tablename__ = "skills"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"), index=True
    )
    wikidata: Mapped[str | None] = mapped_column(String(20))

    aliases: Mapped[list[SkillAlias]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="SkillAlias.position",
    )


class SkillAlias(Base):
    __tablename__ = "skill_aliases"
    __table_args__ = (Index("ix_skill_aliases_alias", "alias"),)

    skill_id: Mapped[str] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    alias: Mapped[str] = mapped_column(String(120))
