"""Signing up, in and out; changing a forgotten or a known password."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse, RedirectResponse, Response

from capex.deps import SessionDep, SessionFactoryDep
from capex.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from capex.models import Volunteer
from capex.schemas.common import InputSchema
from capex.schemas.profiles import Password, RegisterIn
from capex.services import accounts
from capex.web import forms, i18n, security
from capex.web.i18n import Language
from capex.web.pages import FormDep, HtmlRoute, OwnTransactionsVisitDep, Visit, VisitDep

logger = logging.getLogger("capex.web")
router = APIRouter(route_class=HtmlRoute)

NextQuery = Annotated[str | None, Query(max_length=2000)]


class PasswordChange(InputSchema):
    current_password: str
    password: Password


class PasswordChoice(InputSchema):
    password: Password


def _signed_in(visit: Visit, token: str, expires_in: int, target: str) -> RedirectResponse:
    visit.cookies[security.SESSION_COOKIE] = (token, expires_in)
    return visit.redirect(target)


@router.get("/sign-up", response_class=HTMLResponse)
def sign_up_page(visit: VisitDep) -> Response:
    """The sign-up form."""
    if visit.user is not None:
        return visit.redirect("/profile")
    return visit.render("account/sign_up.html", {"values": {}, "errors": {}, "nav": "sign-up"})


@router.post("/sign-up", response_class=HTMLResponse)
def sign_up(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Create the account, sign in, and go on to the profile."""
    values = forms.text_fields(form, "username", "email", "display_name", "password")
    data = {key: value for key, value in values.items() if value or key != "display_name"}
    parsed, errors = forms.parse(RegisterIn, data, visit.language)
    if parsed is not None:
        try:
            volunteer = accounts.register(session, parsed)
        except Conflict as error:
            field = "username" if "username" in error.detail else "email"
            errors[field] = (
                visit._("This username is taken; choose another.")
                if field == "username"
                else visit._("An account with this email address exists already. Sign in?")
            )
        else:
            volunteer.locale = visit.language.code
            issued = accounts.issue_token(session, visit.settings, volunteer)
            visit.cookies[security.SESSION_COOKIE] = (issued.access_token, issued.expires_in)
            return visit.redirect("/profile", notice="signed-up")
    values.pop("password")
    context = {"values": values, "errors": errors, "nav": "sign-up"}
    return visit.render("account/sign_up.html", context, status=422)


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(visit: VisitDep, next: NextQuery = None) -> Response:
    """The sign-in form."""
    if visit.user is not None:
        return visit.redirect(security.safe_next(next))
    context = {"values": {"next": security.safe_next(next, "")}, "errors": {}, "nav": "sign-in"}
    return visit.render("account/sign_in.html", context)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(visit: OwnTransactionsVisitDep, sessions: SessionFactoryDep, form: FormDep) -> Response:
    """Check the password (throttled like the API's sign-in) and set the session cookie.

    No request transaction: sign-in runs its own, short ones, and holds no connection
    while it hashes the password; a wrong password's failure is committed before the page
    saying so is answered.
    """
    values = forms.text_fields(form, "username", "password", "next")
    target = security.safe_next(values["next"], "/matches")
    # 422, not 401: a 401 would need a WWW-Authenticate challenge, which a form has not.
    status, retry = 422, 0
    address = visit.request.client.host if visit.request.client else "unknown"
    problem = visit._("The username or the password is not right.")
    try:
        issued = accounts.try_sign_in(
            sessions, visit.settings, values["username"], values["password"], address
        )
    except TooManyRequests as error:
        status, retry = 429, error.retry_after_seconds
        problem = visit._(
            "Too many failed attempts. Try again in %(seconds)d seconds.",
            seconds=error.retry_after_seconds,
        )
    except Forbidden:
        status = 403
        problem = visit._("This account was deactivated and can no longer sign in.")
    else:
        if issued is not None:
            return _signed_in(visit, issued.access_token, issued.expires_in, target)
    values.pop("password")
    context = {"values": values, "errors": {"_form": problem}, "nav": "sign-in"}
    response = visit.render("account/sign_in.html", context, status=status)
    if status == 429:
        response.headers["Retry-After"] = str(max(1, retry))
    return response


@router.post("/sign-out")
def sign_out(visit: VisitDep, session: SessionDep, form: FormDep) -> RedirectResponse:
    """End this browser's session; its token works no more."""
    token = visit.request.cookies.get(security.SESSION_COOKIE)
    if token:
        accounts.revoke_token(session, visit.settings, token)
    visit.cookies[security.SESSION_COOKIE] = ("", None)
    return visit.redirect("/", notice="signed-out")


@router.get("/account/password", response_class=HTMLResponse)
def password_page(visit: VisitDep) -> Response:
    """The form to change one's password."""
    visit.signed_in  # noqa: B018 - signs in first
    return visit.render("account/password.html", {"errors": {}, "nav": "profile"})


@router.post("/account/password", response_class=HTMLResponse)
def change_password(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Change the password; the other sessions of the account are signed out."""
    me = visit.signed_in
    values = forms.text_fields(form, "current_password", "password", "password_again")
    asked = {key: values[key] for key in ("current_password", "password")}
    parsed, errors = forms.parse(PasswordChange, asked, visit.language)
    if values["password"] != values["password_again"]:
        errors.setdefault("password_again", visit._("The two new passwords are not the same."))
    if values["current_password"] and not accounts.password_matches(me, values["current_password"]):
        errors["current_password"] = visit._("The current password is not right.")
    if parsed is not None and not errors:
        token = visit.request.cookies.get(security.SESSION_COOKIE, "")
        try:
            accounts.change_password(
                session, visit.settings, me, parsed.current_password, parsed.password, keep=token
            )
        except Invalid:
            errors["current_password"] = visit._("The current password is not right.")
        else:
            return visit.redirect("/profile", notice="password-changed")
    return visit.render("account/password.html", {"errors": errors, "nav": "profile"}, status=422)


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_password_page(visit: VisitDep) -> Response:
    """The form to ask for a link to choose a new password."""
    return visit.render("account/forgot.html", {"values": {}, "errors": {}, "nav": "sign-in"})


def _reset_mail(visit: Visit) -> Callable[[Volunteer, str], str]:
    base = str(visit.request.base_url).rstrip("/")

    def compose(volunteer: Volunteer, token: str) -> str:
        link = f"{base}/reset-password?token={token}"
        if visit.settings.smtp_url is None and visit.settings.environment == "development":
            logger.info('{"event": "password_reset_link", "mail": "off", "link": "%s"}', link)
        # In the account's own language when it chose one, else the page's.
        language = Language(i18n.choose(volunteer.locale, visit.language.code), visit.language.zone)
        return language.gettext(
            "Someone, probably you, asked to choose a new password for the capex account "
            "%(username)s. Open this link within an hour to choose it:\n\n%(link)s\n\n"
            "If it was not you, ignore this message: your password stays as it is.",
            username=volunteer.username,
            link=link,
        )

    return compose


@router.post("/forgot-password", response_class=HTMLResponse)
def forgot_password(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Mail a one-time link, saying the same whether or not the address is registered."""
    values = forms.text_fields(form, "email")
    email = values["email"].strip()
    if "@" not in email or len(email) > 254:
        errors = {"email": visit._("Write an email address, like name@example.org.")}
        context = {"values": values, "errors": errors, "nav": "sign-in"}
        return visit.render("account/forgot.html", context, status=422)
    accounts.request_password_reset(session, visit.settings, email, _reset_mail(visit))
    return visit.redirect("/sign-in", notice="reset-sent")


TokenQuery = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/reset-password", response_class=HTMLResponse)
def reset_password_page(visit: VisitDep, token: TokenQuery) -> Response:
    """The form to choose a new password, from the mailed link."""
    return visit.render("account/reset.html", {"token": token, "errors": {}})


@router.post("/reset-password", response_class=HTMLResponse)
def reset_password(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Set the new password; every session of the account is signed out."""
    values = forms.text_fields(form, "token", "password", "password_again")
    parsed, errors = forms.parse(PasswordChoice, {"password": values["password"]}, visit.language)
    if values["password"] != values["password_again"]:
        errors.setdefault("password_again", visit._("The two new passwords are not the same."))
    if parsed is not None and not errors:
        try:
            accounts.reset_password(session, visit.settings, values["token"], parsed.password)
        except NotFound:
            errors["_form"] = visit._(
                "This link is not valid any more: it was used, or it is older than an hour. "
                "Ask for a new one."
            )
        else:
            return visit.redirect("/sign-in", notice="password-reset")
    context = {"token": values["token"], "errors": errors}
    return visit.render("account/reset.html", context, status=422)
