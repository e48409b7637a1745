"""Rounds and swaps against a live ``capex serve --workers 2``, in the order people act.

The servers are up and their matching indexes warm before the cohort exists: volunteers
register and save their profiles, and at once a coordinator runs a round, on whichever
worker answers; the round must hold everyone who saved, publishing must reach the
mentors' inboxes, and two volunteers who just saved matching profiles see their swap.
"""

from __future__ import annotations

import httpx
import pytest

from tests.live import live_server, register, register_coordinator

pytestmark = pytest.mark.slow

ENGLISH = [{"code": "en", "level": 5}]


def test_a_round_right_after_the_cohort_saved_holds_everyone(live_database, tmp_path):
    with (
        live_server(live_database, workers=2, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        coordinator = register_coordinator(client, live_database, "coordinator")
        # Warm both workers' indexes before the cohort exists.
        for _ in range(4):
            warm = httpx.post(
                f"{base}/api/v1/rounds", json={"name": "warm-up"}, headers=coordinator, timeout=30
            )
            assert warm.status_code == 201, warm.text

        mentors = {
            name: register(
                client,
                name,
                {
                    "languages": ENGLISH,
                    "mentor_capacity": 2,
                    "offers": [{"skill": "lua", "level": 4}],
                },
            )
            for name in ("mentor-a", "mentor-b")
        }
        for n in range(4):
            register(
                client,
                f"learner{n}",
                {"languages": ENGLISH, "wants": [{"skill": "lua", "level": 3}]},
            )

        # At once, on a new connection (either worker): everyone just saved is in it.
        ran = httpx.post(
            f"{base}/api/v1/rounds",
            json={"name": "2027 Lua cohort", "skills": ["lua"]},
            headers=coordinator,
            timeout=30,
        )
        assert ran.status_code == 201, ran.text
        round_ = ran.json()
        assert round_["metrics"]["learners"] == 4
        assert round_["metrics"]["matched"] == 4
        loads: dict[str, int] = {}
        for pair in round_["pairs"]:
            loads[pair["mentor"]["username"]] = loads.get(pair["mentor"]["username"], 0) + 1
        assert loads == {"mentor-a": 2, "mentor-b": 2}

        published = httpx.post(
            f"{base}/api/v1/rounds/{round_['id']}/publish", headers=coordinator, timeout=30
        )
        assert published.status_code == 200, published.text
        assert published.json()["published"] == 4
        for name, headers in mentors.items():
            inbox = httpx.get(f"{base}/api/v1/me/notifications", headers=headers, timeout=30)
            assert inbox.status_code == 200, inbox.text
            assert len(inbox.json()["items"]) == 2, (name, inbox.json())


def test_two_volunteers_see_their_swap_as_soon_as_they_saved(live_database, tmp_path):
    with (
        live_server(live_database, workers=2, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        ana = register(
            client,
            "ana",
            {
                "languages": ENGLISH,
                "offers": [{"skill": "lua", "level": 4}],
                "wants": [{"skill": "photography", "level": 2}],
            },
        )
        assert httpx.get(f"{base}/api/v1/me/swaps", headers=ana).json()["items"] == []
        register(
            client,
            "bob",
            {
                "languages": ENGLISH,
                "offers": [{"skill": "photography", "level": 4}],
                "wants": [{"skill": "lua", "level": 2}],
            },
        )
        # Right away, on both workers.
        for _ in range(6):
            response = httpx.get(f"{base}/api/v1/me/swaps", headers=ana, timeout=30)
            assert response.status_code == 200, response.text
            (ring,) = response.json()["items"]
            assert [m["learner"]["username"] for m in ring["members"]] == ["bob", "ana"]
