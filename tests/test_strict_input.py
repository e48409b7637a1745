"""What a request may hold, the same on both databases: strict numbers, no control
characters, real time zones, ids in the published range, bounded 422s, explicit nulls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from capex.schemas.common import MAX_ID, encode_cursor
from tests.factories import auth_headers, make_volunteer, problem_fields

API = "/api/v1"
PROFILE = f"{API}/me/profile"
EXCHANGES = f"{API}/exchanges"
SKILLS = f"{API}/skills"
PROBLEM_JSON = "application/problem+json"
BEYOND_INT4 = 2**31


@pytest.fixture
def me(session, settings) -> dict[str, str]:
    return auth_headers(session, settings, make_volunteer(session, "strictme"))


@pytest.fixture
def coordinator(session, settings) -> dict[str, str]:
    return auth_headers(
        session, settings, make_volunteer(session, "strictcoord", role="coordinator")
    )


@pytest.fixture
def pair(session, settings) -> tuple[tuple[int, dict[str, str]], tuple[int, dict[str, str]]]:
    learner = make_volunteer(session, "strictlearner")
    mentor = make_volunteer(session, "strictmentor", offers=[{"skill": "lua", "level": 3}])
    return (
        (learner.id, auth_headers(session, settings, learner)),
        (mentor.id, auth_headers(session, settings, mentor)),
    )


def unprocessable(response: Any, *fields: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert problem_fields(response) == set(fields)


def completed_exchange(client, pair) -> int:
    (_, learner), (mentor_id, mentor) = pair
    created = client.post(EXCHANGES, json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner)
    assert created.status_code == 201, created.text
    exchange_id = created.json()["id"]
    for headers, action in ((mentor, "accept"), (learner, "complete")):
        response = client.post(f"{EXCHANGES}/{exchange_id}/{action}", headers=headers)
        assert response.status_code == 200, response.text
    return int(exchange_id)


# Strict numbers


@pytest.mark.parametrize("rating", [True, False, "5", 4.0])
def test_feedback_rating_must_be_a_json_integer(client, pair, rating):
    exchange_id = completed_exchange(client, pair)
    (_, learner), _ = pair
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/feedback", json={"rating": rating}, headers=learner
    )
    unprocessable(response, "body.rating")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"mentor_capacity": False}, "body.mentor_capacity"),
        ({"mentor_capacity": "3"}, "body.mentor_capacity"),
        ({"offers": [{"skill": "lua", "level": True}]}, "body.offers.0.level"),
        ({"languages": [{"code": "en", "level": "5"}]}, "body.languages.0.level"),
        (
            {
                "timezone": "UTC",
                "availability": [{"weekday": False, "start": "09:00", "end": "10:00"}],
            },
            "body.availability.0.weekday",
        ),
    ],
)
def test_profile_numbers_must_be_json_integers(client, me, patch, field):
    unprocessable(client.patch(PROFILE, json=patch, headers=me), field)
    unprocessable(client.put(PROFILE, json=patch, headers=me), field)
    assert client.get(f"{API}/me", headers=me).json()["mentor_capacity"] == 2


def test_mentor_id_true_is_not_volunteer_one(client, pair):
    (_, learner), _ = pair
    response = client.post(EXCHANGES, json={"mentor_id": True, "skill": "lua"}, headers=learner)
    unprocessable(response, "body.mentor_id")


def test_notification_ids_must_be_json_integers(client, me):
    response = client.post(f"{API}/me/notifications/read", json={"ids": [True]}, headers=me)
    unprocessable(response, "body.ids.0")


def test_query_integers_still_parse_from_the_query_string(client, me):
    response = client.get(f"{API}/volunteers", params={"limit": "5"}, headers=me)
    assert response.status_code == 200, response.text
    assert client.get(SKILLS, params={"limit": "5"}).json()["items"].__len__() == 5


# Control characters


@pytest.mark.parametrize("character", ["\x00", "\r", "\x1b", "\x7f", "\x85", "\ud800"])
def test_profile_text_with_a_control_character_is_422_naming_the_field(client, me, character):
    body = {
        "display_name": f"Ann{character}",
        "bio": f"bio{character}text",
        "offers": [{"skill": "lua", "level": 2, "note": f"a{character}b"}],
    }
    # Escaped as \uXXXX, as a JSON client may send a lone surrogate.
    response = client.patch(
        PROFILE,
        content=json.dumps(body),
        headers={**me, "Content-Type": "application/json"},
    )
    unprocessable(response, "body.display_name", "body.bio", "body.offers.0.note")
    assert "control character" in response.json()["errors"][0]["msg"]
    assert client.get(f"{API}/me", headers=me).json()["bio"] == ""


def test_tab_and_newline_are_text(client, me):
    response = client.patch(PROFILE, json={"bio": "one\ttwo\nthree"}, headers=me)
    assert response.status_code == 200, response.text
    assert response.json()["bio"] == "one\ttwo\nthree"


def test_exchange_texts_with_nul_are_422(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    response = client.post(
        EXCHANGES,
        json={"mentor_id": mentor_id, "skill": "lua", "message": "hi\x00"},
        headers=learner,
    )
    unprocessable(response, "body.message")
    created = client.post(EXCHANGES, json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner)
    exchange_id = created.json()["id"]
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/decline", json={"reason": "no\x00"}, headers=mentor
    )
    unprocessable(response, "body.reason")
    assert client.get(f"{EXCHANGES}/{exchange_id}", headers=mentor).json()["state"] == "requested"


def test_feedback_comment_with_nul_is_422(client, pair):
    exchange_id = completed_exchange(client, pair)
    (_, learner), _ = pair
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/feedback",
        json={"rating": 5, "comment": "great\x00"},
        headers=learner,
    )
    unprocessable(response, "body.comment")


def test_skill_texts_with_nul_are_422(client, coordinator):
    body = {
        "id": "heritage",
        "name": "Heri\x00tage",
        "description": "old\x00",
        "aliases": ["fine", "bad\x00"],
    }
    response = client.post(SKILLS, json=body, headers=coordinator)
    unprocessable(response, "body.name", "body.description", "body.aliases")
    assert response.json()["errors"][-1]["msg"].startswith("item 1 ")
    response = client.patch(f"{SKILLS}/lua", json={"name": "Lua\x00"}, headers=coordinator)
    unprocessable(response, "body.name")


def test_register_with_nul_is_422(client):
    body = {
        "username": "nulname",
        "email": "nul@example.org",
        "password": "a long password\x00",
        "display_name": "Nul\x00",
    }
    unprocessable(
        client.post(f"{API}/auth/register", json=body), "body.password", "body.display_name"
    )


def test_sign_in_form_with_nul_is_422(client):
    response = client.post(
        f"{API}/auth/token", data={"username": "someone\x00", "password": "whatever-long"}
    )
    unprocessable(response, "body.username")


@pytest.mark.parametrize("path", [f"{API}/volunteers", SKILLS])
def test_search_with_nul_is_422_not_everything(client, me, path):
    response = client.get(path, params={"q": "wiki\x00data"}, headers=me)
    unprocessable(response, "query.q")


def test_skill_filters_and_path_with_nul_are_422(client, coordinator):
    unprocessable(client.get(SKILLS, params={"parent": "tech\x00"}), "query.parent")
    unprocessable(client.get(f"{SKILLS}/lua%00"), "path.skill_id")
    response = client.patch(f"{SKILLS}/lua%00", json={"name": "Lua"}, headers=coordinator)
    unprocessable(response, "path.skill_id")


def test_cursor_holding_a_nul_is_422(client):
    unprocessable(
        client.get(SKILLS, params={"cursor": encode_cursor({"id": "a\x00"})}), "query.cursor"
    )


def test_idempotency_key_with_a_control_character_is_422(client, pair):
    (_, learner), (mentor_id, _) = pair
    response = client.post(
        EXCHANGES,
        json={"mentor_id": mentor_id, "skill": "lua"},
        # An obs-text byte, which HTTP lets through: Starlette reads it as U+0085.
        headers={**learner, "Idempotency-Key": b"key\x85"},
    )
    unprocessable(response, "header.idempotency-key")


# Time zones


@pytest.mark.parametrize("zone", ["posixrules", "Factory", "right/UTC", "posix/UTC", "localtime"])
def test_tz_database_files_that_are_not_zones_are_422(client, me, zone):
    unprocessable(client.patch(PROFILE, json={"timezone": zone}, headers=me), "body.timezone")


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Africa/Lagos", "US/Eastern"])
def test_iana_zones_and_their_links_are_accepted(client, me, zone):
    response = client.patch(PROFILE, json={"timezone": zone}, headers=me)
    assert response.status_code == 200, response.text
    assert response.json()["timezone"] == zone


# Ids in the published range


@pytest.mark.parametrize("volunteer_or_exchange", ["volunteers", "exchanges"])
@pytest.mark.parametrize("unknown_id", [BEYOND_INT4, MAX_ID])
def test_unknown_large_id_is_404_on_both_databases(client, me, volunteer_or_exchange, unknown_id):
    response = client.get(f"{API}/{volunteer_or_exchange}/{unknown_id}", headers=me)
    assert response.status_code == 404, response.text


def test_id_past_the_published_maximum_is_422(client, me):
    unprocessable(client.get(f"{EXCHANGES}/{MAX_ID + 1}", headers=me), "path.exchange_id")


def test_request_to_a_large_unknown_mentor_is_404(client, me):
    response = client.post(EXCHANGES, json={"mentor_id": BEYOND_INT4, "skill": "lua"}, headers=me)
    assert response.status_code == 404, response.text


def test_marking_large_unknown_notifications_read_is_fine(client, me):
    response = client.post(
        f"{API}/me/notifications/read", json={"ids": [BEYOND_INT4, MAX_ID]}, headers=me
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"unread_count": 0}


def test_cursors_with_large_ids_are_pages(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    client.post(EXCHANGES, json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner)
    after_all = {"cursor": encode_cursor({"id": BEYOND_INT4})}
    response = client.get(f"{API}/volunteers", params=after_all, headers=mentor)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []
    # Newest first: everything is before the largest id.
    before_all = {"cursor": encode_cursor({"before": MAX_ID})}
    for path in (EXCHANGES, f"{API}/me/notifications"):
        response = client.get(path, params=before_all, headers=mentor)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 1


# Bounded 422s


def test_a_422_lists_the_first_50_errors_and_counts_them_all(client):
    body = {f"extra{n}": n for n in range(300)}
    response = client.post(f"{API}/auth/register", json=body)
    assert response.status_code == 422
    problem = response.json()
    # 300 unknown keys and the 3 required fields missing.
    assert problem["error_count"] == 303
    assert len(problem["errors"]) == 50
    assert problem["detail"].startswith("303 problems in the request; errors lists the first 50")


def test_a_small_422_counts_its_errors_too(client):
    response = client.post(f"{API}/auth/register", json={"username": "ab"})
    problem = response.json()
    assert problem["error_count"] == len(problem["errors"]) == 3


# Nulls in PATCH /skills


@pytest.mark.parametrize("field", ["name", "description", "aliases"])
def test_patch_skill_null_for_a_required_field_is_422(client, coordinator, field):
    before = client.get(f"{SKILLS}/lua").json()
    response = client.patch(f"{SKILLS}/lua", json={field: None}, headers=coordinator)
    unprocessable(response, f"body.{field}")
    assert client.get(f"{SKILLS}/lua").json() == before


def roots(client) -> list[str]:
    return [item["id"] for item in client.get(SKILLS, params={"parent": ""}).json()["items"]]


def test_patch_skill_null_parent_is_422_and_makes_no_root(client, coordinator):
    before = roots(client)
    response = client.patch(f"{SKILLS}/lua", json={"parent": None}, headers=coordinator)
    unprocessable(response, "body.parent")
    assert '"root": true' in response.json()["errors"][0]["msg"]
    assert roots(client) == before
    assert client.get(f"{SKILLS}/lua").json()["parent"] == "templates-modules"


def test_patch_skill_root_true_makes_a_root_area(client, coordinator):
    response = client.patch(f"{SKILLS}/lua", json={"root": True}, headers=coordinator)
    assert response.status_code == 200, response.text
    assert response.json()["parent"] is None
    assert "lua" in roots(client)


def test_patch_skill_root_with_a_parent_or_false_is_422(client, coordinator):
    both = client.patch(
        f"{SKILLS}/lua", json={"root": True, "parent": "programming"}, headers=coordinator
    )
    assert both.status_code == 422, both.text
    unprocessable(
        client.patch(f"{SKILLS}/lua", json={"root": False}, headers=coordinator), "body.root"
    )
    assert client.get(f"{SKILLS}/lua").json()["parent"] == "templates-modules"


# The published bounds


def test_openapi_publishes_id_bounds_as_the_integers_the_server_takes(client):
    document = client.get("/openapi.json").json()
    mentor_id = document["components"]["schemas"]["ExchangeCreate"]["properties"]["mentor_id"]
    assert mentor_id["maximum"] == MAX_ID
    assert isinstance(mentor_id["maximum"], int)
    path = document["paths"][f"{API}/exchanges/{{exchange_id}}"]["get"]["parameters"][0]
    assert path["schema"]["maximum"] == MAX_ID
