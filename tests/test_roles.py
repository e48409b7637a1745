"""The service always keeps an active coordinator: nobody else could grant the role again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from capex import db, migrate
from capex.cli import app
from capex.models import Volunteer
from capex.schemas.profiles import RegisterIn
from capex.services import accounts
from capex.testing import discard_database, fresh_database
from tests.conftest import reset_process_state
from tests.factories import auth_headers, make_volunteer

API = "/api/v1"


def set_role(client, headers, volunteer, role):
    return client.put(f"{API}/volunteers/{volunteer.id}/role", json={"role": role}, headers=headers)


def role_of(session, volunteer):
    session.expire_all()
    return session.scalar(select(Volunteer.role).where(Volunteer.id == volunteer.id))


def assert_conflict_about_the_last_coordinator(response):
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "last active coordinator" in response.json()["detail"]


def test_the_only_coordinator_cannot_demote_themselves(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    headers = auth_headers(session, settings, boss)

    response = set_role(client, headers, boss, "volunteer")

    assert_conflict_about_the_last_coordinator(response)
    assert "boss" in response.json()["detail"]
    assert role_of(session, boss) == "coordinator"
    assert client.get(f"{API}/me", headers=headers).json()["role"] == "coordinator"


def test_a_coordinator_may_step_down_while_another_stays(client, session, settings):
    first = make_volunteer(session, "first", role="coordinator")
    second = make_volunteer(session, "second", role="coordinator")
    first_headers = auth_headers(session, settings, first)
    second_headers = auth_headers(session, settings, second)

    stepped_down = set_role(client, first_headers, first, "volunteer")

    assert stepped_down.status_code == 200, stepped_down.text
    assert stepped_down.json()["role"] == "volunteer"
    # Now the other one is the last, and keeps the role.
    assert_conflict_about_the_last_coordinator(
        set_role(client, second_headers, second, "volunteer")
    )
    assert role_of(session, second) == "coordinator"


def test_deactivated_coordinators_do_not_count(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    gone = make_volunteer(session, "gone", role="coordinator")
    accounts.deactivate(session, settings, gone)
    session.commit()
    headers = auth_headers(session, settings, boss)

    assert_conflict_about_the_last_coordinator(set_role(client, headers, boss, "volunteer"))
    assert role_of(session, boss) == "coordinator"


def test_granting_the_role_and_keeping_it_need_no_second_coordinator(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    lena = make_volunteer(session, "lena")
    headers = auth_headers(session, settings, boss)

    assert set_role(client, headers, boss, "coordinator").status_code == 200
    assert set_role(client, headers, lena, "volunteer").status_code == 200
    assert set_role(client, headers, lena, "coordinator").status_code == 200
    assert set_role(client, headers, boss, "volunteer").status_code == 200
    assert role_of(session, boss) == "volunteer"


def test_the_last_coordinator_cannot_deactivate_their_account(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    headers = auth_headers(session, settings, boss)

    response = client.delete(f"{API}/me", headers=headers)

    assert_conflict_about_the_last_coordinator(response)
    assert client.get(f"{API}/me", headers=headers).json()["is_active"] is True


def test_a_coordinator_may_deactivate_while_another_stays(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    make_volunteer(session, "deputy", role="coordinator")
    headers = auth_headers(session, settings, boss)

    assert client.delete(f"{API}/me", headers=headers).status_code == 204
    assert client.get(f"{API}/me", headers=headers).status_code == 401


def test_volunteers_deactivate_whatever_the_coordinators(client, session, settings):
    make_volunteer(session, "boss", role="coordinator")
    plain = make_volunteer(session, "plain")

    response = client.delete(f"{API}/me", headers=auth_headers(session, settings, plain))

    assert response.status_code == 204


# -- the command line ------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_database(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated database the command uses through CAPEX_DATABASE_URL."""
    url = fresh_database(backend, tmp_path)
    migrate.upgrade(url)
    monkeypatch.setenv("CAPEX_DATABASE_URL", url)
    reset_process_state()
    yield url
    reset_process_state()
    discard_database(url)


def _register(username: str) -> None:
    with db.session_scope() as session:
        accounts.register(
            session,
            RegisterIn(
                username=username, email=f"{username}@example.org", password="long enough pw"
            ),
        )


def test_set_role_refuses_to_demote_the_last_coordinator_in_one_line(cli_database):
    _register("solo")
    assert runner.invoke(app, ["users", "set-role", "solo", "coordinator"]).exit_code == 0

    refused = runner.invoke(app, ["users", "set-role", "solo", "volunteer"])

    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines() == [
        "error: solo is the last active coordinator; make someone else a coordinator first"
    ]
    assert "Traceback" not in refused.output
    _register("duo")
    assert runner.invoke(app, ["users", "set-role", "duo", "coordinator"]).exit_code == 0
    stepped_down = runner.invoke(app, ["users", "set-role", "SOLO", "volunteer"])
    assert stepped_down.exit_code == 0, stepped_down.output
    with db.session_scope() as session:
        roles = dict(session.execute(select(Volunteer.username, Volunteer.role)).all())
    assert roles == {"solo": "volunteer", "duo": "coordinator"}
