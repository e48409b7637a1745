"""RFC 9457 problem documents for every error, in one place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


async def _unexpected(request: Request, error: Exception) -> ProblemResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    """Answer every error with problem+json."""
    app.add_exception_handler(CapexError, _capex_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(Exception, _unexpected)
