"""The matches page: ranked mentors with their reasons in words, the weekly overlap on both
people's clocks, and, when there are few, why and what would help (both databases)."""

from __future__ import annotations

import pytest

from tests.factories import make_volunteer
from tests.webtools import post_form, sign_in_browser, text_of

ENGLISH = [{"code": "en", "level": 5}]


@pytest.fixture
def web(client):
    client.app.state.matching.poll_interval = 0  # see what was saved just before
    return client


@pytest.fixture
def learner(session, settings, web):
    volunteer = make_volunteer(
        session,
        "lena",
        timezone="America/Sao_Paulo",
        languages=[{"code": "pt", "level": 5}, *ENGLISH],
        availability=[{"weekday": 0, "start": "18:00", "end": "20:00"}],
        wants=[{"skill": "lua", "level": 3}],
    )
    sign_in_browser(web, session, settings, volunteer)
    return volunteer


def test_a_match_is_listed_with_its_reasons_in_words_and_both_clocks(web, session, learner):
    make_volunteer(
        session,
        "bea",
        timezone="Africa/Lagos",
        languages=ENGLISH,
        availability=[{"weekday": 0, "start": "21:00", "end": "24:00"}],
        offers=[{"skill": "lua", "level": 4}],
    )
    page = web.get("/matches")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert "1 mentor for you" in shown
    assert "Offers Lua, which you want to learn." in shown
    assert "Level expert: reaches the advanced level you aim for." in shown
    assert "You both speak English." in shown
    # 18:00-20:00 in Sao Paulo on a Monday is 22:00-24:00 in Lagos (UTC+1 all year, so the
    # test holds in every season).
    assert "Monday 18:00–20:00 your time, Monday 22:00–24:00 for Bea (Africa/Lagos)" in shown
    assert "Can take 2 more learners." in shown
    assert 'href="/exchanges/new?mentor=' in page.text


def test_no_match_says_why_with_counts_and_what_would_help(web, session, learner):
    for index in range(3):
        make_volunteer(
            session,
            f"saturday{index}",
            timezone="America/Sao_Paulo",
            languages=ENGLISH,
            availability=[{"weekday": 5, "start": "09:00", "end": "11:00"}],
            offers=[{"skill": "lua", "level": 4}],
        )
    make_volunteer(
        session,
        "hindi",
        timezone="America/Sao_Paulo",
        languages=[{"code": "hi", "level": 5}],
        offers=[{"skill": "lua", "level": 4}],
    )
    shown = text_of(web.get("/matches").text)
    assert "0 mentors for you" in shown
    assert "Why so few, and what would help" in shown
    assert "4 mentors offer it;" in shown
    assert "3 of them speak one of your languages;" in shown
    assert "none of those is free when you are;" in shown
    assert "Being free on Saturday 06:00–12:00 (your time) would add 3 matches." in shown
    # Doing what it says adds exactly those matches.
    web.patch(
        "/api/v1/me/profile",
        json={
            "availability": [
                {"weekday": 0, "start": "18:00", "end": "20:00"},
                {"weekday": 5, "start": "06:00", "end": "12:00"},
            ]
        },
        headers={"Authorization": f"Bearer {web.cookies.get('capex_session')}"},
    )
    assert "3 mentors for you" in text_of(web.get("/matches").text)


def test_the_matches_page_in_portuguese(web, session, learner):
    make_volunteer(
        session,
        "bea",
        timezone="Africa/Lagos",
        languages=ENGLISH,
        availability=[{"weekday": 0, "start": "21:00", "end": "24:00"}],
        offers=[{"skill": "lua", "level": 4}],
    )
    post_form(web, "/matches", {"language": "pt_BR", "next": "/matches"}, action="/language")
    shown = text_of(web.get("/matches").text)
    assert "1 mentor para você" in shown
    assert "Vocês dois falam inglês." in shown
    assert "segunda-feira 18:00–20:00 no seu horário" in shown


def test_a_volunteer_who_wants_nothing_is_told_to_add_it(web, session, settings):
    volunteer = make_volunteer(session, "blank")
    sign_in_browser(web, session, settings, volunteer)
    shown = text_of(web.get("/matches").text)
    assert "You have not said what you want to learn yet." in shown
    assert "You do not offer a skill yet." in text_of(web.get("/matches?as=mentor").text)


def test_the_matches_page_needs_a_sign_in_and_a_known_side(web, learner):
    assert web.get("/matches?as=teacher").status_code == 400
    web.cookies.clear()
    answer = web.get("/matches", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/matches"
