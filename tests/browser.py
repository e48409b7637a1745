"""Browser tests: Playwright driving Debian's Chromium, against a real ``capex serve``.

A pytest plugin (``pytest_plugins`` in tests/conftest.py loads it), so that its fixtures serve
every test module under tests/:

- ``chromium``: one headless Chromium (/usr/bin/chromium, never a browser Playwright
  downloads) shared by consecutive tests that use it, closed as soon as the next test does not,
  because Playwright's sync API leaves an asyncio loop marked running in the main thread while
  it is open (``asyncio.run`` would fail in the tests after it). Skips outside CI, fails in CI,
  when Chromium is missing.
- ``site``: the base URL of a real ``capex serve`` on a fresh migrated database, once per test
  module and backend (SQLite, PostgreSQL); tests share its rows, so each uses its own usernames.
- ``new_page(**context_options)``: a page in a new browser context (viewport, ``locale``, which
  sets Accept-Language, ``java_script_enabled``) that records the page's CSP violations and
  console errors; closed after the test.

And the checks, plain functions of a page: :func:`assert_accessible` (axe-core, fetched by
scripts/ensure-axe), :func:`assert_no_csp_violations`, :func:`csp_violations`,
:func:`console_errors`, :func:`save_screenshot`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from capex.testing import BACKENDS, throwaway_database
from tests.live import live_server

REPOSITORY = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPOSITORY / ".cache" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPOSITORY / "docs" / "screenshots"

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# The WCAG levels capex keeps; a serious or critical violation of one of them fails the test.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21aa")
AXE_FAILING_IMPACTS = ("serious", "critical")

CHROMIUM_ARGUMENTS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # No network but this machine: a page that needs a CDN shows it here.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
)

# Reports each Content-Security-Policy violation to Python (a CDP binding, which the policy does
# not govern), so that violations survive navigations.
_REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', event =>
  window.__capexCspViolation(event.violatedDirective + ' ' + event.blockedURI));
"""


def unavailable(reason: str) -> NoReturn:
    """Fail in CI (which must run every browser test), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


# -- the browser -----------------------------------------------------------------------------


class _SharedChromium:
    """The one Chromium of a stretch of consecutive browser tests, started when first asked."""

    def __init__(self) -> None:
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def get(self) -> Browser:
        if self._browser is None:
            self._playwright = sync_playwright().start()
            try:
                self._browser = self._playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGUMENTS)
                )
            except BaseException:
                self.close()
                raise
        return self._browser

    def close(self) -> None:
        browser, playwright = self._browser, self._playwright
        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        finally:
            if playwright is not None:
                playwright.stop()


_SHARED = _SharedChromium()


@pytest.hookimpl(trylast=True)  # after the test's own fixtures (its pages) are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Close the shared Chromium when the next test does not use it."""
    if nextitem is None or "chromium" not in getattr(nextitem, "fixturenames", ()):
        _SHARED.close()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close it also when the run stops early (-x, an interrupt)."""
    _SHARED.close()


@pytest.fixture
def chromium() -> Browser:
    """A headless Debian Chromium, shared with the neighbouring tests that use it."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (scripts/ensure-chromium installs it)")
    return _SHARED.get()


# -- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``capex serve`` (1 worker) on a fresh database of each backend; its base URL.

    One per module and backend: the tests of a module share its rows (``capex serve`` migrates
    the database as it starts).
    """
    directory = tmp_path_factory.mktemp(f"site-{request.param}")
    with (
        throwaway_database(str(request.param), directory) as url,
        live_server(url, workers=1, log=directory / "serve.log") as base,
    ):
        yield base


# -- pages -----------------------------------------------------------------------------------


@dataclass
class _PageRecord:
    """What a page did that its test may check, and where its test keeps files."""

    directory: Path
    locale: str
    java_script_enabled: bool
    csp_violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


_RECORDS: dict[Page, _PageRecord] = {}


def _record(page: Page) -> _PageRecord:
    try:
        return _RECORDS[page]
    except KeyError:
        raise AssertionError("not a page of the new_page fixture (tests/browser.py)") from None


@pytest.fixture
def new_page(chromium: Browser, tmp_path: Path) -> Iterator[Callable[..., Page]]:
    """Open a page in a new context: ``new_page(viewport=PHONE, locale="pt-BR",
    java_script_enabled=False, **other_context_options)``; all closed after the test."""
    contexts = []

    def open_page(
        *,
        viewport: dict[str, int] = DESKTOP,
        locale: str = "en-US",
        java_script_enabled: bool = True,
        **context_options: Any,
    ) -> Page:
        context = chromium.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            locale=locale,
            java_script_enabled=java_script_enabled,
            **context_options,
        )
        contexts.append(context)
        context.set_default_timeout(20_000)
        record = _PageRecord(tmp_path, locale, java_script_enabled)
        context.expose_binding(
            "__capexCspViolation", lambda _source, text: record.csp_violations.append(text)
        )
        context.add_init_script(_REPORT_VIOLATIONS)
        page = context.new_page()

        def on_console(message: ConsoleMessage) -> None:
            # Chromium's own probe for /favicon.ico is not the page's doing.
            url = message.location.get("url", "")
            if message.type == "error" and not url.endswith("/favicon.ico"):
                record.console_errors.append(f"{message.text} ({url})" if url else message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: record.console_errors.append(str(error)))
        _RECORDS[page] = record
        return page

    try:
        yield open_page
    finally:
        for context in contexts:
            for page in context.pages:
                _RECORDS.pop(page, None)
            context.close()


def csp_violations(page: Page) -> list[str]:
    """Every CSP violation of ``page`` since it opened, as 'directive blocked-URI'.

    The page's own script hears them: with ``java_script_enabled=False`` nothing can, and this
    fails rather than report none.
    """
    record = _record(page)
    assert record.java_script_enabled, "CSP violations are heard only with JavaScript enabled"
    return list(record.csp_violations)


def console_errors(page: Page) -> list[str]:
    """Every console error and uncaught exception of ``page`` since it opened."""
    return list(_record(page).console_errors)


def assert_no_csp_violations(page: Page, *, allowed: Collection[str] = ()) -> None:
    """Fail, listing them, if ``page`` met CSP violations other than the ``allowed`` ones."""
    unexpected = [text for text in csp_violations(page) if text not in allowed]
    assert not unexpected, "Content-Security-Policy violations:\n  " + "\n  ".join(unexpected)


def _axe_source() -> str:
    if not AXE.exists():
        unavailable(f"{AXE.relative_to(REPOSITORY)} is missing (scripts/ensure-axe fetches it)")
    return AXE.read_text(encoding="utf-8")


def assert_accessible(page: Page) -> None:
    """Run axe-core (WCAG 2.0 A and AA, 2.1 AA) on ``page`` as it is now; fail listing each
    serious or critical violation with its rule, its help and the elements it found.

    axe goes in through ``page.evaluate`` (DevTools' Runtime.evaluate), which the page's
    Content-Security-Policy does not govern, where a script tag would be refused. axe needs
    JavaScript: a page opened with ``java_script_enabled=False`` is checked as a twin, its
    current HTML served at its URL in a context that runs scripts but loads none of the page's.
    """
    source = _axe_source()
    record = _record(page)
    twin_context = None
    checked = page
    if not record.java_script_enabled:
        assert page.context.browser is not None
        twin_context = page.context.browser.new_context(
            viewport=page.viewport_size, locale=record.locale
        )
        html, document = page.content(), page.url.split("#")[0]
        twin_context.route("**/*.js", lambda route: route.abort())
        twin_context.route(
            lambda url: url == document,
            lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"),
        )
        checked = twin_context.new_page()
        checked.goto(document)
    try:
        if not checked.evaluate("typeof window.axe === 'object'"):
            checked.evaluate(source)
        results = checked.evaluate(
            "options => window.axe.run(document, options)",
            {"runOnly": {"type": "tag", "values": list(AXE_TAGS)}, "resultTypes": ["violations"]},
        )
    finally:
        if twin_context is not None:
            twin_context.close()
    failures = [v for v in results["violations"] if v["impact"] in AXE_FAILING_IMPACTS]
    lines = []
    for violation in failures:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"    {violation['helpUrl']}")
        lines.extend(f"    at {' '.join(map(str, node['target']))}" for node in violation["nodes"])
    assert not failures, f"axe found on {page.url}:\n" + "\n".join(lines)


def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """A PNG of ``page`` (all of it, or only the viewport): docs/screenshots/NAME.png when
    CAPEX_SCREENSHOTS=1, else in the test's tmp dir (CI never changes the tree); its path."""
    if os.environ.get("CAPEX_SCREENSHOTS") == "1":
        path = SCREENSHOTS / f"{name}.png"
    else:
        path = _record(page).directory / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    return path
