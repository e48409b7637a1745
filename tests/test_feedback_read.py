"""Feedback can be read: both sides', by the participants and coordinators only."""

from __future__ import annotations

import pytest

from tests.factories import auth_headers, make_volunteer

EXCHANGES = "/api/v1/exchanges"


@pytest.fixture
def people(session, settings):
    profiles = {
        "learner": {},
        "mentor": {"offers": [{"skill": "lua", "level": 3}]},
        "stranger": {},
        "coordinator": {"role": "coordinator"},
    }
    return {
        name: auth_headers(session, settings, make_volunteer(session, name, **profile))
        for name, profile in profiles.items()
    }


def completed_exchange(client, people, mentor_id):
    created = client.post(
        EXCHANGES, json={"mentor_id": mentor_id, "skill": "lua"}, headers=people["learner"]
    )
    assert created.status_code == 201, created.text
    exchange_id = created.json()["id"]
    for who, action in (("mentor", "accept"), ("learner", "complete")):
        moved = client.post(f"{EXCHANGES}/{exchange_id}/{action}", headers=people[who])
        assert moved.status_code == 200, moved.text
    return exchange_id


def give(client, headers, exchange_id, rating, comment=""):
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/feedback",
        json={"rating": rating, "comment": comment},
        headers=headers,
    )
    assert response.status_code == 201, response.text


def read_feedback(client, headers, exchange_id):
    return client.get(f"{EXCHANGES}/{exchange_id}/feedback", headers=headers)


def mentor_id(client, people):
    return client.get("/api/v1/me", headers=people["mentor"]).json()["id"]


def test_participants_and_coordinators_read_both_sides_oldest_first(client, people):
    exchange_id = completed_exchange(client, people, mentor_id(client, people))
    give(client, people["mentor"], exchange_id, 4, "asked good questions")
    give(client, people["learner"], exchange_id, 5, "clear and patient")

    for viewer in ("learner", "mentor", "coordinator"):
        response = read_feedback(client, people[viewer], exchange_id)

        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [
            {key: item[key] for key in ("author_role", "rating", "comment")} for item in items
        ] == [
            {"author_role": "mentor", "rating": 4, "comment": "asked good questions"},
            {"author_role": "learner", "rating": 5, "comment": "clear and patient"},
        ]
        assert all(item["created_at"].endswith("Z") for item in items)
        assert items[0]["created_at"] <= items[1]["created_at"]


def test_feedback_shows_as_soon_as_one_side_gave_it(client, people):
    exchange_id = completed_exchange(client, people, mentor_id(client, people))
    assert read_feedback(client, people["mentor"], exchange_id).json() == {"items": []}

    give(client, people["learner"], exchange_id, 3)

    items = read_feedback(client, people["mentor"], exchange_id).json()["items"]
    assert [(item["author_role"], item["rating"]) for item in items] == [("learner", 3)]


def test_feedback_of_an_exchange_is_hidden_from_strangers(client, people):
    exchange_id = completed_exchange(client, people, mentor_id(client, people))
    give(client, people["learner"], exchange_id, 5, "private words")

    hidden = read_feedback(client, people["stranger"], exchange_id)
    unknown = read_feedback(client, people["stranger"], exchange_id + 1000)

    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    assert "private words" not in hidden.text
    assert hidden.json()["detail"] == f"no exchange with id {exchange_id}"
    assert unknown.status_code == 404
    assert read_feedback(client, {}, exchange_id).status_code == 401
