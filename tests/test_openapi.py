"""The OpenAPI document tells what the server answers, errors included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.factories import auth_headers, make_volunteer

PROBLEM_JSON = "application/problem+json"
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# A value for each path parameter that names nothing (a well-formed id, an unknown one).
UNKNOWN = {
    "volunteer_id": "999999",
    "exchange_id": "999999",
    "skill_id": "no-such-skill",
    "round_id": "999999",
}
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: UNKNOWN[match.group(1)], path)


def assert_documented(operation: dict[str, Any], method: str, path: str, response: Any) -> None:
    """The status answered is documented for the operation, with the content type sent."""
    status = str(response.status_code)
    documented = operation["responses"]
    assert status in documented, f"{method} {path} answered {status}, not {sorted(documented)}"
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in documented[status].get("content", {}), (method, path, status, media_type)


def test_every_error_answer_is_documented_as_a_problem(document):
    wrong = [
        (method, path, status, sorted(answer.get("content", {})))
        for method, path, operation in operations(document)
        for status, answer in operation["responses"].items()
        if int(status) >= 400 and answer.get("content") != PROBLEM_CONTENT
    ]
    assert wrong == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_protected_operations_document_401_and_answer_it_without_a_token(client, document):
    protected = [
        (method, path, operation)
        for method, path, operation in operations(document)
        if operation.get("security")
    ]
    names = {(method, path) for method, path, _ in protected}
    # The ones the document used to leave out.
    assert {
        ("POST", "/api/v1/auth/logout"),
        ("DELETE", "/api/v1/me"),
        ("GET", "/api/v1/volunteers/{volunteer_id}"),
        ("PUT", "/api/v1/volunteers/{volunteer_id}/role"),
        ("POST", "/api/v1/skills"),
        ("PATCH", "/api/v1/skills/{skill_id}"),
    } <= names
    for method, path, operation in protected:
        response = client.request(method, concrete(path))
        assert response.status_code == 401, (method, path, response.text)
        assert_documented(operation, method, path, response)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


def test_public_operations_need_no_token(client, document):
    public = [(m, p) for m, p, operation in operations(document) if not operation.get("security")]
    assert ("GET", "/api/v1/skills") in public
    assert ("POST", "/api/v1/auth/register") in public
    for method, path in public:
        assert client.request(method, concrete(path)).status_code != 401, (method, path)


def test_malformed_json_is_a_documented_400_on_every_body_operation(
    client, document, session, settings
):
    me = make_volunteer(session, "malformed", role="coordinator")
    with_body = [
        (method, path, operation)
        for method, path, operation in operations(document)
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert len(with_body) >= 10
    for method, path, operation in with_body:
        headers = {**auth_headers(session, settings, me), "content-type": "application/json"}
        response = client.request(method, concrete(path), content=b'{"oops', headers=headers)
        assert response.status_code == 400, (method, path, response.text)
        assert_documented(operation, method, path, response)
        assert "413" in operation["responses"], (method, path)


def test_coordinator_operations_document_the_403_a_volunteer_gets(
    client, document, session, settings
):
    volunteer = make_volunteer(session, "plainvolunteer")
    headers = auth_headers(session, settings, volunteer)
    bodies = {
        ("POST", "/api/v1/skills"): {"id": "new-skill", "name": "New skill"},
        ("PATCH", "/api/v1/skills/{skill_id}"): {"name": "Renamed"},
        ("PUT", "/api/v1/volunteers/{volunteer_id}/role"): {"role": "coordinator"},
    }
    for (method, path), body in bodies.items():
        operation = document["paths"][path][method.lower()]
        response = client.request(method, concrete(path), json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert_documented(operation, method, path, response)


def test_bad_and_unknown_parameters_answer_documented_statuses(client, document, session, settings):
    me = make_volunteer(session, "parameters", role="coordinator")
    headers = auth_headers(session, settings, me)
    for method, path, operation in operations(document):
        parameters = operation.get("parameters", [])
        if any(parameter["in"] == "path" for parameter in parameters):
            unknown = client.request(method, concrete(path), json={}, headers=headers)
            assert_documented(operation, method, path, unknown)
        if any(parameter["in"] == "query" for parameter in parameters):
            query = {parameter["name"]: "\u2603" * 300 for parameter in parameters}
            junk = client.request(method, concrete(path), params=query, headers=headers)
            assert junk.status_code == 422, (method, path, junk.text)
            assert_documented(operation, method, path, junk)


def test_sign_in_documents_its_throttle(document):
    answers = document["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert answers["429"]["content"] == PROBLEM_CONTENT
    assert "Retry-After" in answers["429"]["headers"]


def test_405_allows_every_method_of_the_path(client, document):
    response = client.delete("/api/v1/me/profile")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert set(response.headers["allow"].split(", ")) == {"PUT", "PATCH"}
    for path, item in document["paths"].items():
        methods = {method.upper() for method in item if method in METHODS}
        unused = next(m for m in ("TRACE", "OPTIONS", "PUT", "DELETE") if m not in methods)
        answer = client.request(unused, concrete(path))
        assert answer.status_code == 405, (unused, path)
        assert set(answer.headers["allow"].split(", ")) == methods, path


def test_writes_document_the_409_of_a_lost_race(document):
    # Any write can lose a race that a unique index or a check referees (answered 409).
    undocumented = [
        (method, path)
        for method, path, operation in operations(document)
        if method in ("POST", "PUT", "PATCH", "DELETE") and "409" not in operation["responses"]
    ]
    assert undocumented == []


def test_writes_document_the_429_of_the_write_limits(document):
    undocumented = [
        (method, path)
        for method, path, operation in operations(document)
        if method in ("POST", "PUT", "PATCH", "DELETE")
        and "Retry-After" not in operation["responses"].get("429", {}).get("headers", {})
    ]
    assert undocumented == []
    reads = [
        path
        for method, path, operation in operations(document)
        if method == "GET" and "429" in operation["responses"]
    ]
    assert reads == []


def test_meeting_times_document_their_parameters_and_the_calendar_answer(document):
    operation = document["paths"]["/api/v1/exchanges/{exchange_id}/meeting-times"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(parameters) == {"weeks", "format", "start"}
    weeks = parameters["weeks"]["schema"]
    assert (weeks["minimum"], weeks["maximum"], weeks["default"]) == (1, 8, 2)
    assert parameters["format"]["schema"]["enum"] == ["json", "ics"]
    answers = operation["responses"]
    assert {"text/calendar", "application/json"} <= set(answers["200"]["content"])
    assert {"401", "403", "404", "409", "422"} <= set(answers)
