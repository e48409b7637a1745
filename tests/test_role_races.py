"""The last active coordinator stays, under truly concurrent requests to ``capex serve
--workers 3`` on both databases: the role changes and deactivations that could each remove
a coordinator lock the coordinators' rows, so they cannot all count on one another."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from capex.db import make_engine
from tests.conftest import BACKENDS, discard_database, fresh_database
from tests.live import live_server
from tests.test_exchange_races import Call, assert_problem_conflicts, fire, statuses

pytestmark = pytest.mark.slow

PASSWORD = "a long enough password"
ACCOUNTS = 6
WORKERS = 3
ROUNDS = 6
REQUEST_TIMEOUT = 30.0


@dataclass
class Account:
    id: int
    username: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Live:
    url: str
    base: str
    log: Path
    client: httpx.Client
    accounts: list[Account]


def _sign_in(client: httpx.Client, account: Account) -> None:
    token = client.post(
        "/api/v1/auth/token", data={"username": account.username, "password": PASSWORD}
    )
    assert token.status_code == 200, token.text
    account.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}


def _sql(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server with three workers and six volunteers per backend."""
    tmp = tmp_path_factory.mktemp(f"role-races-{request.param}")
    url = fresh_database(request.param, tmp)
    log = tmp / "serve.log"
    try:
        with (
            live_server(url, workers=WORKERS, log=log) as base,
            httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as client,
        ):
            accounts = []
            for number in range(ACCOUNTS):
                username = f"coord{number}"
                registered = client.post(
                    "/api/v1/auth/register",
                    json={
                        "username": username,
                        "email": f"{username}@example.org",
                        "password": PASSWORD,
                    },
                )
                assert registered.status_code == 201, registered.text
                accounts.append(Account(registered.json()["id"], username))
            yield Live(url, base, log, client, accounts)
    finally:
        discard_database(url)


def make_coordinators(live: Live, chosen: list[Account]) -> None:
    """Exactly ``chosen`` are active coordinators, everyone else an active volunteer; all
    signed in."""
    _sql(
        live.url,
        "UPDATE volunteers SET is_active = true, deactivated_at = NULL, role = 'volunteer'",
    )
    for account in chosen:
        _sql(live.url, "UPDATE volunteers SET role = 'coordinator' WHERE id = :id", id=account.id)
    for account in live.accounts:
        if live.client.get("/api/v1/me", headers=account.headers).status_code != 200:
            _sign_in(live.client, account)


def active_coordinators(live: Live) -> list[object]:
    rows = _sql(
        live.url,
        "SELECT username FROM volunteers WHERE role = 'coordinator' AND is_active = true "
        "ORDER BY username",
    )
    return [row[0] for row in rows]


@pytest.fixture(autouse=True)
def clean_log(live: Live) -> Iterator[None]:
    offset = live.log.stat().st_size
    yield
    with live.log.open("rb") as log:
        log.seek(offset)
        written = log.read().decode(errors="replace")
    for sign in ("Traceback", "unhandled error", '"status": 500', " 500 "):
        assert sign not in written, f"the server logged an error:\n{written[-3000:]}"


def role_call(actor: Account, target: Account, role: str) -> Call:
    return Call("PUT", f"/api/v1/volunteers/{target.id}/role", actor.headers, {"role": role})


def test_two_coordinators_demoting_each_other_at_once_leave_one(live: Live) -> None:
    first, second = live.accounts[:2]
    winners = []
    for _ in range(ROUNDS):
        make_coordinators(live, [first, second])

        responses = fire(
            live.base,
            [role_call(first, second, "volunteer"), role_call(second, first, "volunteer")],
        )

        # The loser was demoted by the winner before its own change took hold.
        assert statuses(responses) == {200: 1, 403: 1}, [r.text for r in responses]
        remaining = active_coordinators(live)
        assert len(remaining) == 1
        winner = first if responses[0].status_code == 200 else second
        assert remaining == [winner.username]
        winners.append(winner.username)
    print(f"\nmutual demotion, {ROUNDS} rounds, winners: {winners}")


def test_six_coordinators_stepping_down_at_once_leave_one(live: Live) -> None:
    for _ in range(ROUNDS // 2):
        make_coordinators(live, live.accounts)

        responses = fire(
            live.base, [role_call(account, account, "volunteer") for account in live.accounts]
        )

        assert statuses(responses) == {200: ACCOUNTS - 1, 409: 1}
        assert_problem_conflicts(responses)
        refused = next(r for r in responses if r.status_code == 409)
        assert "last active coordinator" in refused.json()["detail"]
        stayed = live.accounts[responses.index(refused)]
        assert active_coordinators(live) == [stayed.username]


def test_six_coordinators_deactivating_at_once_leave_one(live: Live) -> None:
    # Six: fire() spreads its calls evenly over the three workers only for a multiple of three.
    leaving = live.accounts
    for _ in range(ROUNDS // 2):
        make_coordinators(live, leaving)

        responses = fire(
            live.base, [Call("DELETE", "/api/v1/me", account.headers) for account in leaving]
        )

        assert statuses(responses) == {204: len(leaving) - 1, 409: 1}
        assert_problem_conflicts(responses)
        stayed = leaving[[r.status_code for r in responses].index(409)]
        assert active_coordinators(live) == [stayed.username]
        assert live.client.get("/api/v1/me", headers=stayed.headers).status_code == 200
