"""The inbox: my notifications, newest first, each worded in the reader's language from its
kind and the exchange it is about (not the English text stored with it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import HTMLResponse, RedirectResponse, Response

from capex.deps import SessionDep
from capex.schemas.common import MAX_ID
from capex.services import notifications
from capex.services.exchange_pages import InboxView, inbox_view
from capex.services.exchanges import ExchangeView
from capex.services.notifications import InboxItem
from capex.vocabulary import NotificationKind
from capex.web.i18n import N_
from capex.web.pages import FormDep, HtmlRoute, Visit, VisitDep

router = APIRouter(route_class=HtmlRoute)

INBOX_PAGE = 30

# Each kind in words. %(learner)s, %(mentor)s: the exchange's people; %(other)s: the one of
# them who is not the reader (who acted: a notification goes to the one who did not);
# %(skill)s: the skill's name.
AS_LEARNER = {
    NotificationKind.EXCHANGE_ACCEPTED: N_("%(mentor)s accepted your request for %(skill)s."),
    NotificationKind.EXCHANGE_DECLINED: N_("%(mentor)s declined your request for %(skill)s."),
    NotificationKind.EXCHANGE_EXPIRED: N_(
        "Your request to %(mentor)s for %(skill)s expired unanswered."
    ),
}
AS_MENTOR = {
    NotificationKind.EXCHANGE_REQUESTED: N_("%(learner)s asks you to mentor them in %(skill)s."),
    NotificationKind.EXCHANGE_EXPIRED: N_(
        "The request of %(learner)s for %(skill)s expired before you answered."
    ),
    NotificationKind.MENTOR_REMINDER: N_(
        "A coordinator reminds you: %(learner)s is waiting for your answer about %(skill)s."
    ),
}
EITHER = {
    NotificationKind.EXCHANGE_REQUESTED: N_(
        "%(learner)s asks %(mentor)s to mentor them in %(skill)s."
    ),
    NotificationKind.EXCHANGE_ACCEPTED: N_("%(other)s accepted the exchange about %(skill)s."),
    NotificationKind.EXCHANGE_DECLINED: N_("%(other)s declined the exchange about %(skill)s."),
    NotificationKind.EXCHANGE_CANCELLED: N_("%(other)s cancelled the exchange about %(skill)s."),
    NotificationKind.EXCHANGE_EXPIRED: N_("The request about %(skill)s expired unanswered."),
    NotificationKind.EXCHANGE_COMPLETED: N_(
        "%(other)s marked the exchange about %(skill)s completed."
    ),
    NotificationKind.FEEDBACK_RECEIVED: N_(
        "%(other)s gave you feedback on the exchange about %(skill)s."
    ),
    NotificationKind.MESSAGE_RECEIVED: N_("%(other)s wrote to you about %(skill)s."),
}
WITHOUT_EXCHANGE = {
    NotificationKind.PASSWORD_RESET: N_("Someone, probably you, asked to choose a new password."),
}


def _words(visit: Visit, item: InboxItem, found: InboxView) -> str:
    """The item in the reader's words (its stored English text when nothing else fits)."""
    exchange: ExchangeView | None = (
        found.exchanges.get(item.exchange_id) if item.exchange_id is not None else None
    )
    if exchange is None:
        sentence = WITHOUT_EXCHANGE.get(item.kind)
        return visit._(sentence) if sentence else item.text
    mine = visit.signed_in.id
    table = AS_LEARNER if exchange.learner.id == mine else AS_MENTOR
    sentence = table.get(item.kind) or EITHER.get(item.kind)
    if sentence is None:
        return item.text
    other = exchange.mentor if exchange.learner.id == mine else exchange.learner
    return visit._(
        sentence,
        learner=exchange.learner.display_name,
        mentor=exchange.mentor.display_name,
        other=other.display_name,
        skill=found.skill_names.get(exchange.skill, exchange.skill),
    )


@router.get("/inbox", response_class=HTMLResponse)
def inbox(
    visit: VisitDep,
    session: SessionDep,
    unread: Annotated[bool, Query()] = False,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """My notifications, newest first; unread ones marked."""
    me = visit.signed_in
    found = inbox_view(
        session, visit.settings, me, unread_only=unread, before_id=before, limit=INBOX_PAGE
    )
    items = [(item, _words(visit, item, found)) for item in found.page.items]
    context = {"found": found, "items": items, "unread": unread, "nav": "inbox"}
    return visit.render("inbox/inbox.html", context)


@router.post("/inbox/read")
def mark_all_read(visit: VisitDep, session: SessionDep, form: FormDep) -> RedirectResponse:
    """Mark every notification read."""
    me = visit.signed_in
    notifications.mark_read(session, me.id, None)
    return visit.redirect("/inbox", notice="all-read")
