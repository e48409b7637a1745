"""Exchanges in the web client: asking a mentor, the list on both sides, each exchange's page
with its actions, history, feedback, messages and meeting times (both databases)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from capex.models import Exchange, ExchangeMessage, Feedback, Notification, Volunteer
from capex.schemas.exchanges import ExchangeCreate
from capex.schemas.profiles import ProfileUpdate
from capex.services import exchanges, profiles
from capex.vocabulary import ExchangeAction, ExchangeState
from tests.factories import make_volunteer
from tests.webtools import (
    csrf_of,
    field_errors,
    post_form,
    section,
    sign_in_browser,
    text_of,
    textarea_of,
)

LUA = [{"skill": "lua", "level": 4}]


@pytest.fixture
def ana(session):
    return make_volunteer(session, "ana", wants=[{"skill": "lua", "level": 3}])


@pytest.fixture
def bea(session):
    return make_volunteer(session, "bea", offers=[*LUA, {"skill": "template-editing", "level": 3}])


def as_user(client, session, settings, volunteer) -> None:
    sign_in_browser(client, session, settings, volunteer)


def ask_through_the_form(client, mentor, skill="lua", message="", **extra: Any):
    return post_form(
        client,
        f"/exchanges/new?mentor={mentor.id}&skill={skill}",
        {"skill": skill, "message": message, **extra},
        action=f"/exchanges/new?mentor={mentor.id}",
    )


def ask(session, settings, learner, mentor, skill="lua", message="") -> int:
    data = ExchangeCreate(mentor_id=mentor.id, skill=skill, message=message)
    asked = exchanges.ask(session, settings, learner, data)
    session.commit()
    return asked.exchange.id


def act(session, settings, exchange_id, action, who, note="") -> None:
    exchanges.act(session, settings, exchange_id, action, who, note)
    session.commit()


def state_of(session, exchange_id) -> ExchangeState:
    session.expire_all()
    return session.get_one(Exchange, exchange_id).state


# -- asking a mentor -----------------------------------------------------------------------


def test_a_learner_asks_through_the_form_and_the_mentor_sees_it_waiting(
    client, session, settings, ana, bea
):
    as_user(client, session, settings, ana)
    form = client.get(f"/exchanges/new?mentor={bea.id}")
    assert form.status_code == 200
    shown = text_of(form.text)
    assert "Ask Bea to mentor you" in shown
    assert "Which skill do you want to learn?" in shown
    assert "Lua" in shown
    assert "Template editing" in shown
    sent = ask_through_the_form(client, bea, message="Hi Bea!\r\nTuesdays suit me.")
    assert sent.status_code == 303
    exchange_id = session.scalars(select(Exchange.id).where(Exchange.learner_id == ana.id)).one()
    assert sent.headers["location"] == f"/exchanges/{exchange_id}?notice=requested"
    page = client.get(sent.headers["location"])
    assert "Your request is sent" in page.text
    assert section(page.text, "state") == "Waiting for an answer"

    as_user(client, session, settings, bea)
    mine = client.get("/exchanges")
    waiting = mine.text.split('id="waiting"', 1)[1].split('id="mine"', 1)[0]
    request = section(waiting, f"request-{exchange_id}")
    assert "Ana wants to learn Lua" in request
    assert "Hi Bea!\nTuesdays suit me." in html.unescape(waiting)
    assert f'href="/volunteers/{ana.id}"' in waiting
    assert f'action="/exchanges/{exchange_id}/accept"' in waiting
    assert "You can take 2 more learners." in text_of(mine.text)


def test_a_given_skill_is_fixed_on_the_form(client, session, settings, ana, bea):
    as_user(client, session, settings, ana)
    form = client.get(f"/exchanges/new?mentor={bea.id}&skill=template-editing")
    shown = text_of(form.text)
    assert "Skill: Template editing · Choose another of their skills" in shown
    assert "Which skill do you want to learn?" not in shown


def test_a_double_submit_of_the_request_form_makes_one_exchange(
    client, session, settings, ana, bea
):
    as_user(client, session, settings, ana)
    form = client.get(f"/exchanges/new?mentor={bea.id}&skill=lua")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1)
    body = {"csrf_token": csrf_of(form.text), "idempotency_key": key, "skill": "lua"}
    first = client.post(f"/exchanges/new?mentor={bea.id}", data=body, follow_redirects=False)
    second = client.post(f"/exchanges/new?mentor={bea.id}", data=body, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    count = session.scalar(select(func.count()).where(Exchange.learner_id == ana.id))
    assert count == 1


def test_a_refused_request_is_shown_on_the_form_with_the_message_kept(
    client, session, settings, ana, bea
):
    ask(session, settings, ana, bea)
    as_user(client, session, settings, ana)
    refused = ask_through_the_form(client, bea, message="Once more, please")
    assert refused.status_code == 422
    assert "You already have an open request or exchange with this mentor" in refused.text
    assert textarea_of(refused.text, "message") == "Once more, please"
    # Refused, it took no request place of the learner's.
    session.expire_all()
    assert session.get_one(Volunteer, ana.id).requested_as_learner == 1


def test_a_learner_with_every_request_place_taken_is_told_so(client, session, settings, ana):
    for number in range(settings.max_open_requests):
        ask(session, settings, ana, make_volunteer(session, f"mentor{number}", offers=LUA))
    one_more = make_volunteer(session, "one_more", offers=LUA)
    as_user(client, session, settings, ana)
    refused = ask_through_the_form(client, one_more, message="please")
    assert refused.status_code == 422
    assert (
        f"You have as many requests waiting for an answer as you may ({settings.max_open_requests})"
        in refused.text
    )
    assert textarea_of(refused.text, "message") == "please"


def test_a_form_sent_again_with_other_words_asks_to_send_it_anew(
    client, session, settings, ana, bea
):
    as_user(client, session, settings, ana)
    form = client.get(f"/exchanges/new?mentor={bea.id}&skill=lua")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.text).group(1)
    body = {"csrf_token": csrf_of(form.text), "idempotency_key": key, "skill": "lua"}
    action = f"/exchanges/new?mentor={bea.id}"
    assert client.post(action, data=body, follow_redirects=False).status_code == 303
    edited = client.post(action, data={**body, "message": "edited"}, follow_redirects=False)
    assert edited.status_code == 422
    assert "This form was sent already." in edited.text
    fresh = re.search(r'name="idempotency_key" value="([^"]+)"', edited.text).group(1)
    assert fresh != key
    assert textarea_of(edited.text, "message") == "edited"


def test_a_skill_the_mentor_does_not_offer_is_named_on_its_field(
    client, session, settings, ana, bea
):
    as_user(client, session, settings, ana)
    refused = ask_through_the_form(client, bea, skill="python", message="kept")
    assert refused.status_code == 422
    assert field_errors(refused.text)["skill"] == "Choose one of the skills this mentor offers."
    assert textarea_of(refused.text, "message") == "kept"


def test_asking_oneself_or_a_stranger_to_the_database_is_refused(client, session, settings, bea):
    as_user(client, session, settings, bea)
    own = client.get(f"/exchanges/new?mentor={bea.id}")
    assert "This is you" in own.text
    assert 'id="request-form"' not in own.text
    refused = ask_through_the_form(client, bea)
    assert refused.status_code == 422
    assert "You cannot ask yourself to be your mentor." in refused.text
    assert client.get("/exchanges/new?mentor=999999").status_code == 404


def test_too_long_a_message_is_refused_next_to_it(client, session, settings, ana, bea):
    as_user(client, session, settings, ana)
    refused = ask_through_the_form(client, bea, message="x" * 2001)
    assert refused.status_code == 422
    assert "at most 2000 characters" in field_errors(refused.text)["message"]


# -- answering, the history ----------------------------------------------------------------


def test_the_mentor_accepts_and_the_learner_sees_it_accepted(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, bea)
    accepted = post_form(
        client, "/exchanges", {"next": "/exchanges"}, f"/exchanges/{exchange_id}/accept"
    )
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/exchanges?notice=accepted"
    assert f"request-{exchange_id}" not in client.get("/exchanges").text

    as_user(client, session, settings, ana)
    page = client.get(f"/exchanges/{exchange_id}")
    assert section(page.text, "state") == "Accepted"
    assert "Bea accepted." in section(page.text, "history")
    assert 'id="complete-form"' in page.text
    assert 'id="accept-form"' not in page.text


def test_declining_with_a_reason_shows_it_in_the_history(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, bea)
    page = f"/exchanges/{exchange_id}"
    declined = post_form(client, page, {"reason": "I am away\r\nuntil March"}, f"{page}/decline")
    assert declined.status_code == 303
    assert declined.headers["location"] == f"{page}?notice=declined"
    as_user(client, session, settings, ana)
    shown = client.get(page)
    history = section(shown.text, "history")
    assert "Bea declined." in history
    assert "Reason: I am away until March" in history
    assert section(shown.text, "state") == "Declined"
    assert state_of(session, exchange_id) == ExchangeState.DECLINED


def test_accepting_with_every_slot_taken_is_explained_on_the_page(client, session, settings, bea):
    first = make_volunteer(session, "cai")
    second = make_volunteer(session, "dan")
    profiles.save_profile(session, bea.id, ProfileUpdate(mentor_capacity=1))
    session.commit()
    taken = ask(session, settings, first, bea)
    waiting = ask(session, settings, second, bea)
    act(session, settings, taken, ExchangeAction.ACCEPT, bea)
    as_user(client, session, settings, bea)
    assert "You can take no more learners now" in client.get("/exchanges").text
    page = f"/exchanges/{waiting}"
    refused = post_form(client, page, {}, f"{page}/accept")
    assert refused.status_code == 409
    assert "all your mentor slots are taken" in section(refused.text, "problem")
    assert state_of(session, waiting) == ExchangeState.REQUESTED


def test_an_answer_given_already_is_a_sentence_not_an_error_page(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, bea)
    page = f"/exchanges/{exchange_id}"
    shown = client.get(page)
    act(session, settings, exchange_id, ExchangeAction.DECLINE, bea)  # in another tab
    again = client.post(
        f"{page}/accept", data={"csrf_token": csrf_of(shown.text)}, follow_redirects=False
    )
    assert again.status_code == 409
    assert "the exchange is now “Declined”" in section(again.text, "problem")
    assert section(again.text, "state") == "Declined"


def test_cancelling_keeps_the_reason_and_closes_the_thread(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    act(session, settings, exchange_id, ExchangeAction.ACCEPT, bea)
    as_user(client, session, settings, ana)
    page = f"/exchanges/{exchange_id}"
    cancelled = post_form(client, page, {"reason": "found a course"}, f"{page}/cancel")
    assert cancelled.headers["location"] == f"{page}?notice=cancelled"
    shown = client.get(page)
    assert "Reason: found a course" in section(shown.text, "history")
    assert 'id="message-form"' not in shown.text
    assert "its messages can still be read, but no new ones sent" in shown.text
    late = post_form(client, page, {"body": "one more thing"}, f"{page}/messages")
    assert late.status_code == 409
    assert "This exchange is closed" in section(late.text, "problem")
    assert session.scalar(select(func.count()).select_from(ExchangeMessage)) == 0


def test_too_long_a_reason_is_refused_next_to_it(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, bea)
    page = f"/exchanges/{exchange_id}"
    refused = post_form(client, page, {"reason": "x" * 1001}, f"{page}/decline")
    assert refused.status_code == 422
    assert "at most 1000 characters" in field_errors(refused.text)["decline-reason"]
    assert state_of(session, exchange_id) == ExchangeState.REQUESTED


# -- who may see -----------------------------------------------------------------------------


def test_a_stranger_gets_the_404_page_for_the_exchange_and_its_messages(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, make_volunteer(session, "eve"))
    page = f"/exchanges/{exchange_id}"
    assert client.get(page).status_code == 404
    posted = post_form(client, "/exchanges", {"body": "hello"}, f"{page}/messages")
    assert posted.status_code == 404
    assert "Not found" in posted.text
    assert post_form(client, "/exchanges", {}, f"{page}/cancel").status_code == 404
    assert session.scalar(select(func.count()).select_from(ExchangeMessage)) == 0
    assert state_of(session, exchange_id) == ExchangeState.REQUESTED


def test_a_coordinator_sees_the_exchange_but_neither_acts_nor_reads_messages(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    exchanges.post_message(session, settings, exchange_id, ana, "private words")
    session.commit()
    as_user(client, session, settings, make_volunteer(session, "cora", role="coordinator"))
    page = client.get(f"/exchanges/{exchange_id}")
    assert page.status_code == 200
    assert "You see this exchange as a coordinator" in page.text
    assert "private words" not in page.text
    assert 'id="message-form"' not in page.text
    assert 'id="actions"' not in page.text
    posted = post_form(
        client, f"/exchanges/{exchange_id}", {"body": "hi"}, f"/exchanges/{exchange_id}/messages"
    )
    assert posted.status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client, bea):
    asked = client.get(f"/exchanges/new?mentor={bea.id}", follow_redirects=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/sign-in?next=/exchanges/new%3Fmentor%3D{bea.id}"
    assert client.get("/exchanges", follow_redirects=False).status_code == 303


# -- messages --------------------------------------------------------------------------------


def test_messages_appear_in_order_on_both_sides_and_notify_the_other(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    page = f"/exchanges/{exchange_id}"
    as_user(client, session, settings, ana)
    sent = post_form(client, page, {"body": "First, from Ana"}, f"{page}/messages")
    assert sent.headers["location"] == f"{page}?notice=message-sent"
    as_user(client, session, settings, bea)
    mentor_view = client.get(page)
    assert '<span class="badge"' in mentor_view.text  # the new message counts as unread
    post_form(client, page, {"body": "Second, from Bea"}, f"{page}/messages")
    as_user(client, session, settings, ana)
    post_form(client, page, {"body": "Third, from Ana"}, f"{page}/messages")

    for who in (ana, bea):
        as_user(client, session, settings, who)
        thread = section(client.get(page).text, "messages")
        first, second, third = (
            thread.index("First, from Ana"),
            thread.index("Second, from Bea"),
            thread.index("Third, from Ana"),
        )
        assert first < second < third
    inbox = client.get("/inbox")  # Bea's
    assert "Ana wrote to you about Lua." in text_of(inbox.text)
    unread = session.scalar(
        select(func.count()).where(
            Notification.volunteer_id == bea.id, Notification.read_at.is_(None)
        )
    )
    assert unread == 3  # the request and two messages
    assert re.search(rf'<span class="badge"[^>]*>{unread}</span>', inbox.text)


def test_an_empty_message_is_refused_next_to_its_field(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    as_user(client, session, settings, ana)
    page = f"/exchanges/{exchange_id}"
    refused = post_form(client, page, {"body": "   "}, f"{page}/messages")
    assert refused.status_code == 422
    assert "body" in field_errors(refused.text)


# -- completing and feedback -----------------------------------------------------------------


def test_completing_then_feedback_from_both_sides(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea)
    act(session, settings, exchange_id, ExchangeAction.ACCEPT, bea)
    page = f"/exchanges/{exchange_id}"
    as_user(client, session, settings, ana)
    done = post_form(client, page, {}, f"{page}/complete")
    assert done.headers["location"] == f"{page}?notice=completed"
    form = client.get(page)
    assert 'id="feedback-form"' in form.text
    assert "5 – Excellent" in text_of(form.text)
    unrated = post_form(client, page, {"comment": "kept words"}, f"{page}/feedback")
    assert unrated.status_code == 422
    assert field_errors(unrated.text)["rating"] == "Choose a rating from 1 to 5."
    assert textarea_of(unrated.text, "comment") == "kept words"
    rated = post_form(
        client, page, {"rating": "4", "comment": "Clear and patient"}, f"{page}/feedback"
    )
    assert rated.headers["location"] == f"{page}?notice=feedback-saved"
    shown = client.get(page)
    assert "Ana, the learner, rated 4 of 5: Very good" in section(shown.text, "feedback")
    assert "Clear and patient" in shown.text
    assert 'id="feedback-form"' not in shown.text
    twice = client.post(
        f"{page}/feedback",
        data={"csrf_token": csrf_of(form.text), "rating": "1"},
        follow_redirects=False,
    )
    assert twice.status_code == 409
    assert "You have given your feedback on this exchange already." in twice.text

    as_user(client, session, settings, bea)
    post_form(client, page, {"rating": "5"}, f"{page}/feedback")
    both = section(client.get(page).text, "feedback")
    assert "Ana, the learner, rated 4 of 5" in both
    assert "Bea, the mentor, rated 5 of 5" in both
    ratings = session.scalars(select(Feedback.rating).order_by(Feedback.id)).all()
    assert ratings == [4, 5]


# -- the list ------------------------------------------------------------------------------


def test_the_list_filters_by_state_and_side_with_plain_links(client, session, settings, ana, bea):
    cai = make_volunteer(session, "cai", offers=LUA)
    learning = ask(session, settings, ana, bea)
    declined = ask(session, settings, ana, cai)
    act(session, settings, declined, ExchangeAction.DECLINE, cai)
    as_user(client, session, settings, ana)
    everything = text_of(client.get("/exchanges").text)
    assert "You learn Lua from Bea" in everything
    assert "You learn Lua from Cai" in everything
    only_declined = client.get("/exchanges?state=declined")
    assert f'id="exchange-{declined}"' in only_declined.text
    assert f'id="exchange-{learning}"' not in only_declined.text
    assert 'href="/exchanges?state=declined&amp;as=mentor"' in only_declined.text
    assert "No exchange of yours is like this." in client.get("/exchanges?as=mentor").text


def test_the_list_pages_to_older_exchanges_keeping_its_filters(client, session, settings, ana):
    ids = []
    for number in range(21):
        mentor = make_volunteer(session, f"mentor{number}", offers=LUA)
        ids.append(ask(session, settings, ana, mentor))
        act(session, settings, ids[-1], ExchangeAction.DECLINE, mentor)
    as_user(client, session, settings, ana)
    first = client.get("/exchanges?state=declined")
    shown = re.findall(r'id="exchange-(\d+)"', first.text)
    assert [int(i) for i in shown] == ids[:0:-1]  # the newest 20, newest first
    older = re.search(r'<a href="([^"]+)" rel="next" id="older"', first.text).group(1)
    assert html.unescape(older) == f"/exchanges?state=declined&before={ids[1]}"
    rest = client.get(html.unescape(older))
    assert re.findall(r'id="exchange-(\d+)"', rest.text) == [str(ids[0])]
    assert 'id="older"' not in rest.text


# -- Portuguese ------------------------------------------------------------------------------


def test_the_pages_speak_portuguese_to_a_portuguese_browser(client, session, settings, ana, bea):
    exchange_id = ask(session, settings, ana, bea, message="Oi")
    client.headers["Accept-Language"] = "pt-BR,pt;q=0.9"
    as_user(client, session, settings, bea)
    listed = text_of(client.get("/exchanges").text)
    assert "Pedidos esperando por você" in listed
    assert "Ana quer aprender Lua" in listed
    page = client.get(f"/exchanges/{exchange_id}")
    assert '<html lang="pt-BR"' in page.text
    assert section(page.text, "state") == "Aguardando resposta"
    assert "Aceitar" in page.text
    assert "Histórico" in page.text
    as_user(client, session, settings, ana)
    form = client.get(f"/exchanges/new?mentor={bea.id}")
    assert "Pedir mentoria a Bea" in text_of(form.text)
    refused = ask_through_the_form(client, bea, message="De novo")
    assert "Você já tem um pedido ou uma troca em aberto com esta pessoa" in refused.text


# -- meeting times -------------------------------------------------------------------------


def test_an_accepted_exchange_lists_when_both_can_meet_with_an_ics_file(client, session, settings):
    # Tuesday 18:00-19:30 in Sao Paulo (UTC-3) is Tuesday 22:00-23:30 in Lagos (UTC+1, no
    # summer time).
    lena = make_volunteer(
        session,
        "lena",
        timezone="America/Sao_Paulo",
        availability=[{"weekday": 1, "start": "18:00", "end": "19:30"}],
    )
    bea = make_volunteer(
        session,
        "bea",
        timezone="Africa/Lagos",
        offers=LUA,
        availability=[{"weekday": 1, "start": "20:00", "end": "23:30"}],
    )
    exchange_id = ask(session, settings, lena, bea)
    # The page reads the app's clock: a Monday noon after now, so that the first time offered
    # is the next day's whole slot (on a Tuesday evening a slot under way starts later).
    today = datetime.now(UTC)
    monday = (today + timedelta(days=7 - today.weekday())).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    client.app.state.clock = lambda: monday
    as_user(client, session, settings, lena)
    assert 'id="meetings"' not in client.get(f"/exchanges/{exchange_id}").text  # not yet
    act(session, settings, exchange_id, ExchangeAction.ACCEPT, bea)
    page = client.get(f"/exchanges/{exchange_id}")
    times = section(page.text, "meetings")
    assert re.search(
        r"Tue \d+ \w+, 18:00–19:30 your time · 22:00–23:30 Bea's time \(Africa/Lagos\)", times
    ), times
    link = re.search(r'href="(/exchanges/\d+/meeting\.ics\?start=[^"]+)"', page.text).group(1)
    assert link.endswith("T21%3A00%3A00Z")
    calendar = client.get(html.unescape(link))
    assert calendar.status_code == 200
    assert calendar.headers["content-type"].startswith("text/calendar")
    assert calendar.headers["content-disposition"].startswith("attachment;")
    assert "BEGIN:VEVENT" in calendar.text
    as_user(client, session, settings, bea)
    theirs = section(client.get(f"/exchanges/{exchange_id}").text, "meetings")
    assert "22:00–23:30 your time · 18:00–19:30 Lena's time (America/Sao_Paulo)" in theirs


# -- CSRF ------------------------------------------------------------------------------------


def test_every_post_without_its_csrf_token_is_refused_and_changes_nothing(
    client, session, settings, ana, bea
):
    exchange_id = ask(session, settings, ana, bea)
    act(session, settings, exchange_id, ExchangeAction.ACCEPT, bea)
    as_user(client, session, settings, ana)
    client.get("/exchanges")  # the browser holds its CSRF cookie; the forged forms no token
    page = f"/exchanges/{exchange_id}"
    forged = {
        f"/exchanges/new?mentor={bea.id}": {"skill": "template-editing"},
        f"{page}/accept": {},
        f"{page}/decline": {"reason": "x"},
        f"{page}/cancel": {"reason": "x"},
        f"{page}/complete": {},
        f"{page}/feedback": {"rating": "5"},
        f"{page}/messages": {"body": "forged"},
        "/inbox/read": {},
    }
    for action, data in forged.items():
        for token in (None, "0" * 64):
            body = data if token is None else {**data, "csrf_token": token}
            answer = client.post(action, data=body, follow_redirects=False)
            assert answer.status_code == 403, action
    assert session.scalar(select(func.count()).select_from(Exchange)) == 1
    assert state_of(session, exchange_id) == ExchangeState.ACCEPTED
    assert session.scalar(select(func.count()).select_from(ExchangeMessage)) == 0
    assert session.scalar(select(func.count()).select_from(Feedback)) == 0
    read = session.scalar(select(func.count()).where(Notification.read_at.is_not(None)))
    assert read == 0


def test_the_mentor_sees_who_asks_what_they_aim_for_and_when_both_are_free(
    client, session, settings
):
    learner = make_volunteer(
        session,
        "iris",
        bio="Organiser of a Lua study group.",
        timezone="America/Sao_Paulo",
        languages=[{"code": "pt", "level": 5}, {"code": "en", "level": 3}],
        availability=[{"weekday": 0, "start": "18:00", "end": "21:00"}],
        wants=[{"skill": "lua", "level": 3}],
    )
    mentor = make_volunteer(
        session,
        "omar",
        timezone="Africa/Lagos",
        languages=[{"code": "en", "level": 5}],
        availability=[{"weekday": 0, "start": "22:00", "end": "24:00"}],
        offers=LUA,
    )
    exchange_id = ask(session, settings, learner, mentor, message="Hello!")
    as_user(client, session, settings, mentor)
    page = client.get("/exchanges").text
    card = page.split(f'id="request-{exchange_id}"', 1)[1].split('id="mine"', 1)[0]
    request = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", card)).split())
    assert "Aims for the advanced level." in request
    assert "Speaks Portuguese and English." in request
    assert "Lives in the America/Sao_Paulo time zone." in request
    # Monday 18:00-21:00 in Sao Paulo is 22:00-01:00 in Lagos: two hours of it on Monday.
    assert "You are both free 2 hours a week." in request
    assert "Organiser of a Lua study group." in request
