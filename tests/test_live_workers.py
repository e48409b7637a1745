"""A profile change made through one worker shows in every worker's matches within a second."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.live import live_server, matched_usernames, register

pytestmark = pytest.mark.slow

EVENINGS = [{"weekday": day, "start": "18:00", "end": "21:00"} for day in range(5)]


def _until_every_worker_says(base, headers, expected, workers=2, seconds=30.0):
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < workers and time.monotonic() < deadline:
        worker, names = matched_usernames(base, headers)
        assert names == expected
        seen.add(worker)
    return seen


def test_profile_change_reaches_every_worker_within_a_second(live_database, tmp_path):
    with (
        live_server(live_database, workers=2, log=tmp_path / "serve.log") as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        learner = register(
            client,
            "learner",
            {
                "timezone": "Europe/Berlin",
                "languages": [{"code": "de", "level": 5}, {"code": "en", "level": 4}],
                "availability": EVENINGS,
                "wants": [{"skill": "lua", "level": 2}],
            },
        )
        mentor = register(
            client,
            "mentor",
            {
                "timezone": "Europe/Paris",
                "languages": [{"code": "en", "level": 5}],
                "availability": EVENINGS,
                "offers": [{"skill": "sparql", "level": 4}],
            },
        )
        # Both workers have built their index and see no match yet.
        workers = _until_every_worker_says(base, learner, [])
        assert len(workers) == 2, "the two workers should both have answered"

        changed = client.patch(
            "/api/v1/me/profile",
            json={"offers": [{"skill": "lua", "level": 4}]},
            headers=mentor,
        )
        assert changed.status_code == 200
        time.sleep(1.0)
        workers = _until_every_worker_says(base, learner, ["mentor"])
        assert len(workers) == 2

        assert client.delete("/api/v1/me", headers=mentor).status_code == 204
        time.sleep(1.0)
        assert len(_until_every_worker_says(base, learner, [])) == 2


def test_the_server_writes_expiry_by_itself(live_database, tmp_path):
    from datetime import timedelta

    from sqlalchemy import select, update

    from capex.db import make_engine
    from capex.models import Exchange
    from capex.models.base import utcnow

    env = {"CAPEX_MAINTENANCE_INTERVAL_SECONDS": "0.3", "CAPEX_REQUEST_TTL_DAYS": "14"}
    engine = make_engine(live_database)
    try:
        with (
            live_server(live_database, workers=2, log=tmp_path / "serve.log", env=env) as base,
            httpx.Client(base_url=base, timeout=10) as client,
        ):
            learner = register(client, "learner", {"languages": [{"code": "en", "level": 5}]})
            mentor = register(client, "mentor", {"offers": [{"skill": "lua", "level": 4}]})
            mentor_id = client.get("/api/v1/me", headers=mentor).json()["id"]
            created = client.post(
                "/api/v1/exchanges", json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner
            )
            assert created.status_code == 201
            exchange_id = created.json()["id"]
            with engine.begin() as conn:
                conn.execute(
                    update(Exchange)
                    .where(Exchange.id == exchange_id)
                    .values(created_at=utcnow() - timedelta(days=15))
                )
            deadline = time.monotonic() + 10
            stored = "requested"
            while stored != "expired" and time.monotonic() < deadline:
                time.sleep(0.2)
                with engine.connect() as conn:
                    stored = conn.scalar(select(Exchange.state).where(Exchange.id == exchange_id))
            assert stored == "expired"
            inbox = client.get("/api/v1/me/notifications", headers=learner).json()
            assert [item["kind"] for item in inbox["items"]] == ["exchange_expired"]
    finally:
        engine.dispose()


def test_the_workers_build_the_matching_index_once_and_share_it(live_database, tmp_path):
    shared = tmp_path / "shared"
    with (
        live_server(
            live_database,
            workers=2,
            log=tmp_path / "serve.log",
            env={"CAPEX_MATCHING_INDEX_DIR": str(shared)},
        ) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        register(
            client,
            "mentor",
            {"languages": [{"code": "en", "level": 5}], "offers": [{"skill": "lua", "level": 4}]},
        )
        learner = register(
            client,
            "learner",
            {"languages": [{"code": "en", "level": 5}], "wants": [{"skill": "lua", "level": 2}]},
        )
        # Each worker answers from the one index the host built, with what changed since.
        assert len(_until_every_worker_says(base, learner, ["mentor"])) == 2
        assert sorted(path.name for path in shared.glob("generation-*.idx")) == ["generation-1.idx"]
