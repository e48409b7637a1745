"""The statistics over HTTP: coordinators only, the figures a coordinator expects, and the
same figures as JSON, CSV and open data."""

from __future__ import annotations

import csv
import io
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.models import Volunteer
from tests.factories import auth_headers, make_volunteer

API = "/api/v1"
TAB = "application/vnd.capex.tabular+json"
LUA = [{"skill": "lua", "level": 3}]

# Every table an export holds: its path and query, and where its rows sit in the JSON.
TABLES: dict[str, tuple[str, dict[str, str], str | None]] = {
    "overview": ("/stats/overview", {}, None),
    "skills": ("/stats/skills", {}, "items"),
    "areas": ("/stats/skills", {"level": "area"}, "items"),
    "funnel": ("/stats/funnel", {}, "stages"),
    "funnel_lost": ("/stats/funnel", {"table": "lost"}, "lost"),
    "timeline_month": ("/stats/timeline", {}, "items"),
    "timeline_week": ("/stats/timeline", {"interval": "week"}, "items"),
    "regions": ("/stats/regions", {}, "items"),
    "languages": ("/stats/languages", {}, "items"),
    "mentors_load": ("/stats/mentors", {}, "load"),
    "mentors_waiting_requests": (
        "/stats/mentors",
        {"table": "waiting_requests"},
        "waiting_requests",
    ),
    "mentors_top": ("/stats/mentors", {"table": "top"}, "top"),
}
# Figures computed from counts: null in open data when one of their counts is.
COMPUTED = {
    "gap",
    "acceptance_rate",
    "completion_rate",
    "expiry_rate",
    "median_response_hours",
    "share_of_previous",
    "rating",
}
PATHS = sorted({path for path, _, _ in TABLES.values()})


@pytest.fixture
def coordinator(session: Session, settings: Settings) -> dict[str, str]:
    boss = make_volunteer(session, "boss", role="coordinator")
    return auth_headers(session, settings, boss)


def post(client: TestClient, path: str, headers: dict[str, str], body: Any = None) -> Any:
    response = client.post(f"{API}{path}", json=body or {}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def lua_row(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/stats/skills", headers=headers)
    assert response.status_code == 200, response.text
    return next(row for row in response.json()["items"] if row["skill"] == "lua")


# -- who may ask -------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_statistics_are_for_coordinators_only(client, session, settings, path):
    anonymous = client.get(f"{API}{path}")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"

    someone = make_volunteer(session, "someone")
    refused = client.get(f"{API}{path}", headers=auth_headers(session, settings, someone))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert "coordinator" in refused.json()["detail"]
    # Not even the CSV leaks past the check.
    refused_csv = client.get(
        f"{API}{path}?format=csv", headers=auth_headers(session, settings, someone)
    )
    assert refused_csv.status_code == 403


# -- the hand-checked case ---------------------------------------------------------------


def test_the_gap_moves_as_a_coordinator_expects(client, session, settings, coordinator):
    """One mentor with 2 open slots, 3 learners wanting Lua: offered 1, wanted 3, gap 1."""
    mentor = make_volunteer(session, "mentor", offers=LUA, mentor_capacity=2)
    learners = [make_volunteer(session, f"learner{n}", wants=LUA) for n in range(3)]
    mentor_headers = auth_headers(session, settings, mentor)
    headers = [auth_headers(session, settings, learner) for learner in learners]

    row = lua_row(client, coordinator)
    assert (row["offered"], row["open_slots"], row["wanted"], row["gap"]) == (1, 2, 3, 1)
    assert (row["requested"], row["accepted"], row["completed"]) == (0, 0, 0)

    asked = [
        post(client, "/exchanges", h, {"mentor_id": mentor.id, "skill": "lua"}) for h in headers
    ]
    row = lua_row(client, coordinator)
    assert (row["requested"], row["accepted"], row["gap"]) == (3, 0, 1)

    post(client, f"/exchanges/{asked[0]['id']}/accept", mentor_headers)
    row = lua_row(client, coordinator)
    # A slot taken: one place fewer for the same three learners.
    assert (row["open_slots"], row["accepted"], row["gap"]) == (1, 1, 2)
    assert row["median_response_hours"] is not None

    post(client, f"/exchanges/{asked[1]['id']}/decline", mentor_headers, {"reason": "busy"})
    row = lua_row(client, coordinator)
    assert (row["open_slots"], row["accepted"], row["gap"]) == (1, 1, 2)

    post(client, f"/exchanges/{asked[0]['id']}/complete", headers[0])
    row = lua_row(client, coordinator)
    # Completing frees the slot; the learner still wants Lua in the profile.
    assert (row["open_slots"], row["completed"], row["wanted"], row["gap"]) == (2, 1, 3, 1)

    funnel = client.get(f"{API}/stats/funnel", headers=coordinator).json()
    assert [(s["stage"], s["count"]) for s in funnel["stages"]] == [
        ("requested", 3),
        ("answered", 2),
        ("accepted", 1),
        ("completed", 1),
        ("feedback", 0),
    ]
    assert funnel["lost"] == {"declined": 1, "cancelled": 0, "expired": 0}

    overview = client.get(f"{API}/stats/overview", headers=coordinator).json()
    assert overview["exchanges"] == {
        "requested": 1,
        "accepted": 0,
        "declined": 1,
        "cancelled": 0,
        "completed": 1,
        "expired": 0,
    }
    assert (overview["mentors"], overview["learners"], overview["requests_waiting"]) == (1, 3, 1)
    assert overview["acceptance_rate"] == pytest.approx(1 / 2)
    assert overview["completion_rate"] == 1.0

    mentors = client.get(f"{API}/stats/mentors", headers=coordinator).json()
    (waiting,) = mentors["waiting_requests"]
    assert waiting["exchange_id"] == asked[2]["id"]
    assert waiting["mentor"] == {"id": mentor.id, "username": "mentor", "display_name": "Mentor"}
    assert [t["mentor"]["username"] for t in mentors["top"]] == ["mentor"]


# -- formats -----------------------------------------------------------------------------


def busy_world(session: Session, settings: Settings, client: TestClient) -> None:
    """A few volunteers in two regions and a few exchanges in several states."""
    mentors = [
        make_volunteer(
            session,
            f"mentor{n}",
            offers=LUA,
            mentor_capacity=4,
            region="cee",
            languages=[{"code": "pt-BR", "level": 5}],
        )
        for n in range(2)
    ]
    learners = [
        make_volunteer(
            session,
            f"learner{n}",
            wants=LUA,
            region="lac" if n % 2 else "cee",
            languages=[{"code": "pt", "level": 4}],
        )
        for n in range(6)
    ]
    for n, learner in enumerate(learners):
        mentor = mentors[n % 2]
        asked = post(
            client,
            "/exchanges",
            auth_headers(session, settings, learner),
            {"mentor_id": mentor.id, "skill": "lua"},
        )
        if n < 3:
            post(
                client, f"/exchanges/{asked['id']}/accept", auth_headers(session, settings, mentor)
            )
        if n == 0:
            learner_headers = auth_headers(session, settings, learner)
            post(client, f"/exchanges/{asked['id']}/complete", learner_headers)
            post(client, f"/exchanges/{asked['id']}/feedback", learner_headers, {"rating": 4})


def rows_of(answer: dict[str, Any], key: str | None) -> list[dict[str, Any]]:
    """The JSON's rows of one table, flattened as the tables name their columns."""
    if key is None:
        flat = {k: v for k, v in answer.items() if k not in ("as_of", "exchanges")}
        flat.update({f"exchanges_{state}": n for state, n in answer["exchanges"].items()})
        return [flat]
    if key == "lost":
        return [{"state": state, "count": n} for state, n in answer["lost"].items()]
    rows = []
    for row in answer[key]:
        flat = {k: v for k, v in row.items() if k != "mentor"}
        if "mentor" in row:
            flat.update({f"mentor_{k}": v for k, v in row["mentor"].items()})
        rows.append(flat)
    return rows


def csv_value(text: str, like: Any) -> Any:
    if like is None:
        return None if text == "" else text
    if isinstance(like, bool):
        return text == "true"
    if isinstance(like, int):
        return int(text)
    if isinstance(like, float):
        return pytest.approx(float(text))
    return text


@pytest.mark.parametrize("name", TABLES)
def test_csv_holds_the_same_figures_as_the_json(client, session, settings, coordinator, name):
    busy_world(session, settings, client)
    path, params, key = TABLES[name]
    answer = client.get(f"{API}{path}", params=params, headers=coordinator)
    assert answer.status_code == 200, answer.text
    response = client.get(f"{API}{path}", params={**params, "format": "csv"}, headers=coordinator)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
    expected = rows_of(answer.json(), key)
    got = list(csv.DictReader(io.StringIO(response.text)))
    assert len(got) == len(expected) > 0
    for csv_row, json_row in zip(got, expected, strict=True):
        assert set(csv_row) == set(json_row)
        assert {k: csv_value(v, json_row[k]) for k, v in csv_row.items()} == json_row


@pytest.mark.parametrize("name", TABLES)
def test_open_data_holds_the_same_figures_without_names(client, session, settings, name):
    """With a minimum cell of 1 only zeros (and what is computed from them) are suppressed:
    every other figure is the JSON's."""
    open_settings = settings.model_copy(update={"stats_min_cell": 1})
    client.app.state.settings = open_settings
    boss = make_volunteer(session, "boss", role="coordinator")
    headers = auth_headers(session, open_settings, boss)
    busy_world(session, open_settings, client)
    path, params, key = TABLES[name]
    expected = rows_of(client.get(f"{API}{path}", params=params, headers=headers).json(), key)
    response = client.get(f"{API}{path}", params={**params, "format": "tab"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TAB
    document = response.json()
    assert document["license"] == "CC0-1.0"
    assert document["description"]["en"]
    fields = [field["name"] for field in document["schema"]["fields"]]
    assert all(field["title"]["en"] for field in document["schema"]["fields"])
    assert not {"mentor_id", "mentor_username", "mentor_display_name", "exchange_id"} & set(fields)
    assert len(document["data"]) == len(expected)
    for cells, json_row in zip(document["data"], expected, strict=True):
        for field, cell in zip(fields, cells, strict=True):
            if cell is None:
                assert json_row[field] in (None, 0) or field in COMPUTED, (field, json_row)
            else:
                assert cell == json_row[field], (field, json_row)
        assert any(cell is not None for cells in document["data"] for cell in cells)


def test_open_data_suppresses_counts_below_the_minimum_cell(client, session, settings, coordinator):
    busy_world(session, settings, client)
    document = client.get(f"{API}/stats/skills?format=tab", headers=coordinator).json()
    fields = [field["name"] for field in document["schema"]["fields"]]
    lua = dict(zip(fields, next(r for r in document["data"] if r[0] == "lua"), strict=True))
    # 2 mentors, 8 - 2 = 6 open slots, 6 learners, 6 requests, 3 accepted, 1 completed.
    assert (lua["offered"], lua["open_slots"], lua["wanted"]) == (None, 6, 6)
    assert (lua["requested"], lua["accepted"], lua["completed"], lua["expired"]) == (
        6,
        None,
        None,
        None,
    )
    # The gap (6 - 6) is given: both its counts are shown; the median is not (3 answers).
    assert (lua["gap"], lua["median_response_hours"]) == (0, None)
    # A skill nobody offers or wants: zero is suppressed too, so 0 and 1 look the same.
    other = dict(zip(fields, next(r for r in document["data"] if r[0] != "lua"), strict=True))
    assert (other["offered"], other["wanted"], other["gap"]) == (None, None, None)


def test_accept_header_chooses_the_format_and_the_query_beats_it(client, coordinator):
    as_csv = client.get(f"{API}/stats/overview", headers={**coordinator, "Accept": "text/csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.text.startswith("volunteers,")
    as_tab = client.get(f"{API}/stats/overview", headers={**coordinator, "Accept": TAB})
    assert as_tab.headers["content-type"] == TAB
    preferring_json = client.get(
        f"{API}/stats/overview",
        headers={**coordinator, "Accept": "text/csv;q=0.5, application/json"},
    )
    assert preferring_json.headers["content-type"] == "application/json"
    overridden = client.get(
        f"{API}/stats/overview?format=json", headers={**coordinator, "Accept": "text/csv"}
    )
    assert overridden.headers["content-type"] == "application/json"
    assert "as_of" in overridden.json()


def test_every_answer_says_when_its_figures_were_taken(client, coordinator):
    for path in PATHS:
        response = client.get(f"{API}{path}", headers=coordinator)
        as_of = response.json()["as_of"]
        assert as_of.endswith("Z")
        stamp = parsedate_to_datetime(response.headers["last-modified"])
        assert abs(stamp.timestamp() - _parse(as_of).timestamp()) < 1


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- filters -----------------------------------------------------------------------------


def test_filters_reach_every_answer_and_combine(client, session, settings, coordinator):
    busy_world(session, settings, client)

    def overview(**params: str) -> dict[str, Any]:
        response = client.get(f"{API}/stats/overview", params=params, headers=coordinator)
        assert response.status_code == 200, response.text
        return response.json()

    everyone = overview()
    assert (everyone["volunteers"], sum(everyone["exchanges"].values())) == (9, 6)
    lac = overview(region="lac")
    # Three learners in lac, their three requests.
    assert (lac["volunteers"], lac["learners"], sum(lac["exchanges"].values())) == (3, 3, 3)
    assert overview(region="lac", area="technology")["learners"] == 3
    assert overview(region="lac", area="organizational")["learners"] == 0
    assert overview(language="pt-BR")["volunteers"] == 2
    assert overview(language="pt")["volunteers"] == 8
    assert sum(overview(until="2000-01-01")["exchanges"].values()) == 0
    regions = client.get(f"{API}/stats/regions?region=lac", headers=coordinator).json()
    assert [row["region"] for row in regions["items"]] == ["lac"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-05-02", "until": "2026-05-01"}, "until"),
        ({"since": "yesterday"}, "since"),
        ({"until": "0"}, "until"),
        ({"since": "2026-02-30"}, "since"),
        ({"region": "atlantis"}, "region"),
        ({"area": "lua"}, "area"),  # a skill, not a root
        ({"area": "no-such-skill"}, "area"),
        ({"language": "not a language"}, "language"),
        ({"format": "xlsx"}, "format"),
    ],
)
def test_a_bad_filter_is_a_clear_422(client, coordinator, params, field):
    response = client.get(f"{API}/stats/overview", params=params, headers=coordinator)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"]
    assert any(error["loc"][-1] == field for error in problem["errors"]), problem


def test_the_deactivated_leave_the_people_counts_but_not_the_history(
    client, session, settings, coordinator
):
    busy_world(session, settings, client)
    before = client.get(f"{API}/stats/overview", headers=coordinator).json()
    leaver = session.query(Volunteer).filter_by(username="learner5").one()
    response = client.delete(f"{API}/me", headers=auth_headers(session, settings, leaver))
    assert response.status_code == 204, response.text
    after = client.get(f"{API}/stats/overview", headers=coordinator).json()
    assert after["volunteers"] == before["volunteers"] - 1
    assert after["learners"] == before["learners"] - 1
    # Its request was cancelled, not forgotten.
    assert sum(after["exchanges"].values()) == sum(before["exchanges"].values())
    assert after["exchanges"]["cancelled"] == before["exchanges"]["cancelled"] + 1
