"""The console's taxonomy editor and people pages in a real headless Chromium on a real
``capex serve`` (SQLite and PostgreSQL).

People act in order: a coordinator adds a skill under an area while the server runs; a
volunteer, in another browser, can choose it at once on the profile editor, saves it, and
sees it on the public profile and in the reasons of a match; the coordinator moves it and
the tree shows it in its new place; the coordinator makes the volunteer a coordinator, who
then sees the Console link. Every page on the way passes axe-core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from capex.testing import BACKENDS, throwaway_database
from tests.browser import DESKTOP, PHONE, assert_accessible, console_errors, save_screenshot
from tests.live import PASSWORD as API_PASSWORD
from tests.live import live_server, register_coordinator
from tests.live import sign_up as sign_up_by_api
from tests.test_browser_flow import fill_profile, reload_until, save_profile, sign_up

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Site:
    base: str
    database_url: str
    backend: str


@pytest.fixture(scope="module", params=BACKENDS)
def console_site(request, tmp_path_factory) -> Iterator[Site]:
    """A real ``capex serve`` on a fresh database, and that database's URL (to give the
    first coordinator the role, as `capex users set-role` would)."""
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    with (
        throwaway_database(str(request.param), directory) as url,
        live_server(url, workers=1, log=directory / "serve.log") as base,
    ):
        yield Site(base, url, str(request.param))


def checked(page: Page, name: str | None = None, *, pictured: bool = False) -> None:
    assert_accessible(page)
    if name and pictured:
        save_screenshot(page, name)


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").last.click()
    expect(page).to_have_url(re.compile(r"/matches$"))


def test_a_coordinator_adds_a_skill_a_volunteer_chooses_it_at_once(console_site, new_page):
    site = console_site.base
    pictured = console_site.backend == "sqlite"
    with httpx.Client(base_url=site, timeout=30) as api:
        coordinator_headers = register_coordinator(api, console_site.database_url, "carla")
    coordinator = new_page(viewport=DESKTOP)
    volunteer = new_page(viewport=DESKTOP)

    # The coordinator opens the taxonomy: seven closed areas, one opened.
    sign_in(coordinator, site, "carla", API_PASSWORD)
    # (The console's dashboard at /console is another page's; the Console link leads there.)
    expect(coordinator.locator("header.site").get_by_role("link", name="Console")).to_be_visible()
    coordinator.goto(site + "/console/taxonomy")
    expect(coordinator.locator("h1")).to_have_text("Taxonomy")
    expect(coordinator.locator(".areas-tree > li")).to_have_count(7)
    coordinator.locator("#skill-technology > details > summary").click()
    expect(coordinator.locator("#skill-technology #skill-lua")).to_be_attached()
    checked(coordinator)

    # A search by an alias finds the skill.
    coordinator.fill("#q", "Scribunto")
    coordinator.locator("#taxonomy-search button").click()
    expect(coordinator.locator("#search-results")).to_contain_text("Lua")
    checked(coordinator)

    # She adds a skill under the Community area, with a mistake first.
    coordinator.goto(site + "/console/taxonomy?open=community")
    coordinator.locator("#skill-community .add-under").first.click()
    expect(coordinator.locator("#parent")).to_have_value("community")
    coordinator.fill("#id", "OSM mapping")
    coordinator.fill("#name", "OpenStreetMap mapping")
    coordinator.fill("#aliases", "OSM\nopenstreetmap")
    coordinator.fill("#wikidata", "Q936")
    coordinator.get_by_role("button", name="Add the skill").click()
    expect(coordinator.locator("#id-error")).to_contain_text("lowercase slug")
    expect(coordinator.locator("#name")).to_have_value("OpenStreetMap mapping")
    checked(coordinator)
    coordinator.fill("#id", "osm-mapping")
    coordinator.get_by_role("button", name="Add the skill").click()
    expect(coordinator.locator("main .notice")).to_have_text("The skill is added to the taxonomy.")
    added = coordinator.locator("#skill-community #skill-osm-mapping")
    expect(added).to_be_visible()
    expect(added).to_contain_text("Q936")

    # A volunteer, in another browser, can choose it at once.
    sign_up(volunteer, site, "vic_osm")
    options = volunteer.locator("#skill-list option")
    expect(options.filter(has_text="OpenStreetMap mapping")).to_have_count(1)
    fill_profile(
        volunteer,
        name="Vic Mapper",
        timezone="UTC",
        languages=[("en", 5)],
        hours=[(0, 10), (0, 11)],
        offers=[("OpenStreetMap mapping", 3)],
    )
    save_profile(volunteer)
    expect(volunteer.locator("#offers-0-skill")).to_have_value("OpenStreetMap mapping")
    volunteer.get_by_role("link", name="See your public profile").click()
    expect(volunteer.locator("#offers")).to_contain_text("OpenStreetMap mapping")

    # The coordinator wants to learn it: the volunteer's matches name it in their reasons.
    with httpx.Client(base_url=site, timeout=30) as api:
        saved = api.put(
            "/api/v1/me/profile", json=wanting("osm-mapping"), headers=coordinator_headers
        )
        assert saved.status_code == 200, saved.text
    reload_until(volunteer, site + "/matches?as=mentor", "OpenStreetMap mapping")
    expect(volunteer.locator("li.match").first).to_contain_text(
        "Wants to learn OpenStreetMap mapping, which you offer."
    )

    # She moves it under Maps and geodata; the tree shows it there.
    coordinator.goto(site + "/console/taxonomy/osm-mapping")
    checked(coordinator)
    coordinator.fill("#parent", "maps-geodata")
    coordinator.get_by_role("button", name="Save the skill").click()
    expect(coordinator.locator("main .notice")).to_have_text("The skill is saved.")
    expect(coordinator.locator("#skill-maps-geodata #skill-osm-mapping")).to_be_visible()
    expect(coordinator.locator("#skill-community #skill-osm-mapping")).to_have_count(0)
    # A move that would make a cycle is refused in words next to the parent field.
    coordinator.goto(site + "/console/taxonomy/technology")
    coordinator.uncheck("#root")
    coordinator.fill("#parent", "maps-geodata")
    coordinator.get_by_role("button", name="Save the skill").click()
    expect(coordinator.locator("#parent-error")).to_have_text(
        "A skill cannot go under itself or under a skill below it."
    )
    expect(coordinator.locator("#parent")).to_have_value("maps-geodata")
    checked(coordinator)

    # The picture of the tree: one area open.
    coordinator.goto(site + "/console/taxonomy?open=osm-mapping")
    checked(coordinator, "console-taxonomy", pictured=pictured)

    # She makes the volunteer a coordinator, who then sees the Console link.
    expect(volunteer.locator("header.site").get_by_role("link", name="Console")).to_have_count(0)
    coordinator.locator(".console-nav").get_by_role("link", name="People").click()
    coordinator.fill("#q", "vic")
    coordinator.locator("#people-search button").click()
    row = coordinator.locator("#person-vic_osm")
    expect(row).to_contain_text("vic_osm@example.org")
    row.get_by_role("button", name=re.compile("Make coordinator")).click()
    expect(coordinator.locator("main .notice")).to_have_text("The coordinator role is given.")
    expect(row).to_contain_text("coordinator")
    with httpx.Client(base_url=site, timeout=30) as api:
        sign_up_by_api(api, "dana_editor")
    coordinator.goto(site + "/console/people")
    expect(coordinator.locator("#person-dana_editor")).to_contain_text("Make coordinator")
    checked(coordinator, "console-people", pictured=pictured)
    volunteer.goto(site + "/profile")
    expect(volunteer.locator("header.site").get_by_role("link", name="Console")).to_be_visible()
    volunteer.goto(site + "/console/taxonomy")
    expect(volunteer.locator("h1")).to_have_text("Taxonomy")

    # Giving up one's own role asks first.
    coordinator.locator("#person-carla").get_by_role("button").click()
    expect(coordinator.locator("h1")).to_have_text("Give up your coordinator role?")
    checked(coordinator)
    coordinator.get_by_role("link", name="No, stay a coordinator").click()
    expect(coordinator.locator("#person-carla")).to_contain_text("coordinator")

    # The refused forms' 422 answers are the only errors the browser reports.
    for page in (coordinator, volunteer):
        assert [error for error in console_errors(page) if "status of 422" not in error] == []


def wanting(skill: str) -> dict[str, object]:
    """A profile that wants ``skill``, free when the volunteer is (Monday 10-12 UTC)."""
    return {
        "display_name": "Carla",
        "timezone": "UTC",
        "languages": [{"code": "en", "level": 5}],
        "availability": [{"weekday": 0, "start": "10:00", "end": "12:00"}],
        "wants": [{"skill": skill, "level": 1}],
    }


@pytest.mark.parametrize("locale", ["pt-BR", "en-US"])
def test_the_console_taxonomy_on_a_phone_in_each_language(console_site, new_page, locale):
    site = console_site.base
    username = f"phone_coord_{locale[:2]}"
    with httpx.Client(base_url=site, timeout=30) as api:
        register_coordinator(api, console_site.database_url, username)
    page = new_page(viewport=PHONE, locale=locale)
    sign_in(page, site, username, API_PASSWORD)
    for path in (
        "/console/taxonomy?open=lua",
        "/console/taxonomy?q=wiki",
        "/console/taxonomy/lua",
        "/console/taxonomy/new",
        "/console/people",
    ):
        page.goto(site + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (path, width)
        checked(page)
    words = "Pessoas" if locale == "pt-BR" else "People"
    expect(page.locator("h1")).to_have_text(words)
