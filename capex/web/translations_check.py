"""Which messages of the web client each locale's catalogs do not translate yet."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from capex.web.i18n import TRANSLATIONS

ROOT = Path(__file__).parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {
    "**/templates/**.html": {
        "extensions": "jinja2.ext.i18n",
        "trim_blocks": "true",
        "lstrip_blocks": "true",
    }
}
# Locales that must translate every message; the others may fall back to English.
COMPLETE = ("pt_BR",)


def messages() -> set[str]:
    """Every msgid the web client's code and templates use (a plural counts by its singular)."""
    found: set[str] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
        ROOT, METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        found.add(str(message[0]) if isinstance(message, (tuple, list)) else str(message))
    return {message for message in found if message}


def translated(locale: str) -> set[str]:
    """The msgids that ``locale``'s .po files give a translation for."""
    done: set[str] = set()
    for path in sorted((TRANSLATIONS / locale).glob("*.po")):
        with path.open("rb") as source:
            catalog = read_po(source, locale=locale)
        for entry in catalog:
            key = str(entry.id[0] if isinstance(entry.id, (tuple, list)) else entry.id)
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            if key and all(strings) and not entry.fuzzy:
                done.add(key)
    return done


def missing_by_locale() -> dict[str, list[str]]:
    used = messages()
    return {locale: sorted(used - translated(locale)) for locale in COMPLETE}
