"""Forms of the web client: a posted form read into a schema, and every error of it turned
into a sentence, in the reader's language, next to the field it is about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from capex.web.i18n import N_, Language

ModelT = TypeVar("ModelT", bound=BaseModel)

# Pydantic's error types, as a person would read them. Anything else keeps pydantic's words.
MESSAGES = {
    "missing": N_("Fill in this field."),
    "string_too_short": N_("This is too short: at least %(min_length)s characters."),
    "string_too_long": N_("This is too long: at most %(max_length)s characters."),
    "too_short": N_("This is too short: at least %(min_length)s characters."),
    "too_long": N_("This is too long: at most %(max_length)s."),
    "value_error": N_("This value is not valid."),
    "string_pattern_mismatch": N_("This has characters that are not allowed here."),
    "int_parsing": N_("Write a whole number."),
    "int_type": N_("Write a whole number."),
    "greater_than_equal": N_("This must be at least %(ge)s."),
    "less_than_equal": N_("This must be at most %(le)s."),
    "control_character": N_("This holds a control character; only tabs and new lines are allowed."),
    "duplicate": N_("This is listed twice; keep one."),
    "slot_overlap": N_("These times overlap another slot of the same day."),
    "slot_order": N_("The end must be after the start."),
    "timezone_required": N_("Choose your time zone: your availability is in your own time."),
    "time_format": N_("Write a time as HH:MM."),
    "time_quarter": N_("Times are on the quarter hour."),
    "value_error_email": N_("Write an email address, like name@example.org."),
}

# Our own validators' messages (their ``ValueError`` texts start so), in words for a page.
OWN_MESSAGES = (
    ("a username is", N_("A username is 3 to 32 letters, digits, '_', '.' or '-'.")),
    ("value is not a valid email", N_("Write an email address, like name@example.org.")),
    ("is not an IANA time zone", N_("Choose a time zone from the list, like Africa/Lagos.")),
    ("is not a BCP 47 language code", N_("Choose a language from the list.")),
    ("is not a region", N_("Choose a region from the list.")),
    ("unknown skill", N_("Choose a skill from the list.")),
)


def field_name(loc: Sequence[str | int]) -> str:
    """The form field a pydantic location names: ('languages', 0, 'code') -> 'languages-0-code'."""
    parts = [str(part) for part in loc if part not in ("body", "query")]
    return "-".join(parts) or "_form"


def message(error: Mapping[str, Any], language: Language) -> str:
    """One error in the reader's language."""
    kind = str(error.get("type", ""))
    text = str(error.get("msg", ""))
    for fragment, sentence in OWN_MESSAGES:
        if fragment in text:
            return language.gettext(sentence)
    if kind in MESSAGES:
        context = {key: value for key, value in (error.get("ctx") or {}).items()}
        try:
            return language.gettext(MESSAGES[kind]) % context
        except (KeyError, ValueError, TypeError):
            return language.gettext(MESSAGES[kind])
    return text.removeprefix("Value error, ")


def errors_by_field(errors: Sequence[Mapping[str, Any]], language: Language) -> dict[str, str]:
    """The first error of each field, in the reader's language."""
    found: dict[str, str] = {}
    for error in errors:
        name = field_name(error.get("loc", ()))
        found.setdefault(name, message(error, language))
    return found


def parse(
    model: type[ModelT],
    data: Mapping[str, Any],
    language: Language,
    context: dict[str, Any] | None = None,
) -> tuple[ModelT | None, dict[str, str]]:
    """``data`` validated into ``model``, or None and the errors by field name."""
    try:
        return model.model_validate(data, context=context), {}
    except ValidationError as error:
        return None, errors_by_field(list(error.errors()), language)


def text_fields(form: FormData, *names: str) -> dict[str, str]:
    """The named fields of a form as text (a file or a missing field reads as empty)."""
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        values[name] = value if isinstance(value, str) else ""
    return values
