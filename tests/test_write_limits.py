"""Writes are limited per account and per client address, counted in the database: past a
limit a write is answered 429 with ``Retry-After`` and nothing of it is written."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capex.api.app import create_app
from capex.config import Settings
from capex.db import engine_for
from capex.models import Volunteer, WriteCount
from capex.services import maintenance, write_limits
from tests.conftest import settings_for
from tests.factories import auth_headers, make_volunteer
from tests.live import PASSWORD, live_server, sign_up
from tests.webtools import post_form, sign_in_browser, text_of

PROBLEM_JSON = "application/problem+json"
# Ten seconds into a window of a minute: the window ends 50 seconds later.
START = datetime(2026, 12, 7, 12, 0, 10, tzinfo=UTC)


class Clock:
    """The app's clock, moved on by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def limited(database_url: str, session_factory: sessionmaker[Session], clock: Clock) -> Any:
    """A test client factory: the app with the write limits given, on the test's clock."""
    opened: list[TestClient] = []

    def make(per_account: int, per_address: int, address: str = "testclient") -> TestClient:
        settings = settings_for(
            database_url,
            write_limit_per_account=per_account,
            write_limit_per_address=per_address,
            write_limit_window_seconds=60,
        )
        app = create_app(settings, session_factory, clock=clock)
        app.state.matching.rebuild_in_background = False
        client = TestClient(app, raise_server_exceptions=False, client=(address, 50000))
        opened.append(client.__enter__())
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def _save_bio(client: TestClient, headers: dict[str, str], bio: str) -> httpx.Response:
    return client.patch("/api/v1/me/profile", json={"bio": bio}, headers=headers)


def _bio(client: TestClient, headers: dict[str, str]) -> str:
    answer = client.get("/api/v1/me", headers=headers)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["bio"])


def _assert_refused(answer: httpx.Response, scope: str, limit: int, retry_after: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.headers["retry-after"] == str(retry_after)
    body = answer.json()
    assert body["status"] == 429
    assert body["detail"] == (
        f"too many writes from this {scope}: at most {limit} every 60 seconds per {scope}; "
        f"try again in {retry_after} seconds"
    )


def test_an_account_past_its_limit_gets_429_and_its_write_is_not_made(limited, session, settings):
    client = limited(per_account=3, per_address=100)
    ada = make_volunteer(session, "ada")
    headers = auth_headers(session, settings, ada)
    for take in range(3):
        assert _save_bio(client, headers, f"take {take}").status_code == 200
    refused = _save_bio(client, headers, "one too many")
    _assert_refused(refused, "account", 3, retry_after=50)
    # Reads stay open, and show the last accepted write.
    assert _bio(client, headers) == "take 2"
    # Another token of the same volunteer shares the count: tokens do not multiply it.
    second_token = auth_headers(session, settings, ada)
    _assert_refused(_save_bio(client, second_token, "by another token"), "account", 3, 50)
    assert _bio(client, second_token) == "take 2"


def test_another_account_from_the_same_address_writes_until_the_address_limit(
    limited, session, settings
):
    client = limited(per_account=3, per_address=5)
    ada = auth_headers(session, settings, make_volunteer(session, "ada"))
    bea = auth_headers(session, settings, make_volunteer(session, "bea"))
    assert [_save_bio(client, ada, f"ada {n}").status_code for n in range(3)] == [200] * 3
    _assert_refused(_save_bio(client, ada, "ada again"), "account", 3, 50)
    # Ada's refused write did not use up the address: Bea has the 2 writes left of its 5.
    assert [_save_bio(client, bea, f"bea {n}").status_code for n in range(2)] == [200] * 2
    _assert_refused(_save_bio(client, bea, "bea again"), "address", 5, 50)
    assert _bio(client, bea) == "bea 1"
    # Anyone else from the address, signed in or not, waits too; nobody is registered.
    registration = {"username": "cid", "email": "cid@example.org", "password": PASSWORD}
    _assert_refused(client.post("/api/v1/auth/register", json=registration), "address", 5, 50)
    assert session.scalar(select(func.count()).where(Volunteer.username == "cid")) == 0


def test_each_address_has_a_count_of_its_own(limited, session, settings):
    here = limited(per_account=0, per_address=1, address="192.0.2.1")
    there = limited(per_account=0, per_address=1, address="2001:db8::7")
    headers = auth_headers(session, settings, make_volunteer(session, "ada"))
    assert _save_bio(here, headers, "from here").status_code == 200
    _assert_refused(_save_bio(here, headers, "from here again"), "address", 1, 50)
    assert _save_bio(there, headers, "from there").status_code == 200
    _assert_refused(_save_bio(there, headers, "from there again"), "address", 1, 50)
    assert _bio(here, headers) == "from there"


def test_writes_are_accepted_again_when_the_window_has_passed(limited, clock, session, settings):
    client = limited(per_account=1, per_address=100)
    headers = auth_headers(session, settings, make_volunteer(session, "ada"))
    assert _save_bio(client, headers, "first").status_code == 200
    _assert_refused(_save_bio(client, headers, "second"), "account", 1, retry_after=50)
    clock.advance(49.5)
    # Half a second before the window ends: Retry-After rounds up to a whole second.
    _assert_refused(_save_bio(client, headers, "second"), "account", 1, retry_after=1)
    clock.advance(0.5)
    assert _save_bio(client, headers, "second").status_code == 200
    assert _bio(client, headers) == "second"


def test_no_limit_counts_when_both_are_off(limited, session, settings):
    client = limited(per_account=0, per_address=0)
    headers = auth_headers(session, settings, make_volunteer(session, "ada"))
    for take in range(5):
        assert _save_bio(client, headers, f"take {take}").status_code == 200
    assert session.scalar(select(func.count()).select_from(WriteCount)) == 0


def test_a_web_form_past_the_limit_is_a_page_in_the_reader_s_language(limited, session, settings):
    client = limited(per_account=1, per_address=100)
    ada = make_volunteer(session, "ada")
    sign_in_browser(client, session, settings, ada)
    portuguese = {"Accept-Language": "pt-BR"}
    form = {"display_name": "Ada L", "bio": "first", "mentor_capacity": "2"}
    assert post_form(client, "/profile", form, headers=portuguese).status_code == 303
    refused = post_form(client, "/profile", {**form, "bio": "second"}, headers=portuguese)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["retry-after"] == "50"
    shown = text_of(refused.text)
    assert "Tentativas demais" in shown
    assert (
        "Esta conta pode enviar no máximo 1 alteração a cada 60 segundos. "
        "Tente de novo em 50 segundos."
    ) in shown
    headers = auth_headers(session, settings, ada)
    assert _bio(client, headers) == "first"


def test_a_web_form_past_the_address_limit_says_so_in_english(limited, clock, session, settings):
    client = limited(per_account=0, per_address=2)
    form = {"language": "en", "next": "/"}
    for _ in range(2):
        assert post_form(client, "/", form, action="/language").status_code == 303
    refused = post_form(client, "/", form, action="/language")
    assert refused.status_code == 429
    assert "Too many attempts" in text_of(refused.text)
    assert (
        "Your network address may send at most 2 changes every 60 seconds. Try again in 50 seconds."
    ) in text_of(refused.text)
    clock.advance(49.5)
    last_second = post_form(client, "/", form, action="/language")
    assert "Try again in 1 second." in text_of(last_second.text)


def test_the_housekeeping_drops_the_counts_of_ended_windows(limited, clock, session, settings):
    client = limited(per_account=5, per_address=100)
    ada = make_volunteer(session, "ada")
    headers = auth_headers(session, settings, ada)
    assert _save_bio(client, headers, "now").status_code == 200
    counted = session.scalars(select(WriteCount.subject).order_by(WriteCount.subject)).all()
    assert counted == [f"account:{ada.id}", "address:testclient"]
    limits = settings_for("unused", write_limit_window_seconds=60)
    assert write_limits.prune(session, limits, START) == 0
    assert write_limits.prune(session, limits, START + timedelta(seconds=50)) == 2
    assert session.scalar(select(func.count()).select_from(WriteCount)) == 0


def test_maintenance_prunes_write_counts(session_factory, session):
    old = datetime.now(UTC) - timedelta(hours=1)
    session.add(WriteCount(subject="address:192.0.2.1", window_start=old, writes=3))
    session.commit()
    done = maintenance.run_once(session_factory, settings_for("unused"))
    assert done >= 1
    assert session.scalar(select(func.count()).select_from(WriteCount)) == 0


# -- the database away -------------------------------------------------------------------------

UNREACHABLE_DATABASES = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
    "sqlite": "sqlite:///{tmp}/no-such-directory/capex.db",
}


@pytest.fixture(params=sorted(UNREACHABLE_DATABASES))
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        environment="test",
        database_url=UNREACHABLE_DATABASES[request.param].format(tmp=tmp_path),
        log_level="WARNING",
        periodic_tasks=False,
        warm_matching_index=False,
        db_retry_after_seconds=7,
        write_limit_per_account=5,
        write_limit_per_address=5,
    )
    engine = engine_for(settings)
    with TestClient(create_app(settings, sessionmaker(bind=engine))) as client:
        yield client
    engine.dispose()


def test_a_write_that_cannot_be_counted_is_503_not_500(unreachable):
    answer = unreachable.put(
        "/api/v1/me/profile", json={"bio": "x"}, headers={"Authorization": "Bearer some-token"}
    )
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.headers["retry-after"] == "7"
    assert answer.json()["detail"] == "the database is not answering; try again in 7 seconds"
    page = unreachable.post(
        "/profile", data={"bio": "x"}, headers={"Accept": "text/html", "Accept-Language": "pt-BR"}
    )
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "7"


# -- live servers ------------------------------------------------------------------------------

LIVE_LIMIT = 10
LIMITED = {
    "CAPEX_WRITE_LIMIT_PER_ACCOUNT": str(LIVE_LIMIT),
    "CAPEX_WRITE_LIMIT_PER_ADDRESS": "1000",
    # A day: the whole test falls in one window (asserted below).
    "CAPEX_WRITE_LIMIT_WINDOW_SECONDS": "86400",
}


def _day() -> int:
    return int(time.time()) // 86400


@pytest.mark.slow
def test_two_workers_share_one_count_and_concurrent_writes_never_deadlock(live_database, tmp_path):
    """Writes of one account sent at once, through both workers, on fresh connections.

    Were each worker to count on its own, up to twice the limit would be accepted. On
    SQLite the count's own write transaction and the request's follow each other: none of
    them may wait for the other (that would be a 503 after the lock timeout).
    """
    with (
        live_server(live_database, workers=2, log=tmp_path / "serve.log", env=LIMITED) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        sign_up(client, "ada")
        token = client.post("/api/v1/auth/token", data={"username": "ada", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        answers: list[tuple[int, str, str]] = []
        lock = threading.Lock()

        def write(thread: int, count: int) -> None:
            for n in range(count):
                # A new connection each time, so that the kernel hands writes to either worker.
                answer = httpx.patch(
                    f"{base}/api/v1/me/profile",
                    json={"bio": f"thread {thread} write {n}"},
                    headers={**headers, "Connection": "close"},
                    timeout=60,
                )
                with lock:
                    answers.append(
                        (answer.status_code, answer.headers["x-capex-worker"], answer.text)
                    )

        day = _day()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            threads = [threading.Thread(target=write, args=(t, 3)) for t in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if len({worker for _, worker, _ in answers}) == 2:
                break
        assert _day() == day, "the writes crossed midnight UTC, into a new window: run again"
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 429}, [text for status, _, text in answers if status >= 500]
        assert statuses.count(200) == LIVE_LIMIT
        assert len({worker for _, worker, _ in answers}) == 2, "both workers should answer"
        refused = next(text for status, _, text in answers if status == 429)
        assert f"at most {LIVE_LIMIT} every 86400 seconds per account" in refused
        # Reads stay open; the profile holds one of the accepted writes.
        me = client.get("/api/v1/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["bio"].startswith("thread ")
