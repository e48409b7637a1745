"""The web client speaks English and Brazilian Portuguese completely, and the catalogs hold
no translation that would break a page (a placeholder lost, renamed or added)."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from capex.web import i18n, translations_check

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_every_message_of_the_web_client_has_a_portuguese_translation():
    missing = translations_check.missing_by_locale()["pt_BR"]
    assert not missing, f"untranslated in pt_BR (run scripts/translations): {missing}"


@pytest.mark.parametrize("path", sorted(i18n.TRANSLATIONS.glob("*/*.po")), ids=lambda p: p.name)
def test_each_translation_keeps_the_placeholders_of_its_message(path):
    with path.open("rb") as source:
        catalog = read_po(source)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for string in strings:
            # A plural form may leave out %(num)d ('one learner'), nothing else.
            assert set(PLACEHOLDER.findall(string)) <= wanted, (message.id, string)
            assert set(PLACEHOLDER.findall(string)) >= wanted - {"num"}, (message.id, string)


def test_the_browser_language_is_chosen_by_its_weights():
    assert i18n.from_accept_language("pt-BR,pt;q=0.9,en;q=0.8") == "pt_BR"
    assert i18n.from_accept_language("pt-PT") == "pt_BR"
    assert i18n.from_accept_language("de-DE,en;q=0.5,pt;q=0.4") == "en"
    assert i18n.from_accept_language("en;q=0.1,pt;q=0.9") == "pt_BR"
    assert i18n.from_accept_language("xx, *") is None
    assert i18n.choose(None, "pt_BR", "en") == "pt_BR"
    assert i18n.choose("nonsense", None, None) == "en"


def test_dates_weekdays_and_languages_are_written_in_the_reader_s_language():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    portuguese = i18n.Language("pt_BR", ZoneInfo("America/Sao_Paulo"))
    moment = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)
    assert portuguese.time(moment) == "18:30"
    assert portuguese.weekday(5) == "sábado"
    assert portuguese.language_name("en") == "inglês"
    assert "dez" in portuguese.date(moment)
    english = i18n.Language("en", ZoneInfo("Asia/Kolkata"))
    assert english.time(moment) == "3:00\u202fAM"
    assert english.ngettext("%(num)d unread", "%(num)d unread", 2) == "2 unread"


def test_a_page_in_arabic_is_laid_out_right_to_left(client):
    page = client.get("/", headers={"Accept-Language": "ar"})
    assert page.status_code == 200
    assert '<html lang="ar" dir="rtl">' in page.text
