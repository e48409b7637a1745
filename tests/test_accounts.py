"""Registration, sign-in, tokens, throttling, roles and deactivation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from capex.models import AccessToken, Volunteer
from capex.models.base import utcnow
from capex.services import accounts
from tests.factories import PASSWORD, auth_headers, make_volunteer, problem_fields, sign_in

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"


def _register(client, username="alice", email="alice@example.org", password="long enough pw"):
    return client.post(REGISTER, json={"username": username, "email": email, "password": password})


def test_register_returns_own_profile_without_password(client):
    response = _register(client)
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.org"
    assert body["role"] == "volunteer"
    assert body["display_name"] == "alice"
    assert body["mentor_capacity"] == 2
    assert "password" not in str(body)


def test_register_then_sign_in_and_read_me(client):
    _register(client, username="Bob_1", email="Bob@Example.org")
    headers = sign_in(client, "bob_1", "long enough pw")
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["username"] == "Bob_1"
    assert me["email"] == "bob@example.org"


def test_register_names_every_bad_field(client):
    response = client.post(
        REGISTER, json={"username": "a b", "email": "not-an-email", "password": "short"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert problem_fields(response) == {"body.username", "body.email", "body.password"}


def test_register_taken_username_is_409_whatever_the_case(client):
    assert _register(client).status_code == 201
    response = _register(client, username="ALICE", email="other@example.org")
    assert response.status_code == 409
    assert "username" in response.json()["detail"]


def test_register_taken_email_is_409(client):
    assert _register(client).status_code == 201
    response = _register(client, username="alice2", email="ALICE@example.org")
    assert response.status_code == 409
    assert "email" in response.json()["detail"]


def test_token_response_follows_oauth2(client, session):
    make_volunteer(session, "carol")
    response = client.post(TOKEN, data={"username": "carol", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    # Only a keyed hash is stored, never the token itself.
    stored = session.scalars(select(AccessToken.token_hash)).all()
    assert body["access_token"] not in stored
    assert len(stored) == 1


def test_wrong_password_is_401(client, session):
    make_volunteer(session, "dave")
    response = client.post(TOKEN, data={"username": "dave", "password": "wrong password"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = client.post(TOKEN, data={"username": "nobody", "password": "wrong password"})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == response.json()["detail"]


def test_protected_endpoint_without_token_is_401_with_challenge(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_logout_revokes_the_token(client, session):
    make_volunteer(session, "erin")
    headers = sign_in(client, "erin")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_expired_token_is_refused(client, session, settings):
    volunteer = make_volunteer(session, "frank")
    headers = auth_headers(session, settings, volunteer)
    session.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_repeated_failures_for_a_username_are_throttled(client, session, settings):
    make_volunteer(session, "gina")
    for _ in range(settings.login_max_failures_per_username):
        response = client.post(TOKEN, data={"username": "gina", "password": "wrong password"})
        assert response.status_code == 401
    throttled = client.post(TOKEN, data={"username": "GINA", "password": PASSWORD})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "try again" in throttled.json()["detail"]


def test_repeated_failures_from_one_address_are_throttled(client, session, settings):
    make_volunteer(session, "hugo")
    for attempt in range(settings.login_max_failures_per_address):
        client.post(TOKEN, data={"username": f"guess{attempt}", "password": "wrong password"})
    response = client.post(TOKEN, data={"username": "hugo", "password": PASSWORD})
    assert response.status_code == 429
    assert "address" in response.json()["detail"]


def test_successful_sign_in_clears_the_failures(client, session, settings):
    make_volunteer(session, "iris")
    for _ in range(settings.login_max_failures_per_username - 1):
        client.post(TOKEN, data={"username": "iris", "password": "wrong password"})
    sign_in(client, "iris")
    for _ in range(settings.login_max_failures_per_username - 1):
        client.post(TOKEN, data={"username": "iris", "password": "wrong password"})
    assert client.post(TOKEN, data={"username": "iris", "password": PASSWORD}).status_code == 200


def test_deactivated_volunteer_cannot_sign_in_and_disappears(client, session, settings):
    jane = make_volunteer(session, "jane")
    viewer = make_volunteer(session, "kim")
    headers = sign_in(client, "jane")
    viewer_headers = auth_headers(session, settings, viewer)
    assert client.delete("/api/v1/me", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    response = client.post(TOKEN, data={"username": "jane", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get(f"/api/v1/volunteers/{jane.id}", headers=viewer_headers).status_code == 404
    listed = client.get("/api/v1/volunteers", headers=viewer_headers).json()["items"]
    assert [item["username"] for item in listed] == ["kim"]
    # The account stays, deactivated, for the history.
    session.expire_all()
    stored = session.get(Volunteer, jane.id)
    assert stored is not None
    assert stored.is_active is False
    assert stored.deactivated_at is not None


def test_coordinator_grants_and_removes_the_role(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    lena = make_volunteer(session, "lena")
    headers = auth_headers(session, settings, boss)
    response = client.put(
        f"/api/v1/volunteers/{lena.id}/role", json={"role": "coordinator"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "coordinator"
    lena_headers = auth_headers(session, settings, lena)
    assert client.get("/api/v1/me", headers=lena_headers).json()["role"] == "coordinator"


def test_volunteer_cannot_grant_roles(client, session, settings):
    mia = make_volunteer(session, "mia")
    headers = auth_headers(session, settings, mia)
    response = client.put(
        f"/api/v1/volunteers/{mia.id}/role", json={"role": "coordinator"}, headers=headers
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_role_is_422(client, session, settings):
    boss = make_volunteer(session, "boss", role="coordinator")
    headers = auth_headers(session, settings, boss)
    response = client.put(
        f"/api/v1/volunteers/{boss.id}/role", json={"role": "admin"}, headers=headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.role"}


def test_housekeeping_drops_expired_tokens_and_old_failures(
    client, session, session_factory, settings
):
    from capex.models import LoginFailure
    from capex.services import maintenance

    olga = make_volunteer(session, "olga")
    live = auth_headers(session, settings, olga)
    stale = auth_headers(session, settings, olga)
    stale_hash = accounts.hash_token(stale["Authorization"].split()[1], settings.secret_key)
    session.execute(
        update(AccessToken)
        .where(AccessToken.token_hash == stale_hash)
        .values(expires_at=utcnow() - timedelta(minutes=1))
    )
    old = utcnow() - timedelta(seconds=settings.login_window_seconds + 1)
    session.add(LoginFailure(username_key="olga", client_address="1.2.3.4", failed_at=old))
    session.add(LoginFailure(username_key="olga", client_address="1.2.3.4"))
    session.commit()
    assert maintenance.run_once(session_factory, settings) == 2
    session.expire_all()
    live_hash = accounts.hash_token(live["Authorization"].split()[1], settings.secret_key)
    assert session.scalars(select(AccessToken.token_hash)).all() == [live_hash]
    assert len(session.scalars(select(LoginFailure)).all()) == 1
    assert client.get("/api/v1/me", headers=live).status_code == 200
