"""Declarative base, naming convention and column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite stores none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


VocabularyT = TypeVar("VocabularyT", bound=StrEnum)


class Vocabulary(TypeDecorator[VocabularyT], Generic[VocabularyT]):
    """A column of one of capex's words: stored as its text, read back as the StrEnum member.

    The database sees a plain VARCHAR (the check constraint beside it lists the words), so
    the schema is what the migrations wrote; Python sees ``ExchangeState.ACCEPTED``, not
    ``"accepted"``, and mypy checks every comparison.
    """

    impl = String
    cache_ok = True

    def __init__(self, vocabulary: type[VocabularyT], length: int = 16) -> None:
        super().__init__(length)
        self.vocabulary = vocabulary

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # Members and plain text both go in as the text; an unknown word fails here, before
        # the database's check constraint would.
        return None if value is None else self.vocabulary(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> VocabularyT | None:
        return None if value is None else self.vocabulary(value)


# Every integer key (an ``id`` and each foreign key to one) is 64-bit, the range the API
# publishes for ids; on PostgreSQL an INTEGER key made a larger id in a request fail as
# unstorable instead of being not found. SQLite keeps INTEGER: only ``INTEGER PRIMARY KEY``
# is the rowid (and autoincrements), and its INTEGER already holds 64 bits.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # A column annotated ``Mapped[int]`` without a type of its own is a key; counts and
    # levels name SmallInteger or Integer.
    type_annotation_map: ClassVar[dict[Any, Any]] = {int: Id}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )
