"""Exchanges through the API, on both databases: the whole transition table, requests and
their limits, idempotency, mentor capacity, expiry, feedback, deactivation and listing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from capex.models import Exchange, IdempotencyKey, Volunteer
from capex.models.base import utcnow
from capex.services import maintenance
from capex.services.exchanges import OPENING, TRANSITIONS
from capex.vocabulary import Party
from tests.factories import Person, auth_headers, make_volunteer, problem_fields

API = "/api/v1"
EXCHANGES = f"{API}/exchanges"
ENGLISH = [{"code": "en", "level": 5}]


def person(session, settings, name, **profile) -> Person:
    volunteer = make_volunteer(session, name, **profile)
    return Person(volunteer.id, volunteer.username, auth_headers(session, settings, volunteer))


def offering(*skills: str) -> list[dict[str, Any]]:
    return [{"skill": skill, "level": 3} for skill in skills]


@dataclass(frozen=True)
class Cast:
    learner: Person
    mentor: Person
    stranger: Person
    coordinator: Person

    def __getitem__(self, role: str) -> Person:
        return getattr(self, role)


@pytest.fixture
def cast(session, settings) -> Cast:
    return Cast(
        learner=person(session, settings, "learner", wants=[{"skill": "lua", "level": 3}]),
        mentor=person(session, settings, "mentor", offers=offering("lua", "template-editing")),
        stranger=person(session, settings, "stranger"),
        coordinator=person(session, settings, "coordinator", role="coordinator"),
    )


# -- helpers speaking the API -------------------------------------------------------------


def request_exchange(
    client: TestClient, learner: Person, mentor: Person, skill: str = "lua", **body: Any
) -> dict[str, Any]:
    response = client.post(
        EXCHANGES,
        json={"mentor_id": mentor.id, "skill": skill, **body},
        headers=learner.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def act(client: TestClient, who: Person, exchange_id: int, action: str, reason: str | None = None):
    body = None if reason is None else {"reason": reason}
    return client.post(f"{EXCHANGES}/{exchange_id}/{action}", json=body, headers=who.headers)


def ok(response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def read(client: TestClient, who: Person, exchange_id: int) -> dict[str, Any]:
    return ok(client.get(f"{EXCHANGES}/{exchange_id}", headers=who.headers))


def events(client: TestClient, who: Person, exchange_id: int) -> list[dict[str, Any]]:
    return ok(client.get(f"{EXCHANGES}/{exchange_id}/events", headers=who.headers))["items"]


def listed(client: TestClient, who: Person, **params: Any) -> list[int]:
    return [
        item["id"]
        for item in ok(client.get(EXCHANGES, params=params, headers=who.headers))["items"]
    ]


def completed(client: TestClient, learner: Person, mentor: Person, skill: str = "lua") -> int:
    exchange_id = request_exchange(client, learner, mentor, skill)["id"]
    ok(act(client, mentor, exchange_id, "accept"))
    ok(act(client, learner, exchange_id, "complete"))
    return int(exchange_id)


def open_slots(client: TestClient, viewer: Person, mentor: Person) -> int:
    return ok(client.get(f"{API}/volunteers/{mentor.id}", headers=viewer.headers))["open_slots"]


def age_exchange(session: Session, exchange_id: int, age: timedelta) -> None:
    """Move an exchange's creation into the past, as if time had passed."""
    session.execute(
        update(Exchange).where(Exchange.id == exchange_id).values(created_at=utcnow() - age)
    )
    session.commit()


def stored_state(session: Session, exchange_id: int) -> str:
    return session.scalar(select(Exchange.state).where(Exchange.id == exchange_id))


def waiting_count(session: Session, volunteer: Person) -> int:
    return session.scalar(
        select(Volunteer.requested_as_learner).where(Volunteer.id == volunteer.id)
    )


def inbox(client: TestClient, who: Person) -> list[dict[str, Any]]:
    return ok(client.get(f"{API}/me/notifications", headers=who.headers))["items"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- 1. the transition table, every cell ----------------------------------------------------

# What the contract allows: (action, from state) -> (who may, to state). Every other cell
# of actions x states x callers is refused.
ALLOWED: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("accept", "requested"): (frozenset({"mentor"}), "accepted"),
    ("decline", "requested"): (frozenset({"mentor"}), "declined"),
    ("cancel", "requested"): (frozenset({"learner", "mentor"}), "cancelled"),
    ("cancel", "accepted"): (frozenset({"learner", "mentor"}), "cancelled"),
    ("complete", "accepted"): (frozenset({"learner", "mentor"}), "completed"),
}
ACTIONS = ("accept", "decline", "cancel", "complete")
CALLERS = ("learner", "mentor", "stranger", "coordinator")
# How each state is reached; "expired" is read as expired before anything wrote it,
# "expired-written" after the periodic task wrote it.
SETUP: dict[str, tuple[tuple[str, str], ...]] = {
    "requested": (),
    "accepted": (("mentor", "accept"),),
    "declined": (("mentor", "decline"),),
    "cancelled": (("learner", "cancel"),),
    "completed": (("mentor", "accept"), ("learner", "complete")),
    "expired": (),
    "expired-written": (),
}


def may_ever(action: str, caller: str) -> bool:
    return any(action == a and caller in who for (a, _), (who, _) in ALLOWED.items())


def expected(action: str, state: str, caller: str) -> tuple[int, str | None]:
    """The status (and new state) the contract gives; the caller's side is checked first."""
    if caller == "stranger":
        return 404, None  # not theirs to see
    if caller == "coordinator" or not may_ever(action, caller):
        return 403, None  # sees the exchange, but may not take this action
    allowed = ALLOWED.get((action, state))
    if allowed is None or caller not in allowed[0]:
        return 409, None
    return 200, allowed[1]


CELLS = [
    pytest.param(action, label, id=f"{action}-{label}") for action in ACTIONS for label in SETUP
]


def test_the_service_table_is_the_documented_lifecycle():
    service = {
        (t.action, t.from_state): (t.who, t.to_state) for t in TRANSITIONS if t.action != "expire"
    }
    assert service == ALLOWED
    (expire,) = [t for t in TRANSITIONS if t.action == "expire"]
    assert (expire.from_state, expire.to_state, expire.who) == (
        "requested",
        "expired",
        frozenset({"system"}),
    )


def test_a_request_is_the_opening_transition_of_the_table(client, cast):
    """The first event is written by the same function as every other, from OPENING."""
    assert OPENING.who == frozenset({Party.LEARNER})
    exchange_id = request_exchange(client, cast.learner, cast.mentor, message="teach me")["id"]
    (first,) = events(client, cast.learner, exchange_id)
    assert (first["action"], first["from_state"], first["to_state"]) == (
        OPENING.action,
        OPENING.from_state,
        OPENING.to_state,
    )
    assert (first["actor"], first["note"]) == (cast.learner.ref, "teach me")
    assert [n["kind"] for n in inbox(client, cast.mentor)] == ["exchange_requested"]
    assert inbox(client, cast.learner) == []


def in_state(client, session, settings, cast: Cast, label: str, skill: str = "lua") -> int:
    exchange_id = request_exchange(client, cast.learner, cast.mentor, skill)["id"]
    for role, action in SETUP[label]:
        ok(act(client, cast[role], exchange_id, action))
    if label.startswith("expired"):
        age_exchange(session, exchange_id, timedelta(days=settings.request_ttl_days, minutes=1))
    if label == "expired-written":
        assert maintenance.expire_requests(client.app.state.session_factory, settings) == 1
    return int(exchange_id)


def check_refused(
    client, cast: Cast, exchange_id: int, action: str, caller: str, status: int, seen: dict
):
    """The caller is refused with ``status``; the exchange and its trail stay as ``seen``."""
    response = act(client, cast[caller], exchange_id, action, "a reason")
    cell = f"{caller} {action} on {seen['exchange']['state']}"
    assert response.status_code == status, f"{cell}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json"), cell
    assert response.json()["status"] == status, cell
    assert read(client, cast.learner, exchange_id) == seen["exchange"], cell
    assert events(client, cast.learner, exchange_id) == seen["events"], cell


def check_allowed(client, cast: Cast, exchange_id: int, action: str, caller: str, to_state: str):
    """The caller moves the exchange to ``to_state`` and one audit event says so."""
    from_state = read(client, cast.learner, exchange_id)["state"]
    trail = events(client, cast.learner, exchange_id)
    reason = "a reason" if action in ("decline", "cancel") else None
    response = act(client, cast[caller], exchange_id, action, reason)
    cell = f"{caller} {action} on {from_state}"
    assert response.status_code == 200, f"{cell}: {response.text}"
    assert response.json()["id"] == exchange_id, cell
    assert response.json()["state"] == to_state, cell
    assert read(client, cast.learner, exchange_id)["state"] == to_state, cell
    *earlier, last = events(client, cast.learner, exchange_id)
    assert earlier == trail, cell
    assert last["actor"] == cast[caller].ref, cell
    assert (last["action"], last["from_state"], last["to_state"]) == (action, from_state, to_state)
    assert last["note"] == (reason or ""), cell
    assert parse_time(last["at"]) >= parse_time(trail[-1]["at"]), cell


@pytest.mark.parametrize(("action", "label"), CELLS)
def test_transition_table_for_every_caller(client, session, settings, cast, action, label):
    """One action on one state, tried by the learner, the mentor, a stranger and a
    coordinator. Refusals change nothing, so they share one exchange; each allowed caller
    then acts on an exchange of its own (another skill: one open exchange per skill)."""
    state = label.removesuffix("-written")
    outcomes = {caller: expected(action, state, caller) for caller in CALLERS}
    exchange_id = in_state(client, session, settings, cast, label)
    seen = {
        "exchange": read(client, cast.learner, exchange_id),
        "events": events(client, cast.learner, exchange_id),
    }
    assert seen["exchange"]["state"] == state
    for caller, (status, _) in outcomes.items():
        if status != 200:
            check_refused(client, cast, exchange_id, action, caller, status, seen)
    allowed = [(caller, to_state) for caller, (status, to_state) in outcomes.items() if to_state]
    for position, (caller, to_state) in enumerate(allowed):
        if position:
            exchange_id = in_state(client, session, settings, cast, label, "template-editing")
        check_allowed(client, cast, exchange_id, action, caller, to_state)


# -- the audit trail and who sees an exchange ----------------------------------------------


def test_events_are_the_whole_story_oldest_first(client, cast):
    exchange_id = request_exchange(client, cast.learner, cast.mentor, message="teach me")["id"]
    ok(act(client, cast.mentor, exchange_id, "accept"))
    ok(act(client, cast.learner, exchange_id, "cancel", "no time after all"))
    trail = events(client, cast.coordinator, exchange_id)
    assert [(e["from_state"], e["to_state"]) for e in trail] == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "cancelled"),
    ]
    assert [e["actor"] for e in trail] == [cast.learner.ref, cast.mentor.ref, cast.learner.ref]
    assert [e["note"] for e in trail] == ["teach me", "", "no time after all"]
    times = [parse_time(e["at"]) for e in trail]
    assert times == sorted(times)
    assert set(trail[0]) >= {"at", "actor", "from_state", "to_state", "note"}
    assert events(client, cast.mentor, exchange_id) == trail


def test_an_exchange_is_seen_by_its_participants_and_coordinators_only(client, cast):
    exchange_id = request_exchange(client, cast.learner, cast.mentor)["id"]
    for viewer in (cast.learner, cast.mentor, cast.coordinator):
        assert read(client, viewer, exchange_id)["id"] == exchange_id
    for path in (f"{EXCHANGES}/{exchange_id}", f"{EXCHANGES}/{exchange_id}/events"):
        hidden = client.get(path, headers=cast.stranger.headers)
        assert hidden.status_code == 404
        assert client.get(path).status_code == 401
    for action in ACTIONS:
        missing = act(client, cast.mentor, exchange_id + 1000, action)
        assert missing.status_code == 404


def test_a_coordinator_who_takes_part_acts_as_that_participant(client, session, settings, cast):
    boss = person(session, settings, "boss", role="coordinator", offers=offering("lua"))
    exchange_id = request_exchange(client, cast.learner, boss)["id"]
    assert act(client, boss, exchange_id, "complete").status_code == 409
    assert ok(act(client, boss, exchange_id, "accept"))["state"] == "accepted"
    assert ok(act(client, boss, exchange_id, "complete"))["state"] == "completed"
    assert events(client, cast.learner, exchange_id)[-1]["actor"] == boss.ref


# -- 2. requesting ------------------------------------------------------------------------


def test_request_creates_a_waiting_exchange(client, settings, cast):
    response = client.post(
        EXCHANGES,
        json={"mentor_id": cast.mentor.id, "skill": "lua", "message": "Hello!"},
        headers=cast.learner.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["id"], int)
    assert body["state"] == "requested"
    assert body["learner"] == cast.learner.ref
    assert body["mentor"] == cast.mentor.ref
    assert (body["skill"], body["message"], body["origin"]) == ("lua", "Hello!", "request")
    created = parse_time(body["created_at"])
    assert abs(created - utcnow()) < timedelta(minutes=1)
    assert body["created_at"].endswith("Z")
    assert parse_time(body["expires_at"]) - created == timedelta(days=settings.request_ttl_days)
    assert body["accepted_at"] is None
    assert "Idempotent-Replayed" not in response.headers
    assert read(client, cast.mentor, body["id"]) == body
    assert events(client, cast.learner, body["id"])[0]["actor"] == cast.learner.ref


def test_request_needs_sign_in(client, cast):
    response = client.post(EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_request_yourself_as_mentor_is_422(client, session, settings):
    both = person(session, settings, "both", offers=offering("lua"))
    response = client.post(
        EXCHANGES, json={"mentor_id": both.id, "skill": "lua"}, headers=both.headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.mentor_id"}


@pytest.mark.parametrize("skill", ["photography", "no-such-skill"])
def test_request_a_skill_the_mentor_does_not_offer_is_422(client, cast, skill):
    response = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": skill}, headers=cast.learner.headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.skill"}


def test_request_to_an_unknown_mentor_is_404(client, cast):
    response = client.post(
        EXCHANGES,
        json={"mentor_id": cast.coordinator.id + 1000, "skill": "lua"},
        headers=cast.learner.headers,
    )
    assert response.status_code == 404


def test_request_to_a_deactivated_mentor_is_404(client, cast):
    assert client.delete(f"{API}/me", headers=cast.mentor.headers).status_code == 204
    response = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"}, headers=cast.learner.headers
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "closing",
    [
        [("mentor", "decline")],
        [("learner", "cancel")],
        [("mentor", "accept"), ("mentor", "cancel")],
        [("mentor", "accept"), ("learner", "complete")],
    ],
    ids=["declined", "cancelled", "cancelled-after-accept", "completed"],
)
def test_one_open_exchange_per_learner_mentor_and_skill(client, cast, closing):
    first = request_exchange(client, cast.learner, cast.mentor)["id"]
    again = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"}, headers=cast.learner.headers
    )
    assert again.status_code == 409
    assert f"#{first}" in again.json()["detail"]
    # Another skill with the same mentor is another exchange.
    request_exchange(client, cast.learner, cast.mentor, "template-editing")
    if closing[0][1] == "accept":
        ok(act(client, cast.mentor, first, "accept"))
        still = client.post(
            EXCHANGES,
            json={"mentor_id": cast.mentor.id, "skill": "lua"},
            headers=cast.learner.headers,
        )
        assert still.status_code == 409  # accepted is open too
    role, action = closing[-1]
    ok(act(client, cast[role], first, action))
    second = request_exchange(client, cast.learner, cast.mentor)
    assert second["id"] != first
    assert read(client, cast.learner, first)["state"] != "requested"


def test_at_most_five_waiting_requests_per_learner(client, session, settings, cast):
    assert settings.max_open_requests == 5
    skills = ["lua", "template-editing", "photography", "task-tracking", "risk-management"]
    teacher = person(session, settings, "teacher", offers=offering(*skills, "public-speaking"))
    waiting = [request_exchange(client, cast.learner, teacher, skill)["id"] for skill in skills]
    sixth = client.post(
        EXCHANGES,
        json={"mentor_id": teacher.id, "skill": "public-speaking"},
        headers=cast.learner.headers,
    )
    assert sixth.status_code == 409
    assert "5 requests waiting" in sixth.json()["detail"]
    assert len(listed(client, cast.learner)) == 5
    # Other learners are not limited by this one's requests.
    request_exchange(client, cast.stranger, teacher, "public-speaking")
    ok(act(client, cast.learner, waiting[0], "cancel"))
    request_exchange(client, cast.learner, teacher, "public-speaking")
    refused = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"}, headers=cast.learner.headers
    )
    assert refused.status_code == 409
    # An accepted exchange is no longer waiting for an answer: it frees a place too.
    ok(act(client, teacher, waiting[1], "accept"))
    request_exchange(client, cast.learner, cast.mentor)
    assert waiting_count(session, cast.learner) == 5


def test_the_waiting_limit_is_configurable(client, settings, cast):
    settings.max_open_requests = 1
    request_exchange(client, cast.learner, cast.mentor)
    second = client.post(
        EXCHANGES,
        json={"mentor_id": cast.mentor.id, "skill": "template-editing"},
        headers=cast.learner.headers,
    )
    assert second.status_code == 409


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body.mentor_id", "body.skill"}),
        ({"mentor_id": 0, "skill": "Not A Slug"}, {"body.mentor_id", "body.skill"}),
        (
            {"mentor_id": "abc", "skill": "lua", "message": "x" * 2001},
            {"body.mentor_id", "body.message"},
        ),
        ({"mentor_id": 1, "skill": "lua", "state": "accepted"}, {"body.state"}),
        ({"mentor_id": 1, "skill": ["lua"], "message": None}, {"body.skill", "body.message"}),
    ],
)
def test_bad_request_bodies_are_422_naming_each_field(client, session, cast, body, fields):
    response = client.post(EXCHANGES, json=body, headers=cast.learner.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem_fields(response) == fields
    assert session.scalar(select(func.count()).select_from(Exchange)) == 0


def test_malformed_json_is_400(client, cast):
    response = client.post(
        EXCHANGES,
        content=b'{"mentor_id": ',
        headers={**cast.learner.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


# -- 3. Idempotency-Key -------------------------------------------------------------------


def post_with_key(client, learner: Person, mentor: Person, key: str, skill="lua", message=""):
    return client.post(
        EXCHANGES,
        json={"mentor_id": mentor.id, "skill": skill, "message": message},
        headers={**learner.headers, "Idempotency-Key": key},
    )


def test_same_idempotency_key_and_body_replays_the_same_exchange(client, cast):
    first = post_with_key(client, cast.learner, cast.mentor, "key-1", message="hi")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = post_with_key(client, cast.learner, cast.mentor, "key-1", message="hi")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert listed(client, cast.learner) == [first.json()["id"]]
    assert len(events(client, cast.learner, first.json()["id"])) == 1
    mentor_inbox = inbox(client, cast.mentor)
    assert [n["kind"] for n in mentor_inbox] == ["exchange_requested"]


def test_a_replay_returns_the_exchange_as_it_is_now(client, cast):
    first = post_with_key(client, cast.learner, cast.mentor, "key-1").json()
    ok(act(client, cast.learner, first["id"], "cancel"))
    again = post_with_key(client, cast.learner, cast.mentor, "key-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (again.json()["id"], again.json()["state"]) == (first["id"], "cancelled")


@pytest.mark.parametrize(
    "change", [{"message": "other"}, {"skill": "template-editing"}, {"mentor": "stranger"}]
)
def test_same_idempotency_key_with_another_body_is_422(client, session, settings, cast, change):
    post_with_key(client, cast.learner, cast.mentor, "key-1")
    other_mentor = cast.mentor
    if "mentor" in change:
        other_mentor = person(session, settings, "other", offers=offering("lua"))
    response = post_with_key(
        client,
        cast.learner,
        other_mentor,
        "key-1",
        skill=change.get("skill", "lua"),
        message=change.get("message", ""),
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"header.Idempotency-Key"}
    assert len(listed(client, cast.learner)) == 1


def test_another_idempotency_key_is_another_request(client, cast):
    first = post_with_key(client, cast.learner, cast.mentor, "key-1").json()
    same_pair = post_with_key(client, cast.learner, cast.mentor, "key-2")
    assert same_pair.status_code == 409
    other_skill = post_with_key(client, cast.learner, cast.mentor, "key-3", "template-editing")
    assert other_skill.status_code == 201
    assert other_skill.json()["id"] != first["id"]
    assert "Idempotent-Replayed" not in other_skill.headers


def test_idempotency_keys_belong_to_one_learner(client, cast):
    mine = post_with_key(client, cast.learner, cast.mentor, "shared-key").json()
    theirs = post_with_key(client, cast.stranger, cast.mentor, "shared-key")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine["id"]
    assert theirs.json()["learner"] == cast.stranger.ref


def test_a_refused_request_does_not_use_up_its_key(client, cast):
    refused = post_with_key(client, cast.learner, cast.mentor, "key-1", "photography")
    assert refused.status_code == 422
    accepted = post_with_key(client, cast.learner, cast.mentor, "key-1", "photography")
    assert accepted.status_code == 422
    assert problem_fields(accepted) == {"body.skill"}  # the same check, not a key mismatch
    fresh = post_with_key(client, cast.learner, cast.mentor, "key-2")
    assert fresh.status_code == 201


@pytest.mark.parametrize(("hours", "remembered"), [(23, True), (25, False)])
def test_idempotency_keys_are_remembered_for_24_hours(client, session, cast, hours, remembered):
    first = post_with_key(client, cast.learner, cast.mentor, "key-1").json()
    ok(act(client, cast.learner, first["id"], "cancel"))
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.volunteer_id == cast.learner.id)
        .values(created_at=utcnow() - timedelta(hours=hours))
    )
    session.commit()
    again = post_with_key(client, cast.learner, cast.mentor, "key-1")
    assert again.status_code == 201
    if remembered:
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first["id"]
    else:
        assert "Idempotent-Replayed" not in again.headers
        assert again.json()["id"] != first["id"]
        assert again.json()["state"] == "requested"
        # The key now stands for the new exchange.
        replay = post_with_key(client, cast.learner, cast.mentor, "key-1")
        assert replay.json()["id"] == again.json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_empty_or_overlong_idempotency_key_is_422(client, cast, key):
    response = post_with_key(client, cast.learner, cast.mentor, key)
    assert response.status_code == 422
    assert {field.lower() for field in problem_fields(response)} == {"header.idempotency-key"}


# -- 4. mentor capacity -------------------------------------------------------------------


@pytest.fixture
def busy_mentor(session, settings):
    """A mentor with one slot, two learners asking for it."""
    mentor = person(
        session, settings, "solo", offers=offering("lua"), mentor_capacity=1, languages=ENGLISH
    )
    first = person(session, settings, "first", wants=[{"skill": "lua", "level": 3}])
    second = person(session, settings, "second", wants=[{"skill": "lua", "level": 3}])
    return mentor, first, second


@pytest.mark.parametrize("release", ["complete", "cancel"])
def test_accept_at_capacity_conflicts_until_a_slot_frees(client, busy_mentor, release):
    mentor, first, second = busy_mentor
    first_id = request_exchange(client, first, mentor)["id"]
    second_id = request_exchange(client, second, mentor)["id"]
    assert open_slots(client, first, mentor) == 1

    assert act(client, mentor, first_id, "accept").status_code == 200
    assert open_slots(client, first, mentor) == 0
    full = act(client, mentor, second_id, "accept")
    assert full.status_code == 409
    assert "no open slot" in full.json()["detail"]
    assert read(client, second, second_id)["state"] == "requested"
    assert len(events(client, second, second_id)) == 1
    assert open_slots(client, first, mentor) == 0

    ok(act(client, first, first_id, release))
    assert open_slots(client, second, mentor) == 1
    assert ok(act(client, mentor, second_id, "accept"))["state"] == "accepted"
    assert open_slots(client, second, mentor) == 0


def test_a_mentor_without_capacity_cannot_accept(client, session, settings, cast):
    none = person(session, settings, "none", offers=offering("lua"), mentor_capacity=0)
    exchange_id = request_exchange(client, cast.learner, none)["id"]
    assert act(client, none, exchange_id, "accept").status_code == 409
    ok(client.patch(f"{API}/me/profile", json={"mentor_capacity": 1}, headers=none.headers))
    assert ok(act(client, none, exchange_id, "accept"))["state"] == "accepted"


def test_capacity_cannot_drop_below_accepted_exchanges(client, session, settings, cast):
    mentor = person(session, settings, "duo", offers=offering("lua"), mentor_capacity=2)
    for learner in (cast.learner, cast.stranger):
        ok(act(client, mentor, request_exchange(client, learner, mentor)["id"], "accept"))
    assert open_slots(client, cast.learner, mentor) == 0
    lower = client.patch(f"{API}/me/profile", json={"mentor_capacity": 1}, headers=mentor.headers)
    assert lower.status_code == 422
    assert problem_fields(lower) == {"body.mentor_capacity"}
    assert ok(client.get(f"{API}/me", headers=mentor.headers))["mentor_capacity"] == 2
    replaced = client.put(f"{API}/me/profile", json={"mentor_capacity": 0}, headers=mentor.headers)
    assert replaced.status_code == 422
    assert problem_fields(replaced) == {"body.mentor_capacity"}
    raised = ok(
        client.patch(f"{API}/me/profile", json={"mentor_capacity": 3}, headers=mentor.headers)
    )
    assert (raised["mentor_capacity"], raised["open_slots"]) == (3, 1)


def test_a_full_mentor_drops_out_of_matches(client, busy_mentor):
    client.app.state.matching.poll_interval = 0
    mentor, first, second = busy_mentor
    # Matching needs a shared language.
    second_with_language = client.patch(
        f"{API}/me/profile", json={"languages": ENGLISH}, headers=second.headers
    )
    ok(second_with_language)

    def matched() -> list[int]:
        answer = ok(client.get(f"{API}/me/matches", headers=second.headers))
        return [item["volunteer"]["id"] for item in answer["items"]]

    assert matched() == [mentor.id]
    first_id = request_exchange(client, first, mentor)["id"]
    ok(act(client, mentor, first_id, "accept"))
    assert matched() == []
    ok(act(client, mentor, first_id, "complete"))
    assert matched() == [mentor.id]


# -- 5. expiry ----------------------------------------------------------------------------


def test_an_unanswered_request_reads_as_expired_before_anything_writes_it(
    client, session, settings, cast
):
    ttl = timedelta(days=settings.request_ttl_days)
    stale = request_exchange(client, cast.learner, cast.mentor)["id"]
    recent = request_exchange(client, cast.learner, cast.mentor, "template-editing")["id"]
    age_exchange(session, stale, ttl + timedelta(minutes=1))
    age_exchange(session, recent, ttl - timedelta(hours=1))

    seen = read(client, cast.mentor, stale)
    assert (seen["state"], seen["expires_at"]) == ("expired", None)
    assert read(client, cast.learner, recent)["state"] == "requested"
    assert parse_time(read(client, cast.learner, recent)["expires_at"]) > utcnow()
    assert listed(client, cast.learner, state="expired") == [stale]
    assert listed(client, cast.learner, state="requested") == [recent]
    assert listed(client, cast.mentor, state="expired", **{"as": "mentor"}) == [stale]
    assert stored_state(session, stale) == "requested"  # nothing wrote it yet

    for who, action in [
        (cast.mentor, "accept"),
        (cast.mentor, "decline"),
        (cast.learner, "cancel"),
    ]:
        refused = act(client, who, stale, action)
        assert refused.status_code == 409
        assert "expired" in refused.json()["detail"]
    assert len(events(client, cast.learner, stale)) == 1
    assert stored_state(session, stale) == "requested"


def test_expiry_task_writes_expired_frees_the_learner_and_tells_both(
    client, session, session_factory, settings, cast
):
    settings.max_open_requests = 2
    stale = request_exchange(client, cast.learner, cast.mentor)["id"]
    recent = request_exchange(client, cast.learner, cast.mentor, "template-editing")["id"]
    age_exchange(session, stale, timedelta(days=settings.request_ttl_days, seconds=1))
    assert waiting_count(session, cast.learner) == 2

    assert maintenance.expire_requests(session_factory, settings) == 1

    assert stored_state(session, stale) == "expired"
    assert stored_state(session, recent) == "requested"
    assert waiting_count(session, cast.learner) == 1
    last = events(client, cast.learner, stale)[-1]
    assert last["actor"] is None
    assert (last["from_state"], last["to_state"], last["note"]) == (
        "requested",
        "expired",
        "unanswered",
    )
    assert read(client, cast.learner, stale)["closed_at"] is not None
    for who in (cast.learner, cast.mentor):
        expired = [n for n in inbox(client, who) if n["kind"] == "exchange_expired"]
        assert [n["exchange_id"] for n in expired] == [stale]
        assert "expired" in expired[0]["text"]
    # A place is free again, and the same pair may be asked once more.
    assert request_exchange(client, cast.learner, cast.mentor)["id"] != stale
    # Running again finds nothing more to do.
    assert maintenance.expire_requests(session_factory, settings) == 0


def test_a_new_request_may_follow_one_that_expired_unwritten(client, session, settings, cast):
    settings.max_open_requests = 1
    stale = request_exchange(client, cast.learner, cast.mentor)["id"]
    age_exchange(session, stale, timedelta(days=settings.request_ttl_days, minutes=1))
    again = request_exchange(client, cast.learner, cast.mentor)
    assert again["id"] != stale
    assert stored_state(session, stale) == "expired"
    assert waiting_count(session, cast.learner) == 1


def test_an_accepted_exchange_never_expires(client, session, session_factory, settings, cast):
    exchange_id = request_exchange(client, cast.learner, cast.mentor)["id"]
    ok(act(client, cast.mentor, exchange_id, "accept"))
    age_exchange(session, exchange_id, timedelta(days=settings.request_ttl_days * 3))
    assert read(client, cast.learner, exchange_id)["state"] == "accepted"
    assert maintenance.expire_requests(session_factory, settings) == 0
    assert ok(act(client, cast.learner, exchange_id, "complete"))["state"] == "completed"


# -- 6. feedback --------------------------------------------------------------------------


def give_feedback(client, who: Person, exchange_id: int, rating: int = 5, comment: str = ""):
    return client.post(
        f"{EXCHANGES}/{exchange_id}/feedback",
        json={"rating": rating, "comment": comment},
        headers=who.headers,
    )


@pytest.mark.parametrize("steps", [[], [("mentor", "accept")], [("mentor", "decline")]])
def test_feedback_before_completion_conflicts(client, cast, steps):
    exchange_id = request_exchange(client, cast.learner, cast.mentor)["id"]
    for role, action in steps:
        ok(act(client, cast[role], exchange_id, action))
    for who in (cast.learner, cast.mentor):
        assert give_feedback(client, who, exchange_id).status_code == 409


def test_each_participant_gives_feedback_once_after_completion(client, cast):
    exchange_id = completed(client, cast.learner, cast.mentor)
    from_learner = give_feedback(client, cast.learner, exchange_id, 4, "clear and patient")
    assert from_learner.status_code == 201, from_learner.text
    body = from_learner.json()
    assert {k: body[k] for k in ("exchange_id", "rating", "comment", "author_role")} == {
        "exchange_id": exchange_id,
        "rating": 4,
        "comment": "clear and patient",
        "author_role": "learner",
    }
    assert body["created_at"].endswith("Z")
    from_mentor = give_feedback(client, cast.mentor, exchange_id, 5)
    assert from_mentor.status_code == 201
    assert from_mentor.json()["author_role"] == "mentor"
    for who in (cast.learner, cast.mentor):
        twice = give_feedback(client, who, exchange_id, 1)
        assert twice.status_code == 409


def test_feedback_from_outside_the_exchange_is_refused(client, cast):
    exchange_id = completed(client, cast.learner, cast.mentor)
    assert give_feedback(client, cast.stranger, exchange_id).status_code == 404
    assert give_feedback(client, cast.coordinator, exchange_id).status_code == 403
    assert give_feedback(client, cast.learner, exchange_id + 1000).status_code == 404


@pytest.mark.parametrize(
    "body", [{"rating": 0}, {"rating": 6}, {"rating": "five"}, {}, {"rating": 2.5}]
)
def test_feedback_rating_must_be_1_to_5(client, cast, body):
    exchange_id = completed(client, cast.learner, cast.mentor)
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/feedback", json=body, headers=cast.learner.headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.rating"}
    assert give_feedback(client, cast.learner, exchange_id, 3).status_code == 201


def test_mentor_rating_shows_from_three_learners_and_ignores_mentors_ratings(
    client, session, settings, cast
):
    mentor = person(session, settings, "rated", offers=offering("lua"), mentor_capacity=5)
    learners = [person(session, settings, f"pupil{n}") for n in range(3)]
    teacher = person(session, settings, "teacher", offers=offering("photography"))

    def rating(volunteer: Person) -> Any:
        return ok(client.get(f"{API}/volunteers/{volunteer.id}", headers=cast.stranger.headers))[
            "rating"
        ]

    for learner, stars in zip(learners[:2], (5, 4), strict=True):
        exchange_id = completed(client, learner, mentor)
        assert give_feedback(client, learner, exchange_id, stars).status_code == 201
        assert give_feedback(client, mentor, exchange_id, 2).status_code == 201
    # The mentor learns photography elsewhere; that teacher's rating of them is not a
    # learner's rating of their mentoring.
    lesson = completed(client, mentor, teacher, "photography")
    assert give_feedback(client, teacher, lesson, 1).status_code == 201
    assert rating(mentor) is None
    # A mentor's ratings of their learners do not make the learners rated mentors.
    assert rating(learners[0]) is None

    third = completed(client, learners[2], mentor)
    assert give_feedback(client, learners[2], third, 3).status_code == 201
    assert rating(mentor) == {"average": 4.0, "count": 3}
    assert ok(client.get(f"{API}/me", headers=mentor.headers))["rating"] == {
        "average": 4.0,
        "count": 3,
    }
    assert rating(teacher) is None


# -- 8. deactivation ----------------------------------------------------------------------


def test_deactivation_cancels_open_exchanges_and_keeps_the_past(client, session, settings):
    leaving = person(session, settings, "leaving", offers=offering("photography"))
    mentors = [person(session, settings, f"m{n}", offers=offering("lua")) for n in range(2)]
    learners = [person(session, settings, f"l{n}") for n in range(4)]

    past = completed(client, learners[0], leaving, "photography")
    waiting_as_learner = request_exchange(client, leaving, mentors[0])["id"]
    taken_as_learner = request_exchange(client, leaving, mentors[1])["id"]
    ok(act(client, mentors[1], taken_as_learner, "accept"))
    waiting_as_mentor = request_exchange(client, learners[1], leaving, "photography")["id"]
    taken_as_mentor = request_exchange(client, learners[2], leaving, "photography")["id"]
    ok(act(client, leaving, taken_as_mentor, "accept"))
    stale = request_exchange(client, learners[3], leaving, "photography")["id"]
    age_exchange(session, stale, timedelta(days=settings.request_ttl_days, minutes=1))
    assert open_slots(client, learners[0], mentors[1]) == 1

    assert client.delete(f"{API}/me", headers=leaving.headers).status_code == 204

    others = {
        waiting_as_learner: mentors[0],
        taken_as_learner: mentors[1],
        waiting_as_mentor: learners[1],
        taken_as_mentor: learners[2],
    }
    for exchange_id, other in others.items():
        assert read(client, other, exchange_id)["state"] == "cancelled"
        last = events(client, other, exchange_id)[-1]
        assert last["actor"] == leaving.ref
        assert last["to_state"] == "cancelled"
        assert "deactivated" in last["note"]
        told = [n for n in inbox(client, other) if n["kind"] == "exchange_cancelled"]
        assert [n["exchange_id"] for n in told] == [exchange_id]
        assert "deactivated" in told[0]["text"]
    assert open_slots(client, learners[0], mentors[1]) == 2
    accepted = select(Volunteer.accepted_as_mentor).where(Volunteer.id == leaving.id)
    assert session.scalar(accepted) == 0
    assert waiting_count(session, leaving) == 0
    # The past stays as it was; a stale request is expired, not cancelled.
    assert read(client, learners[0], past)["state"] == "completed"
    assert read(client, learners[0], past)["mentor"] == leaving.ref
    assert read(client, learners[3], stale)["state"] == "expired"
    assert stored_state(session, stale) == "expired"


# -- 9. listing ---------------------------------------------------------------------------


def test_list_my_exchanges_by_side_and_state_newest_first(client, session, settings, cast):
    me = person(session, settings, "me", offers=offering("photography"))
    as_learner = [
        request_exchange(client, me, cast.mentor, skill)["id"]
        for skill in ("lua", "template-editing")
    ]
    as_mentor = request_exchange(client, cast.learner, me, "photography")["id"]
    request_exchange(client, cast.stranger, cast.mentor)  # not mine
    ok(act(client, cast.mentor, as_learner[0], "accept"))

    assert listed(client, me) == [as_mentor, as_learner[1], as_learner[0]]
    assert listed(client, me, **{"as": "learner"}) == [as_learner[1], as_learner[0]]
    assert listed(client, me, **{"as": "mentor"}) == [as_mentor]
    assert listed(client, me, state="accepted") == [as_learner[0]]
    assert listed(client, me, state="requested", **{"as": "learner"}) == [as_learner[1]]
    assert listed(client, me, state="completed") == []
    items = ok(client.get(EXCHANGES, headers=me.headers))["items"]
    assert items[0]["learner"] == cast.learner.ref
    assert items[0]["mentor"] == me.ref


def test_list_pages_with_a_cursor(client, session, settings, cast):
    teacher = person(
        session,
        settings,
        "teacher",
        offers=offering("lua", "template-editing", "photography", "task-tracking"),
    )
    made = [
        request_exchange(client, cast.learner, teacher, skill)["id"]
        for skill in ("lua", "template-editing", "photography", "task-tracking")
    ]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = ok(client.get(EXCHANGES, params=params, headers=cast.learner.headers))
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == sorted(made, reverse=True)


def test_everyone_s_exchanges_are_for_coordinators(client, cast):
    first = request_exchange(client, cast.learner, cast.mentor)["id"]
    second = request_exchange(client, cast.stranger, cast.mentor)["id"]
    forbidden = client.get(EXCHANGES, params={"scope": "all"}, headers=cast.learner.headers)
    assert forbidden.status_code == 403
    assert listed(client, cast.coordinator, scope="all") == [second, first]
    assert listed(client, cast.coordinator) == []
    assert listed(client, cast.coordinator, scope="all", state="accepted") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "open"}, "query.state"),
        ({"as": "teacher"}, "query.as"),
        ({"scope": "everyone"}, "query.scope"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
    ],
)
def test_bad_list_parameters_are_422(client, cast, params, field):
    response = client.get(EXCHANGES, params=params, headers=cast.learner.headers)
    assert response.status_code == 422
    assert problem_fields(response) == {field}


def test_scope_all_with_a_side_is_422(client, cast):
    response = client.get(
        EXCHANGES, params={"scope": "all", "as": "learner"}, headers=cast.coordinator.headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"query.as"}
