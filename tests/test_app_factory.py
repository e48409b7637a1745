"""create_app uses the database its settings name, and sign-in counts failures in a
transaction of its own; both on real engines (not the rolled-back test connection)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from capex import migrate
from capex.api.app import create_app
from capex.models import LoginFailure
from capex.testing import fresh_database
from tests.conftest import reset_process_state, settings_for
from tests.factories import PASSWORD

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"


def register(client: TestClient, username: str) -> None:
    body = {"username": username, "email": f"{username}@example.org", "password": PASSWORD}
    response = client.post(REGISTER, json=body)
    assert response.status_code == 201, response.text


def sign_in_status(client: TestClient, username: str, password: str = PASSWORD) -> int:
    return client.post(TOKEN, data={"username": username, "password": password}).status_code


def engine_of(client: TestClient) -> Engine:
    engine: Engine = client.app.state.session_factory.kw["bind"]
    return engine


@pytest.fixture
def environment_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CAPEX_DATABASE_URL names a third database, which no app given settings may touch."""
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("CAPEX_DATABASE_URL", f"sqlite:///{elsewhere}")
    reset_process_state()
    yield elsewhere
    monkeypatch.undo()
    reset_process_state()


def test_two_apps_in_one_process_each_use_the_database_of_their_settings(
    tmp_path, environment_elsewhere
):
    first_url, second_url = (fresh_database("sqlite", tmp_path) for _ in range(2))
    for url in (first_url, second_url):
        migrate.upgrade(url)

    with (
        TestClient(create_app(settings_for(first_url))) as first,
        TestClient(create_app(settings_for(second_url))) as second,
    ):
        register(first, "ada")
        register(second, "bob")

        assert sign_in_status(first, "ada") == 200
        assert sign_in_status(second, "bob") == 200
        assert sign_in_status(second, "ada") == 401
        assert sign_in_status(first, "bob") == 401
        # Each name is free in the other database.
        register(first, "bob")
        register(second, "ada")
        engines = [engine_of(first), engine_of(second)]
        assert [str(engine.url) for engine in engines] == [first_url, second_url]
        assert all(engine.pool.checkedin() for engine in engines)

    # Shut down, each app disposed of the engine it made.
    assert [engine.pool.checkedin() for engine in engines] == [0, 0]
    assert not environment_elsewhere.exists()


@pytest.fixture
def real_database(live_database: str) -> str:
    """A fresh migrated database of each backend, used through an engine the app makes."""
    migrate.upgrade(live_database)
    return live_database


def failures(client: TestClient, username: str) -> int:
    with client.app.state.session_factory() as session:
        return session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.username_key == username)
        )


def test_failed_sign_ins_are_counted_and_lock_out_on_a_real_database(real_database):
    settings = settings_for(real_database, login_max_failures_per_username=3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        register(client, "nora")

        # Each failure is committed before its 401, while nothing else of it is.
        wrong = [sign_in_status(client, "nora", "not the password") for _ in range(3)]
        assert wrong == [401, 401, 401]
        assert failures(client, "nora") == 3

        assert sign_in_status(client, "nora") == 429
        assert failures(client, "nora") == 3
        # The throttle is per username: another account still signs in, and clears its own.
        register(client, "omar")
        assert sign_in_status(client, "omar", "not the password") == 401
        assert sign_in_status(client, "omar") == 200
        assert failures(client, "omar") == 0


def test_concurrent_failed_sign_ins_beside_other_writes_neither_wait_nor_fail(real_database):
    limit = 3
    settings = settings_for(real_database, login_max_failures_per_username=limit)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        register(client, "petra")

        def attempt(number: int) -> int:
            if number % 2:
                body = {
                    "username": f"writer{number}",
                    "email": f"writer{number}@example.org",
                    "password": PASSWORD,
                }
                return client.post(REGISTER, json=body).status_code
            return sign_in_status(client, "petra", "not the password")

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(attempt, range(2 * (limit + 2))))

        sign_ins = statuses[::2]
        assert set(statuses[1::2]) == {201}
        assert set(sign_ins) <= {401, 429}
        if client.app.state.settings.database_url.startswith("sqlite"):
            # One write transaction holds the check and the count: the limit is exact.
            assert sign_ins.count(401) == limit
        else:
            assert sign_ins.count(401) >= limit
        assert failures(client, "petra") == sign_ins.count(401)
        assert sign_in_status(client, "petra") == 429
