"""Exchange invariants hold under truly concurrent requests to ``capex serve --workers 3``.

Every race below starts its requests together: one thread and one open connection per
request, released by a ``threading.Barrier``. The kernel spreads the connections over the
three worker processes, and each worker runs its requests in its own thread pool, so the
database is what decides who wins (a conditional UPDATE, a partial unique index, the
Idempotency-Key's unique row).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from capex.db import make_engine
from capex.testing import BACKENDS
from tests.factories import Person, sign_in
from tests.live import PASSWORD, deployment, sign_up

pytestmark = pytest.mark.slow

SKILL = "lua"
# Mentors for the other skills are the same volunteers: every account offers all three.
SKILLS = ("lua", "sparql", "python")
ACCOUNTS = 14
WORKERS = 3
REQUEST_TIMEOUT = 30.0
BARRIER_TIMEOUT = 30.0
CONNECT_ATTEMPTS = 50
MAX_OPEN_REQUESTS = 5  # the default of Settings.max_open_requests


@dataclass
class Live:
    url: str
    base: str
    log: Path
    accounts: list[Person]
    log_offset: int = 0
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base, timeout=REQUEST_TIMEOUT)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None


# -- setup ---------------------------------------------------------------------------------


def _account(client: httpx.Client, username: str) -> Person:
    person = Person(sign_up(client, username), username, sign_in(client, username, PASSWORD))
    profile = client.patch(
        "/api/v1/me/profile",
        json={
            "languages": [{"code": "en", "level": 5}],
            "offers": [{"skill": skill, "level": 4} for skill in SKILLS],
        },
        headers=person.headers,
    )
    assert profile.status_code == 200, profile.text
    return person


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One server with three workers and 14 signed-in volunteers per backend."""
    tmp = tmp_path_factory.mktemp(f"races-{request.param}")
    with deployment(request.param, tmp, workers=WORKERS, timeout=REQUEST_TIMEOUT) as served:
        accounts = [_account(served.client, f"racer{n:02d}") for n in range(ACCOUNTS)]
        state = Live(served.url, served.base, served.log, accounts)
        try:
            yield state
        finally:
            state.client.close()


@pytest.fixture(autouse=True)
def checked(live: Live) -> Iterator[Live]:
    """After each race: the counters match the rows, the log holds no error; then a clean slate."""
    live.log_offset = live.log.stat().st_size
    yield live
    _assert_counters_match_rows(live.url)
    _assert_log_clean(live)
    _close_everything(live)
    for account in live.accounts:
        _set_capacity(live, account, 2)


def _assert_counters_match_rows(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            wrong = conn.execute(
                text(
                    """
                    SELECT v.id, v.mentor_capacity, v.accepted_as_mentor, v.requested_as_learner,
                        (SELECT count(*) FROM exchanges e
                          WHERE e.mentor_id = v.id AND e.state = 'accepted'),
                        (SELECT count(*) FROM exchanges e
                          WHERE e.learner_id = v.id AND e.state = 'requested')
                    FROM volunteers v
                    """
                )
            ).all()
            duplicates = conn.execute(
                text(
                    "SELECT learner_id, mentor_id, skill_id, count(*) FROM exchanges "
                    "WHERE state IN ('requested', 'accepted') "
                    "GROUP BY learner_id, mentor_id, skill_id HAVING count(*) > 1"
                )
            ).all()
    finally:
        engine.dispose()
    broken = [
        row
        for row in wrong
        if row[2] != row[4] or row[3] != row[5] or row[2] > row[1] or row[3] > MAX_OPEN_REQUESTS
    ]
    assert broken == [], "volunteer counters out of step with the exchanges"
    assert duplicates == [], "two open exchanges for one learner, mentor and skill"


def _assert_log_clean(live: Live) -> None:
    with live.log.open("rb") as log:
        log.seek(live.log_offset)
        written = log.read().decode(errors="replace")
    for sign in ("Traceback", "unhandled error", '"status": 500', " 500 "):
        assert sign not in written, f"the server logged an error:\n{written[-3000:]}"


def _close_everything(live: Live) -> None:
    for account in live.accounts:
        for state in ("accepted", "requested"):
            listed = live.client.get(
                "/api/v1/exchanges",
                params={"state": state, "limit": 100},
                headers=account.headers,
            )
            assert listed.status_code == 200, listed.text
            for item in listed.json()["items"]:
                closed = live.client.post(
                    f"/api/v1/exchanges/{item['id']}/cancel", headers=account.headers
                )
                assert closed.status_code in (200, 409), closed.text


def _set_capacity(live: Live, account: Person, capacity: int) -> None:
    changed = live.client.patch(
        "/api/v1/me/profile", json={"mentor_capacity": capacity}, headers=account.headers
    )
    assert changed.status_code == 200, changed.text


# -- firing together -----------------------------------------------------------------------


def fire(base: str, calls: list[Call]) -> list[httpx.Response]:
    """Send every call at the same moment, each from its own thread and connection, the
    connections spread over the workers."""
    barrier = threading.Barrier(len(calls))
    # The workers share one listening socket, and a worker's event loop accepts every
    # pending connection at once: left alone, a burst of connections mostly lands on one
    # worker. Each thread reconnects until its worker holds no more than its share.
    share = -(-len(calls) // WORKERS)
    held: Counter[str] = Counter()
    lock = threading.Lock()

    def connect() -> httpx.Client:
        for attempt in range(CONNECT_ATTEMPTS):
            client = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT)
            worker = client.get("/healthz").headers["x-capex-worker"]
            with lock:
                if held[worker] < share or attempt == CONNECT_ATTEMPTS - 1:
                    held[worker] += 1
                    return client
            client.close()
        raise AssertionError("unreachable")

    def send(call: Call) -> httpx.Response:
        with closing(connect()) as client:
            barrier.wait(timeout=BARRIER_TIMEOUT)
            response = client.request(call.method, call.path, headers=call.headers, json=call.json)
            response.read()
            return response

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        responses = list(pool.map(send, calls))
    server_errors = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert server_errors == []
    answering = {r.headers["x-capex-worker"] for r in responses}
    assert len(answering) == min(len(calls), WORKERS), "the race should span the workers"
    return responses


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def assert_problem_conflicts(responses: list[httpx.Response]) -> None:
    for response in responses:
        if response.status_code == 409:
            assert response.headers["content-type"].startswith("application/problem+json")
            body = response.json()
            assert body["status"] == 409
            assert body["title"]
            assert body["detail"]


def request_exchange(live: Live, learner: Person, mentor: Person, skill: str = SKILL) -> int:
    created = live.client.post(
        "/api/v1/exchanges", json={"mentor_id": mentor.id, "skill": skill}, headers=learner.headers
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def read_exchange(live: Live, exchange_id: int, viewer: Person) -> dict[str, Any]:
    response = live.client.get(f"/api/v1/exchanges/{exchange_id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(live: Live, exchange_id: int, viewer: Person) -> list[tuple[str | None, str]]:
    response = live.client.get(f"/api/v1/exchanges/{exchange_id}/events", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return [(item["from_state"], item["to_state"]) for item in response.json()["items"]]


def open_slots(live: Live, volunteer: Person, viewer: Person) -> int:
    response = live.client.get(f"/api/v1/volunteers/{volunteer.id}", headers=viewer.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["open_slots"])


def listed_ids(live: Live, account: Person, role: str, state: str) -> list[int]:
    response = live.client.get(
        "/api/v1/exchanges",
        params={"as": role, "state": state, "limit": 100},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json()["items"])


def complete(live: Live, exchange_id: int, by: Person) -> None:
    """Complete an accepted exchange, which frees the mentor's slot for the next round."""
    completed = live.client.post(f"/api/v1/exchanges/{exchange_id}/complete", headers=by.headers)
    assert completed.status_code == 200, completed.text


def action(exchange_id: int, verb: str, actor: Person) -> Call:
    return Call("POST", f"/api/v1/exchanges/{exchange_id}/{verb}", actor.headers)


# -- (a) the last slot ---------------------------------------------------------------------


def test_concurrent_accepts_for_the_last_slot_admit_exactly_one(live: Live) -> None:
    mentor, learners = live.accounts[0], live.accounts[1:11]
    _set_capacity(live, mentor, 1)
    exchange_ids = [request_exchange(live, learner, mentor) for learner in learners]

    responses = fire(live.base, [action(i, "accept", mentor) for i in exchange_ids])

    assert statuses(responses) == {200: 1, 409: len(learners) - 1}
    assert_problem_conflicts(responses)
    winner = next(r.json()["id"] for r in responses if r.status_code == 200)
    assert listed_ids(live, mentor, "mentor", "accepted") == [winner]
    waiting = sorted(set(exchange_ids) - {winner})
    assert listed_ids(live, mentor, "mentor", "requested") == waiting
    assert open_slots(live, mentor, learners[0]) == 0
    assert events(live, winner, mentor) == [(None, "requested"), ("requested", "accepted")]
    assert all(events(live, i, mentor) == [(None, "requested")] for i in waiting)

    # One more slot, the nine others race again: again exactly one gets it.
    _set_capacity(live, mentor, 2)
    responses = fire(live.base, [action(i, "accept", mentor) for i in waiting])

    assert statuses(responses) == {200: 1, 409: len(waiting) - 1}
    assert_problem_conflicts(responses)
    assert len(listed_ids(live, mentor, "mentor", "accepted")) == 2
    assert open_slots(live, mentor, learners[0]) == 0


# -- (b) one exchange, many hands ----------------------------------------------------------


def test_the_same_exchange_accepted_eight_times_at_once_is_accepted_once(live: Live) -> None:
    learner, mentor = live.accounts[1], live.accounts[2]
    exchange_id = request_exchange(live, learner, mentor)

    responses = fire(live.base, [action(exchange_id, "accept", mentor)] * 8)

    assert statuses(responses) == {200: 1, 409: 7}
    assert_problem_conflicts(responses)
    assert read_exchange(live, exchange_id, learner)["state"] == "accepted"
    assert events(live, exchange_id, learner) == [(None, "requested"), ("requested", "accepted")]
    assert open_slots(live, mentor, learner) == 1


RACE_ROUNDS = 6


def test_accept_racing_cancel_leaves_the_winners_state(live: Live) -> None:
    learner, mentor = live.accounts[3], live.accounts[4]
    outcomes: Counter[str] = Counter()
    for round_number in range(RACE_ROUNDS):
        canceller = learner if round_number % 2 == 0 else mentor
        exchange_id = request_exchange(live, learner, mentor)

        accepted, cancelled = fire(
            live.base,
            [action(exchange_id, "accept", mentor), action(exchange_id, "cancel", canceller)],
        )

        assert_problem_conflicts([accepted, cancelled])
        assert {accepted.status_code, cancelled.status_code} <= {200, 409}
        trail = events(live, exchange_id, learner)
        state = read_exchange(live, exchange_id, learner)["state"]
        # Exactly one of the two took the exchange out of 'requested'.
        assert [step for step in trail if step[0] == "requested"] in (
            [("requested", "accepted")],
            [("requested", "cancelled")],
        )
        if accepted.status_code == 200 and cancelled.status_code == 409:
            outcomes["accept won"] += 1
            assert state == "accepted"
            assert trail == [(None, "requested"), ("requested", "accepted")]
        elif cancelled.status_code == 200 and accepted.status_code == 409:
            outcomes["cancel won"] += 1
            assert state == "cancelled"
            assert trail == [(None, "requested"), ("requested", "cancelled")]
        else:
            # Both 200: the accept committed first and the cancel, which may also end an
            # accepted exchange, came after it. A serial order, not a double win.
            assert accepted.status_code == cancelled.status_code == 200
            outcomes["accept, then cancel of the accepted"] += 1
            assert state == "cancelled"
            assert trail == [
                (None, "requested"),
                ("requested", "accepted"),
                ("accepted", "cancelled"),
            ]
        assert open_slots(live, mentor, learner) == (1 if state == "accepted" else 2)
        if state == "accepted":
            complete(live, exchange_id, by=learner)
    print(f"\naccept vs cancel, {RACE_ROUNDS} rounds: {dict(outcomes)}")


def test_accept_racing_decline_lets_exactly_one_answer(live: Live) -> None:
    learner, mentor = live.accounts[5], live.accounts[6]
    outcomes: Counter[str] = Counter()
    for _ in range(RACE_ROUNDS):
        exchange_id = request_exchange(live, learner, mentor)

        accepted, declined = fire(
            live.base,
            [action(exchange_id, "accept", mentor), action(exchange_id, "decline", mentor)],
        )

        assert sorted([accepted.status_code, declined.status_code]) == [200, 409]
        assert_problem_conflicts([accepted, declined])
        winner = "accepted" if accepted.status_code == 200 else "declined"
        outcomes[winner] += 1
        assert read_exchange(live, exchange_id, learner)["state"] == winner
        assert events(live, exchange_id, learner) == [(None, "requested"), ("requested", winner)]
        if winner == "accepted":
            complete(live, exchange_id, by=mentor)
    print(f"\naccept vs decline, {RACE_ROUNDS} rounds: {dict(outcomes)}")


# -- (c) the same request, ten times at once -----------------------------------------------


def test_ten_identical_requests_at_once_open_one_exchange(live: Live) -> None:
    learner, mentor = live.accounts[7], live.accounts[8]
    body = {"mentor_id": mentor.id, "skill": SKILL}

    responses = fire(live.base, [Call("POST", "/api/v1/exchanges", learner.headers, body)] * 10)

    assert statuses(responses) == {201: 1, 409: 9}
    assert_problem_conflicts(responses)
    created = next(r.json()["id"] for r in responses if r.status_code == 201)
    assert listed_ids(live, learner, "learner", "requested") == [created]


def test_ten_retries_with_one_idempotency_key_return_one_exchange(live: Live) -> None:
    learner, mentor = live.accounts[7], live.accounts[8]
    headers = {**learner.headers, "Idempotency-Key": f"race-{uuid.uuid4()}"}
    body = {"mentor_id": mentor.id, "skill": SKILL, "message": "same body each time"}

    responses = fire(live.base, [Call("POST", "/api/v1/exchanges", headers, body)] * 10)

    assert statuses(responses) == {201: 10}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["id"] for r in responses}) == 1
    replayed = [r.headers.get("idempotent-replayed") for r in responses]
    assert replayed.count("true") == 9
    assert listed_ids(live, learner, "learner", "requested") == [responses[0].json()["id"]]


# -- (d) a learner's limit of waiting requests ---------------------------------------------


def test_twelve_requests_at_once_to_twelve_mentors_stop_at_the_limit(live: Live) -> None:
    learner, mentors = live.accounts[13], live.accounts[:12]
    calls = [
        Call("POST", "/api/v1/exchanges", learner.headers, {"mentor_id": m.id, "skill": SKILL})
        for m in mentors
    ]

    responses = fire(live.base, calls)

    assert statuses(responses) == {201: MAX_OPEN_REQUESTS, 409: len(mentors) - MAX_OPEN_REQUESTS}
    assert_problem_conflicts(responses)
    created = sorted(r.json()["id"] for r in responses if r.status_code == 201)
    assert listed_ids(live, learner, "learner", "requested") == created
    assert all("waiting" in r.json()["detail"] for r in responses if r.status_code == 409)
