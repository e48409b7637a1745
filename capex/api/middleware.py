"""The HTTP layer around the routes: body limits, write limits, security headers.

All are plain ASGI middleware (no BaseHTTPMiddleware: it would buffer responses and run
the app in another task).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capex.api.problems import problem
from capex.config import Settings
from capex.db import CONNECTION_ERRORS, unavailable
from capex.errors import CapexError
from capex.services import write_limits
from capex.web import security
from capex.web.pages import capex_error_page


@dataclass(frozen=True)
class BodyLimits:
    """What one request body may hold before the app sees it.

    Parsing and validating run on the event loop (FastAPI parses JSON bodies there, and
    pydantic and the urlencoded form decoder hold the GIL even in a worker thread), and
    their cost grows with what the body holds rather than with its bytes alone: a 1 MiB
    JSON object of 95,000 keys takes about 70 ms to parse and seconds to list as
    validation errors; 1 MiB of ``%41`` in a form field 200 ms to decode. Bounding the
    members, the nesting and the percent escapes keeps every accepted body to a few
    milliseconds of loop time (``bench/body_limits.py``); no real request comes near.
    """

    max_bytes: int
    # The largest real bodies: 1001 members (marking 1000 notifications read), about 700
    # (a profile with every list full).
    max_members: int = 1200
    max_depth: int = 32
    max_escapes: int = 8192


class BodyLimitMiddleware:
    """Read the request body up to ``limits.max_bytes`` and refuse it with 413 past that.

    A declared Content-Length over the limit is refused before a byte is read; a chunked
    body is counted as it arrives and reading stops at the first byte too many. A JSON or
    form body is then measured (members, nesting, escapes) without parsing it; only a
    body within every bound reaches the app, replayed in one message.
    """

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if declared is None and not chunked:
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_bytes:
            await self._refuse(scope, receive, send, self._too_many_bytes())
            return
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_bytes:
                await self._refuse(scope, receive, send, self._too_many_bytes())
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        refusal = shape_problem(body, headers.get("content-type", ""), self.limits)
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                # What comes after the body: the client's disconnect, when it leaves.
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _too_many_bytes(self) -> str:
        return f"the request body is larger than {self.limits.max_bytes} bytes"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        # The rest of the body stays unread: the server closes the connection after this.
        response = problem(413, detail, title="Content Too Large", headers={"Connection": "close"})
        await response(scope, receive, send)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def shape_problem(body: bytes, content_type: str, limits: BodyLimits) -> str | None:
    """Why ``body`` is too costly to parse, or None; counts bytes, never parses."""
    media_type = _media_type(content_type)
    if media_type == "application/json" or media_type.endswith("+json"):
        return _json_shape_problem(body, limits)
    if media_type == "application/x-www-form-urlencoded":
        if body.count(b"&") >= limits.max_members:
            return f"the form has more than {limits.max_members} fields"
        if body.count(b"%") > limits.max_escapes:
            return f"the form has more than {limits.max_escapes} percent escapes"
    return None


def _json_shape_problem(body: bytes, limits: BodyLimits) -> str | None:
    # Take the strings out (escaped backslashes, then escaped quotes, so that every quote
    # left delimits a string); what is left between them is the structure.
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    strings = body.count(b'"') // 2
    # Each string is a key or a value; each member has at most one of each.
    if strings > 2 * limits.max_members + 1:
        return _too_many_members(limits)
    structure = b"".join(body.split(b'"')[0::2])
    # A non-empty container of n members has n - 1 commas.
    members = structure.count(b",") + structure.count(b"[") + structure.count(b"{")
    if members > limits.max_members:
        return _too_many_members(limits)
    depth = deepest = 0
    for bracket in structure.translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in _OPENING else -1
        deepest = max(deepest, depth)
    if deepest > limits.max_depth:
        return f"the JSON body is nested deeper than {limits.max_depth} levels"
    return None


def _too_many_members(limits: BodyLimits) -> str:
    return f"the JSON body has more than {limits.max_members} members (array items, object keys)"


_OPENING = frozenset(b"[{")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteLimitMiddleware:
    """Count every write against its account and its client address before the app sees it.

    A write through the JSON API (under ``api_prefix``) is counted for the volunteer of its
    bearer token, any other (the web client's forms) for the volunteer of its session
    cookie; both for the connection's address (the proxy's client, when the proxy is
    trusted). Past a limit it is answered 429 with ``Retry-After`` (problem+json, or the
    web client's page in the reader's language) and never reaches the app, so nothing of it
    is written. The count commits before the request's own transaction begins (see
    ``capex.services.write_limits``). A database that cannot be reached to count is
    answered 503, as the app itself would answer the write.
    """

    def __init__(self, app: ASGIApp, api_prefix: str) -> None:
        self.app = app
        self.api_prefix = api_prefix.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        settings: Settings = request.app.state.settings
        if not write_limits.limits_on(settings):
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith(self.api_prefix)
        try:
            await run_in_threadpool(
                write_limits.count_write,
                request.app.state.session_factory,
                settings,
                token=_bearer(request) if api else request.cookies.get(security.SESSION_COOKIE),
                address=request.client.host if request.client else "unknown",
                now=request.app.state.clock(),
            )
        except CapexError as error:
            await (await _refusal(request, error, api=api))(scope, receive, send)
            return
        except CONNECTION_ERRORS as error:
            outage = unavailable(error, settings.db_retry_after_seconds)
            if outage is None:
                raise
            await (await _refusal(request, outage, api=api))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _refusal(request: Request, error: CapexError, *, api: bool) -> Response:
    if api:
        return problem(error.status, error.detail, title=error.title, headers=error.headers)
    return await run_in_threadpool(capex_error_page, request, error)


class SecurityHeadersMiddleware:
    """Add the headers a browser needs to every response that does not set its own."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [item for item in self.headers if item[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def content_security_policy(**extra: str) -> str:
    """The policy, with ``extra`` sources added per directive (``script_src="'sha256-…'"``)."""
    policy = dict(CONTENT_SECURITY_POLICY)
    for directive, sources in extra.items():
        name = directive.replace("_", "-")
        policy[name] = f"{policy[name]} {sources}"
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


def security_headers(hsts_seconds: int) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": content_security_policy(),
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
    }
    if hsts_seconds:
        headers["Strict-Transport-Security"] = f"max-age={hsts_seconds}; includeSubDomains"
    return headers


class HeadAsGetMiddleware:
    """Answer HEAD wherever GET is answered: the same status and headers, no body.

    FastAPI routes declare GET only; listing HEAD on each route would put a HEAD operation
    for every path into the OpenAPI document.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
