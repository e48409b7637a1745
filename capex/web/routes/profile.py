"""The profile editor and the public profile page."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from capex.deps import IdPath, NowDep, SessionDep
from capex.errors import Invalid
from capex.matching.availability import next_week_start, slot_intervals
from capex.regions import REGIONS
from capex.schemas.profiles import ProfileReplace, iana_timezones, parse_time
from capex.services import profiles
from capex.services import skills as skill_service
from capex.services.profiles import OwnProfile, PublicProfile, WeeklySlot
from capex.web import forms, i18n, security
from capex.web.i18n import N_, Language
from capex.web.pages import FormDep, HtmlRoute, Visit, VisitDep
from capex.web.skill_names import SkillNames, skill_names

router = APIRouter(route_class=HtmlRoute)

# The regions' names as a page shows them (the keys are capex.regions.REGIONS').
REGION_NAMES: dict[str, str] = {
    "cee": N_("Central & Eastern Europe and Central Asia"),
    "eseap": N_("East, Southeast Asia and the Pacific"),
    "lac": N_("Latin America and the Caribbean"),
    "mena": N_("Middle East and North Africa"),
    "na": N_("North America"),
    "nwe": N_("Northern and Western Europe"),
    "sa": N_("South Asia"),
    "ssa": N_("Sub-Saharan Africa"),
}
LANGUAGE_LEVELS: dict[int, str] = {
    1: N_("beginner"),
    2: N_("elementary"),
    3: N_("intermediate"),
    4: N_("fluent"),
    5: N_("native"),
}
SKILL_LEVELS: dict[int, str] = {
    1: N_("basic"),
    2: N_("intermediate"),
    3: N_("advanced"),
    4: N_("expert"),
}
# The languages the language field suggests (any other BCP 47 tag may be typed).
COMMON_LANGUAGES = (  # noqa: SIM905 - a list of tags reads best as one text
    "af am ar az be bg bn bs ca cs cy da de el en en-GB en-US eo es es-419 et eu fa fi fil fr "
    "ga gl gn gu ha he hi hr ht hu hy id ig is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk "
    "ml mn mr ms my nb ne nl pa pl ps pt pt-BR pt-PT qu ro ru rw si sk sl so sq sr sv sw ta te "
    "tg th ti tk tr uk ur uz vi wo xh yo zh zh-Hans zh-Hant zu"
).split()
EMPTY_ROWS = 2
HOURS = range(24)
ROW_FIELD = re.compile(r"^(languages|offers|wants)-(\d{1,3})-(code|level|skill|note)$")
CELL_FIELD = re.compile(r"^avail-([0-6])-(\d{1,2})$")
ROW_FIELDS = {"languages": ("code", "level"), "offers": ("skill", "level", "note")}
ROW_FIELDS["wants"] = ROW_FIELDS["offers"]


@dataclass
class Editor:
    """What the profile form shows: its text fields, its rows and the grid's checked cells."""

    values: dict[str, str]
    rows: dict[str, list[dict[str, str]]]
    checked: set[tuple[int, int]] = field(default_factory=set)

    def padded(self) -> Editor:
        """The same, with empty rows at the end of each list to add to it."""
        for rows in self.rows.values():
            while sum(1 for row in rows[-EMPTY_ROWS:] if _blank(row)) < EMPTY_ROWS:
                rows.append({})
        return self


def _blank(row: Mapping[str, str]) -> bool:
    return not any(value.strip() for value in row.values())


def _editor_from(profile: OwnProfile, locale: str | None, names: SkillNames) -> Editor:
    values = {
        "display_name": profile.display_name,
        "bio": profile.bio,
        "timezone": profile.timezone or "",
        "region": profile.region or "",
        "mentor_capacity": str(profile.mentor_capacity),
        "locale": locale if locale in i18n.CHOOSABLE else "",
    }
    rows = {
        "languages": [{"code": item.code, "level": str(item.level)} for item in profile.languages],
        "offers": [_entry_row(item, names) for item in profile.offers],
        "wants": [_entry_row(item, names) for item in profile.wants],
    }
    checked = {
        (slot.weekday, hour)
        for slot in profile.availability
        for hour in _hours_touched(parse_time(slot.start), parse_time(slot.end))
    }
    return Editor(values, rows, checked).padded()


def _entry_row(entry: profiles.SkillEntry, names: SkillNames) -> dict[str, str]:
    return {"skill": names.shown(entry.skill), "level": str(entry.level), "note": entry.note}


def _hours_touched(start: int, end: int) -> range:
    """The whole hours a slot covers any part of."""
    return range(start // 60, -(-end // 60))


def _editor_from_form(form: FormData) -> Editor:
    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    values = {
        name: text(name)
        for name in ("display_name", "bio", "timezone", "region", "mentor_capacity", "locale")
    }
    values["bio"] = values["bio"].replace("\r\n", "\n")
    found: dict[str, dict[int, dict[str, str]]] = {group: {} for group in ROW_FIELDS}
    checked: set[tuple[int, int]] = set()
    for name in form:
        if match := ROW_FIELD.match(name):
            group, index, part = match.group(1), int(match.group(2)), match.group(3)
            if part in ROW_FIELDS[group]:
                found[group].setdefault(index, {})[part] = text(name)
        elif (cell := CELL_FIELD.match(name)) and int(cell.group(2)) in HOURS:
            checked.add((int(cell.group(1)), int(cell.group(2))))
    rows = {group: [found[group][index] for index in sorted(found[group])] for group in found}
    return Editor(values, rows, checked)


def slots_of(checked: Iterable[tuple[int, int]]) -> list[dict[str, Any]]:
    """Checked hours of the grid as slots: adjacent hours of a day become one slot."""
    slots: list[dict[str, Any]] = []
    for weekday in range(7):
        hours = sorted(hour for day, hour in checked if day == weekday)
        start: int | None = None
        for position, hour in enumerate(hours):
            if start is None:
                start = hour
            if position + 1 == len(hours) or hours[position + 1] != hour + 1:
                slots.append(
                    {"weekday": weekday, "start": f"{start:02d}:00", "end": f"{hour + 1:02d}:00"}
                )
                start = None
    return slots


@dataclass
class Submission:
    """A posted profile as the schema's input, and where each list item came from on the form."""

    data: dict[str, Any]
    positions: dict[str, list[int]]
    errors: dict[str, str]


def _submission(editor: Editor, names: SkillNames, language: Language) -> Submission:
    values, errors = editor.values, {}
    data: dict[str, Any] = {
        "display_name": values["display_name"].strip() or None,
        "bio": values["bio"],
        "timezone": values["timezone"].strip() or None,
        "region": values["region"] or None,
        "availability": slots_of(editor.checked),
    }
    if data["display_name"] is None:
        errors["display_name"] = language.gettext(forms.MESSAGES["missing"])
    data["mentor_capacity"] = _number(
        values["mentor_capacity"], "mentor_capacity", errors, language
    )
    if values["locale"] not in ("", *i18n.CHOOSABLE):
        errors["locale"] = language.gettext(forms.MESSAGES["value_error"])
    positions: dict[str, list[int]] = {}
    for group, rows in editor.rows.items():
        items, positions[group] = [], []
        for index, row in enumerate(rows):
            if _blank(row):
                continue  # an empty row adds nothing
            item: dict[str, Any] = {}
            prefix = f"{group}-{index}-"
            item["level"] = _number(row.get("level", ""), prefix + "level", errors, language)
            if group == "languages":
                item["code"] = row.get("code", "").strip()
            else:
                typed = row.get("skill", "").strip()
                resolved = names.resolve(typed) if typed else None
                if typed and resolved is None:
                    errors[prefix + "skill"] = language.gettext("Choose a skill from the list.")
                item["skill"] = resolved or typed
                item["note"] = row.get("note", "")
            items.append(item)
            positions[group].append(index)
        data[group] = items
    return Submission(data, positions, errors)


def _number(text: str, name: str, errors: dict[str, str], language: Language) -> int | str:
    try:
        return int(text.strip())
    except ValueError:
        errors.setdefault(name, language.gettext(forms.MESSAGES["int_parsing"]))
        return text


def _field_of(
    loc: Sequence[str | int], kind: str, context: Mapping[str, Any], sub: Submission
) -> str:
    """The form field a schema error is about (a list item's index turned into its form row)."""
    parts = [part for part in loc if part != "body"]
    if kind == "timezone_required":
        return "timezone"
    if not parts:
        return "_form"
    group = str(parts[0])
    if group == "availability":
        return "availability"
    if group in sub.positions:
        rows = sub.positions[group]
        if len(parts) >= 3 and isinstance(parts[1], int) and parts[1] < len(rows):
            return f"{group}-{rows[parts[1]]}-{parts[2]}"
        if kind == "duplicate" and isinstance(context.get("second"), int):
            key = "code" if group == "languages" else "skill"
            return f"{group}-{rows[context['second']]}-{key}"
        return group
    return forms.field_name(parts)


def _schema_errors(
    errors: Sequence[Mapping[str, Any]], sub: Submission, language: Language
) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in errors:
        kind = str(error.get("type", ""))
        name = _field_of(error.get("loc", ()), kind, error.get("ctx") or {}, sub)
        found.setdefault(name, forms.message(error, language))
    return found


def _datalists(session: Session, language: Language, editor: Editor) -> dict[str, Any]:
    codes = list(COMMON_LANGUAGES)
    codes += [
        row["code"]
        for row in editor.rows["languages"]
        if row.get("code") and row["code"] not in codes
    ]
    return {
        "timezones": sorted(iana_timezones()),
        "language_options": [(code, language.language_name(code)) for code in codes],
    }


def _editor_page(
    visit: Visit,
    session: Session,
    editor: Editor,
    names: SkillNames,
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    context = {
        "editor": editor,
        "values": editor.values,
        "errors": errors,
        "summary": _summary(errors, visit.language),
        "zone_known": editor.values.get("timezone") in iana_timezones(),
        "skills": names.skills,
        "nav": "profile",
        **_choices(visit.language),
        **_datalists(session, visit.language, editor),
    }
    return visit.render("profile/edit.html", context, status=status)


# The form's fields in the order the page shows them, with the words that name them.
FIELD_LABELS = {
    "display_name": N_("Your name"),
    "bio": N_("About you"),
    "region": N_("Region"),
    "timezone": N_("Time zone"),
    "locale": N_("Language of this site"),
    "languages": N_("Languages you speak"),
    "availability": N_("When you are available, every week"),
    "offers": N_("Skills you offer"),
    "wants": N_("Skills you want to learn"),
    "mentor_capacity": N_("Mentor capacity"),
}
ROW_ERROR = re.compile(r"^(languages|offers|wants)-(\d+)-\w+$")


def _summary(errors: Mapping[str, str], language: Language) -> list[tuple[str, str]]:
    """Each error with the name of its field, in the order of the page: (field, sentence)."""
    order = list(FIELD_LABELS)

    def place(name: str) -> tuple[int, int]:
        row = ROW_ERROR.match(name)
        group = row.group(1) if row else name
        rank = order.index(group) if group in order else -1
        return rank, int(row.group(2)) + 1 if row else 0

    found = []
    for name in sorted(errors, key=place):
        row = ROW_ERROR.match(name)
        if row:
            label = language.gettext(
                "%(section)s, row %(number)d",
                section=language.gettext(FIELD_LABELS[row.group(1)]),
                number=int(row.group(2)) + 1,
            )
        elif name in FIELD_LABELS:
            label = language.gettext(FIELD_LABELS[name])
        else:
            label = ""
        sentence = errors[name]
        text = language.gettext("%(field)s: %(problem)s", field=label, problem=sentence)
        found.append((name, text if label else sentence))
    return found


def _choices(language: Language) -> dict[str, Any]:
    return {
        "regions": [(key, language.gettext(REGION_NAMES[key])) for key in REGIONS],
        "language_levels": [(n, _level(LANGUAGE_LEVELS, n, language)) for n in LANGUAGE_LEVELS],
        "skill_levels": [(n, _level(SKILL_LEVELS, n, language)) for n in SKILL_LEVELS],
        "locales": [("", language.gettext("The language of my browser"))]
        + [(code, i18n.LANGUAGES[code]) for code in i18n.CHOOSABLE],
        "hours": HOURS,
        "weekdays": range(7),
    }


@router.get("/profile", response_class=HTMLResponse)
def profile_page(visit: VisitDep, session: SessionDep) -> Response:
    """The profile editor, filled in with the saved profile."""
    me = visit.signed_in
    names = skill_names(session)
    editor = _editor_from(profiles.my_profile(session, me.id), me.locale, names)
    return _editor_page(visit, session, editor, names, {})


@router.post("/profile", response_class=HTMLResponse)
def save_profile(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Save the whole profile; errors are shown next to their fields, with what was typed."""
    me = visit.signed_in
    names = skill_names(session)
    editor = _editor_from_form(form)
    submission = _submission(editor, names, visit.language)
    errors = dict(submission.errors)
    parsed: ProfileReplace | None = None
    try:
        parsed = ProfileReplace.model_validate(
            submission.data, context={"known_skills": skill_service.known_ids(session)}
        )
    except ValidationError as error:
        for name, text in _schema_errors(list(error.errors()), submission, visit.language).items():
            errors.setdefault(name, text)
    if parsed is not None and not errors:
        try:
            profiles.edit_profile(session, me.id, parsed)
        except Invalid as error:
            errors = _schema_errors(error.errors, submission, visit.language)
            if "mentor_capacity" in errors:
                errors["mentor_capacity"] = visit.language.ngettext(
                    "You mentor %(num)d accepted exchange now: complete or cancel it before "
                    "lowering your capacity below that.",
                    "You mentor %(num)d accepted exchanges now: complete or cancel some before "
                    "lowering your capacity below that.",
                    me.accepted_as_mentor,
                )
        else:
            _save_locale(visit, me_locale=editor.values["locale"])
            return visit.redirect("/profile", notice="profile-saved")
    return _editor_page(visit, session, editor.padded(), names, errors, status=422)


def _save_locale(visit: Visit, me_locale: str) -> None:
    """Keep the language chosen on the profile, and make it this browser's at once."""
    visit.signed_in.locale = me_locale or None
    if me_locale:
        visit.cookies[security.LANGUAGE_COOKIE] = (me_locale, security.YEAR_SECONDS)
    else:  # the browser's language: no cookie may hold another
        visit.cookies[security.LANGUAGE_COOKIE] = ("", None)


@dataclass(frozen=True, slots=True)
class ShownSlot:
    """A weekly slot on the reader's clock: a weekday, and start and end as 'HH:MM'."""

    weekday: int
    start: str
    end: str


def slots_in_zone(
    slots: Sequence[WeeklySlot], own_zone: str, shown_zone: str, now: datetime
) -> list[ShownSlot]:
    """``slots`` (on the ``own_zone`` clock) as the ``shown_zone`` clock shows them next week.

    A slot that crosses midnight on the other clock is split in two; the week is the one the
    matching engine uses (from the next Monday 00:00 UTC), so that summer time is the same.
    """
    if own_zone == shown_zone:
        return [ShownSlot(slot.weekday, slot.start, slot.end) for slot in slots]
    week_start = next_week_start(now)
    zone = ZoneInfo(shown_zone)
    local = [(slot.weekday, parse_time(slot.start), parse_time(slot.end)) for slot in slots]
    minutes: list[tuple[int, int, int]] = []
    for start, end in slot_intervals(local, own_zone, week_start):
        if end <= start:
            continue
        first = (week_start + timedelta(minutes=start)).astimezone(zone)
        last = (week_start + timedelta(minutes=end)).astimezone(zone)
        while first < last:
            midnight = (first + timedelta(days=1)).replace(hour=0, minute=0)
            stop = min(last, midnight)
            begin = first.hour * 60 + first.minute
            finish = 1440 if stop == midnight else stop.hour * 60 + stop.minute
            minutes.append((first.weekday(), begin, finish))
            first = stop
    merged: list[tuple[int, int, int]] = []
    for weekday, begin, finish in sorted(minutes):
        if merged and merged[-1][0] == weekday and begin <= merged[-1][2]:
            merged[-1] = (weekday, merged[-1][1], max(finish, merged[-1][2]))
        else:
            merged.append((weekday, begin, finish))
    return [ShownSlot(day, _clock(begin), _clock(finish)) for day, begin, finish in merged]


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@router.get("/volunteers/{volunteer_id}", response_class=HTMLResponse)
def volunteer_page(
    visit: VisitDep, session: SessionDep, volunteer_id: IdPath, now: NowDep
) -> Response:
    """A volunteer's public profile (never their email), availability on the reader's clock."""
    me, language = visit.signed_in, visit.language
    shown: PublicProfile = profiles.public_profile(session, volunteer_id)
    zone = me.timezone or shown.timezone
    availability: list[ShownSlot] = []
    if shown.timezone and zone:
        availability = slots_in_zone(shown.availability, shown.timezone, zone, now)
    context = {
        "person": shown,
        "is_me": me.id == shown.id,
        "zone": zone,
        "in_my_zone": bool(me.timezone),
        "availability": availability,
        "region": visit._(REGION_NAMES[shown.region]) if shown.region in REGION_NAMES else None,
        "spoken": [
            (
                item.code,
                language.language_name(item.code),
                _level(LANGUAGE_LEVELS, item.level, language),
            )
            for item in shown.languages
        ],
        "offers": [(item, _level(SKILL_LEVELS, item.level, language)) for item in shown.offers],
        "wants": [(item, _level(SKILL_LEVELS, item.level, language)) for item in shown.wants],
        "nav": None,
    }
    return visit.render("profile/public.html", context)


def _level(words: Mapping[int, str], level: int, language: Language) -> str:
    """A level with its word: '3 \N{EN DASH} advanced'."""
    word = words.get(level)
    return f"{level} \N{EN DASH} {language.gettext(word)}" if word else str(level)
