"""Matches against a live ``capex serve --workers 2``, in the order people act.

The servers are up and their indexes warm before anything changes: a coordinator adds a
skill while they run, volunteers put it in their profiles and look at once; a volunteer
saves a profile and opens the matches right away, on whichever worker answers.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.live import (
    add_skill,
    live_server,
    matched_usernames,
    register,
    register_coordinator,
)

pytestmark = pytest.mark.slow

EVENINGS = [{"weekday": day, "start": "18:00", "end": "21:00"} for day in range(5)]
ENGLISH = [{"code": "en", "level": 5}]
WORKERS = 2


def _answers_from_every_worker(base, headers, seconds=30.0):
    """Ask until each worker has answered at least twice; every answer, in order."""
    answers: list[tuple[str, list[str]]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append(matched_usernames(base, headers))
        workers = [worker for worker, _ in answers]
        if len(set(workers)) == WORKERS and all(workers.count(w) >= 2 for w in set(workers)):
            break
    assert len({worker for worker, _ in answers}) == WORKERS, "both workers should answer"
    return answers


def test_a_volunteer_sees_matches_for_the_profile_just_saved(live_database, tmp_path):
    with (
        live_server(live_database, workers=WORKERS, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        for name, skill in (("lua-mentor", "lua"), ("python-mentor", "python")):
            register(
                client,
                name,
                {
                    "timezone": "Europe/Paris",
                    "languages": ENGLISH,
                    "availability": EVENINGS,
                    "offers": [{"skill": skill, "level": 4}],
                },
            )
        learner = register(
            client,
            "learner",
            {
                "timezone": "Europe/Berlin",
                "languages": ENGLISH,
                "availability": EVENINGS,
                "wants": [{"skill": "lua", "level": 2}],
            },
        )
        # Both workers have built their index and know everyone.
        for _, names in _answers_from_every_worker(base, learner):
            assert names == ["lua-mentor"]

        for skill in ("python", "lua", "python", "lua", "python"):
            # A fresh connection for the save too: it lands on either worker.
            saved = httpx.patch(
                f"{base}/api/v1/me/profile",
                json={"wants": [{"skill": skill, "level": 2}]},
                headers=learner,
                timeout=10,
            )
            assert saved.status_code == 200, saved.text
            # At once, with no pause: every worker ranks the profile just saved.
            for worker, names in _answers_from_every_worker(base, learner):
                assert names == [f"{skill}-mentor"], f"worker {worker} ranked the old profile"


def test_a_skill_added_while_serving_is_matched_on_every_worker(live_database, tmp_path):
    with (
        live_server(live_database, workers=WORKERS, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        coordinator = register_coordinator(client, live_database, "coordinator")
        mentor = register(
            client,
            "mentor",
            {"languages": ENGLISH, "offers": [{"skill": "python", "level": 4}]},
        )
        learner = register(
            client,
            "learner",
            {"languages": ENGLISH, "wants": [{"skill": "photography", "level": 2}]},
        )
        for _, names in _answers_from_every_worker(base, learner):
            assert names == []

        # The coordinator adds a skill while both workers serve from warm indexes.
        add_skill(client, coordinator, "wikifunctions-editing", "Wikifunctions editing")
        for headers, side in ((mentor, "offers"), (learner, "wants")):
            saved = client.patch(
                "/api/v1/me/profile",
                json={side: [{"skill": "wikifunctions-editing", "level": 3}]},
                headers=headers,
            )
            assert saved.status_code == 200, saved.text

        # A newcomer lists the new skill from the start.
        newcomer = register(
            client,
            "newcomer",
            {"languages": ENGLISH, "wants": [{"skill": "wikifunctions-editing", "level": 1}]},
        )

        # The very next requests are answered on every worker (never a 500), from the
        # previous index while the new one is built; then the mentor shows everywhere.
        for headers in (newcomer, learner):
            deadline = time.monotonic() + 30
            matched: set[str] = set()
            while len(matched) < WORKERS and time.monotonic() < deadline:
                worker, names = matched_usernames(base, headers)
                assert names in ([], ["mentor"])
                if names == ["mentor"]:
                    matched.add(worker)
            assert len(matched) == WORKERS, "every worker should match the new skill"
        only_new = httpx.get(
            f"{base}/api/v1/me/matches",
            params={"skill": "wikifunctions-editing"},
            headers=learner,
            timeout=10,
        )
        assert only_new.status_code == 200, only_new.text
        assert only_new.json()["items"][0]["skill"] == "wikifunctions-editing"
