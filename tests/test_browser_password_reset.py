"""A forgotten password, the way it happens: the volunteer asks on the page, the server's
mail task sends the link through a real SMTP server, she opens it in the browser, chooses a
new password, and signs in with it; the link then works no more (both databases)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from capex.testing import BACKENDS, free_port, throwaway_database
from tests.browser import assert_accessible
from tests.live import live_server
from tests.test_mail import Mailbox, smtp_server

pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def mailing_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Mailbox]]:
    port = free_port()
    env = {"CAPEX_SMTP_URL": f"smtp://127.0.0.1:{port}", "CAPEX_MAIL_INTERVAL_SECONDS": "0.2"}
    with (
        smtp_server(port, Mailbox()) as mailbox,
        throwaway_database(str(request.param), tmp_path) as url,
        live_server(url, workers=1, log=tmp_path / "serve.log", env=env) as base,
    ):
        yield base, mailbox


def test_a_forgotten_password_is_reset_through_the_mailed_link(mailing_site, new_page):
    site, mailbox = mailing_site
    page = new_page(locale="pt-BR")
    page.goto(site + "/sign-up")
    page.fill("#username", "rosa")
    page.fill("#email", "rosa@example.org")
    page.fill("#password", "the first password")
    page.get_by_role("button", name="Criar a conta").click()
    page.get_by_role("button", name="Sair").click()

    page.goto(site + "/forgot-password")
    assert_accessible(page)
    page.fill("#email", "rosa@example.org")
    page.get_by_role("button", name="Enviar o link").click()
    expect(page.locator(".notice")).to_contain_text("um link para escolher uma nova senha")

    deadline = time.monotonic() + 15
    while not mailbox.received_by("rosa@example.org"):
        assert time.monotonic() < deadline, "no mail arrived"
        time.sleep(0.2)
    (mail,) = mailbox.received_by("rosa@example.org")
    text = mail.get_content()
    assert "Abra este link em até uma hora" in text  # in the account's own language
    link = re.search(r"http://\S+/reset-password\?token=\S+", text)
    assert link, text

    page.goto(link.group(0))
    assert_accessible(page)
    page.fill("#password", "the second password")
    page.fill("#password_again", "the second password")
    page.get_by_role("button", name="Salvar a nova senha").click()
    expect(page.locator(".notice")).to_contain_text("Entre com a nova")
    page.fill("#username", "rosa")
    page.fill("#password", "the second password")
    page.get_by_role("button", name="Entrar").last.click()
    expect(page).to_have_url(re.compile(r"/matches$"))

    # The link was for one use.
    page.goto(link.group(0))
    page.fill("#password", "a third password")
    page.fill("#password_again", "a third password")
    page.get_by_role("button", name="Salvar a nova senha").click()
    expect(page.locator("#form-errors")).to_contain_text("não vale mais")
