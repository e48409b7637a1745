"""The landing page and /docs in a real headless Chromium, served by a real `capex serve` on
SQLite and on PostgreSQL (fixtures and checks: tests/browser.py)."""

from __future__ import annotations

import pytest

from tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_csp_violations,
    console_errors,
    save_screenshot,
)

pytestmark = pytest.mark.slow

AREAS = [
    "Communication",
    "Community",
    "Learning",
    "Organizational",
    "Social",
    "Strategic",
    "Technology",
]


def test_landing_page_shows_the_skill_areas_in_a_browser(site, new_page):
    page = new_page()
    page.goto(site + "/")
    assert page.title() == "capex: a capacity exchange"
    assert sorted(page.locator("#areas li").all_inner_texts()) == AREAS

    page.get_by_role("link", name="health").click()
    assert '"status":"ok"' in page.locator("body").inner_text().replace(" ", "")
    assert_no_csp_violations(page)
    assert console_errors(page) == []


@pytest.mark.parametrize(
    ("name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)], ids=["desktop", "phone"]
)
def test_landing_page_is_accessible(site, new_page, name, viewport):
    page = new_page(viewport=viewport)
    page.goto(site + "/")
    assert page.locator("#areas").is_visible()
    # Nothing wider than the screen: a phone never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert_accessible(page)
    assert_no_csp_violations(page)
    save_screenshot(page, f"landing-{name}")


def test_docs_render_the_operations_offline_without_csp_violations(site, new_page):
    page = new_page()
    page.goto(site + "/docs")
    page.locator(".opblock").first.wait_for()
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert "/api/v1/auth/register" in paths
    assert "/api/v1/me/matches" in paths
    assert_no_csp_violations(page)
    # All of /docs would be a 7000-pixel PNG: its first screen is the picture.
    save_screenshot(page, "docs-desktop", full_page=False)

    page.goto(site + "/redoc")
    page.locator("[data-section-id^='operation/']").first.wait_for()
    # ReDoc always links its maker's logo from their CDN; the policy keeps it out (its report
    # may come late, while the next page loads).
    redoc_logo = "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert_no_csp_violations(page, allowed={redoc_logo})

    page.goto(site + "/")
    assert page.locator("#areas").is_visible()
    assert_no_csp_violations(page, allowed={redoc_logo})
