"""RFC 9457 problem documents for every error, in one place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capex.db import CONNECTION_ERRORS, unavailable
from capex.errors import CapexError
from capex.web.pages import error_page

PROBLEM_JSON = "application/problem+json"
# A 422 lists at most this many field errors (and says how many there were): a body of a
# million bad keys must not be answered with a million entries.
MAX_LISTED_ERRORS = 50
logger = logging.getLogger("capex.api")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    error_count: int | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    """A problem document; ``errors`` past the first MAX_LISTED_ERRORS are only counted."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors[:MAX_LISTED_ERRORS])
        body["error_count"] = len(errors) if error_count is None else error_count
    return ProblemResponse(body, status_code=status, headers=headers)


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{loc, msg}`` entries."""
    return [
        {
            "loc": [part for part in error.get("loc", ()) if part != "function-after"],
            "msg": _message(error),
        }
        for error in errors
    ]


def _describe(errors: list[dict[str, Any]], total: int) -> str:
    listed = errors[:MAX_LISTED_ERRORS]
    fields = [".".join(str(part) for part in error["loc"]) or "request" for error in listed]
    shown = ", ".join(dict.fromkeys(fields))
    first = errors[0]["msg"] if errors else "invalid input"
    if total == 1:
        return f"{shown}: {first}"
    if total > len(listed):
        return f"{total} problems in the request; errors lists the first {len(listed)} ({shown})"
    return f"{total} problems in the request ({shown}); see errors"


async def _capex_error(_request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, CapexError)
    errors = getattr(error, "errors", None)
    detail = error.detail
    if errors and len(errors) > MAX_LISTED_ERRORS:
        detail += f" ({len(errors)} problems; errors lists the first {MAX_LISTED_ERRORS})"
    return problem(
        error.status,
        detail,
        title=error.title,
        errors=errors if errors else None,
        headers=error.headers or None,
    )


async def _validation_error(_request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    raw = list(error.errors())
    if any(item.get("type") == "json_invalid" for item in raw):
        ctx = next(item.get("ctx", {}) for item in raw if item.get("type") == "json_invalid")
        return problem(
            400,
            f"the request body is not valid JSON ({ctx.get('error', 'malformed')})",
            title="Malformed JSON",
        )
    # Only the listed errors are turned into entries; the rest are only counted.
    errors = validation_errors(raw[:MAX_LISTED_ERRORS])
    return problem(
        422,
        _describe(errors, len(raw)),
        title="Unprocessable content",
        errors=errors,
        error_count=len(raw),
    )


def _page_for_a_person(request: Request) -> bool:
    """Whether a browser asked for a page (not the API, the docs or a health check)."""
    path = request.url.path
    machine = path.startswith(
        ("/api/", "/static/", "/openapi.json", "/docs", "/healthz", "/readyz")
    )
    return not machine and "text/html" in request.headers.get("accept", "")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404 and _page_for_a_person(request):
        # A mistyped address in the browser gets the web client's page, in its language.
        return await run_in_threadpool(error_page, request, 404, None)
    if error.status_code == 404 and error.detail == "Not Found":
        detail = f"nothing at {request.url.path}"
    elif error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(error.detail)
    headers = dict(error.headers) if error.headers else None
    if error.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem(error.status_code, detail, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path."""
    # Starlette's 405 lists only the methods of the first route whose path matched, and
    # one path often has several routes (PUT and PATCH /me/profile).
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


async def _unstorable(_request: Request, error: Exception) -> ProblemResponse:
    # The database refused a value the schemas let through, such as a NUL character in a
    # PostgreSQL text column: bad input, not a fault of the server.
    return problem(422, "the request holds a value the database cannot store (a NUL character?)")


async def _integrity(_request: Request, error: Exception) -> ProblemResponse:
    # A rule the database holds (a unique index, a check) refused a change that raced
    # another one; the services catch the expected cases with a clearer message.
    logger.info("integrity error: %s", error)
    return problem(409, "the change conflicts with another one made meanwhile; read and retry")


class TracebackLog:
    """Log an unexpected error with its traceback at most once per cause per interval.

    A cause is the exception's type and the innermost frame it was raised in; the same
    cause again within ``interval_seconds`` gets a one-line summary, so that a fault hit by
    every request does not flood the log. ``clock`` gives monotonic seconds.
    """

    def __init__(
        self, interval_seconds: float = 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._logged_at: dict[tuple[str, str], float] = {}

    def log(self, error: BaseException, where: str) -> None:
        now = self.clock()
        key = cause(error)
        last = self._logged_at.get(key)
        if last is not None and now - last < self.interval_seconds:
            logger.error(
                "unhandled error on %s: %s: %s (traceback logged at most once a minute)",
                where,
                type(error).__qualname__,
                str(error)[:200],
            )
            return
        if len(self._logged_at) > 1000:  # forget causes not seen within the interval
            self._logged_at = {
                seen: at for seen, at in self._logged_at.items() if now - at < self.interval_seconds
            }
        self._logged_at[key] = now
        logger.error("unhandled error on %s", where, exc_info=error)


def cause(error: BaseException) -> tuple[str, str]:
    """The exception's type and the file and line of the innermost frame it passed."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    place = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else ""
    return f"{type(error).__module__}.{type(error).__qualname__}", place


def _traceback_log(request: Request) -> TracebackLog:
    found = getattr(request.app.state, "tracebacks", None)
    if not isinstance(found, TracebackLog):
        found = request.app.state.tracebacks = TracebackLog()
    return found


async def _unexpected(request: Request, error: Exception) -> ProblemResponse:
    _traceback_log(request).log(error, f"{request.method} {request.url.path}")
    return problem(500, "an unexpected error occurred; it has been logged")


async def _database_error(request: Request, error: Exception) -> Response:
    # The access log has the request's line; a traceback would say nothing more.
    outage = unavailable(error, request.app.state.settings.db_retry_after_seconds)
    if outage is None:
        return await _unexpected(request, error)
    if _page_for_a_person(request):
        # A page's session dependency commits after its route's own handler returned.
        page = await run_in_threadpool(error_page, request, outage.status, outage.detail)
        page.headers.update(outage.headers)
        return page
    return await _capex_error(request, outage)


class UnexpectedErrorMiddleware:
    """Answer an exception no handler took with the 500 problem here, as a normal answer.

    Starlette's outermost handler for ``Exception`` re-raises it after answering: the server
    then logs a second traceback and closes the connection, so that a client's next request
    on a kept-alive connection is reset. Added innermost, so that the access log and the
    security headers see this answer like any other.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        except Exception as error:
            if started:  # too late for an answer of its own
                raise
            response = await _unexpected(Request(scope), error)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Answer every error with problem+json (add UnexpectedErrorMiddleware innermost too)."""
    app.state.tracebacks = TracebackLog()
    app.add_exception_handler(CapexError, _capex_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(IntegrityError, _integrity)
    for connection_error in CONNECTION_ERRORS:
        app.add_exception_handler(connection_error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
