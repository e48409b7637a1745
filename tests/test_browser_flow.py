"""A volunteer's first exchange, from sign-up to feedback, in a real headless Chromium on a
real ``capex serve`` (SQLite and PostgreSQL), with JavaScript on and off.

People act in the order they would: the mentor signs up and publishes a profile while the
server runs, the learner signs up, fills a profile and looks at once, asks; the mentor,
in another browser, accepts; both see when they can meet; they write to each other; the
learner completes and gives feedback. Every page on the way passes axe-core.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_no_csp_violations,
    console_errors,
    save_screenshot,
)

pytestmark = pytest.mark.slow
PASSWORD = "a long browser password"


@pytest.fixture
def pictured(request) -> bool:
    """Whether this run's pages are the ones pictured (SQLite's; PostgreSQL's look the same)."""
    return request.node.callspec.params.get("site") == "sqlite"


def checked(page: Page, *shots: str) -> None:
    """The page passes axe; with ``shots``, it is also pictured under those names."""
    assert_accessible(page)
    for name in shots:
        save_screenshot(page, name)


def sign_up(page: Page, site: str, username: str) -> None:
    page.goto(site + "/sign-up")
    page.fill("#username", username)
    page.fill("#email", f"{username}@example.org")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Create the account").click()
    expect(page).to_have_url(re.compile(r"/profile\?notice=signed-up$"))


def fill_profile(
    page: Page,
    *,
    name: str,
    timezone: str,
    languages: list[tuple[str, int]],
    hours: list[tuple[int, int]],
    offers: list[tuple[str, int]] = (),  # type: ignore[assignment]
    wants: list[tuple[str, int]] = (),  # type: ignore[assignment]
) -> None:
    page.fill("#display_name", name)
    page.fill("#timezone", timezone)
    for index, (code, level) in enumerate(languages):
        page.fill(f"#languages-{index}-code", code)
        page.select_option(f"#languages-{index}-level", str(level))
    for weekday, hour in hours:
        page.check(f"#avail-{weekday}-{hour}")
    for group, entries in (("offers", offers), ("wants", wants)):
        for index, (skill, level) in enumerate(entries):
            page.fill(f"#{group}-{index}-skill", skill)
            page.select_option(f"#{group}-{index}-level", str(level))


def save_profile(page: Page) -> None:
    page.locator("#profile-form button[type=submit]").last.click()
    expect(page).to_have_url(re.compile(r"/profile\?notice=profile-saved$"))


def reload_until(page: Page, url: str, text: str, seconds: float = 10) -> None:
    """Open ``url`` until it shows ``text``: another volunteer's change reaches the matching
    index within its poll interval (half a second), not at the same instant."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(url)
        if text in page.inner_text("main"):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not show {text!r}: {page.inner_text('main')}")
        time.sleep(0.3)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_from_sign_up_to_feedback_in_two_browsers(site, new_page, pictured, javascript):
    suffix = "js" if javascript else "nojs"
    pictures = javascript and pictured
    mentor = new_page(viewport=DESKTOP, java_script_enabled=javascript)
    learner = new_page(viewport=DESKTOP, java_script_enabled=javascript)

    # The mentor publishes a profile while the server runs.
    sign_up(mentor, site, f"bea_{suffix}")
    fill_profile(
        mentor,
        name=f"Bea {suffix}",
        timezone="Africa/Lagos",
        languages=[("en", 5)],
        hours=[(0, 21), (0, 22), (0, 23)],
        offers=[("Lua", 4)],
    )
    save_profile(mentor)

    # The learner signs up; the form shows the profile editor, with its errors in place.
    learner.goto(site + "/sign-up")
    checked(learner, *(["sign-up"] if pictures else []))
    sign_up(learner, site, f"lena_{suffix}")
    fill_profile(
        learner,
        name=f"Lena {suffix}",
        timezone="America/Sao_Paulo",
        languages=[("pt", 5), ("en", 4)],
        hours=[(0, 18), (0, 19)],
        wants=[("lua", 3)],
    )
    checked(learner, *(["profile-editor"] if pictures else []))
    save_profile(learner)

    # She looks at once: Bea, with the reasons in words, on both clocks.
    reload_until(learner, site + "/matches", f"Bea {suffix}")
    card = learner.locator("li.match").filter(has_text=f"Bea {suffix}")
    expect(card).to_contain_text("Offers Lua, which you want to learn.")
    expect(card).to_contain_text("You both speak English.")
    expect(card).to_contain_text(
        f"Monday 18:00–20:00 your time, Monday 22:00–24:00 for Bea {suffix} (Africa/Lagos)"
    )
    checked(learner, *(["matches"] if pictures else []))

    # She asks, with a message.
    card.get_by_role("link", name=re.compile("mentor you")).click()
    checked(learner)
    learner.fill("textarea", "Hello Bea! I would like to learn Lua for templates.")
    learner.get_by_role("button", name="Send the request").click()
    expect(learner.locator("main")).to_contain_text("Your request is sent.")
    exchange_url = learner.url.split("?")[0]
    assert re.search(r"/exchanges/\d+$", exchange_url), learner.url

    # Bea, in her own browser: the request is in her inbox and waiting for her.
    mentor.goto(site + "/inbox")
    expect(mentor.locator("main")).to_contain_text(f"Lena {suffix}")
    expect(mentor.locator("header .badge")).to_have_text(re.compile(r"[1-9]"))
    checked(mentor, *(["inbox"] if pictures else []))
    mentor.goto(site + "/exchanges")
    expect(mentor.locator("main")).to_contain_text("I would like to learn Lua for templates.")
    checked(mentor)
    mentor.goto(exchange_url)
    mentor.locator("#accept-form button[type=submit]").click()
    expect(mentor.locator("main")).to_contain_text("You accepted this request.")

    # Both see when they can meet, each on their own clock, with an .ics to download.
    learner.goto(exchange_url)
    meetings = learner.locator("#meetings")
    expect(meetings).to_contain_text("18:00")
    expect(meetings).to_contain_text("22:00")
    mentor.goto(exchange_url)
    expect(mentor.locator("#meetings")).to_contain_text("22:00")
    link = mentor.locator("#meetings a[href*='meeting.ics']").first
    calendar = mentor.request.get(site + link.get_attribute("href"))
    assert calendar.status == 200
    assert calendar.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VEVENT" in calendar.text()

    # They write to each other.
    mentor.fill("#message-form textarea", "Welcome! Mondays at 22:00 my time suit me.")
    mentor.locator("#message-form button[type=submit]").click()
    expect(mentor.locator("main")).to_contain_text("Your message is sent.")
    learner.goto(exchange_url)
    expect(learner.locator("#messages")).to_contain_text("Mondays at 22:00 my time suit me.")
    learner.fill("#message-form textarea", "Perfect, see you Monday.")
    learner.locator("#message-form button[type=submit]").click()
    expect(learner.locator("#messages")).to_contain_text("Perfect, see you Monday.")
    checked(learner, *(["exchange"] if pictures else []))

    # The learner completes and gives feedback.
    learner.locator("#complete-form button[type=submit]").click()
    expect(learner.locator("main")).to_contain_text("This exchange is completed.")
    learner.check("#rating-5")
    learner.fill("#feedback-form textarea", "Clear and patient.")
    learner.locator("#feedback-form button[type=submit]").click()
    expect(learner.locator("main")).to_contain_text("Thank you for your feedback.")
    expect(learner.locator("#feedback")).to_contain_text("Clear and patient.")
    checked(learner)

    for page in (mentor, learner):
        if javascript:
            assert_no_csp_violations(page)
            assert console_errors(page) == []

    # She signs out, mistypes her password (a 422 page, which the console reports), and
    # signs in again.
    learner.get_by_role("button", name="Sign out").click()
    expect(learner.locator("main")).to_contain_text("You are signed out.")
    learner.goto(site + "/sign-in")
    learner.fill("#username", f"lena_{suffix}")
    learner.fill("#password", "not my password")
    learner.get_by_role("button", name="Sign in").last.click()
    expect(learner.locator("#form-errors")).to_contain_text("not right")
    expect(learner.locator("#username")).to_have_value(f"lena_{suffix}")
    learner.fill("#password", PASSWORD)
    learner.get_by_role("button", name="Sign in").last.click()
    expect(learner).to_have_url(re.compile(r"/matches$"))
    checked(learner)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_bad_input_is_shown_next_to_its_field_and_what_was_typed_is_kept(
    site, new_page, javascript
):
    page = new_page(java_script_enabled=javascript)
    sign_up(page, site, f"typo_{'js' if javascript else 'nojs'}")
    page.fill("#timezone", "Mars/Olympus_Mons")
    page.fill("#wants-0-skill", "underwater basket weaving")
    page.select_option("#wants-0-level", "2")
    page.fill("#mentor_capacity", "99")
    page.locator("#profile-form button[type=submit]").last.click()
    expect(page.locator("#timezone-error")).to_contain_text("Choose a time zone from the list")
    expect(page.locator("#wants-0-skill-error")).to_contain_text("Choose a skill from the list.")
    expect(page.locator("#mentor_capacity-error")).to_be_visible()
    expect(page.locator("#timezone")).to_have_value("Mars/Olympus_Mons")
    expect(page.locator("#wants-0-skill")).to_have_value("underwater basket weaving")
    expect(page.locator("#form-errors")).to_be_visible()
    checked(page)


def test_a_form_sent_without_its_csrf_token_is_refused(site, new_page):
    page = new_page()
    sign_up(page, site, "forger")
    page.fill("#display_name", "Changed by a forged form")
    page.evaluate("document.querySelector('#profile-form input[name=csrf_token]').remove()")
    page.locator("#profile-form button[type=submit]").last.click()
    expect(page.locator("h1")).to_have_text("You may not do this")
    page.goto(site + "/profile")
    expect(page.locator("#display_name")).not_to_have_value("Changed by a forged form")


@pytest.mark.parametrize("locale", ["pt-BR", "en-US"])
def test_the_pages_on_a_phone_in_each_language(site, new_page, pictured, locale):
    page = new_page(viewport=PHONE, locale=locale)
    short = locale[:2]
    sign_up_words = "Criar a conta" if short == "pt" else "Create the account"
    page.goto(site + "/sign-up")
    expect(page.get_by_role("button", name=sign_up_words)).to_be_visible()
    page.fill("#username", f"phone_{short}")
    page.fill("#email", f"phone_{short}@example.org")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name=sign_up_words).click()
    fill_profile(
        page,
        name=f"Phone {short}",
        timezone="America/Sao_Paulo",
        languages=[("en", 5)],
        hours=[(0, 18), (0, 19)],
        wants=[("lua", 3)],
    )
    page.locator("#profile-form button[type=submit]").last.click()
    page.goto(site + "/profile")
    own = page.locator("a[href^='/volunteers/']").first.get_attribute("href")
    pictured_names = {"profile", "matches", "inbox", "exchanges"}
    for path, name in (
        ("/profile", "profile"),
        ("/matches", "matches"),
        ("/inbox", "inbox"),
        ("/exchanges", "exchanges"),
        (own, "public-profile"),
        ("/account/password", "password"),
        ("/exchanges/999999", "not-found"),
    ):
        page.goto(site + path)
        # Nothing wider than the phone: the page never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        checked(page, *([f"{name}-phone-{short}"] if pictured and name in pictured_names else []))
    assert page.locator("html").get_attribute("lang") == ("pt-BR" if short == "pt" else "en")


def test_a_right_to_left_page_is_laid_out_from_the_right(site, new_page, pictured):
    page = new_page(viewport=DESKTOP, locale="ar")
    page.goto(site + "/")
    assert page.locator("html").get_attribute("dir") == "rtl"
    brand = page.locator("header .brand").bounding_box()
    assert brand is not None
    assert brand["x"] > DESKTOP["width"] / 2
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]
    expect(page.get_by_role("link", name="تسجيل الدخول").first).to_be_visible()
    checked(page, *(["landing-rtl"] if pictured else []))
