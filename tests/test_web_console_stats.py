"""The console's statistics pages over TestClient: coordinators only, the services' numbers
(the same as the JSON API's), filters, sorting, downloads that hold what the page shows,
the SVG charts, reminders to mentors (once per 24 hours), Portuguese."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.models import Exchange, Notification, Volunteer
from capex.models.base import utcnow
from capex.schemas.exchanges import ExchangeCreate
from capex.services import exchanges, reminders
from capex.vocabulary import ExchangeAction, NotificationKind
from tests.factories import auth_headers, make_volunteer
from tests.webtools import csrf_of, sign_in_browser

API = "/api/v1"
PAGES = [
    "/console",
    "/console/skills",
    "/console/skills.csv",
    "/console/skills.tab",
    "/console/mentors",
    "/console/charts/supply.svg",
]
CHARTS = ["supply", "funnel", "timeline", "response"]
SVG = "{http://www.w3.org/2000/svg}svg"


def cells(fragment: str) -> list[str]:
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", fragment, re.S)
    ]


def table_rows(page: str, table_id: str, key: str = "skill") -> dict[str, list[str]]:
    """The rows of the table ``table_id`` by their ``data-<key>``, as the cells' text."""
    table = re.search(rf'<table id="{table_id}"[^>]*>(.*?)</table>', page, re.S)
    assert table, f"no table {table_id}"
    return {
        name: cells(row)
        for name, row in re.findall(
            rf'<tr[^>]*data-{key}="([^"]+)"[^>]*>(.*?)</tr>', table.group(1), re.S
        )
    }


def gap_rows(page: str) -> list[list[str]]:
    return list(table_rows(page, "gap-table").values())


@pytest.fixture
def boss(client: TestClient, session: Session, settings: Settings) -> Volunteer:
    coordinator = make_volunteer(session, "boss", role="coordinator")
    sign_in_browser(client, session, settings, coordinator)
    return coordinator


def ask(session: Session, settings: Settings, learner: Volunteer, mentor: Volunteer, skill: str):
    asked = exchanges.ask(
        session, settings, learner, ExchangeCreate(mentor_id=mentor.id, skill=skill)
    )
    session.commit()
    return asked.exchange.id


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, Any]:
    """Lua wanted by four learners (two in lac) and taught by one mentor with one slot
    left; public speaking offered by two mentors, wanted by one; a few exchanges."""
    lua_mentor = make_volunteer(
        session,
        "luamentor",
        offers=[{"skill": "lua", "level": 4}],
        mentor_capacity=2,
        region="cee",
        languages=[{"code": "pt-BR", "level": 5}],
    )
    speakers = [
        make_volunteer(
            session,
            f"speaker{n}",
            offers=[{"skill": "public-speaking", "level": 4}],
            mentor_capacity=3,
            region="nwe",
            languages=[{"code": "en", "level": 5}],
        )
        for n in range(2)
    ]
    learners = [
        make_volunteer(
            session,
            f"learner{n}",
            wants=[{"skill": "lua", "level": 1}],
            region="lac" if n < 2 else "cee",
            languages=[{"code": "pt", "level": 4}],
        )
        for n in range(4)
    ]
    talker = make_volunteer(
        session,
        "talker",
        wants=[{"skill": "public-speaking", "level": 1}],
        region="nwe",
        languages=[{"code": "en", "level": 5}],
    )
    accepted = ask(session, settings, learners[0], lua_mentor, "lua")
    exchanges.act(session, settings, accepted, ExchangeAction.ACCEPT, lua_mentor)
    session.commit()
    waiting = ask(session, settings, learners[2], lua_mentor, "lua")
    spoken = ask(session, settings, talker, speakers[0], "public-speaking")
    return {
        "lua_mentor": lua_mentor,
        "speakers": speakers,
        "learners": learners,
        "talker": talker,
        "waiting": waiting,
        "spoken": spoken,
    }


@pytest.mark.parametrize("path", PAGES)
def test_a_volunteer_is_refused_and_a_visitor_is_sent_to_sign_in(client, session, settings, path):
    anonymous = client.get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/sign-in?next=")
    sign_in_browser(client, session, settings, make_volunteer(session, "plain"))
    refused = client.get(path)
    assert refused.status_code == 403
    assert "Only coordinators may see the console." in refused.text


def test_a_volunteer_cannot_remind_mentors(client, session, settings, world):
    sign_in_browser(client, session, settings, make_volunteer(session, "plain"))
    page = client.get("/inbox")
    response = client.post(
        "/console/mentors/remind",
        data={"csrf_token": csrf_of(page.text), "exchange": str(world["waiting"])},
    )
    assert response.status_code == 403
    assert "Only coordinators may see the console." in response.text
    assert reminder_count(session, world["waiting"]) == 0


def api_skills(client, session, settings, boss, **params: str) -> list[dict[str, Any]]:
    answer = client.get(
        f"{API}/stats/skills", params=params, headers=auth_headers(session, settings, boss)
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_the_dashboard_shows_the_services_numbers(client, session, settings, boss, world):
    page = client.get("/console")
    assert page.status_code == 200
    assert page.text.count("<h1") == 1
    headers = auth_headers(session, settings, boss)
    supply = table_rows(page.text, "supply-table")
    expected = [row for row in api_skills(client, session, settings, boss) if row["wanted"]][:3]
    for row in expected:
        assert supply[row["skill"]][1:] == [
            str(row["wanted"]),
            str(row["open_slots"]),
            str(row["gap"]),
        ]
    assert supply["lua"] == ["Lua", "4", "1", "3"]
    # The worst gap first, in the chart's text alternative too.
    assert next(iter(supply)) == "lua"
    assert 'alt="Lua: 4 learners want it, 1 open slots"' in page.text
    funnel = client.get(f"{API}/stats/funnel", headers=headers).json()
    stages = table_rows(page.text, "funnel-table", "stage")
    for stage in funnel["stages"]:
        assert stages[stage["stage"]][1] == str(stage["count"])
    assert stages["requested"][1] == "3"
    assert stages["accepted"][1:] == ["1", "100%", "0"]
    timeline = client.get(f"{API}/stats/timeline", headers=headers).json()
    months = table_rows(page.text, "timeline-table", "period")
    last = timeline["items"][-1]
    assert months[last["period"]][1:] == [
        str(last[name])
        for name in ("requested", "accepted", "completed", "expired", "new_volunteers")
    ]
    assert "Figures as of" in page.text
    for name in CHARTS:
        assert re.search(
            rf'<img class="chart" src="/console/charts/{name}.svg" alt="[^"]+"', page.text
        )
    assert "<svg" not in page.text


def test_filters_change_every_table_and_the_chart_links(client, session, settings, boss, world):
    everyone = table_rows(client.get("/console").text, "supply-table")
    assert everyone["lua"][1] == "4"
    page = client.get("/console", params={"region": "lac", "language": "", "area": ""})
    assert page.status_code == 200
    lac = table_rows(page.text, "supply-table")
    # In lac: two learners want Lua, and no mentor lives there.
    assert lac["lua"][1:] == ["2", "0", "2"]
    assert (
        next(
            r
            for r in api_skills(client, session, settings, boss, region="lac")
            if r["skill"] == "lua"
        )["wanted"]
        == 2
    )
    stages = table_rows(page.text, "funnel-table", "stage")
    assert stages["requested"][1] == "1"
    assert 'src="/console/charts/supply.svg?region=lac"' in page.text
    assert '<option value="lac" selected>' in page.text
    area = client.get("/console", params={"area": "communication"})
    assert "lua" not in table_rows(area.text, "supply-table")
    assert table_rows(area.text, "funnel-table", "stage")["requested"][1] == "1"
    speaking = client.get("/console", params={"language": "en"})
    assert list(table_rows(speaking.text, "supply-table")) == ["public-speaking"]


def test_a_bad_filter_is_an_error_page_not_a_crash(client, boss):
    assert client.get("/console", params={"region": "atlantis"}).status_code == 422
    assert client.get("/console", params={"area": "lua"}).status_code == 422
    assert client.get("/console/skills", params={"since": "soon"}).status_code == 422
    assert client.get("/console/skills", params={"sort": "nonsense"}).status_code == 422
    bad_dates = client.get("/console", params={"since": "2026-05-01", "until": "2026-04-01"})
    assert bad_dates.status_code == 422


def test_the_gap_table_shows_every_skill_as_the_api_does(client, session, settings, boss, world):
    page = client.get("/console/skills")
    assert page.status_code == 200
    shown = gap_rows(page.text)
    expected = api_skills(client, session, settings, boss)
    assert [row[0] for row in shown] == [row["skill"] for row in expected]
    lua = table_rows(page.text, "gap-table")["lua"]
    api_lua = next(row for row in expected if row["skill"] == "lua")
    assert lua[:10] == [
        "lua",
        "Lua",
        *(
            str(api_lua[name])
            for name in ("offered", "open_slots", "wanted", "gap", "requested", "accepted")
        ),
        str(api_lua["completed"]),
        str(api_lua["expired"]),
    ]
    assert lua[2:10] == ["1", "1", "4", "3", "2", "1", "0", "0"]
    assert 'aria-sort="descending"' in page.text
    areas = client.get("/console/skills", params={"level": "area"})
    area_ids = [row[0] for row in gap_rows(areas.text)]
    assert area_ids == [
        row["skill"] for row in api_skills(client, session, settings, boss, level="area")
    ]
    assert "technology" in area_ids
    assert "lua" not in area_ids


def test_sorting_orders_the_rows_and_marks_the_column(client, boss, world):
    by_wanted = client.get("/console/skills", params={"sort": "wanted", "order": "desc"})
    wanted = [int(row[4]) for row in gap_rows(by_wanted.text)]
    assert wanted == sorted(wanted, reverse=True)
    assert wanted[0] == 4
    sorted_th = re.search(
        r'<th scope="col"[^>]*aria-sort="descending">\s*<a href="([^"]+)"', by_wanted.text
    )
    assert sorted_th.group(1) == "?level=skill&amp;sort=wanted&amp;order=asc"
    by_name = client.get("/console/skills", params={"sort": "name", "order": "asc"})
    names = [row[1] for row in gap_rows(by_name.text)]
    assert names == sorted(names)
    assert 'aria-sort="ascending"' in by_name.text
    by_offered = client.get("/console/skills", params={"sort": "offered", "order": "asc"})
    offered = [int(row[2]) for row in gap_rows(by_offered.text)]
    assert offered == sorted(offered)
    assert offered[-1] == 2


@pytest.mark.parametrize(
    "params",
    [{}, {"sort": "name", "order": "desc"}, {"region": "lac", "sort": "wanted"}, {"level": "area"}],
)
def test_the_downloads_hold_exactly_what_the_page_shows(client, boss, world, params):
    page = client.get("/console/skills", params=params)
    shown = gap_rows(page.text)
    as_csv = client.get("/console/skills.csv", params=params)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["skill"] for row in rows] == [row[0] for row in shown]
    for row, cells_shown in zip(rows, shown, strict=True):
        assert [
            row["name"],
            row["offered"],
            row["open_slots"],
            row["wanted"],
            row["gap"],
        ] == cells_shown[1:6]
    as_tab = client.get("/console/skills.tab", params=params)
    assert as_tab.status_code == 200
    assert 'filename="' in as_tab.headers["content-disposition"]
    document = json.loads(as_tab.text)
    assert document["license"] == "CC0-1.0"
    assert [row[0] for row in document["data"]] == [row[0] for row in shown]
    # The page links the downloads of the same view.
    query = html.unescape(re.search(r'href="/console/skills.csv\?([^"]*)"', page.text).group(1))
    assert client.get(f"/console/skills.csv?{query}").text == as_csv.text


@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_is_svg_with_its_own_policy_and_the_same_bytes_for_the_same_data(
    client, boss, world, name
):
    first = client.get(f"/console/charts/{name}.svg", params={"region": "cee"})
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("image/svg+xml")
    assert first.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert first.headers["cache-control"] == "private, max-age=60"
    root = ET.fromstring(first.content)
    assert root.tag == SVG
    second = client.get(f"/console/charts/{name}.svg", params={"region": "cee"})
    assert second.content == first.content
    other = client.get(f"/console/charts/{name}.svg", params={"region": "lac"})
    assert other.status_code == 200
    assert other.content != first.content


def test_a_chart_says_its_words_in_the_readers_language(client, boss, world):
    english = client.get("/console/charts/supply.svg").text
    portuguese = client.get("/console/charts/supply.svg", headers={"Accept-Language": "pt-BR"})
    assert "Open slots" in english
    assert "Vagas abertas" in portuguese.text
    assert "Open slots" not in portuguese.text
    assert client.get("/console/charts/pie.svg").status_code == 404


def reminder_count(session: Session, exchange_id: int) -> int:
    session.rollback()
    return int(
        session.scalar(
            select(func.count()).where(
                Notification.kind == NotificationKind.MENTOR_REMINDER,
                Notification.exchange_id == exchange_id,
            )
        )
        or 0
    )


def make_old(session: Session, exchange_id: int, days: float) -> None:
    session.execute(
        update(Exchange)
        .where(Exchange.id == exchange_id)
        .values(created_at=utcnow() - timedelta(days=days))
    )
    session.commit()


def test_mentors_page_lists_load_and_requests_waiting_longer_than_days(
    client, session, settings, boss, world
):
    make_old(session, world["waiting"], 9)
    page = client.get("/console/mentors")
    assert page.status_code == 200
    waiting = table_rows(page.text, "waiting-table", "exchange")
    assert list(waiting) == [str(world["waiting"])]
    assert waiting[str(world["waiting"])][1:5] == ["Luamentor", "Learner2", "Lua", "9"]
    assert 'name="days" type="number"' in page.text
    assert 'value="7"' in page.text
    assert str(world["spoken"]) not in waiting
    everyone = table_rows(client.get("/console/mentors?days=0").text, "waiting-table", "exchange")
    assert set(everyone) == {str(world["waiting"]), str(world["spoken"])}
    idle = re.search(r'<div id="idle-mentors">(.*?)</div>', page.text, re.S).group(1)
    assert "Speaker1" in idle
    assert "Speaker0" not in idle
    assert "Luamentor" not in idle


def test_reminding_notifies_the_mentor_once_per_24_hours(client, session, settings, boss, world):
    make_old(session, world["waiting"], 9)
    page = client.get("/console/mentors")
    sent = client.post(
        "/console/mentors/remind",
        data={
            "csrf_token": csrf_of(page.text),
            "exchange": str(world["waiting"]),
            "days": "7",
            "action": "chosen",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/console/mentors?days=7&notice=reminders-sent"
    assert reminder_count(session, world["waiting"]) == 1
    shown = client.get(sent.headers["location"]).text
    assert "The mentors are reminded." in shown
    assert "Never" not in table_rows(shown, "waiting-table", "exchange")[str(world["waiting"])][5]
    again = client.post(
        "/console/mentors/remind",
        data={"csrf_token": csrf_of(page.text), "shown": str(world["waiting"]), "action": "all"},
        follow_redirects=False,
    )
    assert again.headers["location"].endswith("notice=reminders-all-skipped")
    assert "was reminded in the last 24 hours" in client.get(again.headers["location"]).text
    assert reminder_count(session, world["waiting"]) == 1
    # The mentor's inbox words it in their language.
    client.cookies.clear()
    sign_in_browser(client, session, settings, world["lua_mentor"])
    inbox = client.get("/inbox").text
    assert "A coordinator reminds you: Learner2 is waiting for your answer about Lua." in inbox
    inbox_pt = client.get("/inbox", headers={"Accept-Language": "pt-BR"}).text
    assert "Uma pessoa coordenadora lembra você" in inbox_pt
    # A day later the service sends the next one.
    later = utcnow() + timedelta(hours=25)
    boss_row = session.get(Volunteer, boss.id)
    result = reminders.remind_mentors(
        session, settings, [world["waiting"], world["spoken"]], by=boss_row, now=later
    )
    session.commit()
    assert result.sent == (world["waiting"], world["spoken"])
    assert result.skipped == ()
    assert reminder_count(session, world["waiting"]) == 2


def test_remind_without_a_choice_sends_nothing(client, session, boss, world):
    page = client.get("/console/mentors?days=0")
    response = client.post(
        "/console/mentors/remind",
        data={"csrf_token": csrf_of(page.text), "action": "chosen"},
        follow_redirects=False,
    )
    assert response.headers["location"].endswith("notice=reminders-none")
    assert reminder_count(session, world["waiting"]) == 0


def test_the_console_speaks_portuguese(client, boss, world):
    pt = {"Accept-Language": "pt-BR"}
    dashboard = client.get("/console", headers=pt).text
    assert 'lang="pt-BR"' in dashboard
    assert "Oferta e procura" in dashboard
    assert "Lua: 4 pessoas querem aprender, 1 vagas abertas" in dashboard
    assert "Tabela de lacunas" in client.get("/console/skills", headers=pt).text
    mentors = client.get("/console/mentors?days=0", headers=pt).text
    assert "Pedidos esperando resposta" in mentors
