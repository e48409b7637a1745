"""The inbox in the web client: notifications newest first, worded in the reader's language by
their kind and exchange, unread ones marked, marking all read, unread only, paging."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from capex.models import Exchange, Notification
from capex.models.base import utcnow
from capex.schemas.exchanges import ExchangeCreate
from capex.services import exchanges, notifications
from capex.vocabulary import ExchangeAction
from tests.factories import make_volunteer
from tests.webtools import post_form, sign_in_browser


def items_of(page: str) -> list[tuple[str, bool, str | None]]:
    """Each notification shown: its text, whether it is marked unread, where it links."""
    found = []
    for attributes, body in re.findall(
        r'<li class="notification([^"]*)"[^>]*>(.*?)</li>', page, re.S
    ):
        text = re.search(r'<p class="notification-text">(.*?)</p>', body, re.S).group(1)
        link = re.search(r'href="([^"]+)"', text)
        words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
        found.append(
            (words, "unread" in attributes and 'class="new-mark"' in body, link and link.group(1))
        )
    return found


@pytest.fixture
def ana(session):
    return make_volunteer(session, "ana")


@pytest.fixture
def bea(session):
    return make_volunteer(session, "bea", offers=[{"skill": "lua", "level": 4}])


def ask(session, settings, learner, mentor) -> int:
    asked = exchanges.ask(
        session, settings, learner, ExchangeCreate(mentor_id=mentor.id, skill="lua")
    )
    session.commit()
    return asked.exchange.id


def test_each_notification_is_worded_by_its_kind_and_links_its_exchange(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    exchanges.act(session, settings, exchange_id, ExchangeAction.ACCEPT, bea)
    exchanges.post_message(session, settings, exchange_id, bea, "See you Tuesday")
    exchanges.act(session, settings, exchange_id, ExchangeAction.COMPLETE, bea)
    exchanges.leave_feedback(session, settings, exchange_id, bea, rating=5, comment="")
    session.commit()
    sign_in_browser(client, session, settings, ana)
    page = client.get("/inbox")
    assert page.status_code == 200
    link = f"/exchanges/{exchange_id}"
    assert items_of(page.text) == [  # newest first, all unread
        ("Bea gave you feedback on the exchange about Lua.", True, link),
        ("Bea marked the exchange about Lua completed.", True, link),
        ("Bea wrote to you about Lua.", True, link),
        ("Bea accepted your request for Lua.", True, link),
    ]
    sign_in_browser(client, session, settings, bea)
    assert items_of(client.get("/inbox").text) == [
        ("Ana asks you to mentor them in Lua.", True, link)
    ]


def test_declined_cancelled_and_expired_requests_are_worded_for_each_side(
    client, session, settings, ana, bea
):
    declined = ask(session, settings, ana, bea)
    exchanges.act(session, settings, declined, ExchangeAction.DECLINE, bea, "away")
    cancelled = ask(session, settings, ana, bea)
    exchanges.act(session, settings, cancelled, ExchangeAction.CANCEL, ana)
    expired = ask(session, settings, ana, bea)
    session.execute(
        update(Exchange)
        .where(Exchange.id == expired)
        .values(created_at=utcnow() - timedelta(days=settings.request_ttl_days + 1))
    )
    assert exchanges.expire_stale(session, settings) == 1
    session.commit()
    sign_in_browser(client, session, settings, ana)
    shown = [words for words, _, _ in items_of(client.get("/inbox").text)]
    assert shown == [
        "Your request to Bea for Lua expired unanswered.",
        "Bea declined your request for Lua.",
    ]
    sign_in_browser(client, session, settings, bea)
    shown = [words for words, _, _ in items_of(client.get("/inbox").text)]
    assert shown[:2] == [
        "The request of Ana for Lua expired before you answered.",
        "Ana asks you to mentor them in Lua.",
    ]
    assert "Ana cancelled the exchange about Lua." in shown


def test_the_inbox_speaks_portuguese(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    exchanges.post_message(session, settings, exchange_id, ana, "Oi")
    session.commit()
    client.headers["Accept-Language"] = "pt-BR"
    sign_in_browser(client, session, settings, bea)
    page = client.get("/inbox")
    assert [(words, unread) for words, unread, _ in items_of(page.text)] == [
        ("Ana escreveu para você sobre Lua.", True),
        ("Ana pede a sua mentoria em Lua.", True),
    ]
    assert "Marcar todas como lidas" in page.text
    assert "Não lidas (2)" in page.text


def test_marking_all_read_clears_the_marks_and_the_badge(client, session, settings, ana, bea):
    ask(session, settings, ana, bea)
    sign_in_browser(client, session, settings, bea)
    before = client.get("/inbox")
    assert re.search(r'<span class="badge"[^>]*>1</span>', before.text)
    assert [unread for _, unread, _ in items_of(before.text)] == [True]
    done = post_form(client, "/inbox", {}, "/inbox/read")
    assert done.status_code == 303
    assert done.headers["location"] == "/inbox?notice=all-read"
    after = client.get(done.headers["location"])
    assert "All notifications are marked read." in after.text
    assert '<span class="badge"' not in after.text
    assert [unread for _, unread, _ in items_of(after.text)] == [False]
    assert 'id="mark-all-read"' not in after.text
    assert "Nothing unread." in client.get("/inbox?unread=1").text
    unread = session.scalar(
        select(func.count()).where(
            Notification.volunteer_id == bea.id, Notification.read_at.is_(None)
        )
    )
    assert unread == 0


def test_unread_only_and_older_pages(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)  # Bea's first notification
    for number in range(1, 33):
        exchanges.post_message(session, settings, exchange_id, ana, f"message {number}")
    session.commit()
    sign_in_browser(client, session, settings, bea)
    first = client.get("/inbox")
    assert len(items_of(first.text)) == 30
    older = re.search(r'<a href="(/inbox\?before=\d+)" rel="next"', first.text).group(1)
    rest = items_of(client.get(older).text)
    assert [words for words, _, _ in rest][-1] == "Ana asks you to mentor them in Lua."
    assert len(rest) == 3
    # Read the newest ten; the unread view leaves them out.
    newest = session.scalars(
        select(Notification.id)
        .where(Notification.volunteer_id == bea.id)
        .order_by(Notification.id.desc())
        .limit(10)
    ).all()
    notifications.mark_read(session, bea.id, list(newest))
    session.commit()
    unread_page = client.get("/inbox?unread=1")
    shown = items_of(unread_page.text)
    assert len(shown) == 23
    assert all(unread for _, unread, _ in shown)
    assert "Older" not in unread_page.text


def test_the_inbox_needs_signing_in(client):
    answer = client.get("/inbox", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/inbox"
