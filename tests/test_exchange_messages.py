"""An exchange's message thread through the API, on both databases: both participants write
and read it, oldest first and paged, the other side is told, nobody else sees it, and it is
read-only once the exchange is closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from capex import migrate
from capex.config import Settings
from capex.db import open_database
from capex.errors import Conflict
from capex.models import Exchange, Volunteer
from capex.models.base import utcnow
from capex.services import maintenance
from capex.services.exchanges import apply, post_message, request, thread
from capex.testing import throwaway_database
from capex.vocabulary import ExchangeAction
from tests.conftest import settings_for
from tests.factories import Person, auth_headers, make_volunteer, problem_fields

API = "/api/v1"
EXCHANGES = f"{API}/exchanges"


def person(session, settings, name, **profile) -> Person:
    volunteer = make_volunteer(session, name, **profile)
    return Person(volunteer.id, volunteer.username, auth_headers(session, settings, volunteer))


@dataclass(frozen=True)
class Cast:
    learner: Person
    mentor: Person
    stranger: Person
    coordinator: Person


@pytest.fixture
def cast(session, settings) -> Cast:
    return Cast(
        learner=person(session, settings, "learner"),
        mentor=person(session, settings, "mentor", offers=[{"skill": "lua", "level": 3}]),
        stranger=person(session, settings, "stranger"),
        coordinator=person(session, settings, "coordinator", role="coordinator"),
    )


def ok(response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def request_exchange(client: TestClient, cast: Cast) -> int:
    response = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"}, headers=cast.learner.headers
    )
    return int(ok(response)["id"])


def act(client: TestClient, who: Person, exchange_id: int, action: str) -> None:
    ok(client.post(f"{EXCHANGES}/{exchange_id}/{action}", headers=who.headers))


@pytest.fixture
def exchange_id(client, cast) -> int:
    """An accepted exchange between the cast's learner and mentor, about Lua."""
    exchange_id = request_exchange(client, cast)
    act(client, cast.mentor, exchange_id, "accept")
    return exchange_id


def write(client: TestClient, who: Person, exchange_id: int, body: Any):
    return client.post(
        f"{EXCHANGES}/{exchange_id}/messages", json={"body": body}, headers=who.headers
    )


def read(client: TestClient, who: Person, exchange_id: int, **params: Any):
    return client.get(f"{EXCHANGES}/{exchange_id}/messages", params=params, headers=who.headers)


def whole_thread(client: TestClient, who: Person, exchange_id: int, limit: int) -> list[str]:
    """Every body of the thread, following next_cursor page by page."""
    bodies: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = ok(read(client, who, exchange_id, **params))
        assert len(page["items"]) <= limit
        bodies += [item["body"] for item in page["items"]]
        if page["next_cursor"] is None:
            return bodies
        params["cursor"] = page["next_cursor"]


def inbox(client: TestClient, who: Person) -> list[dict[str, Any]]:
    return ok(client.get(f"{API}/me/notifications", headers=who.headers))["items"]


def age_exchange(session: Session, exchange_id: int, age: timedelta) -> None:
    session.execute(
        update(Exchange).where(Exchange.id == exchange_id).values(created_at=utcnow() - age)
    )
    session.commit()


# -- writing and reading ---------------------------------------------------------------------


def test_both_participants_write_and_read_one_thread_oldest_first(client, cast, exchange_id):
    first = ok(write(client, cast.learner, exchange_id, "  Hello, when are you free?  "))
    assert first["exchange_id"] == exchange_id
    assert first["author"] == cast.learner.ref
    assert first["body"] == "Hello, when are you free?"
    assert first["created_at"].endswith("Z")
    second = ok(write(client, cast.mentor, exchange_id, "Tuesdays.\nAfter 18:00 UTC."))
    assert second["author"] == cast.mentor.ref
    for reader in (cast.learner, cast.mentor):
        page = ok(read(client, reader, exchange_id))
        assert page == {"items": [first, second], "next_cursor": None}


def test_posting_answers_201_with_the_message(client, cast, exchange_id):
    response = write(client, cast.mentor, exchange_id, "welcome")
    assert response.status_code == 201
    assert set(response.json()) == {"id", "exchange_id", "author", "body", "created_at"}


def test_a_waiting_request_can_already_be_talked_about(client, cast):
    exchange_id = request_exchange(client, cast)
    ok(write(client, cast.mentor, exchange_id, "what do you want to learn first?"))
    ok(write(client, cast.learner, exchange_id, "modules"))
    assert whole_thread(client, cast.learner, exchange_id, 20) == [
        "what do you want to learn first?",
        "modules",
    ]


def test_the_thread_pages_in_order_without_gaps_or_repeats(client, cast, exchange_id):
    sent = [f"message {n}" for n in range(7)]
    for n, body in enumerate(sent):
        ok(write(client, cast.learner if n % 2 else cast.mentor, exchange_id, body))
    for limit in (1, 2, 3, 7, 100):
        assert whole_thread(client, cast.mentor, exchange_id, limit) == sent
    first = ok(read(client, cast.learner, exchange_id, limit=3))
    assert [item["body"] for item in first["items"]] == sent[:3]
    assert first["next_cursor"] is not None


def test_an_exchange_without_messages_has_an_empty_thread(client, cast, exchange_id):
    assert ok(read(client, cast.learner, exchange_id)) == {"items": [], "next_cursor": None}


def test_threads_of_two_exchanges_stay_apart(client, session, settings, cast, exchange_id):
    other_learner = person(session, settings, "other")
    other = client.post(
        EXCHANGES, json={"mentor_id": cast.mentor.id, "skill": "lua"}, headers=other_learner.headers
    )
    other_id = ok(other)["id"]
    ok(write(client, cast.learner, exchange_id, "mine"))
    ok(write(client, other_learner, other_id, "theirs"))
    assert whole_thread(client, cast.mentor, exchange_id, 20) == ["mine"]
    assert whole_thread(client, cast.mentor, other_id, 20) == ["theirs"]
    # The other learner takes no part in the first exchange.
    assert read(client, other_learner, exchange_id).status_code == 404


def test_a_cursor_that_is_not_ours_is_422(client, cast, exchange_id):
    response = read(client, cast.learner, exchange_id, cursor="garbage")
    assert response.status_code == 422
    assert problem_fields(response) == {"query.cursor"}


# -- notifications ---------------------------------------------------------------------------


def test_the_other_side_is_told_of_each_message(client, cast, exchange_id):
    before_learner = len(inbox(client, cast.learner))
    ok(write(client, cast.learner, exchange_id, "Could we look at Scribunto modules?"))
    newest = inbox(client, cast.mentor)[0]
    assert (newest["kind"], newest["exchange_id"], newest["read"]) == (
        "message_received",
        exchange_id,
        False,
    )
    assert newest["text"] == "Learner wrote about Lua: Could we look at Scribunto modules?"
    # The author is not told of their own message.
    assert len(inbox(client, cast.learner)) == before_learner
    ok(write(client, cast.mentor, exchange_id, "sure"))
    assert inbox(client, cast.learner)[0]["text"] == "Mentor wrote about Lua: sure"


def test_a_long_message_is_quoted_by_its_first_80_characters(client, cast, exchange_id):
    body = "word " * 100
    ok(write(client, cast.learner, exchange_id, body))
    text = inbox(client, cast.mentor)[0]["text"]
    assert text == f"Learner wrote about Lua: {body[:80]}…"
    lines = "first line\nsecond line"
    ok(write(client, cast.learner, exchange_id, lines))
    assert (
        inbox(client, cast.mentor)[0]["text"] == "Learner wrote about Lua: first line second line"
    )


# -- who may --------------------------------------------------------------------------------


def test_a_stranger_is_answered_as_if_the_exchange_did_not_exist(client, cast, exchange_id):
    ok(write(client, cast.learner, exchange_id, "private"))
    for response in (
        read(client, cast.stranger, exchange_id),
        write(client, cast.stranger, exchange_id, "let me in"),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == f"no exchange with id {exchange_id}"
    assert len(whole_thread(client, cast.learner, exchange_id, 20)) == 1


def test_a_coordinator_who_sees_the_exchange_is_refused_its_messages(client, cast, exchange_id):
    ok(write(client, cast.learner, exchange_id, "private"))
    assert ok(client.get(f"{EXCHANGES}/{exchange_id}", headers=cast.coordinator.headers))
    for response in (
        read(client, cast.coordinator, exchange_id),
        write(client, cast.coordinator, exchange_id, "hello from the office"),
    ):
        assert response.status_code == 403
        assert response.json()["detail"] == "messages are private to the learner and the mentor"
    assert whole_thread(client, cast.learner, exchange_id, 20) == ["private"]


def test_an_unknown_exchange_is_404(client, cast):
    assert read(client, cast.learner, 2**40).status_code == 404
    assert write(client, cast.learner, 2**40, "anyone?").status_code == 404


def test_without_a_token_it_is_401(client, exchange_id):
    for response in (
        client.get(f"{EXCHANGES}/{exchange_id}/messages"),
        client.post(f"{EXCHANGES}/{exchange_id}/messages", json={"body": "hi"}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


# -- closed exchanges ------------------------------------------------------------------------

# How each closed state is reached from a new request: (who, action) in turn.
CLOSING: dict[str, tuple[tuple[str, str], ...]] = {
    "declined": (("mentor", "decline"),),
    "cancelled-waiting": (("learner", "cancel"),),
    "cancelled-accepted": (("mentor", "accept"), ("mentor", "cancel")),
    "completed": (("mentor", "accept"), ("learner", "complete")),
    "expired": (),
    "expired-written": (),
}


@pytest.mark.parametrize("label", CLOSING)
def test_a_closed_exchange_keeps_its_thread_read_only(client, session, settings, cast, label):
    exchange_id = request_exchange(client, cast)
    ok(write(client, cast.learner, exchange_id, "before"))
    for role, action in CLOSING[label]:
        act(client, getattr(cast, role), exchange_id, action)
    if label.startswith("expired"):
        # Past the time to live: closed even before the periodic task writes it.
        age_exchange(session, exchange_id, timedelta(days=settings.request_ttl_days, minutes=1))
    if label == "expired-written":
        assert maintenance.expire_requests(client.app.state.session_factory, settings) == 1
    told = len(inbox(client, cast.mentor))
    for author in (cast.learner, cast.mentor):
        refused = write(client, author, exchange_id, "after")
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == "this exchange is closed; its messages are read-only"
    assert len(inbox(client, cast.mentor)) == told
    for reader in (cast.learner, cast.mentor):
        assert whole_thread(client, reader, exchange_id, 20) == ["before"]


def test_a_request_just_inside_its_time_to_live_still_takes_messages(
    client, session, settings, cast
):
    exchange_id = request_exchange(client, cast)
    age_exchange(session, exchange_id, timedelta(days=settings.request_ttl_days, minutes=-5))
    ok(write(client, cast.learner, exchange_id, "still there?"))


def test_the_service_reads_the_time_to_live_on_the_clock_it_is_given(
    client, session, settings, cast
):
    exchange_id = request_exchange(client, cast)
    learner = session.get_one(Volunteer, cast.learner.id)
    created = session.get_one(Exchange, exchange_id).created_at
    ttl = timedelta(days=settings.request_ttl_days)
    sent = post_message(session, settings, exchange_id, learner, "in time", now=created + ttl / 2)
    assert sent.created_at == created + ttl / 2
    with pytest.raises(Conflict, match="closed"):
        post_message(session, settings, exchange_id, learner, "too late", now=created + ttl)
    page = thread(session, exchange_id, learner, limit=10, after_id=None)
    assert ([item.body for item in page.items], page.more) == (["in time"], False)


# -- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t ", id="blank"),
        pytest.param("x" * 4001, id="too-long"),
        pytest.param("bell\x07", id="control-character"),
        pytest.param("carriage\rreturn", id="carriage-return"),
        pytest.param("nul\x00", id="nul"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
    ],
)
def test_a_bad_body_is_422_naming_body(client, cast, exchange_id, body):
    response = write(client, cast.learner, exchange_id, body)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == {"body.body"}
    assert ok(read(client, cast.learner, exchange_id))["items"] == []


def test_a_message_of_4000_characters_and_tabs_is_taken(client, cast, exchange_id):
    longest = "é" * 4000
    assert ok(write(client, cast.learner, exchange_id, longest))["body"] == longest
    tabbed = "a\tb\nc"
    assert ok(write(client, cast.learner, exchange_id, tabbed))["body"] == tabbed


def test_a_body_with_other_fields_or_none_is_422(client, cast, exchange_id):
    extra = client.post(
        f"{EXCHANGES}/{exchange_id}/messages",
        json={"body": "hi", "to": cast.mentor.id},
        headers=cast.learner.headers,
    )
    assert extra.status_code == 422
    assert problem_fields(extra) == {"body.to"}
    missing = client.post(
        f"{EXCHANGES}/{exchange_id}/messages", json={}, headers=cast.learner.headers
    )
    assert missing.status_code == 422
    assert problem_fields(missing) == {"body.body"}


# -- concurrent writers (PostgreSQL: SQLite's writers queue for the whole database) ---------


def waits_for_a_lock(session: Session, attempt) -> None:
    """``attempt(session)`` has to wait for a lock (and gives up after 200 ms)."""
    session.execute(text("SET LOCAL lock_timeout = '200ms'"))
    try:
        with pytest.raises(OperationalError, match="lock timeout"):
            attempt(session)
    finally:
        session.rollback()


@pytest.mark.slow
def test_on_postgresql_messages_and_transitions_of_one_exchange_wait_for_each_other(tmp_path):
    with throwaway_database("postgresql", tmp_path) as url:
        migrate.upgrade(url)
        settings = settings_for(url)
        with open_database(url) as factory:
            learner_id, mentor_id, exchange_id = accepted_exchange(factory, settings)

            def message(session: Session) -> None:
                learner = session.get_one(Volunteer, learner_id)
                post_message(session, settings, exchange_id, learner, "hello")

            def cancel(session: Session) -> None:
                mentor = session.get_one(Volunteer, mentor_id)
                apply(session, settings, exchange_id, ExchangeAction.CANCEL, mentor)

            with factory() as writing, factory() as other:
                message(writing)
                # The exchange cannot close under a message being written...
                waits_for_a_lock(other, cancel)
                # ... and a second message takes its id after the first one commits.
                waits_for_a_lock(other, message)
                writing.commit()
            with factory() as closing, factory() as writing:
                cancel(closing)
                # A message waits for the closing transition, instead of slipping in.
                waits_for_a_lock(writing, message)
                closing.commit()
            with factory() as writing, pytest.raises(Conflict):
                message(writing)
            with factory() as reading:
                learner = reading.get_one(Volunteer, learner_id)
                page = thread(reading, exchange_id, learner, limit=10, after_id=None)
                assert [item.body for item in page.items] == ["hello"]


def accepted_exchange(factory: sessionmaker[Session], settings: Settings) -> tuple[int, int, int]:
    """A learner, a mentor and an accepted exchange between them, committed: their ids."""
    with factory() as session:
        learner = make_volunteer(session, "learner")
        mentor = make_volunteer(session, "mentor", offers=[{"skill": "lua", "level": 3}])
        created = request(session, settings, learner, mentor_id=mentor.id, skill="lua", message="")
        apply(session, settings, created.exchange.id, ExchangeAction.ACCEPT, mentor)
        session.commit()
        return learner.id, mentor.id, created.exchange.id
