"""The one error hierarchy of capex; the API maps each kind to an HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capex.vocabulary import LimitScope


class CapexError(Exception):
    """Base of every error a use case raises on purpose."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class NotFound(CapexError):
    status = 404
    title = "Not found"


class Forbidden(CapexError):
    status = 403
    title = "Forbidden"


class Conflict(CapexError):
    status = 409
    title = "Conflict"


class Unauthorized(CapexError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(Unauthorized):
    """A wrong username or password (counted by the sign-in that raises it)."""


class TooManyRequests(CapexError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_seconds))})
        self.retry_after_seconds = retry_after_seconds


class WriteLimitReached(TooManyRequests):
    """A write past the write limit of its account or its address in the current window."""

    def __init__(
        self, scope: LimitScope, limit: int, window_seconds: int, retry_after_seconds: int
    ) -> None:
        retry = max(1, retry_after_seconds)
        super().__init__(
            f"too many writes from this {scope}: at most {limit} every {window_seconds} "
            f"seconds per {scope}; try again in {retry} seconds",
            retry,
        )
        self.scope = scope
        self.limit = limit
        self.window_seconds = window_seconds


class DatabaseUnavailable(CapexError):
    """The database cannot be reached, or is too busy to answer in time: retry later."""

    status = 503
    title = "Service unavailable"

    def __init__(self, retry_after_seconds: int, *, busy: bool = False) -> None:
        seconds = max(1, retry_after_seconds)
        state = "busy" if busy else "not answering"
        super().__init__(
            f"the database is {state}; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )
        self.retry_after_seconds = seconds


class Busy(CapexError):
    """Too much of one costly kind of work at once (password hashing): retry later."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        seconds = max(1, retry_after_seconds)
        super().__init__(
            f"{detail}; try again in {seconds} seconds", headers={"Retry-After": str(seconds)}
        )
        self.retry_after_seconds = seconds


class Invalid(CapexError):
    """Input that parsed but breaks a rule; ``errors`` names each bad field."""

    status = 422
    title = "Unprocessable content"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)


def field_error(loc: Sequence[str | int], msg: str) -> dict[str, Any]:
    """One entry of a 422's ``errors`` list."""
    return {"loc": list(loc), "msg": msg}
