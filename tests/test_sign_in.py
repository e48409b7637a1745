"""Sign-in answers that tell a client what went wrong: a deactivated account, a JSON body."""

from __future__ import annotations

from sqlalchemy import func, select

from capex.models import LoginFailure
from tests.factories import PASSWORD, make_volunteer, sign_in

TOKEN = "/api/v1/auth/token"


def _failures(session, username):
    session.expire_all()
    return session.scalar(
        select(func.count()).select_from(LoginFailure).where(LoginFailure.username_key == username)
    )


def test_deactivated_account_with_the_right_password_is_told_it_is_deactivated(client, session):
    make_volunteer(session, "nora")
    headers = sign_in(client, "nora")
    assert client.delete("/api/v1/me", headers=headers).status_code == 204

    response = client.post(TOKEN, data={"username": "nora", "password": PASSWORD})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "deactivated" in response.json()["detail"]
    assert "access_token" not in response.json()
    assert _failures(session, "nora") == 0


def test_deactivated_account_with_a_wrong_password_hears_only_wrong_password(client, session):
    make_volunteer(session, "oscar")
    make_volunteer(session, "active")
    headers = sign_in(client, "oscar")
    assert client.delete("/api/v1/me", headers=headers).status_code == 204

    wrong = client.post(TOKEN, data={"username": "oscar", "password": "not the password"})
    active = client.post(TOKEN, data={"username": "active", "password": "not the password"})

    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json() == active.json()
    assert "deactivated" not in wrong.text
    assert _failures(session, "oscar") == 1


def test_wrong_passwords_for_a_deactivated_account_are_throttled(client, session, settings):
    make_volunteer(session, "petra")
    headers = sign_in(client, "petra")
    assert client.delete("/api/v1/me", headers=headers).status_code == 204
    for _ in range(settings.login_max_failures_per_username):
        response = client.post(TOKEN, data={"username": "petra", "password": "not the password"})
        assert response.status_code == 401

    # Throttled before the password is looked at: even the right one learns nothing.
    throttled = client.post(TOKEN, data={"username": "petra", "password": PASSWORD})

    assert throttled.status_code == 429
    assert "deactivated" not in throttled.text


def test_token_with_a_json_body_says_it_takes_form_fields(client, session):
    make_volunteer(session, "quinn")

    response = client.post(TOKEN, json={"username": "quinn", "password": PASSWORD})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "application/x-www-form-urlencoded" in detail
    assert "'username'" in detail
    assert "'password'" in detail
    assert "application/json" in detail
    assert response.json()["errors"] == [
        {"loc": ["header", "Content-Type"], "msg": "expected application/x-www-form-urlencoded"}
    ]


def test_token_with_no_content_type_says_it_takes_form_fields(client):
    response = client.post(TOKEN, content=b"username=quinn&password=x")

    assert response.status_code == 422
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def test_token_still_takes_a_form_with_a_charset(client, session):
    make_volunteer(session, "rosa")

    response = client.post(
        TOKEN,
        content=f"username=rosa&password={PASSWORD.replace(' ', '+')}".encode(),
        headers={"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"


def test_token_form_with_a_missing_field_still_names_the_field(client):
    response = client.post(TOKEN, data={"username": "rosa"})

    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["errors"]} == {("body", "password")}
