"""Exchanges: asking a mentor, the list of mine on both sides, and each exchange's page with
its history, the actions its viewer may take, feedback and the message thread."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from capex.deps import Clock, IdPath, SessionDep
from capex.errors import Conflict, Invalid
from capex.schemas.common import MAX_ID, ExchangeStateWord, SideWord
from capex.schemas.exchanges import ExchangeCreate, FeedbackCreate, MessageCreate, ReasonIn
from capex.schemas.skills import SkillId
from capex.services import exchanges, meetings, profiles
from capex.services.exchange_pages import ExchangePage, exchange_page, exchanges_page
from capex.services.meetings import LocalTime
from capex.vocabulary import ExchangeAction, ExchangeState, Side
from capex.web import forms, security
from capex.web.i18n import N_, Language
from capex.web.pages import FormDep, HtmlRoute, Visit, VisitDep
from capex.web.words import SKILL_LEVELS

router = APIRouter(route_class=HtmlRoute)

MAX_REQUEST_MESSAGE = next(
    rule.max_length
    for rule in ExchangeCreate.model_fields["message"].metadata
    if hasattr(rule, "max_length")
)
LIST_PAGE = 20

# The words of each state, for its pill and the filter links.
STATE_LABELS = {
    ExchangeState.REQUESTED: N_("Waiting for an answer"),
    ExchangeState.ACCEPTED: N_("Accepted"),
    ExchangeState.COMPLETED: N_("Completed"),
    ExchangeState.DECLINED: N_("Declined"),
    ExchangeState.CANCELLED: N_("Cancelled"),
    ExchangeState.EXPIRED: N_("Expired"),
}
# One line of the history per action; %(name)s is who acted.
ACTION_WORDS = {
    ExchangeAction.REQUEST: N_("%(name)s asked for this exchange."),
    ExchangeAction.ACCEPT: N_("%(name)s accepted."),
    ExchangeAction.DECLINE: N_("%(name)s declined."),
    ExchangeAction.CANCEL: N_("%(name)s cancelled."),
    ExchangeAction.COMPLETE: N_("%(name)s marked it completed."),
    ExchangeAction.EXPIRE: N_("The request expired unanswered."),
}
RATING_WORDS = {
    1: N_("Poor"),
    2: N_("Fair"),
    3: N_("Good"),
    4: N_("Very good"),
    5: N_("Excellent"),
}
# The notice shown after each action.
DONE = {
    ExchangeAction.ACCEPT: "accepted",
    ExchangeAction.DECLINE: "declined",
    ExchangeAction.CANCEL: "cancelled",
    ExchangeAction.COMPLETE: "completed",
}

ActionWord = Literal["accept", "decline", "cancel", "complete"]


# The vocabularies every exchange template words things with.
WORDS: dict[str, Any] = {
    "state_labels": STATE_LABELS,
    "action_words": ACTION_WORDS,
    "rating_words": RATING_WORDS,
    "skill_levels": SKILL_LEVELS,
    "nav": "exchanges",
}


def _text(form: FormData, name: str) -> str:
    """A posted text field with a browser's CRLF line ends made plain newlines."""
    value = form.get(name)
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else ""


def _whole_number(text: str) -> int | str:
    """A whole number as posted ('3' -> 3), else the text, for the schema to refuse."""
    return int(text) if text.strip().isdigit() and len(text.strip()) < 20 else text


# -- asking a mentor -----------------------------------------------------------------------


MentorQuery = Annotated[int, Query(ge=1, le=MAX_ID)]


def _request_form(
    visit: Visit,
    session: SessionDep,
    mentor_id: int,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> HTMLResponse:
    mentor = profiles.public_profile(session, mentor_id)
    offered = {entry.skill for entry in mentor.offers}
    context = {
        **WORDS,
        "mentor": mentor,
        "values": values,
        "errors": errors,
        "fixed_skill": values.get("skill") if values.get("skill") in offered else None,
        "max_message": MAX_REQUEST_MESSAGE,
        "me": visit.signed_in,
    }
    return visit.render("exchanges/new.html", context, status=status)


@router.get("/exchanges/new", response_class=HTMLResponse)
def request_page(
    visit: VisitDep,
    session: SessionDep,
    mentor: MentorQuery,
    skill: Annotated[SkillId | None, Query()] = None,
) -> Response:
    """The form to ask a mentor for one of the skills they offer."""
    visit.signed_in  # noqa: B018 - signs in first
    values = {"skill": skill or "", "message": "", "idempotency_key": secrets.token_urlsafe(18)}
    return _request_form(visit, session, mentor, values, {})


@router.post("/exchanges/new", response_class=HTMLResponse)
def request_mentor(
    visit: VisitDep, session: SessionDep, form: FormDep, mentor: MentorQuery
) -> Response:
    """Send the request (once, however often the form is sent) and go to its page."""
    me = visit.signed_in
    values = {
        "skill": _text(form, "skill"),
        "message": _text(form, "message"),
        "idempotency_key": _text(form, "idempotency_key")[:255] or secrets.token_urlsafe(18),
    }
    data = {"mentor_id": mentor, "skill": values["skill"], "message": values["message"]}
    parsed, errors = forms.parse(ExchangeCreate, data, visit.language)
    if "skill" in errors:
        errors["skill"] = visit._("Choose one of the skills this mentor offers.")
    if parsed is not None:
        try:
            # A refused request leaves nothing behind (its idempotency key, a request place).
            with session.begin_nested():
                asked = exchanges.ask(
                    session, visit.settings, me, parsed, values["idempotency_key"]
                )
        except Invalid as error:
            _request_refused(visit, error, errors, values)
        except Conflict as error:
            errors["_form"] = _request_conflict(visit, error)
        else:
            return visit.redirect(f"/exchanges/{asked.exchange.id}", notice="requested")
    return _request_form(visit, session, mentor, values, errors, status=422)


def _request_refused(
    visit: Visit, error: Invalid, errors: dict[str, str], values: dict[str, str]
) -> None:
    where = {str(entry["loc"][-1]) for entry in error.errors}
    if "mentor_id" in where:
        errors["_form"] = visit._("You cannot ask yourself to be your mentor.")
    elif "skill" in where:
        errors["skill"] = visit._("Choose one of the skills this mentor offers.")
    else:
        # The idempotency key of a request sent already, with other words: a fresh form.
        values["idempotency_key"] = secrets.token_urlsafe(18)
        errors["_form"] = visit._(
            "This form was sent already. Check your exchanges, or send it again to make "
            "a new request."
        )


def _request_conflict(visit: Visit, error: Conflict) -> str:
    if "open exchange with this mentor" in error.detail:
        return visit._(
            "You already have an open request or exchange with this mentor for this skill. "
            "See it under your exchanges."
        )
    if "requests waiting" in error.detail:
        return visit._(
            "You have as many requests waiting for an answer as you may (%(num)d). Cancel "
            "one, or wait for the mentors to answer.",
            num=visit.settings.max_open_requests,
        )
    return visit._("This request is being sent already. Check your exchanges in a moment.")


# -- the list ------------------------------------------------------------------------------


@router.get("/exchanges", response_class=HTMLResponse)
def exchanges_list(
    visit: VisitDep,
    session: SessionDep,
    state: Annotated[ExchangeStateWord | None, Query()] = None,
    role: Annotated[SideWord | None, Query(alias="as")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """My exchanges as learner and as mentor; the requests waiting for me first."""
    me = visit.signed_in
    page = exchanges_page(
        session,
        visit.settings,
        me,
        state=state,
        role=role,
        before_id=before,
        limit=LIST_PAGE,
        now=_now(visit),
    )
    context = {**WORDS, "page": page, "me": me, "state": state, "role": role}
    return visit.render("exchanges/list.html", context)


# -- one exchange --------------------------------------------------------------------------


def _page(
    visit: Visit,
    session: SessionDep,
    exchange_id: int,
    *,
    status: int = 200,
    problem: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    after_id: int | None = None,
) -> HTMLResponse:
    now = _now(visit)
    page = exchange_page(
        session, visit.settings, exchange_id, visit.signed_in, now=now, after_id=after_id
    )
    context = {
        **WORDS,
        "page": page,
        "meeting_lines": _meeting_lines(visit, page) if page.meetings else [],
        "ex": page.exchange,
        "problem": problem,
        "values": values or {},
        "errors": errors or {},
    }
    return visit.render("exchanges/exchange.html", context, status=status)


def _now(visit: Visit) -> datetime:
    """The time of the request, from the app's clock (tests give a fixed one)."""
    clock: Clock = visit.request.app.state.clock
    return clock()


@dataclass(frozen=True, slots=True)
class MeetingLine:
    """One coming meeting time as the page words it: on the viewer's clock, on the other
    participant's, and the start that names it for its .ics file."""

    mine: str
    theirs: str
    start: str


EN_DASH = "\u2013"


def _clock(visit: Visit, local: LocalTime) -> tuple[str, str]:
    """A local stretch on its own clock: its day ('Tue 3 Dec') and its times ('18:00-19:30')."""
    on = Language(visit.language.code, ZoneInfo(local.timezone))
    times = f"{on.time(local.start, 'HH:mm')}{EN_DASH}{on.time(local.end, 'HH:mm')}"
    return on.date(local.start, "EEE d MMM"), times


def _meeting_lines(visit: Visit, page: ExchangePage) -> list[MeetingLine]:
    assert page.meetings is not None
    ex = page.exchange
    other = ex.mentor if page.side == Side.LEARNER else ex.learner
    lines = []
    for item in page.meetings.items:
        mine, theirs = (
            (item.learner_local, item.mentor_local)
            if page.side == Side.LEARNER
            else (item.mentor_local, item.learner_local)
        )
        day, times = _clock(visit, mine)
        their_day, their_times = _clock(visit, theirs)
        if their_day != day:
            their_times = f"{their_day}, {their_times}"
        lines.append(
            MeetingLine(
                mine=visit._("%(day)s, %(times)s your time", day=day, times=times),
                theirs=visit._(
                    "%(times)s %(name)s's time (%(zone)s)",
                    times=their_times,
                    name=other.display_name,
                    zone=theirs.timezone,
                ),
                start=item.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    return lines


@router.get("/exchanges/{exchange_id}/meeting.ics")
def meeting_ics(
    visit: VisitDep,
    session: SessionDep,
    exchange_id: IdPath,
    start: Annotated[AwareDatetime, Query()],
) -> Response:
    """One of the coming meeting times as an iCalendar file, to add to a calendar."""
    me = visit.signed_in
    filename, text = meetings.meeting_ics(
        session, visit.settings, exchange_id, me, start, _now(visit)
    )
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/exchanges/{exchange_id}", response_class=HTMLResponse)
def exchange(
    visit: VisitDep,
    session: SessionDep,
    exchange_id: IdPath,
    after: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """One exchange, for its participants and coordinators."""
    return _page(visit, session, exchange_id, after_id=after)


def _conflict_words(visit: Visit, session: SessionDep, exchange_id: int, error: Conflict) -> str:
    if "no open slot" in error.detail:
        return visit._(
            "You cannot accept now: all your mentor slots are taken. Complete or cancel one "
            "of your exchanges first, or take more learners in your profile."
        )
    if "already gave feedback" in error.detail:
        return visit._("You have given your feedback on this exchange already.")
    state = exchanges.read(session, visit.settings, exchange_id, visit.signed_in).state
    return visit._(
        "This cannot be done any more: the exchange is now “%(state)s”.",
        state=visit._(STATE_LABELS[state]),
    )


@router.post("/exchanges/{exchange_id}/feedback", response_class=HTMLResponse)
def feedback(visit: VisitDep, session: SessionDep, form: FormDep, exchange_id: IdPath) -> Response:
    """Rate the other participant, once, after completion."""
    me = visit.signed_in
    values = {"rating": _text(form, "rating"), "comment": _text(form, "comment")}
    data: dict[str, Any] = {"comment": values["comment"]}
    if values["rating"]:
        data["rating"] = _whole_number(values["rating"])
    parsed, errors = forms.parse(FeedbackCreate, data, visit.language)
    if "rating" in errors:
        errors["rating"] = visit._("Choose a rating from 1 to 5.")
    if parsed is None:
        return _page(visit, session, exchange_id, status=422, values=values, errors=errors)
    try:
        with session.begin_nested():
            exchanges.leave_feedback(
                session,
                visit.settings,
                exchange_id,
                me,
                rating=parsed.rating,
                comment=parsed.comment,
            )
    except Conflict as error:
        problem = _conflict_words(visit, session, exchange_id, error)
        return _page(visit, session, exchange_id, status=409, problem=problem)
    return visit.redirect(f"/exchanges/{exchange_id}", notice="feedback-saved")


@router.post("/exchanges/{exchange_id}/messages", response_class=HTMLResponse)
def write(visit: VisitDep, session: SessionDep, form: FormDep, exchange_id: IdPath) -> Response:
    """Write to the other participant (while the exchange is open)."""
    me = visit.signed_in
    values = {"body": _text(form, "body")}
    parsed, problems = forms.parse(MessageCreate, values, visit.language)
    # The field is named "body", a word forms.field_name drops from locations: name it here.
    errors = {"body": next(iter(problems.values()))} if problems else {}
    if not values["body"].strip():
        errors["body"] = visit._("Write something to send.")
    if parsed is None:
        return _page(visit, session, exchange_id, status=422, values=values, errors=errors)
    try:
        with session.begin_nested():
            exchanges.post_message(session, visit.settings, exchange_id, me, parsed.body)
    except Conflict:
        problem = visit._(
            "This exchange is closed: its messages can still be read, but no new ones sent."
        )
        return _page(visit, session, exchange_id, status=409, problem=problem, values=values)
    return visit.redirect(f"/exchanges/{exchange_id}", notice="message-sent")


# Last: its path would take the feedback and message forms too.
@router.post("/exchanges/{exchange_id}/{action}", response_class=HTMLResponse)
def act(
    visit: VisitDep,
    session: SessionDep,
    form: FormDep,
    exchange_id: IdPath,
    action: ActionWord,
) -> Response:
    """Accept, decline, cancel or complete; back to where the button was."""
    me = visit.signed_in
    chosen = ExchangeAction(action)
    reason = _text(form, "reason")
    parsed, errors = forms.parse(ReasonIn, {"reason": reason}, visit.language)
    if parsed is None:
        values = {f"{action}-reason": reason}
        errors = {f"{action}-reason": next(iter(errors.values()))}
        return _page(visit, session, exchange_id, status=422, values=values, errors=errors)
    try:
        with session.begin_nested():
            exchanges.act(session, visit.settings, exchange_id, chosen, me, parsed.reason)
    except Conflict as error:
        problem = _conflict_words(visit, session, exchange_id, error)
        return _page(visit, session, exchange_id, status=409, problem=problem)
    target = _text(form, "next")
    back = security.safe_next(target, f"/exchanges/{exchange_id}")
    return visit.redirect(back, notice=DONE[chosen])
