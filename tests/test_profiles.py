"""Profiles: replace, patch, and every validation rule of API.md."""

from __future__ import annotations

import pytest

from tests.factories import auth_headers, make_volunteer, problem_fields

PROFILE = "/api/v1/me/profile"

FULL = {
    "display_name": "Amaka O.",
    "bio": "Wikidata and Lua, happy to help.",
    "timezone": "Africa/Lagos",
    "region": "ssa",
    "languages": [{"code": "en", "level": 4}, {"code": "yo", "level": 5}],
    "availability": [
        {"weekday": 0, "start": "18:00", "end": "20:30"},
        {"weekday": 5, "start": "10:00", "end": "24:00"},
    ],
    "offers": [{"skill": "wikidata-editing", "level": 3, "note": "queries too"}],
    "wants": [{"skill": "lua", "level": 2}],
    "mentor_capacity": 3,
}


@pytest.fixture
def me(session, settings):
    volunteer = make_volunteer(session, "amaka")
    return auth_headers(session, settings, volunteer)


def test_put_profile_stores_and_returns_every_field(client, me):
    response = client.put(PROFILE, json=FULL, headers=me)
    assert response.status_code == 200
    body = response.json()
    for field in ("display_name", "bio", "timezone", "region", "languages", "mentor_capacity"):
        assert body[field] == FULL[field]
    assert body["availability"] == FULL["availability"]
    assert body["offers"] == [
        {
            "skill": "wikidata-editing",
            "name": body["offers"][0]["name"],
            "level": 3,
            "note": "queries too",
        }
    ]
    assert body["wants"][0]["skill"] == "lua"
    assert body["open_slots"] == 3
    assert client.get("/api/v1/me", headers=me).json() == body


def test_put_resets_fields_left_out(client, me):
    client.put(PROFILE, json=FULL, headers=me)
    body = client.put(PROFILE, json={"bio": "only a bio"}, headers=me).json()
    assert body["bio"] == "only a bio"
    assert body["offers"] == []
    assert body["languages"] == []
    assert body["mentor_capacity"] == 2
    assert body["timezone"] is None
    assert body["display_name"] == "Amaka O."  # the name is kept, never blanked


def test_patch_changes_only_given_fields(client, me):
    client.put(PROFILE, json=FULL, headers=me)
    body = client.patch(PROFILE, json={"mentor_capacity": 5, "wants": []}, headers=me).json()
    assert body["mentor_capacity"] == 5
    assert body["wants"] == []
    assert body["offers"][0]["skill"] == "wikidata-editing"
    assert body["availability"] == FULL["availability"]


def test_language_codes_are_standardized(client, me):
    body = client.patch(
        PROFILE,
        json={"languages": [{"code": "PT-br", "level": 5}, {"code": "i-klingon", "level": 1}]},
        headers=me,
    ).json()
    assert [lang["code"] for lang in body["languages"]] == ["pt-BR", "tlh"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "body.timezone"),
        ({"timezone": "UTC+3"}, "body.timezone"),
        ({"region": "atlantis"}, "body.region"),
        ({"languages": [{"code": "xx", "level": 3}]}, "body.languages.0.code"),
        ({"languages": [{"code": "english", "level": 3}]}, "body.languages.0.code"),
        ({"languages": [{"code": "en", "level": 6}]}, "body.languages.0.level"),
        ({"languages": [{"code": "en", "level": 3}, {"code": "EN", "level": 2}]}, "body.languages"),
        (
            {"availability": [{"weekday": 7, "start": "10:00", "end": "11:00"}]},
            "body.availability.0.weekday",
        ),
        (
            {"availability": [{"weekday": 1, "start": "25:00", "end": "23:00"}]},
            "body.availability.0.start",
        ),
        (
            {"availability": [{"weekday": 1, "start": "10:10", "end": "11:00"}]},
            "body.availability.0.start",
        ),
        (
            {"availability": [{"weekday": 1, "start": "12:00", "end": "11:00"}]},
            "body.availability.0",
        ),
        (
            {"availability": [{"weekday": 1, "start": "24:00", "end": "24:00"}]},
            "body.availability.0.start",
        ),
        (
            {
                "availability": [
                    {"weekday": 1, "start": "10:00", "end": "12:00"},
                    {"weekday": 1, "start": "11:00", "end": "13:00"},
                ]
            },
            "body.availability",
        ),
        ({"offers": [{"skill": "lua", "level": 5}]}, "body.offers.0.level"),
        ({"offers": [{"skill": "lua", "level": 2}, {"skill": "lua", "level": 3}]}, "body.offers"),
        ({"wants": [{"skill": "basket-weaving", "level": 2}]}, "body.wants.0.skill"),
        ({"wants": [{"skill": "Not A Slug", "level": 2}]}, "body.wants.0.skill"),
        ({"wants": [{"skill": "lua", "level": 0}]}, "body.wants.0.level"),
        ({"bio": "x" * 2001}, "body.bio"),
        ({"mentor_capacity": 21}, "body.mentor_capacity"),
        ({"mentor_capacity": -1}, "body.mentor_capacity"),
        ({"display_name": ""}, "body.display_name"),
        ({"bio": None}, "body.bio"),
        ({"favourite_colour": "green"}, "body.favourite_colour"),
    ],
)
def test_bad_field_is_422_naming_it_and_changes_nothing(client, me, patch, field):
    before = client.put(PROFILE, json=FULL, headers=me).json()
    response = client.patch(PROFILE, json={"mentor_capacity": 7, **patch}, headers=me)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert problem_fields(response) == {field}
    assert client.get("/api/v1/me", headers=me).json() == before


def test_one_422_names_every_bad_field_including_unknown_skills(client, me):
    response = client.put(
        PROFILE,
        json={
            "timezone": "Nowhere/Land",
            "bio": "y" * 2500,
            "offers": [{"skill": "lua", "level": 2}, {"skill": "underwater-editing", "level": 2}],
            "wants": [{"skill": "no-such-skill", "level": 1}],
        },
        headers=me,
    )
    assert response.status_code == 422
    assert problem_fields(response) == {
        "body.timezone",
        "body.bio",
        "body.offers.1.skill",
        "body.wants.0.skill",
    }
    assert "see errors" in response.json()["detail"]


def test_availability_needs_a_timezone(client, me):
    slot = [{"weekday": 2, "start": "09:00", "end": "10:00"}]
    response = client.put(PROFILE, json={"availability": slot}, headers=me)
    assert response.status_code == 422
    assert "timezone" in response.json()["detail"]
    # PATCH checks the stored time zone too.
    patched = client.patch(PROFILE, json={"availability": slot}, headers=me)
    assert patched.status_code == 422
    assert problem_fields(patched) == {"body.timezone"}


def test_slot_may_end_at_midnight_and_uses_quarter_hours(client, me):
    body = client.patch(
        PROFILE,
        json={
            "timezone": "Asia/Kathmandu",
            "availability": [{"weekday": 6, "start": "23:45", "end": "24:00"}],
        },
        headers=me,
    ).json()
    assert body["availability"] == [{"weekday": 6, "start": "23:45", "end": "24:00"}]


def test_body_must_be_an_object(client, me):
    response = client.patch(PROFILE, json=["not", "an", "object"], headers=me)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_public_profile_never_shows_the_email(client, session, settings, me):
    client.put(PROFILE, json=FULL, headers=me)
    other = make_volunteer(session, "viewer")
    viewer = auth_headers(session, settings, other)
    me_id = client.get("/api/v1/me", headers=me).json()["id"]
    public = client.get(f"/api/v1/volunteers/{me_id}", headers=viewer).json()
    assert "email" not in public
    assert "role" not in public
    assert public["open_slots"] == 3
    assert public["offers"][0]["skill"] == "wikidata-editing"
