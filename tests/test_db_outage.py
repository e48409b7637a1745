"""While the database is unreachable every request that needs it is answered 503, fast."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from capex.api.app import create_app
from capex.api.problems import TracebackLog
from capex.config import Settings
from capex.db import engine_for
from capex.deps import SessionDep
from capex.testing import throwaway_database
from capex.web.pages import HtmlRoute
from tests.live import PASSWORD, live_server, sign_up
from tests.tcp_proxy import tcp_proxy

PROBLEM_JSON = "application/problem+json"
UNREACHABLE_DATABASES = {
    # Nothing listens on port 1: the connection is refused at once.
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
    "sqlite": "sqlite:///{tmp}/no-such-directory/capex.db",
}
PROFILE = {"languages": [{"code": "en", "level": 5}]}
BEARER = {"Authorization": "Bearer some-token"}


def assert_unavailable(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == str(retry_after)
    body = response.json()
    assert body["status"] == 503
    assert body["detail"] == f"the database is not answering; try again in {retry_after} seconds"


@pytest.fixture(params=sorted(UNREACHABLE_DATABASES))
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = UNREACHABLE_DATABASES[request.param].format(tmp=tmp_path)
    settings = Settings(
        environment="test",
        database_url=url,
        log_level="WARNING",
        periodic_tasks=False,
        warm_matching_index=False,
        db_retry_after_seconds=7,
    )
    engine = engine_for(settings)
    yield TestClient(create_app(settings, sessionmaker(bind=engine)))
    engine.dispose()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/v1/skills?q=py", {}),
        ("GET", "/api/v1/me", {"headers": BEARER}),
        ("PUT", "/api/v1/me/profile", {"headers": BEARER, "json": PROFILE}),
        (
            "POST",
            "/api/v1/auth/register",
            {"json": {"username": "ada", "email": "ada@example.org", "password": PASSWORD}},
        ),
        ("POST", "/api/v1/auth/token", {"data": {"username": "ada", "password": PASSWORD}}),
    ],
)
def test_requests_that_need_an_unreachable_database_are_503(unreachable, method, path, kwargs):
    with unreachable as client:
        started = time.perf_counter()
        response = client.request(method, path, **kwargs)
        elapsed = time.perf_counter() - started
        assert_unavailable(response, 7)
        assert elapsed < 5
        assert client.get("/healthz").status_code == 200
        readiness = client.get("/readyz")
        assert readiness.status_code == 503
        assert readiness.headers["retry-after"] == "7"


def test_a_page_is_an_html_503_while_the_database_is_unreachable(unreachable):
    with unreachable as client:
        client.cookies.set("capex_session", "some-token")
        response = client.get("/sign-in?next=/", headers={"Accept": "text/html"})
        page = client.get("/profile", headers={"Accept": "text/html"})
    assert response.status_code in (200, 503)  # the sign-in form needs no database
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "7"
    assert "the database is not answering" in page.text
    # The session cookie is kept for when the database is back.
    assert "capex_session=" not in page.headers.get("set-cookie", "")


def test_an_unexpected_error_logs_its_traceback_once_a_minute(settings, session_factory, caplog):
    now = [1000.0]
    app = create_app(settings, session_factory)
    app.state.tracebacks = TracebackLog(interval_seconds=60, clock=lambda: now[0])

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/other")
    def other() -> None:
        raise KeyError("other")

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        answers = [client.get("/boom") for _ in range(3)]
        answers.append(client.get("/other"))
        now[0] += 61
        answers.append(client.get("/boom"))
        # A 500 is an answer like any other: the connection is kept.
        assert client.get("/healthz").status_code == 200
    assert [answer.status_code for answer in answers] == [500] * 5
    unhandled = [record for record in caplog.records if record.name == "capex.api"]
    assert [record.exc_info is not None for record in unhandled] == [
        True,
        False,
        False,
        True,
        True,
    ]
    assert "RuntimeError: boom" in unhandled[1].getMessage()
    assert "GET /boom" in unhandled[1].getMessage()


@pytest.mark.slow
def test_a_database_outage_is_503_on_kept_alive_connections_and_passes(tmp_path):
    """A live server whose PostgreSQL connection is cut by a proxy, then restored."""
    log = tmp_path / "serve.log"
    retry_after = 2
    connect_timeout = 2
    limit = connect_timeout + 1.5
    with throwaway_database("postgresql", tmp_path) as url, tcp_proxy("127.0.0.1", 5432) as proxy:
        proxied = make_url(url).set(host="127.0.0.1", port=proxy.port)
        env = {
            "CAPEX_DB_RETRY_AFTER_SECONDS": str(retry_after),
            "CAPEX_DB_CONNECT_TIMEOUT_SECONDS": str(connect_timeout),
            "CAPEX_DB_POOL_TIMEOUT_SECONDS": "2",
            "CAPEX_PERIODIC_TASKS": "false",
            "CAPEX_LOG_LEVEL": "INFO",
        }
        database = proxied.render_as_string(hide_password=False)
        with (
            live_server(database, workers=1, log=log, env=env) as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            sign_up(client, "ada")
            token = client.post(
                "/api/v1/auth/token", data={"username": "ada", "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert client.get("/api/v1/me", headers=headers).status_code == 200

            proxy.cut()
            requests = [
                ("GET", "/api/v1/skills?q=py", {}),
                ("GET", "/api/v1/me", {"headers": headers}),
                ("PUT", "/api/v1/me/profile", {"headers": headers, "json": PROFILE}),
            ]
            durations = []
            for _ in range(15):
                for method, path, kwargs in requests:
                    started = time.perf_counter()
                    # A reset would raise httpx.TransportError here.
                    response = client.request(method, path, **kwargs)
                    durations.append(time.perf_counter() - started)
                    assert_unavailable(response, retry_after)
            assert max(durations) < limit
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").status_code == 503

            proxy.restore()
            restored = time.perf_counter()
            while (answer := client.get("/api/v1/me", headers=headers)).status_code != 200:
                assert answer.status_code == 503, answer.text
                assert time.perf_counter() - restored < 3
                time.sleep(0.05)
            back_after = time.perf_counter() - restored
            saved = client.put("/api/v1/me/profile", headers=headers, json=PROFILE)
            assert saved.status_code == 200, saved.text
            assert client.get("/readyz").status_code == 200
    output = log.read_text(errors="replace")
    # One line per failed request, its access record, and no traceback for any of them.
    assert "Traceback" not in output, output[-3000:]
    failed = [line for line in output.splitlines() if '"status": 503' in line]
    assert len(failed) >= len(durations) + 1
    assert all(line.startswith('{"event": "request"') for line in failed)
    print(
        f"503 in at most {max(durations) * 1000:.0f} ms; answered {back_after:.2f} s after restore"
    )


def test_a_commit_that_loses_the_database_is_503(settings, session_factory):
    """The session dependency commits after the endpoint returned: that failure is a 503 too."""
    app = create_app(settings, session_factory)

    @app.post("/lost-commit")
    def lost_commit(session: SessionDep) -> None:
        def lose_the_connection(_session: Session) -> None:
            cause = sqlite3.OperationalError("unable to open database file")
            raise OperationalError("COMMIT", {}, cause)

        event.listen(session, "before_commit", lose_the_connection, once=True)

    with TestClient(app) as client:
        response = client.post("/lost-commit")
        assert_unavailable(response, settings.db_retry_after_seconds)


def test_a_page_whose_commit_finds_the_database_locked_is_an_html_503(settings, session_factory):
    app = create_app(settings, session_factory)
    pages = APIRouter(route_class=HtmlRoute)

    @pages.post("/locked-commit")
    def locked_commit(session: SessionDep) -> None:
        def find_it_locked(_session: Session) -> None:
            raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))

        event.listen(session, "before_commit", find_it_locked, once=True)

    app.include_router(pages)
    with TestClient(app) as client:
        response = client.post("/locked-commit", headers={"Accept": "text/html"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["retry-after"] == str(settings.db_retry_after_seconds)
    assert "the database is busy" in response.text
