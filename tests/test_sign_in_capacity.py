"""Sign-in under load: the slow password hash holds no database connection, and only a
bounded number of hashes run at once (CAPEX_PASSWORD_HASH_SLOTS)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from capex.api.app import create_app
from capex.db import session_scope
from capex.models import AccessToken, LoginFailure, Volunteer
from capex.services import accounts
from tests.conftest import settings_for
from tests.factories import PASSWORD, make_volunteer
from tests.webtools import post_form

TOKEN = "/api/v1/auth/token"


class _WatchedHasher:
    """The real hasher, telling a test what was open while it ran, and running ``during``."""

    def __init__(self, open_sessions: set[Session]) -> None:
        self.real = accounts.password_hasher()
        self.open_sessions = open_sessions
        self.sessions_while_hashing: list[int] = []
        self.during: Any = None

    def verify_and_update(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.sessions_while_hashing.append(len(self.open_sessions))
        if self.during is not None:
            self.during()
        return self.real.verify_and_update(password, password_hash)  # type: ignore[no-any-return]

    def verify(self, password: str, password_hash: str) -> bool:
        return self.verify_and_update(password, password_hash)[0]

    def hash(self, password: str) -> str:
        return self.real.hash(password)  # type: ignore[no-any-return]


@pytest.fixture
def open_sessions() -> set[Session]:
    return set()


@pytest.fixture
def tracked_factory(
    session_factory: sessionmaker[Session], open_sessions: set[Session]
) -> sessionmaker[Session]:
    """The test's session factory, its sessions counted while they are open."""

    class Tracked(Session):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            open_sessions.add(self)

        def close(self) -> None:
            open_sessions.discard(self)
            super().close()

    return sessionmaker(class_=Tracked, **session_factory.kw)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch, open_sessions: set[Session]) -> _WatchedHasher:
    accounts.hash_password("warm")  # any lazy set-up of the real hasher, done before
    watched = _WatchedHasher(open_sessions)
    monkeypatch.setattr(accounts, "password_hasher", lambda: watched)
    return watched


def _count(session: Session, what: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(what)) or 0)


def test_api_sign_in_holds_no_database_session_while_hashing(
    session, settings, tracked_factory, hasher
):
    make_volunteer(session, "sol")
    app = create_app(settings, tracked_factory)
    with TestClient(app) as client:
        right = client.post(TOKEN, data={"username": "sol", "password": PASSWORD})
        wrong = client.post(TOKEN, data={"username": "sol", "password": "not it"})
        nobody = client.post(TOKEN, data={"username": "nobody", "password": "not it"})

    assert (right.status_code, wrong.status_code, nobody.status_code) == (200, 401, 401)
    assert hasher.sessions_while_hashing == [0, 0, 0]
    # The wrong password and the unknown name were counted, before their 401 went out.
    assert _count(session, LoginFailure) == 2


def test_web_sign_in_holds_no_database_session_while_hashing(
    session, settings, tracked_factory, hasher
):
    make_volunteer(session, "tove")
    app = create_app(settings, tracked_factory)
    with TestClient(app) as client:
        wrong = post_form(client, "/sign-in", {"username": "tove", "password": "not it"})
        right = post_form(client, "/sign-in", {"username": "tove", "password": PASSWORD})

    assert wrong.status_code == 422
    assert right.status_code == 303
    assert right.cookies.get("capex_session")
    assert hasher.sessions_while_hashing == [0, 0]


def test_a_password_changed_while_hashing_is_checked_again(
    session, settings, tracked_factory, hasher
):
    volunteer = make_volunteer(session, "uma")
    new_hash = accounts.hash_password("a brand new password")

    def change_password() -> None:
        hasher.during = None
        with session_scope(tracked_factory) as other:
            other.get(Volunteer, volunteer.id).password_hash = new_hash

    hasher.during = change_password

    issued = accounts.try_sign_in(tracked_factory, settings, "uma", PASSWORD, "10.0.0.1")

    # The old password was right when it was read, but no longer: no token for it.
    assert issued is None
    assert _count(session, AccessToken) == 0
    assert _count(session, LoginFailure) == 1
    again = accounts.try_sign_in(tracked_factory, settings, "uma", "a brand new password", "x")
    assert again is not None


class _GatedHasher:
    """A hasher that holds every caller until released, counting how many are inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def verify_and_update(self, password: str, password_hash: str) -> tuple[bool, None]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        self.release.wait(timeout=30)
        with self.lock:
            self.inside -= 1
        return True, None


@pytest.mark.parametrize("slots", [1, 2])
def test_at_most_the_configured_number_of_hashes_run_at_once(monkeypatch, slots):
    gated = _GatedHasher()
    monkeypatch.setattr(accounts, "password_hasher", lambda: gated)
    accounts.limit_concurrent_hashes(slots)
    callers = [threading.Thread(target=accounts.verify_password, args=("p", "h")) for _ in range(5)]
    try:
        for caller in callers:
            caller.start()
        for _ in range(slots):
            assert gated.entered.acquire(timeout=30)
        # The others queue: none of them gets in while the first ones hash.
        assert not gated.entered.acquire(timeout=0.3)
        assert gated.inside == slots
    finally:
        gated.release.set()
        for caller in callers:
            caller.join()
        accounts.limit_concurrent_hashes(1)
    assert gated.most_inside == slots


def test_a_sign_in_that_waits_too_long_for_its_turn_is_answered_503(
    monkeypatch, session, database_url, session_factory
):
    make_volunteer(session, "vera")
    make_volunteer(session, "will")
    gated = _GatedHasher()
    monkeypatch.setattr(accounts, "password_hasher", lambda: gated)
    settings = settings_for(database_url, password_hash_slots=1, password_hash_wait_seconds=0.2)
    app = create_app(settings, session_factory)
    statuses: list[int] = []
    try:
        with TestClient(app) as client:

            def first() -> None:
                form = {"username": "vera", "password": PASSWORD}
                statuses.append(client.post(TOKEN, data=form).status_code)

            hashing = threading.Thread(target=first)
            hashing.start()
            assert gated.entered.acquire(timeout=30)

            waited = client.post(TOKEN, data={"username": "will", "password": PASSWORD})

            gated.release.set()
            hashing.join()
    finally:
        gated.release.set()
        accounts.limit_concurrent_hashes(1)

    assert waited.status_code == 503
    assert waited.headers["content-type"] == "application/problem+json"
    assert int(waited.headers["retry-after"]) >= 1
    assert "signing in" in waited.json()["detail"]
    assert statuses == [200]
    # Nothing was counted against the one who waited: it was not a wrong password.
    assert _count(session, LoginFailure) == 0
