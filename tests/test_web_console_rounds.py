"""The console's matching rounds in the web client: the form that runs one for a cohort, the
review page with its metrics and reasons, both modes compared, publishing once, and what
became of each pair (both databases)."""

from __future__ import annotations

import html
import re

import pytest

from tests.factories import auth_headers, make_volunteer
from tests.webtools import (
    csrf_of,
    field_errors,
    post_form,
    section,
    sign_in_browser,
    text_of,
    textarea_of,
    value_of,
)

API = "/api/v1"
ENGLISH = [{"code": "en", "level": 5}]


@pytest.fixture
def web(client):
    client.app.state.matching.poll_interval = 0  # profiles saved just before count
    return client


@pytest.fixture
def boss(session, settings, web):
    coordinator = make_volunteer(session, "boss", role="coordinator", languages=ENGLISH)
    sign_in_browser(web, session, settings, coordinator)
    return coordinator


@pytest.fixture
def trap(session):
    """Two learners, two one-slot mentors; best-first places one learner, the optimum two
    (tests/test_rounds_api.py tells the story). ``cy`` wants Lua too but is left outside
    the cohort by name."""
    return {
        "max": make_volunteer(
            session,
            "max",
            display_name="Max",
            languages=ENGLISH,
            mentor_capacity=1,
            offers=[{"skill": "lua", "level": 4}, {"skill": "photography", "level": 4}],
        ),
        "mia": make_volunteer(
            session,
            "mia",
            display_name="Mia",
            languages=ENGLISH,
            mentor_capacity=1,
            offers=[{"skill": "lua", "level": 3}],
        ),
        "ana": make_volunteer(
            session,
            "ana",
            display_name="Ana",
            languages=ENGLISH,
            wants=[{"skill": "lua", "level": 4}],
        ),
        "bo": make_volunteer(
            session,
            "bo",
            display_name="Bo",
            languages=ENGLISH,
            wants=[{"skill": "photography", "level": 2}],
        ),
        "cy": make_volunteer(
            session, "cy", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
        ),
    }


def run_form(web, **fields):
    data = {
        "name": "2027 cohort",
        "mode": "optimal",
        "learners": "ana\nbo",
        "mentors": "",
        "min_score": "0",
        "max_per_learner": "1",
        "action": "run",
        **fields,
    }
    return post_form(web, "/console/rounds/new", data)


def run_round(web, **fields) -> int:
    answer = run_form(web, **fields)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/console/rounds/(\d+)\?notice=round-run", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def test_the_rounds_pages_are_for_coordinators(web, session, settings):
    for path in ("/console/rounds", "/console/rounds/new", "/console/rounds/1"):
        anonymous = web.get(path, follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/sign-in?next=")
    sign_in_browser(web, session, settings, make_volunteer(session, "someone"))
    for path in ("/console/rounds", "/console/rounds/new", "/console/rounds/compare?a=1&b=2"):
        refused = web.get(path)
        assert refused.status_code == 403
        assert "Only coordinators may see the console." in refused.text
    # A volunteer's own form token does not let them publish or run either.
    shown = web.get("/matches")
    token = csrf_of(shown.text)
    for path in ("/console/rounds/1/publish", "/console/rounds/new"):
        posted = web.post(path, data={"csrf_token": token, "name": "x"})
        assert posted.status_code == 403


def test_a_round_run_through_the_form_keeps_its_cohort(web, session, settings, boss, trap):
    round_id = run_round(web, learners="ana, BO\n", mentors="mia\nmax", min_score="0.1")
    stored = web.get(
        f"{API}/rounds/{round_id}", headers=auth_headers(session, settings, boss)
    ).json()
    assert stored["name"] == "2027 cohort"
    assert stored["mode"] == "optimal"
    assert stored["status"] == "draft"
    assert stored["metrics"]["learners"] == 2  # cy is not in the cohort
    pairs = {(p["learner"]["username"], p["mentor"]["username"]) for p in stored["pairs"]}
    assert pairs == {("ana", "mia"), ("bo", "max")}

    listed = web.get("/console/rounds")
    row = section(listed.text, f"round-{round_id}")
    assert "2027 cohort" in row
    assert "Optimal" in row
    assert "Draft" in row
    assert "2 of 2" in row
    assert 'href="/console/rounds/new"' in listed.text


def test_skills_are_resolved_by_name_alias_or_id(web, session, settings, boss, trap):
    answer = post_form(
        web,
        "/console/rounds/new",
        {
            "name": "photographers",
            "mode": "stable",
            "skills-0": "Photography",
            "skills-1": "lua, photography",
            "learners": "",
            "mentors": "",
            "min_score": "",
            "max_per_learner": "1",
            "action": "run",
        },
    )
    assert answer.status_code == 303, answer.text
    round_id = int(answer.headers["location"].split("/")[-1].split("?")[0])
    stored = web.get(
        f"{API}/rounds/{round_id}", headers=auth_headers(session, settings, boss)
    ).json()
    assert stored["mode"] == "stable"
    learners = {p["learner"]["username"] for p in stored["pairs"]}
    learners |= {ref["username"] for ref in stored["unmatched_learners"]}
    assert learners == {"ana", "bo", "cy"}
    page = web.get(f"/console/rounds/{round_id}")
    assert "Skills: Photography and Lua, and the skills below them." in text_of(page.text)


def test_bad_input_is_shown_by_its_field_and_kept(web, session, boss, trap):
    answer = run_form(
        web,
        name="",
        learners="ana\nnobody_here",
        mentors="max, ghost",
        min_score="2",
        max_per_learner="9",
        **{"skills-0": "Lua", "skills-1": "basket weaving"},
    )
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    assert errors["name"] == "Fill in this field."
    assert errors["learners"] == "No active volunteer has the username nobody_here."
    assert errors["mentors"] == "No active volunteer has the username ghost."
    assert errors["skills-1"] == "Choose a skill from the list: basket weaving is not one."
    assert errors["min_score"] == "Write a number from 0 to 1, like 0.5."
    assert errors["max_per_learner"] == "This must be at most 5."
    # What was typed is kept, to be corrected.
    assert textarea_of(answer.text, "learners") == "ana\nnobody_here"
    assert textarea_of(answer.text, "mentors") == "max, ghost"
    assert value_of(answer.text, "skills-0") == "Lua"
    assert value_of(answer.text, "skills-1") == "basket weaving"
    assert value_of(answer.text, "min_score") == "2"
    assert "6 things to fix" in answer.text
    assert "Learners: No active volunteer has the username nobody_here." in text_of(answer.text)
    # Nothing was run.
    assert 'id="no-rounds"' in web.get("/console/rounds").text


def test_the_review_page_shows_metrics_pairs_and_reasons(web, boss, trap):
    round_id = run_round(web, learners="ana\nbo", mentors="mia")
    page = web.get(f"/console/rounds/{round_id}")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert section(page.text, "metric-learners").startswith("Learners 2")
    assert "Matched 1" in section(page.text, "metric-matched")
    assert "Learners given at least one mentor." in shown
    assert "a stable round has none." in shown
    assert "How unevenly the pairs are spread over the mentors" in shown
    pairs = section(page.text, "pair-table")
    assert "Mia offers Lua, which Ana wants to learn." in pairs
    assert "The mentor's level is below the level the learner aims for" in pairs  # 3 < 4
    assert "Both speak English." in pairs
    assert "One of them has not said when they are free." in pairs
    # bo wants photography, which mia does not teach.
    assert "1 learner without a mentor" in section(page.text, "unmatched-title")
    assert "@bo" in section(page.text, "unmatched")
    assert "Mentors: 1 named (mia)." in shown
    assert "Publishing sends 1 request:" in section(page.text, "publish-confirm")


def test_compare_runs_both_modes_for_the_same_cohort(web, session, settings, boss, trap):
    answer = run_form(web, action="compare")
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/console/rounds/compare\?a=(\d+)&b=(\d+)", answer.headers["location"])
    assert found, answer.headers["location"]
    headers = auth_headers(session, settings, boss)
    a, b = (web.get(f"{API}/rounds/{i}", headers=headers).json() for i in found.groups())
    assert (a["mode"], b["mode"]) == ("optimal", "stable")
    assert a["status"] == b["status"] == "draft"

    page = web.get(answer.headers["location"])
    assert page.status_code == 200
    assert "Both rounds were run for the same cohort" in page.text
    assert "Optimal is better" in section(page.text, "compare-matched")
    assert "Optimal is better" in section(page.text, "compare-total_score")
    assert "Stable is better" in section(page.text, "compare-blocking_pairs")
    assert "Neither" in section(page.text, "compare-learners")
    # The trap: optimal gives ana to mia and bo to max; stable keeps ana with max.
    assert "Mia offers Lua, which Ana wants to learn." in section(page.text, "only-a")
    assert "Max offers Lua, which Ana wants to learn." in section(page.text, "only-b")


def test_publishing_sends_requests_once_and_shows_what_became_of_them(
    web, session, settings, boss, trap
):
    round_id = run_round(web)
    published = post_form(
        web, f"/console/rounds/{round_id}", {}, f"/console/rounds/{round_id}/publish"
    )
    assert published.status_code == 303
    assert published.headers["location"] == f"/console/rounds/{round_id}?notice=round-published"
    page = web.get(published.headers["location"])
    assert "2 pairs became requests." in section(page.text, "outcome")
    assert "Accepted: 0 of 2." in section(page.text, "outcome")
    assert 'id="publish-form"' not in page.text
    assert "Waiting for an answer" in section(page.text, "pair-table")

    # The mentors find the requests in their inbox.
    for mentor, learner in (("mia", "Ana"), ("max", "Bo")):
        sign_in_browser(web, session, settings, trap[mentor])
        inbox = text_of(web.get("/inbox").text)
        assert learner in inbox, inbox
    # Max accepts Bo's request.
    headers = auth_headers(session, settings, trap["max"])
    waiting = web.get(f"{API}/exchanges?side=mentor", headers=headers).json()["items"]
    (exchange,) = waiting
    assert exchange["origin"] == "round"
    accepted = web.post(f"{API}/exchanges/{exchange['id']}/accept", headers=headers)
    assert accepted.status_code == 200, accepted.text

    sign_in_browser(web, session, settings, boss)
    page = web.get(f"/console/rounds/{round_id}")
    assert "Accepted: 1 of 2." in section(page.text, "outcome")
    assert f'<a href="/exchanges/{exchange["id"]}"><span class="pill state-accepted">' in page.text

    # A second publish is refused, in words.
    token = csrf_of(page.text)
    again = web.post(f"/console/rounds/{round_id}/publish", data={"csrf_token": token})
    assert again.status_code == 409
    assert "This round was already published, on" in section(again.text, "refused")
    assert "it cannot be published again." in section(again.text, "refused")


def test_many_pairs_are_paged(web, session, boss, monkeypatch):
    from capex.services import round_pages

    monkeypatch.setattr(round_pages, "PAIRS_PER_PAGE", 2)
    for index in range(3):
        make_volunteer(
            session,
            f"mentor{index}",
            languages=ENGLISH,
            offers=[{"skill": "lua", "level": 4}],
        )
        make_volunteer(
            session, f"learner{index}", languages=ENGLISH, wants=[{"skill": "lua", "level": 3}]
        )
    round_id = run_round(web, learners="")
    first = web.get(f"/console/rounds/{round_id}")
    assert "Page 1 of 2, best pairs first." in text_of(first.text)
    assert first.text.count('<th scope="row"><a href="/volunteers/') == 2
    second = web.get(f"/console/rounds/{round_id}?page=2")
    assert second.text.count('<th scope="row"><a href="/volunteers/') == 1
    assert 'rel="prev"' in second.text


def test_the_round_pages_speak_portuguese(web, boss, trap):
    web.headers["Accept-Language"] = "pt-BR"
    form = web.get("/console/rounds/new")
    assert '<html lang="pt-BR"' in form.text
    assert "Comparar ótimo e estável" in form.text
    round_id = run_round(web)
    page = text_of(web.get(f"/console/rounds/{round_id}").text)
    assert "Mia oferece Lua, que Ana quer aprender." in page
    assert "Pareados" in page
    assert "Ambos falam inglês." in page


def test_the_rounds_list_is_newest_first_and_paged(web, boss, trap, monkeypatch):
    from capex.web.routes import console_rounds

    monkeypatch.setattr(console_rounds, "ROUNDS_PER_PAGE", 1)
    first = run_round(web, name="first")
    second = run_round(web, name="second")
    listed = web.get("/console/rounds")
    assert f'id="round-{second}"' in listed.text
    assert f'id="round-{first}"' not in listed.text
    older = re.search(r'href="(/console/rounds\?before=\d+)" rel="next"', listed.text)
    assert older
    page = web.get(html.unescape(older.group(1)))
    assert f'id="round-{first}"' in page.text
    assert 'rel="next"' not in page.text
