"""A matching round in a real headless Chromium on a real ``capex serve`` (SQLite and
PostgreSQL): a coordinator runs one for a small cohort, reviews it, compares both modes,
publishes it; the mentors, in their own browsers, find the requests in their inbox, one
accepts, and the coordinator's round page shows it. Every page on the way passes axe-core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from capex.testing import BACKENDS, throwaway_database
from tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_csp_violations,
    save_screenshot,
)
from tests.live import PASSWORD, live_server, register, register_coordinator

pytestmark = pytest.mark.slow
ENGLISH = [{"code": "en", "level": 5}]
EVENINGS = [{"weekday": day, "start": "18:00", "end": "21:00"} for day in range(5)]
LEARNERS = {"lena": 3, "luis": 2, "lina": 4}  # each wants Lua, aiming for this level
MENTORS = {"mara": 4, "milo": 3}  # each offers Lua at this level, two learners at once


@pytest.fixture(scope="module", params=BACKENDS)
def console_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real ``capex serve`` with a coordinator and a small cohort made through the API
    (the coordinator's role set in the site's database); its base URL."""
    directory = tmp_path_factory.mktemp(f"rounds-{request.param}")
    with (
        throwaway_database(str(request.param), directory) as url,
        live_server(url, workers=1, log=directory / "serve.log") as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        register_coordinator(client, url, "cora")
        for name, level in MENTORS.items():
            register(
                client,
                name,
                {
                    "display_name": name.title(),
                    "timezone": "Europe/Lisbon",
                    "languages": ENGLISH,
                    "availability": EVENINGS,
                    "offers": [{"skill": "lua", "level": level}],
                    "mentor_capacity": 2,
                },
            )
        for name, level in LEARNERS.items():
            register(
                client,
                name,
                {
                    "display_name": name.title(),
                    "timezone": "Europe/Lisbon",
                    "languages": ENGLISH,
                    "availability": EVENINGS,
                    "wants": [{"skill": "lua", "level": level}],
                },
            )
        yield base


@pytest.fixture
def pictured(request) -> bool:
    """Whether this run's pages are the ones pictured (SQLite's; PostgreSQL's look the same)."""
    return request.node.callspec.params.get("console_site") == "sqlite"


def checked(page: Page, *shots: str) -> None:
    assert_accessible(page)
    assert_no_csp_violations(page)
    for name in shots:
        save_screenshot(page, name)


def sign_in_as(page: Page, site: str, username: str) -> None:
    page.goto(site + "/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator('main form[action="/sign-in"] button[type=submit]').click()
    expect(page).to_have_url(re.compile(r"/matches$"))


def fill_round(page: Page, name: str, learners: str) -> None:
    page.fill("#name", name)
    page.fill("#skills-0", "Lua")
    page.fill("#learners", learners)
    page.fill("#mentors", "mara, milo")


def test_a_coordinator_runs_compares_and_publishes_a_round(
    console_site, new_page, pictured, tmp_path
):
    site = console_site
    coordinator = new_page(viewport=DESKTOP)
    sign_in_as(coordinator, site, "cora")

    coordinator.goto(site + "/console/rounds")
    expect(coordinator.locator("#no-rounds")).to_be_visible()
    checked(coordinator)
    coordinator.get_by_role("link", name="Run a new round").click()
    expect(coordinator).to_have_url(re.compile(r"/console/rounds/new$"))
    checked(coordinator)

    # A mistyped username is shown next to its field, with everything typed kept.
    fill_round(coordinator, "Lua cohort", "lena\nluis\nlina\nlena_typo")
    coordinator.get_by_role("button", name="Run the round").click()
    expect(coordinator.locator("#learners-error")).to_have_text(
        "No active volunteer has the username lena_typo."
    )
    expect(coordinator.locator("#name")).to_have_value("Lua cohort")
    expect(coordinator.locator("#mentors")).to_have_value("mara, milo")
    checked(coordinator)
    coordinator.fill("#learners", "lena\nluis\nlina")
    coordinator.get_by_role("button", name="Run the round").click()
    expect(coordinator).to_have_url(re.compile(r"/console/rounds/\d+\?notice=round-run$"))
    review_url = coordinator.url.split("?")[0]

    # The review: metrics with their meaning, the pairs with their reasons, whom it left.
    main = coordinator.locator("main")
    expect(coordinator.locator("#metric-learners")).to_contain_text("3")
    expect(coordinator.locator("#metric-matched")).to_contain_text("3")
    expect(coordinator.locator("#pair-table")).to_contain_text("which Lena wants to learn.")
    expect(coordinator.locator("#pair-table")).to_contain_text("Both speak English.")
    expect(coordinator.locator("#pair-table")).to_contain_text(
        "Free at the same time 15 hours a week."
    )
    expect(coordinator.locator("#publish-confirm")).to_contain_text("Publishing sends 3 requests")
    expect(main).to_contain_text("Every learner of the cohort has a mentor in this round.")
    checked(coordinator, *(["console-round-review"] if pictured else []))

    # The same cohort, both ways.
    coordinator.goto(site + "/console/rounds/new")
    fill_round(coordinator, "Lua cohort, compared", "lena luis lina")
    coordinator.get_by_role("button", name="Compare optimal and stable").click()
    expect(coordinator).to_have_url(re.compile(r"/console/rounds/compare\?a=\d+&b=\d+$"))
    expect(coordinator.locator("h1")).to_have_text("Optimal and Stable compared")
    expect(coordinator.locator("#compare-blocking_pairs")).to_contain_text("Blocking pairs")
    expect(coordinator.locator("#differ")).to_contain_text("in both rounds")
    checked(coordinator, *(["console-round-compare"] if pictured else []))

    coordinator.goto(site + "/console/rounds")
    expect(coordinator.locator("#rounds tbody tr")).to_have_count(3)
    checked(coordinator)

    # Publishing the first round sends its three pairs to the mentors.
    coordinator.goto(review_url)
    coordinator.get_by_role("button", name="Publish and send 3 requests").click()
    expect(main).to_contain_text("The round is published")
    expect(coordinator.locator("#outcome")).to_contain_text("3 pairs became requests.")
    expect(coordinator.locator("#outcome")).to_contain_text("Accepted: 0 of 3.")
    expect(coordinator.locator("#publish-form")).to_have_count(0)
    checked(coordinator)
    pair_rows = coordinator.locator("#pair-table tbody tr")
    mentors_asked = {name: pair_rows.filter(has_text=f"@{name}").count() for name in MENTORS}
    assert sum(mentors_asked.values()) == 3

    # Each mentor, in their own browser, finds the requests in the inbox and on /exchanges.
    accepting = max(mentors_asked, key=lambda name: mentors_asked[name])
    for name in MENTORS:
        if not mentors_asked[name]:
            continue
        mentor = new_page(viewport=DESKTOP)
        sign_in_as(mentor, site, name)
        mentor.goto(site + "/inbox")
        expect(mentor.locator("main")).to_contain_text("Lua")
        checked(mentor)
        mentor.goto(site + "/exchanges")
        waiting = mentor.locator("form[id^=accept-]")
        expect(waiting).to_have_count(mentors_asked[name])
        checked(mentor)
        if name == accepting:
            waiting.first.get_by_role("button", name="Accept").click()
            expect(mentor.locator("main")).to_contain_text("You accepted this request.")

    # The coordinator's round page shows the pair accepted.
    coordinator.goto(review_url)
    expect(coordinator.locator("#outcome")).to_contain_text("Accepted: 1 of 3.")
    accepted = coordinator.locator("#pair-table .state-accepted")
    expect(accepted).to_have_count(1)
    expect(
        coordinator.locator("#pair-table tbody tr").filter(
            has=coordinator.locator(".state-accepted")
        )
    ).to_contain_text(f"@{accepting}")
    checked(coordinator)

    # On a phone, in Portuguese: the page fits 360 px (wide tables scroll on their own).
    phone = new_page(viewport=PHONE, locale="pt-BR")
    sign_in_as(phone, site, "cora")
    phone.goto(review_url)
    expect(phone.locator("#outcome")).to_contain_text("Aceitos: 1 de 3.")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    checked(phone)
    phone.screenshot(path=str(tmp_path / "review-phone-pt.png"), full_page=True)
