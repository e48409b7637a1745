"""Signing up, in and out, and passwords, in the web client (TestClient, both databases)."""

from __future__ import annotations

import re

from sqlalchemy import select

from capex.models import Notification, Volunteer
from capex.vocabulary import NotificationKind
from tests.factories import PASSWORD, make_volunteer
from tests.webtools import csrf_of, field_errors, post_form, sign_in_browser, value_of


def test_sign_up_creates_the_account_and_signs_in(client, session):
    answer = post_form(
        client,
        "/sign-up",
        {"username": "amara", "email": "amara@example.org", "password": "a long password"},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/profile?notice=signed-up"
    cookie = answer.headers["set-cookie"]
    assert "capex_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    home = client.get("/")
    assert "Sign out" in home.text
    assert "Sign up" not in home.text
    assert session.scalars(select(Volunteer).where(Volunteer.username == "amara")).one()


def test_sign_up_with_bad_input_shows_each_error_next_to_its_field_and_keeps_the_input(client):
    answer = post_form(
        client, "/sign-up", {"username": "a b", "email": "not-an-email", "password": "short"}
    )
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    assert set(errors) == {"username", "email", "password"}
    assert "3 to 32" in errors["username"]
    assert "10 characters" in errors["password"]
    assert value_of(answer.text, "username") == "a b"
    assert value_of(answer.text, "email") == "not-an-email"
    assert 'value="short"' not in answer.text  # a password is never sent back


def test_sign_up_errors_are_in_portuguese_for_a_portuguese_browser(client):
    client.headers["Accept-Language"] = "pt-BR,pt;q=0.9,en;q=0.5"
    answer = post_form(client, "/sign-up", {"username": "ok_name", "email": "x", "password": "p"})
    assert answer.status_code == 422
    assert '<html lang="pt-BR" dir="ltr">' in answer.text
    assert field_errors(answer.text)["password"] == (
        "Isto é curto demais: pelo menos 10 caracteres."
    )


def test_a_taken_username_is_named_on_its_field(client, session):
    make_volunteer(session, "taken")
    answer = post_form(
        client, "/sign-up", {"username": "Taken", "email": "new@example.org", "password": PASSWORD}
    )
    assert answer.status_code == 422
    assert "taken" in field_errors(answer.text)["username"]


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(client, session):
    client.get("/sign-up")  # the browser has its CSRF cookie, the attacker's form no token
    forged = client.post(
        "/sign-up",
        data={"username": "mallory", "email": "m@example.org", "password": PASSWORD},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert "reload the page" in forged.text
    wrong = client.post(
        "/sign-up",
        data={
            "csrf_token": "0" * 64,
            "username": "mallory",
            "email": "m@example.org",
            "password": PASSWORD,
        },
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    assert session.scalars(select(Volunteer).where(Volunteer.username == "mallory")).first() is None


def test_sign_in_goes_where_it_was_asked_and_never_to_another_site(client, session):
    make_volunteer(session, "bea")
    asked = client.get("/account/password", follow_redirects=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == "/sign-in?next=/account/password"
    page = client.get("/sign-in?next=//evil.example/")
    answer = client.post(
        "/sign-in",
        data={
            "csrf_token": csrf_of(page.text),
            "username": "bea",
            "password": PASSWORD,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/matches"


def test_wrong_passwords_are_throttled_like_the_api(client, session, settings):
    make_volunteer(session, "cai")
    for _ in range(settings.login_max_failures_per_username):
        wrong = post_form(client, "/sign-in", {"username": "cai", "password": "wrong password"})
        assert wrong.status_code == 422
        assert "not right" in wrong.text
        assert value_of(wrong.text, "username") == "cai"
    locked = post_form(client, "/sign-in", {"username": "cai", "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


def test_sign_out_ends_the_session_for_good(client, session, settings):
    volunteer = make_volunteer(session, "dan")
    sign_in_browser(client, session, settings, volunteer)
    token = client.cookies.get("capex_session")
    answer = post_form(client, "/", {}, action="/sign-out")
    assert answer.status_code == 303
    client.cookies.set("capex_session", token)  # a stolen copy of the cookie
    assert client.get("/account/password", follow_redirects=False).status_code == 303


def test_changing_the_password_needs_the_current_one(client, session, settings):
    volunteer = make_volunteer(session, "eve")
    sign_in_browser(client, session, settings, volunteer)
    wrong = post_form(
        client,
        "/account/password",
        {"current_password": "nope", "password": "new password 1", "password_again": "other"},
    )
    assert wrong.status_code == 422
    assert set(field_errors(wrong.text)) == {"current_password", "password_again"}
    done = post_form(
        client,
        "/account/password",
        {
            "current_password": PASSWORD,
            "password": "new password 1",
            "password_again": "new password 1",
        },
    )
    assert done.status_code == 303
    signed_in = client.post(
        "/api/v1/auth/token", data={"username": "eve", "password": "new password 1"}
    )
    assert signed_in.status_code == 200


def test_a_forgotten_password_is_reset_once_through_the_mailed_link(client, session):
    make_volunteer(session, "fay")
    unknown = post_form(client, "/forgot-password", {"email": "nobody@example.org"})
    asked = post_form(client, "/forgot-password", {"email": "FAY@example.org"})
    # The same answer whether or not the address is registered.
    assert (
        unknown.headers["location"] == asked.headers["location"] == ("/sign-in?notice=reset-sent")
    )
    mail = session.scalars(
        select(Notification).where(Notification.kind == NotificationKind.PASSWORD_RESET)
    ).one()
    link = re.search(r"http://testserver(/reset-password\?token=\S+)", mail.text)
    assert link, mail.text
    page = client.get(link.group(1))
    assert page.status_code == 200
    form = {
        "token": link.group(1).split("token=")[1],
        "password": "brand new pass",
        "password_again": "brand new pass",
    }
    reset = client.post(
        "/reset-password",
        data={"csrf_token": csrf_of(page.text), **form},
        follow_redirects=False,
    )
    assert reset.status_code == 303
    again = client.post(
        "/reset-password",
        data={"csrf_token": csrf_of(page.text), **form},
        follow_redirects=False,
    )
    assert again.status_code == 422
    assert "not valid any more" in again.text
    assert (
        client.post(
            "/api/v1/auth/token", data={"username": "fay", "password": "brand new pass"}
        ).status_code
        == 200
    )


def test_the_language_switcher_remembers_the_choice(client, session, settings):
    volunteer = make_volunteer(session, "gil")
    sign_in_browser(client, session, settings, volunteer)
    answer = post_form(client, "/", {"language": "pt_BR", "next": "/"}, action="/language")
    assert answer.status_code == 303
    assert "Sair" in client.get("/").text
    session.refresh(volunteer)
    assert volunteer.locale == "pt_BR"


def test_over_https_the_cookies_are_secure(client):
    client.base_url = "https://testserver"
    answer = post_form(
        client,
        "/sign-up",
        {"username": "sec", "email": "sec@example.org", "password": "a long password"},
    )
    assert answer.status_code == 303
    cookies = answer.headers.get_list("set-cookie")
    session_cookie = next(cookie for cookie in cookies if cookie.startswith("capex_session="))
    assert "Secure" in session_cookie
    assert "HttpOnly" in session_cookie
    csp = client.get("/sign-up").headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp


def test_a_mistyped_address_is_a_page_for_a_browser_and_a_problem_for_the_api(client):
    page = client.get("/no-such-page", headers={"Accept": "text/html", "Accept-Language": "pt-BR"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Não encontrado" in page.text
    api = client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
