"""Statistics against a live ``capex serve --workers 2``, in the order people act.

The coordinator looks first (each worker has its figures warm), then the world changes
while the servers run: a coordinator adds a skill, volunteers offer and want it, a learner
asks and the mentor accepts. Every worker's next answers catch up within
``CAPEX_STATS_MAX_AGE_SECONDS``, and no answer is ever older than that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.live import add_skill, live_server, register, register_coordinator

pytestmark = pytest.mark.slow

MAX_AGE = 2.0
# Time for one refresh beside the answer's own: a loaded CI machine is slow.
SLACK = 3.0
ENGLISH = [{"code": "en", "level": 5}]
NEW_SKILL = "wikifunctions-editing"


def stats(base: str, headers: dict[str, str], path: str) -> tuple[str, dict[str, Any]]:
    """One answer on a new connection (either worker may take it): the worker and the JSON.
    Checks on the way that its figures are no older than the promise."""
    response = httpx.get(f"{base}/api/v1/stats/{path}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    as_of = datetime.fromisoformat(answer["as_of"].replace("Z", "+00:00"))
    age = (datetime.now(UTC) - as_of).total_seconds()
    assert -1 < age <= MAX_AGE + SLACK, f"figures {age:.1f} s old"
    return response.headers["x-capex-worker"], answer


def on_every_worker(
    base: str, headers: dict[str, str], path: str, check: Callable[[dict[str, Any]], bool]
) -> None:
    """Ask until both workers have answered ``check``-true twice in a row, within time."""
    deadline = time.monotonic() + MAX_AGE + SLACK + 20
    good: dict[str, int] = {}
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        worker, answer = stats(base, headers, path)
        last = answer
        good[worker] = good.get(worker, 0) + 1 if check(answer) else 0
        if len(good) == 2 and all(count >= 2 for count in good.values()):
            return
        time.sleep(0.1)
    raise AssertionError(f"not every worker caught up: {good}, last answer {last}")


def skill_row(answer: dict[str, Any], skill: str) -> dict[str, Any] | None:
    return next((row for row in answer["items"] if row["skill"] == skill), None)


def figures(*expected: int) -> Callable[[dict[str, Any]], bool]:
    """The new skill's row shows (offered, open_slots, wanted, requested, accepted)."""

    def check(answer: dict[str, Any]) -> bool:
        row = skill_row(answer, NEW_SKILL)
        names = ("offered", "open_slots", "wanted", "requested", "accepted")
        return row is not None and tuple(row[name] for name in names) == expected

    return check


def test_a_coordinator_sees_what_volunteers_just_did(live_database, tmp_path):
    env = {"CAPEX_STATS_MAX_AGE_SECONDS": str(MAX_AGE)}
    with (
        live_server(live_database, workers=2, log=tmp_path / "serve.log", env=env) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        coordinator = register_coordinator(client, live_database, "coordinator")
        # Both workers have figures before anything changes.
        on_every_worker(base, coordinator, "skills", lambda a: skill_row(a, "lua") is not None)
        on_every_worker(base, coordinator, "overview", lambda a: a["volunteers"] == 1)

        # A coordinator adds a skill while the servers run; it is listed everywhere.
        add_skill(client, coordinator, NEW_SKILL, "Wikifunctions editing")
        on_every_worker(base, coordinator, "skills", figures(0, 0, 0, 0, 0))

        # Volunteers put it in their profiles: one mentor with two places, three learners.
        mentor = register(
            client,
            "mentor",
            {
                "languages": ENGLISH,
                "mentor_capacity": 2,
                "offers": [{"skill": NEW_SKILL, "level": 4}],
            },
        )
        learners = [
            register(
                client,
                f"learner{n}",
                {
                    "languages": ENGLISH,
                    "wants": [{"skill": NEW_SKILL, "level": 1}],
                },
            )
            for n in range(3)
        ]

        on_every_worker(base, coordinator, "skills", figures(1, 2, 3, 0, 0))

        # A learner asks and the mentor accepts at once; the coordinator reloads.
        me = client.get("/api/v1/me", headers=mentor).json()
        asked = client.post(
            "/api/v1/exchanges",
            json={"mentor_id": me["id"], "skill": NEW_SKILL},
            headers=learners[0],
        )
        assert asked.status_code == 201, asked.text
        accepted = client.post(f"/api/v1/exchanges/{asked.json()['id']}/accept", headers=mentor)
        assert accepted.status_code == 200, accepted.text
        on_every_worker(base, coordinator, "skills", figures(1, 1, 3, 1, 1))
        on_every_worker(
            base,
            coordinator,
            "funnel",
            lambda a: [s["count"] for s in a["stages"]][:3] == [1, 1, 1],
        )
        on_every_worker(base, coordinator, "overview", lambda a: a["exchanges"]["accepted"] == 1)
