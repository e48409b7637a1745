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
from capex.testing import BACKENDS
from tests.factories import sign_in
from tests.live import PASSWORD, deployment, sign_up
from tests.test_exchange_races import Call, assert_problem_conflicts, fire, statuses

pytestmark = pytest.mark.slow

ACCOUNTS = 6
WORKERS = 3
ROUNDS = 4
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
    with deployment(request.param, tmp, workers=WORKERS, timeout=REQUEST_TIMEOUT) as served:
        usernames = [f"coord{number}" for number in range(ACCOUNTS)]
        accounts = [Account(sign_up(served.client, name), name) for name in usernames]
        yield Live(served.url, served.base, served.log, served.client, accounts)


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
            account.headers = sign_in(live.client, account.username, PASSWORD)


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


def offer_lua(live: Live, account: Account) -> None:
    offered = live.client.patch(
        "/api/v1/me/profile",
        json={"offers": [{"skill": "lua", "level": 4}]},
        headers=account.headers,
    )
    assert offered.status_code == 200, offered.text


def request_exchange(live: Live, learner: Account, mentor: Account) -> int:
    offer_lua(live, mentor)
    created = live.client.post(
        "/api/v1/exchanges", json={"mentor_id": mentor.id, "skill": "lua"}, headers=learner.headers
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def open_slots(live: Live, mentor: Account) -> int:
    response = live.client.get(f"/api/v1/volunteers/{mentor.id}", headers=mentor.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["open_slots"])


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
    for round_number in range(ROUNDS):
        make_coordinators(live, leaving)
        # Every other round with exchanges between them, waiting and accepted: each leaver
        # cancels some that another leaver is in. (Without, only the coordinators' lock
        # stands between the six.)
        for number, learner in enumerate(leaving if round_number % 2 else []):
            mentor = leaving[(number + 1) % len(leaving)]
            exchange_id = request_exchange(live, learner, mentor)
            if number % 2:
                accept = live.client.post(
                    f"/api/v1/exchanges/{exchange_id}/accept", headers=mentor.headers
                )
                assert accept.status_code == 200, accept.text

        responses = fire(
            live.base, [Call("DELETE", "/api/v1/me", account.headers) for account in leaving]
        )

        assert statuses(responses) == {204: len(leaving) - 1, 409: 1}
        assert_problem_conflicts(responses)
        stayed = leaving[[r.status_code for r in responses].index(409)]
        assert active_coordinators(live) == [stayed.username]
        assert live.client.get("/api/v1/me", headers=stayed.headers).status_code == 200
        listed = live.client.get("/api/v1/exchanges", params={"limit": 100}, headers=stayed.headers)
        assert {item["state"] for item in listed.json()["items"]} <= {"cancelled"}
        assert open_slots(live, stayed) == 2


def test_a_coordinator_leaving_while_their_request_is_accepted_is_answered(live: Live) -> None:
    # The deactivation locks the coordinators' rows and cancels the leaver's exchanges; the
    # accept holds the exchange and then moves the leaver's counter. Taken in opposite
    # orders these two would deadlock on PostgreSQL.
    leaver, deputy, mentor = live.accounts[:3]
    outcomes = []
    for _ in range(ROUNDS):
        make_coordinators(live, [leaver, deputy])
        exchange_id = request_exchange(live, leaver, mentor)

        accepted, left = fire(
            live.base,
            [
                Call("POST", f"/api/v1/exchanges/{exchange_id}/accept", mentor.headers),
                Call("DELETE", "/api/v1/me", leaver.headers),
            ],
        )

        assert left.status_code == 204, left.text
        assert accepted.status_code in (200, 409), accepted.text
        assert_problem_conflicts([accepted])
        outcomes.append(accepted.status_code)
        state = live.client.get(f"/api/v1/exchanges/{exchange_id}", headers=mentor.headers)
        assert state.json()["state"] == "cancelled"
        assert open_slots(live, mentor) == 2
    print(f"\naccept vs deactivation, {ROUNDS} rounds, accept answered: {outcomes}")


def test_a_volunteer_promoted_while_their_request_is_accepted_gets_both(live: Live) -> None:
    # The accept holds the learner's row and then takes the mentor's; a promotion holding
    # the coordinators' rows while it waited for the learner's would deadlock with it.
    boss, learner, mentor = live.accounts[:3]
    for _ in range(ROUNDS):
        make_coordinators(live, [boss, mentor])
        exchange_id = request_exchange(live, learner, mentor)

        accepted, promoted = fire(
            live.base,
            [
                Call("POST", f"/api/v1/exchanges/{exchange_id}/accept", mentor.headers),
                role_call(boss, learner, "coordinator"),
            ],
        )

        assert accepted.status_code == 200, accepted.text
        assert promoted.status_code == 200, promoted.text
        assert active_coordinators(live) == sorted(
            [boss.username, learner.username, mentor.username]
        )
        cancelled = live.client.post(
            f"/api/v1/exchanges/{exchange_id}/cancel", headers=learner.headers
        )
        assert cancelled.status_code == 200, cancelled.text
