"""Matching rounds over HTTP: a coordinator runs one for a cohort, reviews it, publishes it,
and the mentors find the requests in their inbox."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from capex.config import Settings
from tests.factories import auth_headers, make_volunteer

API = "/api/v1"
ENGLISH = [{"code": "en", "level": 5}]


@pytest.fixture
def coordinator(session: Session, settings: Settings) -> dict[str, str]:
    boss = make_volunteer(session, "boss", role="coordinator")
    return auth_headers(session, settings, boss)


def trap(session: Session) -> dict[str, Any]:
    """The classic trap: taking the best pair first places one learner, the optimum two.

    ``ana`` wants Lua at level 4: ``max`` (Lua 4) fits her best, ``mia`` (Lua 3) less so.
    ``bo`` wants photography, which only ``max`` offers. Each mentor has one slot.
    """
    people = {
        "max": make_volunteer(
            session,
            "max",
            languages=ENGLISH,
            mentor_capacity=1,
            offers=[{"skill": "lua", "level": 4}, {"skill": "photography", "level": 4}],
        ),
        "mia": make_volunteer(
            session,
            "mia",
            languages=ENGLISH,
            mentor_capacity=1,
            offers=[{"skill": "lua", "level": 3}],
        ),
        "ana": make_volunteer(
            session, "ana", languages=ENGLISH, wants=[{"skill": "lua", "level": 4}]
        ),
        "bo": make_volunteer(
            session, "bo", languages=ENGLISH, wants=[{"skill": "photography", "level": 2}]
        ),
    }
    return people


def run(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post(f"{API}/rounds", json={"name": "2027 cohort", **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def pairs_of(round_: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (p["learner"]["username"], p["mentor"]["username"], p["skill"]) for p in round_["pairs"]
    }


def test_rounds_are_for_coordinators_only(client, session, settings):
    assert client.post(f"{API}/rounds", json={"name": "x"}).status_code == 401
    someone = auth_headers(session, settings, make_volunteer(session, "someone"))
    for response in (
        client.post(f"{API}/rounds", json={"name": "x"}, headers=someone),
        client.get(f"{API}/rounds", headers=someone),
        client.get(f"{API}/rounds/1", headers=someone),
    ):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
    refused = client.post(f"{API}/rounds/1/publish", headers=someone)
    assert refused.status_code == 403


def test_an_optimal_round_avoids_the_greedy_trap(client, session, coordinator):
    trap(session)
    optimal = run(client, coordinator, mode="optimal")

    assert pairs_of(optimal) == {("ana", "mia", "lua"), ("bo", "max", "photography")}
    assert optimal["status"] == "draft"
    assert optimal["unmatched_learners"] == []
    metrics = optimal["metrics"]
    assert (metrics["learners"], metrics["matched"]) == (2, 2)
    assert metrics["total_score"] == pytest.approx(sum(p["score"] for p in optimal["pairs"]))
    # Every pair comes with the engine's reasons, as /me/matches gives them.
    for pair in optimal["pairs"]:
        assert pair["reasons"]["shared_languages"] == ["en"]
        assert pair["exchange_id"] is None


def test_a_stable_round_keeps_the_pair_both_prefer(client, session, coordinator):
    trap(session)
    stable = run(client, coordinator, mode="stable")

    # ana and max would both rather be together than with anyone else: stable keeps them,
    # and bo is left without a mentor.
    assert pairs_of(stable) == {("ana", "max", "lua")}
    assert [ref["username"] for ref in stable["unmatched_learners"]] == ["bo"]
    assert stable["metrics"]["blocking_pairs"] == 0
    optimal = run(client, coordinator, mode="optimal")
    assert optimal["metrics"]["total_score"] > stable["metrics"]["total_score"]


def test_a_round_for_one_skill_and_named_people(client, session, coordinator):
    people = trap(session)
    photography = run(client, coordinator, skills=["photography"])
    assert pairs_of(photography) == {("bo", "max", "photography")}
    assert photography["metrics"]["learners"] == 1

    only_mia = run(client, coordinator, mentors=[people["mia"].id])
    assert pairs_of(only_mia) == {("ana", "mia", "lua")}
    # bo wants what mia does not teach: in the cohort, unmatched.
    assert [ref["username"] for ref in only_mia["unmatched_learners"]] == ["bo"]

    strict = run(client, coordinator, min_score=1.0)
    assert all(pair["score"] >= 1.0 for pair in strict["pairs"])


def test_a_round_is_kept_and_listed_newest_first(client, session, coordinator):
    trap(session)
    first = run(client, coordinator, mode="stable")
    second = run(client, coordinator, name="second")

    listed = client.get(f"{API}/rounds", headers=coordinator).json()
    assert [item["id"] for item in listed["items"]] == [second["id"], first["id"]]
    again = client.get(f"{API}/rounds/{first['id']}", headers=coordinator).json()
    assert again == first
    assert client.get(f"{API}/rounds/999999", headers=coordinator).status_code == 404


def test_a_round_is_a_snapshot_and_publishing_checks_again(client, session, settings, coordinator):
    people = trap(session)
    drafted = run(client, coordinator)
    # After the round ran, mia fills her only slot with someone else.
    other = make_volunteer(
        session, "other", languages=ENGLISH, wants=[{"skill": "lua", "level": 2}]
    )
    other_headers = auth_headers(session, settings, other)
    asked = client.post(
        f"{API}/exchanges",
        json={"mentor_id": people["mia"].id, "skill": "lua"},
        headers=other_headers,
    )
    assert asked.status_code == 201, asked.text
    mia = auth_headers(session, settings, people["mia"])
    accepted = client.post(f"{API}/exchanges/{asked.json()['id']}/accept", headers=mia)
    assert accepted.status_code == 200, accepted.text
    # The draft has not moved.
    assert client.get(f"{API}/rounds/{drafted['id']}", headers=coordinator).json() == drafted

    published = client.post(f"{API}/rounds/{drafted['id']}/publish", headers=coordinator)
    assert published.status_code == 200, published.text
    body = published.json()
    assert (body["published"], body["not_published"]) == (1, 1)
    by_learner = {p["learner"]["username"]: p for p in body["round"]["pairs"]}
    assert by_learner["ana"]["exchange_id"] is None
    assert "no open slot" in by_learner["ana"]["not_published"]
    assert by_learner["bo"]["exchange_id"] is not None
    assert body["round"]["status"] == "published"

    # max finds bo's request in the inbox, made by the round.
    inbox = client.get(
        f"{API}/me/notifications", headers=auth_headers(session, settings, people["max"])
    ).json()
    assert [item["exchange_id"] for item in inbox["items"]] == [by_learner["bo"]["exchange_id"]]
    exchange = client.get(
        f"{API}/exchanges/{by_learner['bo']['exchange_id']}",
        headers=auth_headers(session, settings, people["bo"]),
    ).json()
    assert (exchange["state"], exchange["origin"]) == ("requested", "round")

    twice = client.post(f"{API}/rounds/{drafted['id']}/publish", headers=coordinator)
    assert twice.status_code == 409
    assert "already published" in twice.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"skills": ["no-such-skill"]}, "skills"),
        ({"learners": [987654]}, "learners"),
        ({"mentors": [987654]}, "mentors"),
        ({"min_score": 1.5}, "min_score"),
        ({"mode": "greedy"}, "mode"),
        ({"max_per_learner": 0}, "max_per_learner"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_round_is_a_clear_422(client, coordinator, body, field):
    response = client.post(f"{API}/rounds", json={"name": "x", **body}, headers=coordinator)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(error["loc"][-1] == field for error in response.json()["errors"])


@pytest.mark.parametrize(
    "body",
    [
        {"learners": []},
        {"mentors": []},
        {"skills": []},
        {"min_score": 1.0, "mode": "stable"},
        {"max_per_learner": 3},
        {"max_per_learner": 2, "mode": "stable"},
    ],
)
def test_an_empty_or_edge_cohort_is_a_round_with_what_it_can(client, session, coordinator, body):
    trap(session)
    round_ = run(client, coordinator, **body)
    pairs = round_["pairs"]
    per_mentor: dict[str, int] = {}
    for pair in pairs:
        per_mentor[pair["mentor"]["username"]] = per_mentor.get(pair["mentor"]["username"], 0) + 1
    assert all(count <= 1 for count in per_mentor.values())  # one slot each
    assert round_["metrics"]["matched"] == len({p["learner"]["id"] for p in pairs})
    if body.get("learners") == [] or body.get("mentors") == [] or body.get("skills") == []:
        assert pairs == []


def test_a_learner_may_get_a_mentor_per_wanted_skill(client, session, coordinator):
    trap(session)
    both = make_volunteer(
        session,
        "both",
        languages=ENGLISH,
        wants=[{"skill": "lua", "level": 3}, {"skill": "photography", "level": 2}],
    )
    round_ = run(client, coordinator, learners=[both.id], max_per_learner=2)
    assert sorted((p["mentor"]["username"], p["skill"]) for p in round_["pairs"]) == [
        ("max", "photography"),
        ("mia", "lua"),
    ]
