"""Plain helpers for the web client's tests over TestClient: forms, their CSRF token,
signing a browser in, and reading what a page shows."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.models import Volunteer
from capex.services import accounts

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_FIELD_ERROR = re.compile(r'<p class="field-error" id="([^"]+)-error">([^<]*)</p>')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def post_form(
    client: TestClient, page: str, data: dict[str, Any], action: str | None = None, **kwargs: Any
) -> Any:
    """GET ``page``, then POST ``data`` to ``action`` (default: the page) with its token."""
    shown = client.get(page)
    assert shown.status_code == 200, shown.text
    body = {"csrf_token": csrf_of(shown.text), **data}
    return client.post(action or page.split("?")[0], data=body, follow_redirects=False, **kwargs)


def sign_in_browser(
    client: TestClient, session: Session, settings: Settings, volunteer: Volunteer
) -> None:
    """Give ``client`` the session cookie of ``volunteer`` (no slow password check)."""
    issued = accounts.issue_token(session, settings, volunteer)
    session.commit()
    client.cookies.set("capex_session", issued.access_token)


def field_errors(page: str) -> dict[str, str]:
    """The errors a page shows next to its fields, by field name."""
    return {name: html.unescape(text) for name, text in _FIELD_ERROR.findall(page)}


def value_of(page: str, name: str) -> str | None:
    """The value an input named ``name`` shows (what was typed, kept)."""
    found = re.search(
        rf'<input id="{re.escape(name)}" name="{re.escape(name)}"[^>]*value="([^"]*)"', page
    )
    return html.unescape(found.group(1)) if found else None


def text_of(page: str) -> str:
    """What a reader sees: the page's main content without its tags, spaces collapsed."""
    body = page.split('<main id="content"', 1)[1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def section(page: str, element_id: str) -> str:
    """The text of the element with this id (to the first closing tag of its kind)."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no #{element_id} on the page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def textarea_of(page: str, name: str) -> str:
    """What a textarea named ``name`` holds (what was typed, kept)."""
    found = re.search(rf'<textarea id="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, f"no textarea {name}"
    return html.unescape(found.group(1))
