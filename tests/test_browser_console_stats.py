"""The coordinators' dashboard and gap table in a real headless Chromium on a real
``capex serve`` (SQLite and PostgreSQL): a coordinator looks; a volunteer asks a mentor,
who accepts in another browser; the coordinator reloads and the figures have moved by
exactly that one request. The charts render as images under the page's policy, and every
page passes axe-core.

The site runs with ``CAPEX_STATS_MAX_AGE_SECONDS=0`` so that a reload shows the change at
once (by default the figures may be up to 60 seconds old, and the page says as of when).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from capex.testing import BACKENDS, throwaway_database
from tests.browser import (
    PHONE,
    assert_accessible,
    assert_no_csp_violations,
    console_errors,
    save_screenshot,
)
from tests.factories import sign_in
from tests.live import PASSWORD, live_server, register_coordinator, sign_up

pytestmark = pytest.mark.slow
API = "/api/v1"


@dataclass(frozen=True)
class Site:
    base: str
    database_url: str


@pytest.fixture(scope="module", params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """A real ``capex serve`` whose statistics are taken afresh for every answer (the
    module's own: tests/browser.py's site takes no environment)."""
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    with (
        throwaway_database(str(request.param), directory) as url,
        live_server(
            url,
            workers=1,
            log=directory / "serve.log",
            env={"CAPEX_STATS_MAX_AGE_SECONDS": "0"},
        ) as base,
    ):
        yield Site(base, url)


@pytest.fixture
def pictured(request) -> bool:
    """Whether this run's pages are the ones pictured (SQLite's; PostgreSQL's look the same)."""
    return request.node.callspec.params.get("site") == "sqlite"


def volunteer(client: httpx.Client, username: str, profile: dict) -> tuple[int, dict[str, str]]:
    """A volunteer registered with ``profile``: their id and bearer header."""
    volunteer_id = sign_up(client, username)
    headers = sign_in(client, username, PASSWORD)
    saved = client.put(
        f"{API}/me/profile",
        json={"display_name": username.split("_")[0].title(), **profile},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    return volunteer_id, headers


def post(client: httpx.Client, path: str, headers: dict[str, str], body: dict | None = None):
    response = client.post(f"{API}{path}", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def populate(client: httpx.Client) -> dict[str, int]:
    """A small movement: mentors of three skills, learners of four, a few exchanges."""
    english = [{"code": "en", "level": 5}]
    mentors = {}
    for name, skill, capacity, region in (
        ("bea", "lua", 2, "nwe"),
        ("caio", "python", 3, "lac"),
        ("dora", "public-speaking", 1, "ssa"),
        ("emil", "writing", 2, "cee"),
    ):
        mentors[name] = volunteer(
            client,
            f"{name}_console",
            {
                "offers": [{"skill": skill, "level": 4}],
                "mentor_capacity": capacity,
                "languages": english,
                "region": region,
            },
        )
    learners = []
    for n, (skill, region) in enumerate(
        [("lua", "lac"), ("lua", "cee"), ("lua", "sa"), ("python", "lac"), ("python", "mena"),
         ("public-speaking", "ssa"), ("writing", "na"), ("lua", "eseap")]
    ):  # fmt: skip
        learners.append(
            (
                skill,
                volunteer(
                    client,
                    f"learner{n}_console",
                    {"wants": [{"skill": skill, "level": 1}], "languages": english,
                     "region": region},
                ),
            )
        )  # fmt: skip
    mentor_of = {"lua": "bea", "python": "caio", "public-speaking": "dora", "writing": "emil"}
    for n, (skill, (_learner_id, headers)) in enumerate(learners[:6]):
        mentor_id, mentor_headers = mentors[mentor_of[skill]]
        asked = post(client, "/exchanges", headers, {"mentor_id": mentor_id, "skill": skill})
        if n in (0, 3, 5):
            post(client, f"/exchanges/{asked['id']}/accept", mentor_headers)
        if n in (3, 5):
            post(client, f"/exchanges/{asked['id']}/complete", headers)
            post(client, f"/exchanges/{asked['id']}/feedback", headers, {"rating": 5})
        if n == 4:
            post(client, f"/exchanges/{asked['id']}/decline", mentor_headers)
    return {"bea": mentors["bea"][0]}


def sign_in_page(page: Page, site: str, username: str) -> None:
    page.goto(f"{site}/sign-in")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("main form[action='/sign-in'] button[type=submit]").click()
    expect(page).not_to_have_url(re.compile(r"/sign-in"))


def row_numbers(page: Page, table: str, key: str, value: str) -> list[float | None]:
    """The numbers in one row of a table, read as the page shows them (English)."""
    cells = page.locator(f"#{table} tr[data-{key}='{value}'] td.number").all_inner_texts()
    return [number(text) for text in cells]


def number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None  # a dash (none yet) or a share such as '67%'


def funnel_counts(page: Page) -> dict[str, int]:
    counts = {}
    for stage in ("requested", "answered", "accepted", "completed", "feedback"):
        counts[stage] = row_numbers(page, "funnel-table", "stage", stage)[0]
    return counts


def too_wide(page: Page) -> list[str]:
    """The elements that stick out of the screen (those inside a scrolling box excepted)."""
    if page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]:
        return []
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                       && !e.closest('.table-wrap'))
          .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                    + (e.className ? '.' + e.className : ''))"""
    )


def charts_render(page: Page) -> None:
    """Every chart image loaded and drew (an SVG refused by a policy has no width)."""
    images = page.locator("img.chart")
    expect(images).to_have_count(4)
    for alt in images.evaluate_all("images => images.map(image => image.alt)"):
        assert alt.strip()
    widths = page.evaluate(
        "Promise.all([...document.querySelectorAll('img.chart')].map(image => image.decode()"
        ".then(() => image.naturalWidth, () => 0)))"
    )
    assert all(width > 0 for width in widths), widths


def test_the_dashboard_moves_by_exactly_one_request_and_its_acceptance(site, new_page, pictured):
    database_url, site = site.database_url, site.base
    with httpx.Client(base_url=site, timeout=30) as client:
        register_coordinator(client, database_url, "boss_console")
        people = populate(client)
        # The learner of this test, who wants Lua and has not asked yet.
        volunteer(
            client,
            "lena_console",
            {"wants": [{"skill": "lua", "level": 2}], "languages": [{"code": "en", "level": 5}]},
        )

    boss = new_page()
    sign_in_page(boss, site, "boss_console")
    boss.goto(f"{site}/console")
    expect(boss.locator("h1")).to_have_text("Dashboard")
    expect(boss.locator("#as-of")).to_contain_text("Figures as of")
    charts_render(boss)
    assert_accessible(boss)
    before_supply = row_numbers(boss, "supply-table", "skill", "lua")
    before_funnel = funnel_counts(boss)
    if pictured:
        save_screenshot(boss, "console-dashboard")
    boss.goto(f"{site}/console/skills")
    expect(boss.locator("h1")).to_have_text("Gap table")
    assert_accessible(boss)
    before_gap = row_numbers(boss, "gap-table", "skill", "lua")
    if pictured:
        save_screenshot(boss, "console-gap-table", full_page=False)

    # Lena asks Bea in her own browser; Bea accepts in hers.
    learner = new_page()
    sign_in_page(learner, site, "lena_console")
    learner.goto(f"{site}/exchanges/new?mentor={people['bea']}&skill=lua")
    learner.get_by_role("button", name="Send the request").click()
    expect(learner.locator("main")).to_contain_text("Your request is sent.")
    exchange_url = learner.url.split("?")[0]
    mentor = new_page()
    sign_in_page(mentor, site, "bea_console")
    mentor.goto(exchange_url)
    mentor.locator("#accept-form button[type=submit]").click()
    expect(mentor.locator("main")).to_contain_text("You accepted this request.")

    boss.goto(f"{site}/console")
    after_funnel = funnel_counts(boss)
    for stage in ("requested", "answered", "accepted"):
        assert after_funnel[stage] == before_funnel[stage] + 1, stage
    for stage in ("completed", "feedback"):
        assert after_funnel[stage] == before_funnel[stage], stage
    wanted, open_slots, gap = row_numbers(boss, "supply-table", "skill", "lua")
    # Her want was counted already; Bea's accepted request takes one of her open slots.
    assert (wanted, open_slots, gap) == (
        before_supply[0],
        before_supply[1] - 1,
        before_supply[2] + 1,
    )
    charts_render(boss)
    assert_no_csp_violations(boss)
    assert console_errors(boss) == []

    boss.goto(f"{site}/console/skills")
    after_gap = row_numbers(boss, "gap-table", "skill", "lua")
    # offered, open slots, wanted, gap, requested, accepted, completed, expired (+ median)
    offered, slots, want, gap_now, requested, accepted, completed, expired = after_gap[:8]
    assert offered == before_gap[0]
    assert slots == before_gap[1] - 1
    assert want == before_gap[2]
    assert gap_now == before_gap[3] + 1
    assert requested == before_gap[4] + 1
    assert accepted == before_gap[5] + 1
    assert (completed, expired) == (before_gap[6], before_gap[7])
    # The downloads hold the rows in the order shown.
    shown = boss.locator("#gap-table tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.skill)"
    )
    download = boss.request.get(f"{site}/console/skills.csv?level=skill&sort=gap&order=desc")
    assert download.status == 200
    assert [line.split(",")[0] for line in download.text().splitlines()[1:]] == shown
    # Sorting by a column header, without JavaScript's help.
    boss.locator("#gap-table thead a", has_text="Learners wanting it").click()
    expect(boss.locator("#gap-table th[aria-sort='descending']")).to_contain_text("Learners")
    assert_accessible(boss)
    assert_no_csp_violations(boss)

    boss.goto(f"{site}/console/mentors?days=0")
    expect(boss.locator("#waiting-table")).to_contain_text("Learner1")
    assert_accessible(boss)
    boss.locator("#waiting-table input[type=checkbox]").first.check()
    boss.get_by_role("button", name="Remind the chosen mentors").click()
    expect(boss.locator("main")).to_contain_text("The mentors are reminded.")
    assert_accessible(boss)


def test_the_dashboard_on_a_phone_in_portuguese(site, new_page):
    database_url, site = site.database_url, site.base
    with httpx.Client(base_url=site, timeout=30) as client:
        register_coordinator(client, database_url, "boss_phone")
    boss = new_page(viewport=PHONE, locale="pt-BR")
    sign_in_page(boss, site, "boss_phone")
    boss.goto(f"{site}/console")
    expect(boss.locator("h1")).to_have_text("Painel")
    charts_render(boss)
    # Nothing wider than the screen: wide tables scroll inside their own box.
    assert too_wide(boss) == []
    assert_accessible(boss)
    assert_no_csp_violations(boss)
    boss.goto(f"{site}/console/skills")
    expect(boss.locator("h1")).to_have_text("Tabela de lacunas")
    assert too_wide(boss) == []
    assert_accessible(boss)
