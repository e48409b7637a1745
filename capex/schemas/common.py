"""Shapes shared by every resource: pages, problems, cursors."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    PlainSerializer,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_core import core_schema as cs

from capex.errors import Invalid, field_error
from capex.vocabulary import (
    ExchangeState,
    Origin,
    Role,
    Side,
)

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ID = 2**63 - 1  # the largest integer key both databases store


class Schema(BaseModel):
    """Base of every response model: built from a service's typed result by its attributes."""

    model_config = ConfigDict(from_attributes=True)


def _as_text(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# Every timestamp in an answer: UTC, to the second, with a Z ("2026-12-01T13:34:57Z").
# The published type is "string or null" even where the field is never null: that is what
# the contract said before this type replaced five copies of the serializer.
UtcTimestamp = Annotated[datetime, PlainSerializer(_as_text, return_type=str | None)]
# The same, published as a plain "string": a profile's created_at always was.
RequiredUtcTimestamp = Annotated[datetime, PlainSerializer(_as_text, return_type=str)]


def _published_as_literal(vocabulary: type[StrEnum]) -> GetPydanticSchema:
    """Validate a vocabulary's words into its members, published as an inline string enum.

    A plain StrEnum field would be published as a named component; these fields were
    ``Literal`` types, and the contract keeps their shape. Validation accepts only the
    words themselves (JSON text), also in strict bodies, and answers go out as text.
    """
    words = cs.literal_schema([member.value for member in vocabulary])

    def schema(_source: Any, _handler: Any) -> cs.CoreSchema:
        return cs.no_info_after_validator_function(
            vocabulary,
            words,
            serialization=cs.plain_serializer_function_ser_schema(
                lambda member: member.value, return_schema=words
            ),
        )

    return GetPydanticSchema(schema)


ExchangeStateWord = Annotated[ExchangeState, _published_as_literal(ExchangeState)]
OriginWord = Annotated[Origin, _published_as_literal(Origin)]
RoleWord = Annotated[Role, _published_as_literal(Role)]
SideWord = Annotated[Side, _published_as_literal(Side)]


# Tab and newline are text; every other control character (NUL, carriage return, escape,
# the C1 range) and lone surrogates are refused. PostgreSQL cannot store a NUL and SQLite
# cuts a LIKE pattern at one, so letting them through made the databases disagree.
# Unicode's control characters (category Cc) less tab and newline, and lone surrogates.
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character(text: str) -> str | None:
    """The first character of ``text`` that no text field may hold, as 'U+0000', or None."""
    found = _CONTROL_CHARACTER.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def _control_character_error(character: str, where: str = "") -> PydanticCustomError:
    return PydanticCustomError(
        "control_character",
        "{where}holds the control character {character}; only tab and newline are allowed",
        {"where": where, "character": character},
    )


def refuse_control_characters(text: str) -> str:
    """The text unchanged, or a validation error naming its first control character."""
    found = control_character(text)
    if found is not None:
        raise _control_character_error(found)
    return text


# A text parameter (query, header or path) that reaches a query.
PlainText = Annotated[str, AfterValidator(refuse_control_characters)]


class InputSchema(BaseModel):
    """Base of every request body: unknown fields, loose numbers and control characters are 422.

    ``strict`` keeps JSON ``true`` or ``"3"`` from passing as a number (pydantic's lax mode
    reads them as 1 and 3); query and path parameters are not bodies and still parse "5".
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        # Before the field's own rules, so that whitespace stripping cannot quietly remove
        # a trailing carriage return or vertical tab.
        texts = value if isinstance(value, list) else [value]
        for index, text in enumerate(texts):
            if isinstance(text, str) and (found := control_character(text)) is not None:
                where = f"item {index} " if isinstance(value, list) else ""
                raise _control_character_error(found, where)
        return value


def body_models() -> list[type[InputSchema]]:
    """Every request body model (each subclass of InputSchema, nested ones too).

    FastAPI's OpenAPI document types ``maximum`` as a float, so that a bound of 2^63-1 is
    published as 9.223372036854776e+18 (2^63); the document keeps the models' own JSON
    schemas exact by putting these in its components as pydantic writes them.
    """
    found: list[type[InputSchema]] = []
    pending = list(InputSchema.__subclasses__())
    while pending:
        model = pending.pop(0)
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = Field(
        default=None, description="the first 50 field errors of a 422"
    )
    error_count: int | None = Field(default=None, description="how many field errors there were")


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any] | None:
    """The position a cursor holds, or None when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def cursor_position(cursor: str | None, key: str, kind: type[int] | type[str]) -> Any:
    """The ``key`` a cursor of ours holds (None without a cursor); 422 for any other."""
    if cursor is None:
        return None
    position = decode_cursor(cursor)
    value = None if position is None else position.get(key)
    valid = isinstance(value, kind) and not isinstance(value, bool)
    if isinstance(value, int) and not 0 <= value <= MAX_ID:
        valid = False
    if isinstance(value, str) and control_character(value) is not None:
        valid = False
    if not valid:
        raise Invalid(
            "the cursor is not one this service gave out",
            [field_error(["query", "cursor"], "invalid cursor; use next_cursor as given")],
        )
    return value
