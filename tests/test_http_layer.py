"""The HTTP layer around the routes: body limits, browser headers, CORS, docs, HEAD."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from capex.api.app import create_app
from capex.api.middleware import BodyLimits, shape_problem
from capex.config import Settings
from capex.testing import registration, wide_object

MiB = 1024 * 1024
JSON = {"content-type": "application/json"}


def long_array(size: int = MiB - 64) -> bytes:
    return registration("[" + "0," * ((size - 60) // 2) + "0]")


def deep_nesting(depth: int = 100) -> bytes:
    return ('{"username":' + "[" * depth + "]" * depth + "}").encode()


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each time the app parses a request body as JSON or as a form."""
    calls: list[str] = []
    original_json, original_form = Request.json, Request.form

    async def spy_json(self: Request) -> object:
        calls.append("json")
        return await original_json(self)

    def spy_form(self: Request, **kwargs: object) -> object:
        calls.append("form")
        return original_form(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Request, "json", spy_json)
    monkeypatch.setattr(Request, "form", spy_form)
    return calls


def assert_413(response, detail_pattern: str) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert re.search(detail_pattern, problem["detail"]), problem["detail"]


# --- body limits ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client, parsed):
    body = b'{"username": "' + b"a" * (2 * MiB) + b'"}'
    response = client.post("/api/v1/auth/register", content=body, headers=JSON)
    assert_413(response, r"larger than 1048576 bytes")
    assert parsed == []


def test_a_chunked_body_over_the_limit_is_413(client, parsed):
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    response = client.post("/api/v1/auth/register", content=chunks(), headers=JSON)
    assert_413(response, r"larger than 1048576 bytes")
    assert parsed == []


def test_the_byte_limit_follows_the_setting(settings, session_factory):
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small, session_factory)) as client:
        response = client.post(
            "/api/v1/auth/register", content=b'{"a": "' + b"x" * 2100 + b'"}', headers=JSON
        )
        assert_413(response, r"larger than 2048 bytes")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (wide_object(), r"more than 1200 members"),
        (long_array(), r"more than 1200 members"),
        (deep_nesting(), r"nested deeper than 32 levels"),
    ],
    ids=["a million keys cut to 1 MiB", "a long array", "deep nesting"],
)
def test_a_costly_json_body_under_the_limit_is_413_unparsed(client, parsed, body, detail):
    assert len(body) < MiB
    response = client.post("/api/v1/auth/register", content=body, headers=JSON)
    assert_413(response, detail)
    assert parsed == []


def test_a_form_of_many_percent_escapes_is_413_unparsed(client, parsed):
    body = b"grant_type=password&password=x&username=" + b"%41" * 300_000
    response = client.post(
        "/api/v1/auth/token",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_413(response, r"percent escapes")
    assert parsed == []


def test_an_ordinary_body_still_reaches_the_route(client):
    response = client.post(
        "/api/v1/auth/register",
        json={"username": "bounded", "email": "b@example.org", "password": "long enough pw"},
    )
    assert response.status_code == 201


def _largest_profile() -> dict[str, object]:
    # Every list at its schema's maximum, every text full of the characters the shape
    # count looks at: a real body this size must never be refused.
    tricky = 'a,b:c[d]{e}"f\\g' * 10
    entry = {"skill": "lua", "level": 3, "note": tricky[:280]}
    return {
        "display_name": tricky[:80],
        "bio": (tricky * 20)[:2000],
        "timezone": "Europe/Berlin",
        "languages": [{"code": "en", "level": 5}] * 20,
        "availability": [{"weekday": 1, "start": "18:00", "end": "20:00"}] * 50,
        "offers": [entry] * 50,
        "wants": [entry] * 50,
        "mentor_capacity": 3,
    }


def test_the_largest_real_bodies_pass_the_shape_bounds():
    limits = BodyLimits(max_bytes=MiB)
    profile = json.dumps(_largest_profile()).encode()
    assert shape_problem(profile, "application/json", limits) is None
    read_all = json.dumps({"ids": list(range(1, 1001))}).encode()
    assert shape_problem(read_all, "application/json; charset=utf-8", limits) is None
    sign_in = b"grant_type=password&username=demo1&password=" + b"%C3%A9" * 256
    assert shape_problem(sign_in, "application/x-www-form-urlencoded", limits) is None


def test_strings_do_not_count_as_structure():
    limits = BodyLimits(max_bytes=MiB, max_members=10, max_depth=3)
    text = json.dumps({"bio": "[[[[{{{{,,,,::::" * 1000 + '\\"' * 100}).encode()
    assert shape_problem(text, "application/json", limits) is None
    members = json.dumps({f"k{i}": '"' for i in range(11)}).encode()
    assert "members" in (shape_problem(members, "application/json", limits) or "")
    deep = json.dumps({"a": {"b": {"c": {"d": "\\"}}}}).encode()
    assert "deeper" in (shape_problem(deep, "application/json", limits) or "")


# --- headers a browser needs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/api/v1/skills?parent="),
        ("GET", "/api/v1/me"),
        ("GET", "/nowhere"),
        ("POST", "/healthz"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
        ("GET", "/static/docs/swagger-ui.css"),
    ],
)
def test_every_response_carries_the_browser_headers(client, method, path):
    response = client.request(method, path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "strict-transport-security" not in response.headers


def test_a_500_carries_the_browser_headers_too(settings, session_factory):
    app = create_app(settings, session_factory)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_hsts_is_sent_when_configured(settings, session_factory):
    https = settings.model_copy(update={"hsts_seconds": 31536000})
    with TestClient(create_app(https, session_factory)) as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_cors_is_closed_by_default(client):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    preflight = client.options(
        "/api/v1/me",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_to_the_configured_origins(settings, session_factory):
    opened = settings.model_copy(update={"cors_origins": ["https://app.example"]})
    with TestClient(create_app(opened, session_factory)) as client:
        allowed = client.options(
            "/api/v1/me",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/healthz", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_are_read_comma_separated(monkeypatch):
    monkeypatch.setenv("CAPEX_CORS_ORIGINS", "https://a.example, http://localhost:3000")
    assert Settings().cors_origins == ["https://a.example", "http://localhost:3000"]


# --- /docs and /redoc without the internet ------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_same_origin_assets(client, page):
    response = client.get(page)
    assert response.status_code == 200
    urls = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)["\']', response.text)
    urls += re.findall(r'spec-url="([^"]+)"', response.text)
    assert urls, response.text
    expected = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = next(kind for suffix, kind in expected.items() if url.endswith(suffix))
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])


# --- HEAD -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/v1/skills", "/static/web/capex.css"])
def test_head_answers_wherever_get_does(client, path):
    get = client.get(path)
    head = client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_head_is_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not any("head" in operations for operations in paths.values())


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CAPEX_TOKEN_TTL_MINUTES", "1", "CAPEX_TOKEN_TTL_MINUTES=1: .*greater than or equal to 5"),
        ("CAPEX_ENVIRONMENT", "staging", "CAPEX_ENVIRONMENT=staging: .*'production'"),
        ("CAPEX_MAX_BODY_BYTES", "lots", "CAPEX_MAX_BODY_BYTES=lots: .*integer"),
        ("CAPEX_CORS_ORIGINS", "example.org", "CAPEX_CORS_ORIGINS=example.org: .*not an origin"),
        ("CAPEX_TRUSTED_PROXIES", "proxy", "CAPEX_TRUSTED_PROXIES=proxy: .*IP address"),
    ],
)
def test_a_bad_setting_ends_in_one_line_naming_it(tmp_path, variable, value, expected):
    env = {"PATH": "/usr/bin:/bin", "CAPEX_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "capex.cli", "db", "current"],
        env={**env, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.match(f"error: {expected}", lines[0]), lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_setting_stops_the_app_factory_with_one_line(monkeypatch):
    from capex import config

    monkeypatch.setenv("CAPEX_TOKEN_TTL_MINUTES", "1")
    config.get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match=r"CAPEX_TOKEN_TTL_MINUTES=1: .*equal to 5"):
            create_app()
    finally:
        config.get_settings.cache_clear()


def test_seed_if_empty_is_in_the_help():
    result = subprocess.run(
        [sys.executable, "-m", "capex.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "seed-if-empty" in result.stdout
