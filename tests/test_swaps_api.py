"""Skill-swap rings over HTTP: volunteers who teach each other what the other wants."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from capex.models import Volunteer
from tests.factories import auth_headers, make_volunteer

API = "/api/v1"
ENGLISH = [{"code": "en", "level": 5}]


def swapper(session: Session, name: str, offers: str, wants: str, **profile: Any):
    return make_volunteer(
        session,
        name,
        languages=profile.pop("languages", ENGLISH),
        offers=[{"skill": offers, "level": 4}],
        wants=[{"skill": wants, "level": 2}],
        **profile,
    )


def rings(client: TestClient, headers: dict[str, str], path: str = "/me/swaps") -> Any:
    response = client.get(f"{API}{path}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def shape(ring: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (m["volunteer"]["username"], m["teaches"], m["learner"]["username"])
        for m in ring["members"]
    ]


def test_two_volunteers_who_teach_each_other_are_a_ring(client, session, settings):
    ana = swapper(session, "ana", "lua", "photography")
    bo = swapper(session, "bo", "photography", "lua")

    (ring,) = rings(client, auth_headers(session, settings, ana))["items"]
    assert shape(ring) == [("ana", "lua", "bo"), ("bo", "photography", "ana")]
    assert ring["score"] == pytest.approx(sum(m["score"] for m in ring["members"]), abs=1e-3)
    (same,) = rings(client, auth_headers(session, settings, bo))["items"]
    assert {tuple(step) for step in shape(same)} == {tuple(step) for step in shape(ring)}


def test_three_volunteers_close_a_ring_and_outsiders_see_none(client, session, settings):
    ana = swapper(session, "ana", "lua", "translation")
    swapper(session, "bo", "fundraising", "lua")
    swapper(session, "cy", "translation", "fundraising")
    # Speaks no language with anyone: no pair, no ring.
    loner = swapper(session, "loner", "lua", "fundraising", languages=[{"code": "fi", "level": 5}])
    # Wants nothing: cannot be in a ring.
    teacher = make_volunteer(
        session, "teacher", languages=ENGLISH, offers=[{"skill": "translation", "level": 4}]
    )

    (ring,) = rings(client, auth_headers(session, settings, ana))["items"]
    assert shape(ring) == [
        ("ana", "lua", "bo"),
        ("bo", "fundraising", "cy"),
        ("cy", "translation", "ana"),
    ]
    assert rings(client, auth_headers(session, settings, loner))["items"] == []
    assert rings(client, auth_headers(session, settings, teacher))["items"] == []
    only_pairs = client.get(
        f"{API}/me/swaps?max_length=2", headers=auth_headers(session, settings, ana)
    )
    assert only_pairs.json()["items"] == []


def test_a_full_mentor_swaps_with_nobody(client, session, settings):
    ana = swapper(session, "ana", "lua", "photography", mentor_capacity=0)
    swapper(session, "bo", "photography", "lua")
    assert rings(client, auth_headers(session, settings, ana))["items"] == []


def test_coordinators_get_disjoint_rings_with_the_greatest_total(client, session, settings):
    # ana is in a ring of two with bo and one of three with cy and dee: only one of them can
    # be chosen, and the ring of three serves three learners.
    swapper(session, "ana", "lua", "photography")
    swapper(session, "bo", "photography", "lua")
    make_volunteer(
        session,
        "cy",
        languages=ENGLISH,
        offers=[{"skill": "photography", "level": 4}],
        wants=[{"skill": "fundraising", "level": 2}],
    )
    make_volunteer(
        session,
        "dee",
        languages=ENGLISH,
        offers=[{"skill": "fundraising", "level": 4}],
        wants=[{"skill": "lua", "level": 2}],
    )
    ana = session.query(Volunteer).filter_by(username="ana").one()
    # ana's own list has both rings, best first.
    hers = rings(client, auth_headers(session, settings, ana))["items"]
    assert sorted(len(ring["members"]) for ring in hers) == [2, 3]
    boss = make_volunteer(session, "boss", role="coordinator")
    everyone = rings(client, auth_headers(session, settings, boss), "/swaps")

    assert everyone["optimal"] is True
    members = [m["volunteer"]["username"] for ring in everyone["items"] for m in ring["members"]]
    assert len(members) == len(set(members))  # disjoint
    assert everyone["total_score"] == pytest.approx(
        sum(ring["score"] for ring in everyone["items"]), abs=1e-3
    )
    assert everyone["rings_found"] >= 2
    assert everyone["upper_bound"] >= everyone["total_score"] - 1e-6
    # The two rings share ana: the better one alone is the optimum.
    (chosen,) = everyone["items"]
    assert chosen["score"] == pytest.approx(max(ring["score"] for ring in hers), abs=1e-3)
    assert chosen == hers[0]


def test_all_rings_are_for_coordinators(client, session, settings):
    someone = auth_headers(session, settings, make_volunteer(session, "someone"))
    assert client.get(f"{API}/swaps", headers=someone).status_code == 403
    assert client.get(f"{API}/swaps").status_code == 401
    assert client.get(f"{API}/me/swaps").status_code == 401
    assert client.get(f"{API}/me/swaps?max_length=4", headers=someone).status_code == 422
