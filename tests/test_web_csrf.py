"""Every form the web client takes is refused without its CSRF token: each POST route of
the HTML door, found in the app itself, so that a new one cannot be left out."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from capex.models import Exchange, Notification, Volunteer
from capex.web.pages import HtmlRoute
from capex.web.security import csrf_token
from tests.factories import make_volunteer
from tests.webtools import csrf_of, sign_in_browser

SAMPLE_PARAMETERS = {
    "exchange_id": "1",
    "action": "accept",
    "round_id": "1",
    "skill_id": "lua",
    "volunteer_id": "1",
}


def _routes(routes):
    """Every route, those of included routers too (the web door adds no path prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def _post_routes(app):
    for route in _routes(app.routes):
        if isinstance(route, HtmlRoute) and "POST" in route.methods:
            path = re.sub(r"\{(\w+)\}", lambda found: SAMPLE_PARAMETERS[found.group(1)], route.path)
            yield path


def _counts(session):
    return [
        session.scalar(select(func.count()).select_from(table))
        for table in (Volunteer, Exchange, Notification)
    ]


def test_every_web_form_is_refused_without_its_token(client, session, settings):
    volunteer = make_volunteer(session, "careful")
    sign_in_browser(client, session, settings, volunteer)
    token = csrf_of(client.get("/").text)
    paths = sorted(_post_routes(client.app))
    assert len(paths) >= 13, paths  # the web client's forms, all of them
    before = _counts(session)
    for path in paths:
        for data in (
            {},
            {"csrf_token": "not-the-token"},
            {"csrf_token": token[:-1] + ("1" if token.endswith("0") else "0")},
        ):
            answer = client.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 403, (path, data, answer.status_code)
            assert "text/html" in answer.headers["content-type"]
    # A token from another browser (its own cookie) is refused too.
    stranger_token = csrf_token("another-seed", settings.secret_key)
    answer = client.post("/profile", data={"csrf_token": stranger_token}, follow_redirects=False)
    assert answer.status_code == 403
    session.expire_all()
    assert _counts(session) == before
    assert client.get("/profile").status_code == 200  # still signed in: sign-out was refused
