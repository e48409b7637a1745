"""Run ``capex serve`` as a real process, for tests that need several workers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from capex import testing
from capex.db import make_engine
from capex.models import Volunteer
from tests.factories import sign_in

# What every live test server runs with; ``env`` adds to it.
TEST_ENVIRONMENT = {
    "CAPEX_ENVIRONMENT": "test",
    "CAPEX_SECRET_KEY": "live-test-secret-key-0123456789abcdef",
    "CAPEX_LOG_LEVEL": "WARNING",
    # The live tests write from one address as fast as they can, as no person does: the
    # write limits are off unless a test turns them on (tests/test_write_limits.py).
    "CAPEX_WRITE_LIMIT_PER_ACCOUNT": "0",
    "CAPEX_WRITE_LIMIT_PER_ADDRESS": "0",
}


@contextmanager
def live_server(
    database_url: str,
    *,
    workers: int = 2,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve capex on a free port with ``workers`` processes; yields the base URL.

    ``env`` adds (or overrides) environment variables, e.g. ``CAPEX_SMTP_URL``.
    """
    environment = {**TEST_ENVIRONMENT, **(env or {})}
    with testing.live_server(database_url, workers=workers, env=environment, log=log) as server:
        yield server.base


PASSWORD = "a long enough password"


@dataclass(frozen=True)
class Deployment:
    """A served database: its URL, the server's address and log, a client for it."""

    url: str
    base: str
    log: Path
    client: httpx.Client


@contextmanager
def deployment(
    backend: str, tmp: Path, *, workers: int, timeout: float = 30
) -> Iterator[Deployment]:
    """A fresh ``backend`` database served by ``capex serve --workers N``, dropped after."""
    log = tmp / "serve.log"
    with (
        testing.throwaway_database(backend, tmp) as url,
        live_server(url, workers=workers, log=log) as base,
        httpx.Client(base_url=base, timeout=timeout) as client,
    ):
        yield Deployment(url, base, log, client)


def sign_up(client: httpx.Client, username: str) -> int:
    """Register ``username`` with PASSWORD; the new volunteer's id."""
    response = client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.org", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def register(client: httpx.Client, username: str, profile: dict[str, Any]) -> dict[str, str]:
    """Register ``username``, sign in and save ``profile``; the bearer header."""
    sign_up(client, username)
    headers = sign_in(client, username, PASSWORD)
    saved = client.put("/api/v1/me/profile", json=profile, headers=headers)
    assert saved.status_code == 200, saved.text
    return headers


def matched_usernames(base: str, headers: dict[str, str]) -> tuple[str, list[str]]:
    """The worker that answered ``GET /me/matches`` and the usernames it ranked, in order.

    A new connection each time, so that the kernel hands requests to either worker.
    """
    response = httpx.get(f"{base}/api/v1/me/matches", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    names = [item["volunteer"]["username"] for item in response.json()["items"]]
    return response.headers["x-capex-worker"], names


def register_coordinator(client: httpx.Client, database_url: str, username: str) -> dict[str, str]:
    """Register ``username`` and make them a coordinator in the database (as `capex users
    set-role` would); the bearer header."""
    headers = register(client, username, {"languages": [{"code": "en", "level": 5}]})
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(Volunteer).where(Volunteer.username == username).values(role="coordinator")
            )
    finally:
        engine.dispose()
    return headers


def add_skill(client: httpx.Client, coordinator: dict[str, str], skill: str, name: str) -> None:
    """A coordinator adds ``skill`` under technology while the servers run."""
    added = client.post(
        "/api/v1/skills",
        json={"id": skill, "name": name, "parent": "technology"},
        headers=coordinator,
    )
    assert added.status_code == 201, added.text
