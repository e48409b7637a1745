"""Shapes shared by every resource: pages, problems, cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from capex.errors import Invalid, field_error

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ID = 2**63 - 1  # the largest integer key both databases store


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
    errors: list[FieldProblem] | None = None


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
    if not valid:
        raise Invalid(
            "the cursor is not one this service gave out",
            [field_error(["query", "cursor"], "invalid cursor; use next_cursor as given")],
        )
    return value
