"""Until a server's first matching index is ready, matches are answered 503 with Retry-After,
at once, as problem+json through the API and as a page in the reader's language; readiness
says so too. Nothing waits for the build (both databases)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from capex.services.matches import MatchingService
from capex.services.matching_index import Generations
from tests.factories import auth_headers, make_volunteer
from tests.webtools import sign_in_browser, text_of


@pytest.fixture
def building(client, tmp_path):
    """The app's matching service while its first build runs (held until the test ends)."""
    release = threading.Event()
    started = threading.Event()

    def build(directory: Path) -> None:
        started.set()
        release.wait(60)

    service = MatchingService(
        client.app.state.session_factory,
        wait_for_first_build=False,
        generations=Generations(tmp_path / "shared", build=build),
    )
    client.app.state.matching = service
    service.start()
    assert started.wait(20)
    yield service
    release.set()


def test_matches_and_readiness_say_503_with_retry_after_until_the_index_is_ready(
    client, session, settings, building
):
    learner = make_volunteer(
        session,
        "learner",
        languages=[{"code": "en", "level": 5}],
        wants=[{"skill": "lua", "level": 2}],
    )
    answer = client.get("/api/v1/me/matches", headers=auth_headers(session, settings, learner))
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    assert "being built" in answer.json()["detail"]

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
    assert "matching index" in ready.json()["detail"]
    # What needs no index goes on as usual.
    assert (
        client.get(
            "/api/v1/volunteers", headers=auth_headers(session, settings, learner)
        ).status_code
        == 200
    )


def test_the_matches_page_says_so_in_the_readers_language(client, session, settings, building):
    learner = make_volunteer(
        session,
        "lena",
        languages=[{"code": "pt", "level": 5}],
        wants=[{"skill": "lua", "level": 2}],
    )
    sign_in_browser(client, session, settings, learner)
    page = client.get("/matches", headers={"Accept-Language": "pt-BR"})
    assert page.status_code == 503
    assert page.headers["retry-after"] == "5"
    words = text_of(page.text)
    assert "Indisponível no momento" in words
    assert "As sugestões estão sendo preparadas" in words
