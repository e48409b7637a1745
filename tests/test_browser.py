"""The landing page and /docs in a real headless Chromium, served by a real `capex serve`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from capex.testing import discard_database, fresh_database
from tests.live import live_server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser tests: scripts/ensure-chromium installs Chromium")
        pytest.skip("Chromium and ChromeDriver are not installed (scripts/ensure-chromium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # No network but this machine: a page that needs a CDN shows it here.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--proxy-bypass-list=127.0.0.1;localhost",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    # Every Content-Security-Policy violation of every page, kept where the test reads it.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        },
    )
    try:
        yield driver
    finally:
        driver.quit()


def test_landing_page_shows_the_skill_areas_in_a_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    database = fresh_database("sqlite", tmp_path)
    try:
        with live_server(database, workers=1, log=tmp_path / "serve.log") as base:
            browser.get(base + "/")  # type: ignore[attr-defined]
            assert browser.title == "capex: a capacity exchange"  # type: ignore[attr-defined]
            areas = browser.find_elements(By.CSS_SELECTOR, "#areas li")  # type: ignore[attr-defined]
            assert sorted(area.text for area in areas) == [
                "Communication",
                "Community",
                "Learning",
                "Organizational",
                "Social",
                "Strategic",
                "Technology",
            ]
            browser.find_element(By.LINK_TEXT, "health").click()  # type: ignore[attr-defined]
            assert '"status":"ok"' in browser.page_source.replace(" ", "")  # type: ignore[attr-defined]
    finally:
        discard_database(database)


def _violations(browser: object) -> list[str]:
    return list(browser.execute_script("return window.__violations"))  # type: ignore[attr-defined]


def test_docs_render_the_operations_offline_without_csp_violations(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    database = fresh_database("sqlite", tmp_path)
    try:
        with live_server(database, workers=1, log=tmp_path / "serve.log") as base:
            browser.get(base + "/docs")  # type: ignore[attr-defined]
            WebDriverWait(browser, 20).until(
                expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
            )
            paths = {
                element.text
                for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # type: ignore[attr-defined]
            }
            assert "/api/v1/auth/register" in paths
            assert "/api/v1/me/matches" in paths
            assert _violations(browser) == []

            browser.get(base + "/redoc")  # type: ignore[attr-defined]
            WebDriverWait(browser, 20).until(
                expected_conditions.presence_of_element_located(
                    (By.CSS_SELECTOR, "[data-section-id^='operation/']")
                )
            )
            # ReDoc always links its maker's logo from their CDN; the policy keeps it out.
            assert set(_violations(browser)) <= {"img-src https://cdn.redoc.ly/redoc/logo-mini.svg"}

            browser.get(base + "/")  # type: ignore[attr-defined]
            assert browser.find_element(By.ID, "areas").is_displayed()  # type: ignore[attr-defined]
            assert _violations(browser) == []
    finally:
        discard_database(database)
