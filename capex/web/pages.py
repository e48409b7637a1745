"""What every page needs: who is looking (a signed-in volunteer or nobody), in which
language and time zone, the CSRF token of its forms, and one way to render a template.

A web route is an ``HtmlRoute``: a service's ``CapexError`` becomes an HTML page with the
same status (a signed-out visitor of a private page is sent to sign in), never the JSON
problem document of the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from capex import __version__
from capex.config import Settings
from capex.db import CONNECTION_ERRORS, session_scope, unavailable
from capex.deps import SessionDep
from capex.errors import CapexError, Forbidden, Unauthorized, WriteLimitReached
from capex.models import Volunteer
from capex.services import accounts, notifications
from capex.services.matches import MatchingNotReady
from capex.vocabulary import LimitScope, Role
from capex.web import i18n, security
from capex.web.i18n import N_, Language

logger = logging.getLogger("capex.web")

HERE = Path(__file__).parent
STATIC = HERE / "static"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # The catalog of the page being rendered (set around each render, see ``speaking``).
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    environment.globals["version"] = __version__
    environment.globals["languages"] = [(code, i18n.LANGUAGES[code]) for code in i18n.CHOOSABLE]
    return environment


templates = Jinja2Templates(env=_environment())


class SignInRequired(Exception):
    """A private page was asked for by someone not signed in."""


@dataclass
class Visit:
    """One page view: the request, the volunteer signed in (if any), the language."""

    request: Request
    settings: Settings
    user: Volunteer | None
    language: Language
    csrf_seed: str
    new_csrf_seed: bool
    unread: int = 0
    cookies: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def _(self, message: str, **variables: object) -> str:
        return self.language.gettext(message, **variables)

    @property
    def csrf(self) -> str:
        return security.csrf_token(self.csrf_seed, self.settings.secret_key)

    @property
    def signed_in(self) -> Volunteer:
        if self.user is None:
            raise SignInRequired
        return self.user

    @property
    def coordinator(self) -> Volunteer:
        """The signed-in coordinator; a volunteer without the role gets the 403 page."""
        user = self.signed_in
        if user.role != Role.COORDINATOR:
            raise Forbidden(self._("Only coordinators may see the console."))
        return user

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        shown = notice(self.request)
        values = {
            "visit": self,
            "_": self._,
            "lang": self.language,
            "notice": self._(NOTICES[shown]) if shown else None,
            **(context or {}),
        }
        with i18n.speaking(self.language):
            response = templates.TemplateResponse(
                self.request, template, values, status_code=status
            )
        self.finish(response)
        return response

    def redirect(self, target: str, *, notice: str | None = None) -> RedirectResponse:
        """303 See Other to ``target`` (after a POST), with one of ``NOTICES`` shown there."""
        if notice:
            joiner = "&" if "?" in target else "?"
            target = f"{target}{joiner}notice={quote(notice)}"
        response = RedirectResponse(target, status_code=303)
        self.finish(response)
        return response

    def finish(self, response: Response) -> None:
        if self.new_csrf_seed:
            security.set_cookie(
                self.request, response, security.CSRF_COOKIE, self.csrf_seed, max_age=None
            )
        for name, (value, max_age) in self.cookies.items():
            if value:
                security.set_cookie(self.request, response, name, value, max_age=max_age)
            else:
                security.forget_cookie(self.request, response, name)


def _language_for(request: Request, user: Volunteer | None) -> Language:
    code = i18n.choose(
        request.cookies.get(security.LANGUAGE_COOKIE),
        user.locale if user is not None else None,
        i18n.from_accept_language(request.headers.get("accept-language")),
    )
    zone_name = user.timezone if user is not None and user.timezone else "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return Language(code, zone)


def visit_for(request: Request, session: Session | None, *, refresh_unread: bool = True) -> Visit:
    """The Visit of ``request``: the cookie's volunteer, if its token is still good."""
    settings: Settings = request.app.state.settings
    user: Volunteer | None = None
    token = request.cookies.get(security.SESSION_COOKIE)
    if token and session is not None:
        try:
            user = accounts.volunteer_for_token(session, settings, token)
        except Unauthorized:
            user = None
    seed = request.cookies.get(security.CSRF_COOKIE) or ""
    new_seed = not seed or len(seed) > 64
    if new_seed:
        seed = security.new_csrf_seed()
    visit = Visit(
        request=request,
        settings=settings,
        user=user,
        language=_language_for(request, user),
        csrf_seed=seed,
        new_csrf_seed=new_seed,
    )
    if user is not None and session is not None and refresh_unread:
        visit.unread = notifications.unread_count(session, user.id)
    if token and user is None and session is not None:
        visit.cookies[security.SESSION_COOKIE] = ("", None)  # a dead token: forget it
    request.state.visit = visit
    return visit


def _visit(request: Request, session: SessionDep) -> Visit:
    return visit_for(request, session)


VisitDep = Annotated[Visit, Depends(_visit)]


def _visit_outside_transaction(request: Request) -> Visit:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with session_scope(factory) as session:
        return visit_for(request, session)


# For a page whose work runs transactions of its own (sign-in: no connection is held while
# the password is hashed): the visitor is looked up in a short transaction, closed before
# the page's code runs.
OwnTransactionsVisitDep = Annotated[Visit, Depends(_visit_outside_transaction)]


async def _form(request: Request) -> FormData:
    """The posted form, once its CSRF token has been checked against the browser's cookie."""
    form = await request.form()
    sent = form.get(security.CSRF_FIELD)
    seed = request.cookies.get(security.CSRF_COOKIE)
    settings: Settings = request.app.state.settings
    if not security.csrf_matches(
        seed, sent if isinstance(sent, str) else None, settings.secret_key
    ):
        raise CsrfRefused
    return form


class CsrfRefused(Exception):
    """A POST without the CSRF token of the browser's own cookie."""


FormDep = Annotated[FormData, Depends(_form)]

# What a page says once after a redirect (``?notice=key``): a fixed set, so that a link
# cannot make the site say anything else. A route module adds its own with NOTICES.update().
NOTICES = {
    "signed-up": N_("Welcome to capex! Fill in your profile to be matched."),
    "signed-in": N_("You are signed in."),
    "signed-out": N_("You are signed out."),
    "password-changed": N_("Your password is changed."),
    "password-reset": N_("Your password is changed. Sign in with the new one."),
    "reset-sent": N_(
        "If an account has this email address, a link to choose a new password is on its way."
    ),
    "profile-saved": N_("Your profile is saved."),
    "requested": N_("Your request is sent. The mentor will answer here."),
    "accepted": N_("You accepted this request."),
    "declined": N_("You declined this request."),
    "cancelled": N_("This exchange is cancelled."),
    "completed": N_("This exchange is completed. Thank you!"),
    "feedback-saved": N_("Thank you for your feedback."),
    "message-sent": N_("Your message is sent."),
    "all-read": N_("All notifications are marked read."),
    "language-saved": N_("The language is changed."),
}


def notice(request: Request) -> str | None:
    """The key of the notice this page should show, if it is one of ``NOTICES``."""
    key = request.query_params.get("notice")
    return key if key in NOTICES else None


# Titles of the error page by status, translated where shown.
ERROR_TITLES = {
    400: N_("This request could not be understood"),
    401: N_("Please sign in"),
    403: N_("You may not do this"),
    404: N_("Not found"),
    409: N_("This cannot be done now"),
    413: N_("What you sent is too large"),
    422: N_("Some of what you sent is not valid"),
    429: N_("Too many attempts"),
    503: N_("Not available right now"),
}


def _error_visit(request: Request) -> Visit:
    visit = getattr(request.state, "visit", None)
    if isinstance(visit, Visit):
        return visit
    factory = request.app.state.session_factory
    try:
        with session_scope(factory) as session:
            return visit_for(request, session, refresh_unread=False)
    except CONNECTION_ERRORS:
        # The database is away (perhaps why this page is shown): an anonymous visit,
        # the session cookie kept for when it is back.
        return visit_for(request, None)


def error_page(
    request: Request, status: int, detail: str | Callable[[Visit], str] | None
) -> HTMLResponse:
    """The error page of ``status``; ``detail`` may be written for the visit (its language)."""
    visit = _error_visit(request)
    if callable(detail):
        detail = detail(visit)
    title = ERROR_TITLES.get(status, N_("Something went wrong"))
    return visit.render(
        "error.html", {"title": visit._(title), "detail": detail, "status": status}, status=status
    )


class HtmlRoute(APIRoute):
    """A route whose errors are pages: sign-in for a private page, the status otherwise."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def html_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path
                if request.url.query and request.method == "GET":
                    target += "?" + request.url.query
                return RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)
            except CsrfRefused:
                return error_page(request, 403, _csrf_detail(request))
            except CONNECTION_ERRORS as error:
                settings: Settings = request.app.state.settings
                outage = unavailable(error, settings.db_retry_after_seconds)
                if outage is None:
                    raise
                return capex_error_page(request, outage)
            except CapexError as error:
                return capex_error_page(request, error)
            except RequestValidationError:
                return error_page(request, 400, None)

        return html_handler


def _write_limit_detail(visit: Visit, error: WriteLimitReached) -> str:
    """Which write limit was reached, and when to try again, in the reader's language."""
    language = visit.language
    if error.scope is LimitScope.ACCOUNT:
        allowed = language.ngettext(
            "This account may send at most %(num)d change every %(window)d seconds.",
            "This account may send at most %(num)d changes every %(window)d seconds.",
            error.limit,
            window=error.window_seconds,
        )
    else:
        allowed = language.ngettext(
            "Your network address may send at most %(num)d change every %(window)d seconds.",
            "Your network address may send at most %(num)d changes every %(window)d seconds.",
            error.limit,
            window=error.window_seconds,
        )
    retry = language.ngettext(
        "Try again in %(num)d second.",
        "Try again in %(num)d seconds.",
        error.retry_after_seconds,
    )
    return f"{allowed} {retry}"


def _detail_for(error: CapexError) -> str | Callable[[Visit], str]:
    if isinstance(error, WriteLimitReached):
        limit_reached = error
        return lambda visit: _write_limit_detail(visit, limit_reached)
    if isinstance(error, MatchingNotReady):
        seconds = error.retry_after_seconds
        return lambda visit: visit.language.gettext(
            "Matches are being prepared after a restart. Try again in %(seconds)d seconds.",
            seconds=seconds,
        )
    return error.detail


def capex_error_page(request: Request, error: CapexError) -> HTMLResponse:
    """The page of a service's error: its status, its detail, its ``Retry-After``."""
    response = error_page(request, error.status, _detail_for(error))
    if "Retry-After" in error.headers:
        response.headers["Retry-After"] = error.headers["Retry-After"]
    return response


def _visit_language(request: Request) -> Language:
    visit = getattr(request.state, "visit", None)
    return visit.language if isinstance(visit, Visit) else _language_for(request, None)


def _csrf_detail(request: Request) -> str:
    return _visit_language(request).gettext(
        "The form was not sent from this page, or it has expired. Go back, reload the page "
        "and send it again."
    )
