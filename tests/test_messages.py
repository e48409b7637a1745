"""Every message the API can give reads as written: no unfilled placeholder, no 'declineed'.

Two ways: the message templates in the source are checked for the mistakes that leave a
placeholder unfilled or glue a suffix to a word, and the API is driven with a bad input
for each validator and rule, and every ``detail`` and ``errors[].msg`` it answers is read.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

import capex
from capex.models import Exchange
from capex.models.base import utcnow
from tests.factories import auth_headers, make_volunteer

API = "/api/v1"
SOURCE = Path(capex.__file__).parent

# Words that do end in "eed"; anything else ending so is a verb in "e" given "ed" twice.
REAL_EED_WORDS = {
    "agreed",
    "deed",
    "exceed",
    "feed",
    "freed",
    "guaranteed",
    "indeed",
    "need",
    "proceed",
    "seed",
    "speed",
    "succeed",
}


def message_mistakes(message: str) -> list[str]:
    """What is wrong with a message a person reads: leftovers of a template, misspellings."""
    mistakes = [f"holds {token!r}" for token in ("{", "}", "!r") if token in message]
    mistakes += [
        f"misspells {word!r}"
        for word in re.findall(r"[A-Za-z]+eed\b", message)
        if word.lower() not in REAL_EED_WORDS
    ]
    return mistakes


def test_the_mistake_finder_finds_the_old_mistakes():
    assert message_mistakes("language {value!r} is given twice (items 0 and 1)")
    assert message_mistakes("the exchange is declined; it cannot be declineed")
    assert message_mistakes("it cannot be completeed")
    assert not message_mistakes("the exchange is declined; it cannot be accepted")
    assert not message_mistakes("more feedback is needed to proceed")


# The templates in the source


def source_files() -> Iterator[Path]:
    yield from sorted(SOURCE.rglob("*.py"))


def custom_error_calls() -> Iterator[tuple[str, ast.Call]]:
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "PydanticCustomError"
            ):
                yield f"{path.relative_to(SOURCE)}:{node.lineno}", node


def test_the_source_has_custom_error_templates_to_check():
    assert len(list(custom_error_calls())) >= 5


def test_every_custom_error_template_fills_each_placeholder():
    # PydanticCustomError formats "{name}" from its context; "{name!r}", "{name:>3}" and
    # "{name.attr}" are left in the message as they stand.
    problems = []
    for where, call in custom_error_calls():
        template = call.args[1]
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            problems.append(f"{where}: the template is not a literal")
            continue
        context = call.args[2] if len(call.args) > 2 else None
        keys = (
            {key.value for key in context.keys if isinstance(key, ast.Constant)}
            if isinstance(context, ast.Dict)
            else set()
        )
        for _, field, spec, conversion in string.Formatter().parse(template.value):
            if field is None:
                continue
            if conversion or spec or not field.isidentifier():
                problems.append(f"{where}: {{{field}!{conversion}:{spec}}} is not filled")
            elif field not in keys:
                problems.append(f"{where}: {{{field}}} has no value in the context")
    assert problems == []


def test_no_message_glues_a_suffix_to_a_placeholder():
    # f"cannot be {action}ed" made "declineed": inflect with a word, not a suffix.
    glued = []
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.JoinedStr):
                continue
            for before, after in zip(node.values, node.values[1:], strict=False):
                if (
                    isinstance(before, ast.FormattedValue)
                    and isinstance(after, ast.Constant)
                    and re.match(r"(ed|d|ing|s)\b", str(after.value))
                ):
                    glued.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    assert glued == []


# The messages the API answers


@pytest.fixture
def people(session, settings) -> dict[str, Any]:
    coordinator = make_volunteer(session, "msgcoord", role="coordinator")
    learner = make_volunteer(session, "msglearner")
    mentor = make_volunteer(
        session,
        "msgmentor",
        offers=[{"skill": "lua", "level": 3}, {"skill": "photography", "level": 2}],
    )
    return {
        "coordinator": auth_headers(session, settings, coordinator),
        "learner": auth_headers(session, settings, learner),
        "mentor": auth_headers(session, settings, mentor),
        "mentor_id": mentor.id,
        "learner_id": learner.id,
    }


def messages(response: Any) -> list[str]:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return []
    problem = response.json()
    return [problem["detail"], *(error["msg"] for error in problem.get("errors") or [])]


SLOT = {"weekday": 0, "start": "09:00", "end": "10:00"}

# Each body breaks at least one rule of the profile schema.
BAD_PROFILES: list[dict[str, Any]] = [
    {"timezone": "Mars/Olympus"},
    {"timezone": "posixrules"},
    {"region": "atlantis"},
    {"languages": [{"code": "xx-nonsense-tag-q", "level": 3}]},
    {"languages": [{"code": "en", "level": 3}, {"code": "EN", "level": 2}]},
    {"languages": [{"code": "en", "level": 9}]},
    {"timezone": "UTC", "availability": [{**SLOT, "start": "9"}]},
    {"timezone": "UTC", "availability": [{**SLOT, "start": "09:10"}]},
    {"timezone": "UTC", "availability": [{**SLOT, "start": "24:00", "end": "24:00"}]},
    {"timezone": "UTC", "availability": [{**SLOT, "start": "10:00", "end": "09:00"}]},
    {"timezone": "UTC", "availability": [SLOT, {**SLOT, "start": "09:30", "end": "11:00"}]},
    {"timezone": "UTC", "availability": [{**SLOT, "start": 900}]},
    {"availability": [SLOT]},
    {"offers": [{"skill": "lua", "level": 2}, {"skill": "lua", "level": 3}]},
    {"wants": [{"skill": "no-such-skill", "level": 2}]},
    {"offers": [{"skill": "Not A Slug", "level": 2}]},
    {"bio": None},
    {"mentor_capacity": 99},
    {"mentor_capacity": True},
    {"display_name": "x\x00"},
    {"colour": "blue"},
]

BAD_SKILLS: list[tuple[str, str, dict[str, Any]]] = [
    ("post", "/skills", {"id": "Bad Slug", "name": "x"}),
    ("post", "/skills", {"id": "lua", "name": "Lua again"}),
    ("post", "/skills", {"id": "new-one", "name": "x", "parent": "no-such-parent"}),
    ("post", "/skills", {"id": "new-one", "name": "x", "aliases": ["a", "A"]}),
    ("post", "/skills", {"id": "new-one", "name": "x", "aliases": [" "]}),
    ("post", "/skills", {"id": "new-one", "name": "x", "wikidata": "P31"}),
    ("post", "/skills", {"id": "new-one", "name": "x", "parent": "lua"}),
    ("patch", "/skills/lua", {"parent": "lua"}),
    ("patch", "/skills/templates-modules", {"parent": "programming"}),
    ("patch", "/skills/lua", {"name": None}),
    ("patch", "/skills/lua", {"parent": None}),
    ("patch", "/skills/lua", {"root": True, "parent": "programming"}),
    ("patch", "/skills/no-such-skill", {"name": "x"}),
]


def test_profile_rule_messages_read_as_written(client, people):
    for body in BAD_PROFILES:
        for method in (client.patch, client.put):
            response = method(f"{API}/me/profile", json=body, headers=people["learner"])
            assert response.status_code == 422, (body, response.text)
            for message in messages(response):
                assert message_mistakes(message) == [], (body, message)


def test_account_and_sign_in_messages_read_as_written(client, people):
    responses = [
        client.post(
            f"{API}/auth/register", json={"username": "a b", "email": "no", "password": "x"}
        ),
        client.post(f"{API}/auth/register", json={f"extra{n}": n for n in range(60)}),
        client.post(
            f"{API}/auth/register",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
        client.post(
            f"{API}/auth/token", data={"username": "msglearner", "password": "wrong password"}
        ),
        client.post(f"{API}/auth/token", json={"username": "msglearner"}),
        client.get(f"{API}/me"),
        client.get(f"{API}/me", headers={"Authorization": "Bearer not-a-token"}),
        client.put(
            f"{API}/volunteers/{people['learner_id']}/role",
            json={"role": "king"},
            headers=people["coordinator"],
        ),
        client.put(
            f"{API}/volunteers/{people['learner_id']}/role",
            json={"role": "coordinator"},
            headers=people["learner"],
        ),
        client.get(f"{API}/nowhere"),
        client.delete(f"{API}/skills"),
    ]
    for response in responses:
        assert response.status_code >= 400, response.text
        for message in messages(response):
            assert message_mistakes(message) == [], message


def test_taxonomy_messages_read_as_written(client, people):
    for method, path, body in BAD_SKILLS:
        response = getattr(client, method)(f"{API}{path}", json=body, headers=people["coordinator"])
        assert response.status_code >= 400, (path, body, response.text)
        for message in messages(response):
            assert message_mistakes(message) == [], (path, body, message)
    for params in ({"parent": "no-such-skill"}, {"cursor": "garbage"}, {"q": "a\x00"}):
        response = client.get(f"{API}/skills", params=params)
        assert response.status_code == 422
        for message in messages(response):
            assert message_mistakes(message) == [], message


def test_directory_messages_read_as_written(client, people):
    for params in (
        {"offers": "no-such-skill"},
        {"language": "xx-nonsense-tag-q"},
        {"region": "atlantis"},
        {"limit": 0},
        {"cursor": "garbage"},
    ):
        response = client.get(f"{API}/volunteers", params=params, headers=people["learner"])
        assert response.status_code == 422, (params, response.text)
        for message in messages(response):
            assert message_mistakes(message) == [], (params, message)


def test_exchange_messages_read_as_written(client, session, people):
    learner, mentor, mentor_id = people["learner"], people["mentor"], people["mentor_id"]

    def request(skill: str) -> int:
        response = client.post(
            f"{API}/exchanges", json={"mentor_id": mentor_id, "skill": skill}, headers=learner
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    said: list[str] = []

    def expect_error(response: Any) -> None:
        assert response.status_code >= 400, response.text
        said.extend(messages(response))

    post = client.post
    declined = request("lua")
    assert post(f"{API}/exchanges/{declined}/decline", headers=mentor).status_code == 200
    for action in ("accept", "decline", "cancel", "complete"):
        expect_error(post(f"{API}/exchanges/{declined}/{action}", headers=mentor))
    expect_error(post(f"{API}/exchanges/{declined}/feedback", json={"rating": 5}, headers=learner))
    thread = f"{API}/exchanges/{declined}/messages"
    expect_error(post(thread, json={"body": "still there?"}, headers=learner))
    expect_error(post(thread, json={"body": " "}, headers=learner))
    expect_error(post(thread, json={"body": "x" * 4001}, headers=learner))
    expect_error(client.get(thread, headers=people["coordinator"]))
    waiting = request("photography")
    expect_error(post(f"{API}/exchanges/{waiting}/complete", headers=learner))
    expect_error(post(f"{API}/exchanges/{waiting}/accept", headers=learner))
    expect_error(
        post(f"{API}/exchanges/{waiting}/feedback", json={"rating": True}, headers=learner)
    )
    session.execute(
        update(Exchange)
        .where(Exchange.id == waiting)
        .values(created_at=utcnow() - timedelta(days=400))
    )
    session.commit()
    for action in ("accept", "decline"):
        expect_error(post(f"{API}/exchanges/{waiting}/{action}", headers=mentor))
    bodies = [
        {"mentor_id": people["learner_id"], "skill": "lua"},
        {"mentor_id": mentor_id, "skill": "risk-management"},
        {"mentor_id": 2**31, "skill": "lua"},
        {"mentor_id": mentor_id, "skill": "lua", "message": "x" * 3000},
    ]
    for body in bodies:
        expect_error(post(f"{API}/exchanges", json=body, headers=learner))
    keyed = {**learner, "Idempotency-Key": "same-key"}
    assert (
        post(
            f"{API}/exchanges", json={"mentor_id": mentor_id, "skill": "lua"}, headers=keyed
        ).status_code
        == 201
    )
    expect_error(
        post(
            f"{API}/exchanges", json={"mentor_id": mentor_id, "skill": "photography"}, headers=keyed
        )
    )
    expect_error(
        post(f"{API}/exchanges", json={"mentor_id": mentor_id, "skill": "lua"}, headers=learner)
    )
    expect_error(client.get(f"{API}/exchanges/{2**40}", headers=learner))
    expect_error(
        client.get(f"{API}/exchanges", params={"as": "learner", "scope": "all"}, headers=learner)
    )
    expect_error(client.get(f"{API}/exchanges", params={"scope": "all"}, headers=learner))
    expect_error(client.post(f"{API}/me/notifications/read", json={"ids": [0]}, headers=learner))
    assert said
    assert [message for message in said if message_mistakes(message)] == []
