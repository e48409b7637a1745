"""Operations and the HTTP edges: health, readiness, problem documents, access log, docs."""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from capex.api.app import create_app
from capex.config import Settings
from capex.db import make_engine
from capex.services import skills as skill_service
from tests.factories import auth_headers, make_volunteer

PROBLEM_JSON = "application/problem+json"
UNREACHABLE_DATABASES = [
    # Nothing listens on port 1: the connection is refused at once.
    "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
    "sqlite:///{tmp}/no-such-directory/capex.db",
]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["detail"]
    return body


# Liveness and readiness


def test_healthz_is_200_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.parametrize("url", UNREACHABLE_DATABASES, ids=["postgresql", "sqlite"])
def test_readyz_is_503_problem_when_the_database_does_not_answer(url, tmp_path):
    engine = make_engine(url.format(tmp=tmp_path))
    settings = Settings(environment="test", database_url=str(engine.url), log_level="WARNING")
    app = create_app(settings, sessionmaker(bind=engine))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            started = time.perf_counter()
            response = client.get("/readyz")
            elapsed = time.perf_counter() - started
            # The process itself still serves.
            assert client.get("/healthz").status_code == 200
    finally:
        engine.dispose()
    assert_problem(response, 503)
    assert elapsed < 5


# Problem documents for every error


def test_unknown_path_is_404_problem(client):
    body = assert_problem(client.get("/api/v1/no-such-thing"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert "/api/v1/no-such-thing" in body["detail"]


def test_wrong_method_is_405_problem_with_allow(client):
    response = client.delete("/healthz")
    body = assert_problem(response, 405)
    assert "DELETE" in body["detail"]
    assert "GET" in response.headers["allow"]


def test_malformed_json_body_is_400_problem(client):
    response = client.post(
        "/api/v1/auth/register",
        content=b'{"username": "alice", "email":',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 400)
    assert body["title"] == "Malformed JSON"


def test_json_array_instead_of_object_is_422_problem(client):
    response = client.post("/api/v1/auth/register", json=[{"username": "alice"}])
    body = assert_problem(response, 422)
    assert body["errors"]


def test_unauthenticated_request_is_401_problem(client):
    response = client.get("/api/v1/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_validation_error_is_422_problem_naming_fields(client):
    response = client.post(
        "/api/v1/auth/register", json={"username": "a", "email": "no", "password": "short"}
    )
    body = assert_problem(response, 422)
    assert {".".join(map(str, e["loc"])) for e in body["errors"]} == {
        "body.username",
        "body.email",
        "body.password",
    }
    assert all(error["msg"] for error in body["errors"])


# The access log


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # create_app stops capex's logger from propagating to the root logger, where caplog
    # listens (recent pytest versions attach it to such loggers too).
    caplog.set_level(logging.INFO, logger="capex.access")
    capex_logger = logging.getLogger("capex")
    attach = caplog.handler not in capex_logger.handlers
    if attach:
        capex_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        if attach:
            capex_logger.removeHandler(caplog.handler)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "capex.access"]


def test_each_request_logs_one_structured_line(client, access_log):
    client.get("/api/v1/skills/lua", params={"q": "ignored"})
    client.get("/api/v1/no-such-thing")

    lines = access_lines(access_log)
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/api/v1/skills/lua", 200),
        ("GET", "/api/v1/no-such-thing", 404),
    ]
    for line in lines:
        assert isinstance(line["duration_ms"], int | float)
        assert line["duration_ms"] >= 0


# The web page and the API documents


def test_landing_page_lists_the_seven_skill_areas(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    areas = re.search(r'<ul class="areas" id="areas">(.*?)</ul>', response.text, re.S)
    assert areas is not None
    names = re.findall(r"<li[^>]*>([^<]+)</li>", areas.group(1))
    roots = [e["name"] for e in skill_service.starting_taxonomy() if e["parent"] is None]
    assert sorted(names) == sorted(roots)
    assert len(names) == 7


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_documents_the_profile_bodies(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    schemas = document["components"]["schemas"]
    assert {"ProfileReplace", "ProfileUpdate"} <= set(schemas)
    assert {"bio", "languages", "availability", "offers", "wants"} <= set(
        schemas["ProfileUpdate"]["properties"]
    )
    put_body = document["paths"]["/api/v1/me/profile"]["put"]["requestBody"]
    assert put_body["content"]["application/json"]["schema"]["$ref"].endswith("/ProfileReplace")
    missing = {ref for ref in _refs(document) if ref.split("/")[-1] not in schemas}
    assert missing == set()


def test_docs_serve_html(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# No junk yields a 500


@pytest.fixture
def signed_in(session, settings):
    me = make_volunteer(session, "prober")
    return auth_headers(session, settings, me)


@pytest.mark.parametrize("timezone", ["Africa", "Etc", "x" * 300])
def test_timezone_that_is_no_zone_file_is_422(client, signed_in, timezone):
    # 'Africa' is a folder of zones and 300 characters is too long for a file name.
    response = client.patch("/api/v1/me/profile", json={"timezone": timezone}, headers=signed_in)
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "timezone"]]


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("patch", "/api/v1/me/profile", {"json": {"bio": "before\u0000after"}}),
        ("patch", "/api/v1/me/profile", {"json": {"display_name": "\u0000"}}),
        ("get", "/api/v1/skills", {"params": {"q": "lua\u0000"}}),
        ("get", "/api/v1/skills/lua%00", {}),
        ("get", "/api/v1/volunteers", {"params": {"q": "\u0000"}}),
        ("post", "/api/v1/auth/token", {"data": {"username": "a\u0000", "password": "x"}}),
    ],
)
def test_nul_characters_are_not_a_server_error(client, signed_in, method, path, options):
    # SQLite stores a NUL character; PostgreSQL refuses it, which is the client's problem.
    response = client.request(method, path, headers=signed_in, **options)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM_JSON


def _cursor(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"/api/v1/volunteers/{2**63}", {}),
        (f"/api/v1/volunteers/{-(10**30)}", {}),
        ("/api/v1/volunteers", {"cursor": _cursor({"id": 2**63})}),
    ],
    ids=["id", "negative-id", "cursor"],
)
def test_integers_beyond_64_bits_are_not_a_server_error(client, signed_in, path, params):
    response = client.get(path, params=params, headers=signed_in)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == PROBLEM_JSON


JUNK_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    1,
    5,
    2**63,
    10**40,
    -(10**40),
    1.5e308,
    "",
    " ",
    "x" * 100_000,
    "\u0000",
    "nul\u0000inside",
    "\U0001f4a5" * 300,
    "مرحبا بالعالم",
    "\u200b\u202e",
    "'; DROP TABLE volunteers; --",
    "%_\\",
    "lua",
    "Q42",
    "Africa/Lagos",
    "en",
    "coordinator",
    "18:00",
    "24:00",
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {"c": [None]}}},
    [None] * 60,
    ["lua", "lua"],
    [{"skill": [], "level": {}}],
    [{"skill": "lua", "level": 10**30, "note": "\u0000"}],
    [{"code": "\u0000", "level": 1}],
    [{"code": "x" * 1000, "level": 3}],
    [{"weekday": 10**30, "start": "25:99", "end": None}],
    [{"weekday": 1, "start": "24:00", "end": "00:00"}],
]
RAW_BODIES = [
    b"\xff\xfe\x00",
    b"{",
    b'{"name": "\xff"}',
    b"[" * 50_000,
    b"[" * 5_000 + b"]" * 5_000,
    b'{"a": NaN}',
    b"null",
]
PATH_VALUES: dict[str, list[Any]] = {
    "skill_id": ["lua", "no-such-skill", "x" * 300, "%00", "Ünïcødé", "..%2F.."],
    "volunteer_id": [0, -1, 2**63, 10**30, "abc", "1.5"],
    "exchange_id": [0, -1, 2**63, 10**30, "abc", "1.5", 1, 999_999],
    "round_id": [0, -1, 2**63, 10**30, "abc", "1.5", 1, 999_999],
}


def _schema_fields(document: dict[str, Any], operation: dict[str, Any]) -> tuple[str, list[str]]:
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return "application/json", []
    media_type, body = next(iter(content.items()))
    reference = body["schema"].get("$ref", "")
    schema = document["components"]["schemas"].get(reference.split("/")[-1], {})
    return media_type, list(schema.get("properties", {}))


def _junk_body(rng: random.Random, fields: list[str]) -> Any:
    if rng.random() < 0.15 or not fields:
        return rng.choice(JUNK_VALUES)
    if rng.random() < 0.5:
        # One bad field alone gets past validation of the others, deeper into the service.
        return {rng.choice(fields): rng.choice(JUNK_VALUES)}
    body = {field: rng.choice(JUNK_VALUES) for field in fields if rng.random() < 0.6}
    if rng.random() < 0.1:
        body[rng.choice(["extra", "\u0000", "x" * 500])] = rng.choice(JUNK_VALUES)
    return body


def test_junk_bodies_never_yield_a_500(client, session, settings):
    me = make_volunteer(session, "fuzzer", role="coordinator")
    path_values = {**PATH_VALUES, "volunteer_id": [me.id, *PATH_VALUES["volunteer_id"]]}
    document = client.get("/openapi.json").json()
    operations = [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch")
    ]
    assert len(operations) >= 7
    rng = random.Random(20261126)
    failures = []
    for method, template, operation in operations:
        media_type, fields = _schema_fields(document, operation)
        for attempt in range(30):
            path = re.sub(
                r"\{(\w+)\}", lambda m: str(rng.choice(path_values[m.group(1)])), template
            )
            # A fresh token each time: the junk may well include a sign-out.
            headers = auth_headers(session, settings, me)
            sent: Any
            if media_type == "application/x-www-form-urlencoded":
                sent = {
                    f: str(rng.choice(JUNK_VALUES))[:2000] for f in fields if rng.random() < 0.7
                }
                response = client.request(method, path, data=sent, headers=headers)
            elif attempt < 3 or rng.random() < 0.1:
                sent = rng.choice(RAW_BODIES)
                headers["content-type"] = "application/json"
                response = client.request(method, path, content=sent, headers=headers)
            else:
                sent = _junk_body(rng, fields)
                response = client.request(method, path, json=sent, headers=headers)
            content_type = response.headers.get("content-type")
            problem = response.json() if content_type == PROBLEM_JSON else {}
            if response.status_code >= 500 or (
                response.status_code >= 400 and problem.get("status") != response.status_code
            ):
                failures.append(
                    f"{method.upper()} {path} {repr(sent)[:120]} -> {response.status_code} "
                    f"{content_type}"
                )
    assert not failures, "\n".join(failures)
