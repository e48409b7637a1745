"""Languages of the web client: catalogs read from the package's .po files, the choice of a
language for each visit, and dates and times in the reader's locale and time zone.

Every string a person reads goes through gettext. The catalogs are the ``.po`` files under
``translations/<locale>/`` (several per locale, one per area of the client, merged when
loaded), compiled in memory at start-up: nothing to build, nothing binary in the tree.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.dates import format_date, format_datetime, format_time, get_day_names
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"
# The languages a person can choose, in the order the switcher lists them, with their
# own names. Arabic is there to keep right-to-left layouts honest; its catalog is partial.
LANGUAGES: dict[str, str] = {"en": "English", "pt_BR": "Português (Brasil)", "ar": "العربية"}
CHOOSABLE = ("en", "pt_BR")
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})


@cache
def catalog(locale: str) -> NullTranslations:
    """Every message of ``locale``'s .po files, compiled in memory (English: the msgids)."""
    folder = TRANSLATIONS / locale
    files = sorted(folder.glob("*.po")) if folder.is_dir() else []
    if not files:
        return NullTranslations()
    merged: Translations | None = None
    for path in files:
        with path.open("rb") as source:
            messages = read_po(source, locale=locale)
        compiled = io.BytesIO()
        write_mo(compiled, messages, use_fuzzy=False)
        compiled.seek(0)
        translations = Translations(compiled)
        if merged is None:
            merged = translations
        else:
            merged.merge(translations)
    assert merged is not None
    return merged


def supported(code: str | None) -> str | None:
    """The supported locale a code such as 'pt-BR', 'pt_br' or 'pt' stands for, or None."""
    if not code:
        return None
    wanted = code.replace("-", "_")
    by_lower = {name.lower(): name for name in LANGUAGES}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    language = wanted.split("_", 1)[0].lower()
    for name in LANGUAGES:
        if name.split("_", 1)[0].lower() == language:
            return name
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best supported locale for an Accept-Language header, by its q-values."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        if found := negotiate_locale([tag.replace("-", "_")], list(LANGUAGES), sep="_"):
            return str(found)
        if found := supported(tag):
            return found
    return None


def choose(*candidates: str | None) -> str:
    """The first supported of ``candidates`` (a saved choice, the profile, the browser)."""
    for candidate in candidates:
        if found := supported(candidate):
            return found
    return DEFAULT_LOCALE


@dataclass(frozen=True)
class Language:
    """The language one page is written in, and how it writes dates, times and numbers."""

    code: str
    zone: ZoneInfo

    @property
    def translations(self) -> NullTranslations:
        return catalog(self.code)

    @property
    def locale(self) -> Locale:
        try:
            return Locale.parse(self.code)
        except (UnknownLocaleError, ValueError):
            return Locale.parse(DEFAULT_LOCALE)

    @property
    def html_lang(self) -> str:
        return self.code.replace("_", "-")

    @property
    def direction(self) -> str:
        return "rtl" if self.code.split("_")[0] in RTL_LANGUAGES else "ltr"

    def gettext(self, message: str, **variables: object) -> str:
        text = self.translations.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, count: int, **variables: object) -> str:
        text = self.translations.ngettext(singular, plural, count)
        return text % {"num": count, **variables}

    def datetime(self, moment: dt.datetime, form: str = "medium") -> str:
        return format_datetime(moment, form, tzinfo=self.zone, locale=self.locale)

    def date(self, moment: dt.datetime, form: str = "medium") -> str:
        return format_date(moment.astimezone(self.zone), form, locale=self.locale)

    def time(self, moment: dt.datetime | dt.time, form: str = "short") -> str:
        if isinstance(moment, dt.datetime):
            return format_time(moment, form, tzinfo=self.zone, locale=self.locale)
        return format_time(moment, form, locale=self.locale)

    def weekday(
        self, day: int, form: Literal["abbreviated", "narrow", "short", "wide"] = "wide"
    ) -> str:
        """The name of weekday ``day`` (0 Monday .. 6 Sunday)."""
        return str(get_day_names(form, locale=self.locale)[day])

    def language_name(self, code: str) -> str:
        """A language's name in this page's language ('pt' -> 'português'), else the code."""
        try:
            name = Locale.parse(code.replace("-", "_")).get_display_name(self.locale)
        except (UnknownLocaleError, ValueError, TypeError):
            return code
        return name or code

    def language_names(self, codes: Iterable[str]) -> str:
        """Languages named and listed as this locale lists ('English and Portuguese')."""
        return self.listing([self.language_name(code) for code in codes])

    def listing(self, items: Sequence[str]) -> str:
        return str(format_list(list(items), locale=self.locale)) if items else ""

    def number(self, value: float) -> str:
        return str(format_decimal(value, locale=self.locale))

    def percent(self, value: float) -> str:
        return str(format_percent(value, locale=self.locale))


_current: ContextVar[Language] = ContextVar("capex_web_language")


@contextmanager
def speaking(language: Language) -> Iterator[Language]:
    """Make ``language`` the one templates rendered in this block are written in."""
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


def current() -> Language:
    try:
        return _current.get()
    except LookupError:
        return Language(DEFAULT_LOCALE, ZoneInfo("UTC"))


def gettext(message: str) -> str:
    return current().translations.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return current().translations.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is written; translated where it is shown."""
    return message
