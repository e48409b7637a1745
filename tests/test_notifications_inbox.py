"""The in-app inbox (GET /me/notifications, POST /me/notifications/read), on both databases:
who is told what when an exchange moves, newest first, paging, and marking read."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import auth_headers, make_volunteer, problem_fields

API = "/api/v1"
EXCHANGES = f"{API}/exchanges"
INBOX = f"{API}/me/notifications"
SKILLS = ("lua", "template-editing", "photography", "task-tracking", "risk-management")


@pytest.fixture
def pair(session, settings):
    """A learner and a mentor who offers every skill in SKILLS: (ids, headers) each."""
    learner = make_volunteer(session, "learner")
    mentor = make_volunteer(
        session, "mentor", offers=[{"skill": skill, "level": 3} for skill in SKILLS]
    )
    return (
        (learner.id, auth_headers(session, settings, learner)),
        (mentor.id, auth_headers(session, settings, mentor)),
    )


def request(client, learner_headers, mentor_id, skill="lua") -> int:
    response = client.post(
        EXCHANGES, json={"mentor_id": mentor_id, "skill": skill}, headers=learner_headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def act(client, headers, exchange_id, action, reason=None) -> None:
    body = None if reason is None else {"reason": reason}
    response = client.post(f"{EXCHANGES}/{exchange_id}/{action}", json=body, headers=headers)
    assert response.status_code == 200, response.text


def page(client, headers, **params) -> dict[str, Any]:
    response = client.get(INBOX, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def kinds(client, headers) -> list[tuple[str, int | None]]:
    return [(item["kind"], item["exchange_id"]) for item in page(client, headers)["items"]]


def mark_read(client, headers, ids=None) -> int:
    body = None if ids is None else {"ids": ids}
    response = client.post(f"{INBOX}/read", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["unread_count"])


def test_a_request_tells_the_mentor(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    exchange_id = request(client, learner, mentor_id)
    answer = page(client, mentor)
    assert answer["unread_count"] == 1
    assert answer["next_cursor"] is None
    (item,) = answer["items"]
    assert (item["kind"], item["exchange_id"], item["read"]) == (
        "exchange_requested",
        exchange_id,
        False,
    )
    assert "Learner" in item["text"]
    assert "lua" in item["text"]
    assert item["created_at"].endswith("Z")
    assert set(item) == {"id", "kind", "text", "exchange_id", "created_at", "read"}
    assert page(client, learner) == {"items": [], "next_cursor": None, "unread_count": 0}


def test_accept_and_complete_tell_the_other_side(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    exchange_id = request(client, learner, mentor_id)
    act(client, mentor, exchange_id, "accept")
    assert kinds(client, learner) == [("exchange_accepted", exchange_id)]
    assert "Mentor accepted" in page(client, learner)["items"][0]["text"]
    act(client, learner, exchange_id, "complete")
    assert kinds(client, mentor) == [
        ("exchange_completed", exchange_id),
        ("exchange_requested", exchange_id),
    ]
    assert kinds(client, learner) == [("exchange_accepted", exchange_id)]


@pytest.mark.parametrize(
    ("actor", "action", "kind", "accept_first"),
    [
        ("mentor", "decline", "exchange_declined", False),
        ("learner", "cancel", "exchange_cancelled", False),
        ("mentor", "cancel", "exchange_cancelled", False),
        ("learner", "cancel", "exchange_cancelled", True),
    ],
)
def test_decline_and_cancel_tell_the_other_side_why(
    client, pair, actor, action, kind, accept_first
):
    (_, learner), (mentor_id, mentor) = pair
    headers = {"learner": learner, "mentor": mentor}
    other = mentor if actor == "learner" else learner
    exchange_id = request(client, learner, mentor_id)
    if accept_first:
        act(client, mentor, exchange_id, "accept")
    told_before = len(page(client, headers[actor])["items"])
    act(client, headers[actor], exchange_id, action, reason="moving house this month")
    newest = page(client, other)["items"][0]
    assert (newest["kind"], newest["exchange_id"]) == (kind, exchange_id)
    assert "moving house this month" in newest["text"]
    assert len(page(client, headers[actor])["items"]) == told_before  # not told of itself


def test_without_a_reason_the_text_has_none(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    exchange_id = request(client, learner, mentor_id)
    act(client, mentor, exchange_id, "decline")
    text = page(client, learner)["items"][0]["text"]
    assert "()" not in text
    assert "declined" in text


def test_feedback_tells_the_one_rated(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    exchange_id = request(client, learner, mentor_id)
    act(client, mentor, exchange_id, "accept")
    act(client, mentor, exchange_id, "complete")
    response = client.post(
        f"{EXCHANGES}/{exchange_id}/feedback", json={"rating": 4}, headers=learner
    )
    assert response.status_code == 201
    newest = page(client, mentor)["items"][0]
    assert (newest["kind"], newest["exchange_id"]) == ("feedback_received", exchange_id)
    assert "4 of 5" in newest["text"]
    assert kinds(client, learner)[0][0] == "exchange_completed"


def test_inbox_is_newest_first_and_pages_with_a_cursor(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    made = [request(client, learner, mentor_id, skill) for skill in SKILLS]
    everything = page(client, mentor)["items"]
    assert [item["exchange_id"] for item in everything] == made[::-1]
    ids = [item["id"] for item in everything]
    assert ids == sorted(ids, reverse=True)

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        answer = page(client, mentor, **params)
        assert answer["unread_count"] == 5
        assert len(answer["items"]) <= 2
        seen += [item["id"] for item in answer["items"]]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert (pages, seen) == (3, ids)


def test_mark_some_read_then_all(client, pair):
    (_, learner), (mentor_id, mentor) = pair
    for skill in SKILLS[:4]:
        request(client, learner, mentor_id, skill)
    ids = [item["id"] for item in page(client, mentor)["items"]]
    assert mark_read(client, mentor, ids[:2]) == 2
    answer = page(client, mentor)
    assert answer["unread_count"] == 2
    assert [item["read"] for item in answer["items"]] == [True, True, False, False]
    unread = page(client, mentor, unread="true")
    assert [item["id"] for item in unread["items"]] == ids[2:]
    assert mark_read(client, mentor, ids[:2]) == 2  # marking again changes nothing
    assert mark_read(client, mentor, []) == 2  # an empty list marks none
    assert mark_read(client, mentor) == 0  # no body: all of them
    assert all(item["read"] for item in page(client, mentor)["items"])
    assert page(client, mentor, unread="true")["items"] == []


def test_nobody_sees_or_marks_another_s_notifications(client, session, settings, pair):
    (_, learner), (mentor_id, mentor) = pair
    exchange_id = request(client, learner, mentor_id)
    act(client, mentor, exchange_id, "accept")
    mentor_ids = [item["id"] for item in page(client, mentor)["items"]]
    learner_ids = [item["id"] for item in page(client, learner)["items"]]
    assert set(mentor_ids).isdisjoint(learner_ids)

    outsider = make_volunteer(session, "outsider")
    outsider_headers = auth_headers(session, settings, outsider)
    assert page(client, outsider_headers)["items"] == []
    assert mark_read(client, outsider_headers, mentor_ids + learner_ids) == 0
    assert mark_read(client, learner, mentor_ids) == 1  # the learner's own stays unread
    assert page(client, mentor)["unread_count"] == 1
    assert page(client, learner)["unread_count"] == 1
    assert mark_read(client, outsider_headers) == 0
    assert page(client, mentor)["unread_count"] == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"unread": "maybe"}, "query.unread"),
    ],
)
def test_bad_inbox_parameters_are_422(client, pair, params, field):
    (_, learner), _ = pair
    response = client.get(INBOX, params=params, headers=learner)
    assert response.status_code == 422
    assert problem_fields(response) == {field}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"ids": [0]}, "body.ids.0"), ({"ids": "all"}, "body.ids"), ({"all": True}, "body.all")],
)
def test_bad_mark_read_bodies_are_422(client, pair, body, field):
    (_, learner), _ = pair
    response = client.post(f"{INBOX}/read", json=body, headers=learner)
    assert response.status_code == 422
    assert problem_fields(response) == {field}


def test_the_inbox_needs_sign_in(client):
    assert client.get(INBOX).status_code == 401
    assert client.post(f"{INBOX}/read").status_code == 401
