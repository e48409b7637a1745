"""The coordinators' console: matching rounds, run for a cohort, reviewed, compared in both
modes and published (see docs/web.md and docs/rounds.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from capex.deps import IdPath, MatchingDep, SessionDep
from capex.errors import Conflict, Invalid
from capex.schemas.common import MAX_ID
from capex.schemas.rounds import RoundCreate
from capex.services import round_pages, rounds
from capex.services.round_pages import RoundPage
from capex.vocabulary import RoundMode, RoundStatus
from capex.web import forms
from capex.web.i18n import N_, Language
from capex.web.pages import NOTICES, FormDep, HtmlRoute, Visit, VisitDep
from capex.web.routes.exchanges import STATE_LABELS
from capex.web.skill_names import SkillNames, skill_names

router = APIRouter(route_class=HtmlRoute)

NOTICES.update(
    {
        "round-run": N_("The round is ready as a draft: review its pairs before you publish it."),
        "round-published": N_(
            "The round is published: its pairs are sent to their mentors as requests."
        ),
    }
)

ROUNDS_PER_PAGE = 50
SCORE_RANGE = N_("Write a number from 0 to 1, like 0.5.")
# Rows of skills the form offers (each may hold a comma-separated list).
SKILL_ROWS = 3
SKILL_ROW = re.compile(r"^skills-(\d{1,2})$")
# Usernames are split on commas, semicolons and any white space (one a line, or a list).
SEPARATORS = re.compile(r"[\s,;]+")

MODE_LABELS = {RoundMode.OPTIMAL: N_("Optimal"), RoundMode.STABLE: N_("Stable")}
MODE_HELP = {
    RoundMode.OPTIMAL: N_(
        "Optimal: the pairs with the greatest total score, so that as many good pairs as "
        "possible are made."
    ),
    RoundMode.STABLE: N_(
        "Stable: no learner and mentor would both rather be together than with whom they got, "
        "even if the total score is lower."
    ),
}
STATUS_LABELS = {RoundStatus.DRAFT: N_("Draft"), RoundStatus.PUBLISHED: N_("Published")}
# Each metric: its name, what it means, and which way is better (+1 more, -1 less, 0 neither).
METRICS: tuple[tuple[str, str, str, int], ...] = (
    (
        "learners",
        N_("Learners"),
        N_("Learners in the cohort, whether the round could place them or not."),
        0,
    ),
    ("matched", N_("Matched"), N_("Learners given at least one mentor."), 1),
    (
        "total_score",
        N_("Total score"),
        N_("The sum of the pairs' scores: an optimal round makes it as large as it can."),
        1,
    ),
    (
        "mean_score",
        N_("Mean score"),
        N_("The average score of a pair, from 0 to 1 (1: a perfect fit)."),
        1,
    ),
    (
        "mentor_load_gini",
        N_("Mentor load (Gini)"),
        N_(
            "How unevenly the pairs are spread over the mentors who could take one: 0 is an "
            "even load; near 1, a few mentors take most of them."
        ),
        -1,
    ),
    (
        "blocking_pairs",
        N_("Blocking pairs"),
        N_(
            "A learner and a mentor who would both rather be together than with whom they got; "
            "a stable round has none."
        ),
        -1,
    ),
)
FIELD_LABELS = {
    "name": N_("Name of the round"),
    "mode": N_("Mode"),
    "skills": N_("Skills"),
    "learners": N_("Learners"),
    "mentors": N_("Mentors"),
    "min_score": N_("Lowest score"),
    "max_per_learner": N_("Mentors per learner, at most"),
}


def _common(visit: Visit) -> dict[str, Any]:
    return {
        "nav": "console",
        "console_nav": "rounds",
        "mode_labels": MODE_LABELS,
        "status_labels": STATUS_LABELS,
        "state_labels": STATE_LABELS,
        "metrics": METRICS,
    }


@router.get("/console/rounds", response_class=HTMLResponse)
def rounds_page(
    visit: VisitDep,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """The rounds, newest first, a page at a time."""
    _coordinator = visit.coordinator
    found = rounds.list_rounds(session, before=before, limit=ROUNDS_PER_PAGE + 1)
    shown = found[:ROUNDS_PER_PAGE]
    more = shown[-1].id if len(found) > ROUNDS_PER_PAGE else None
    context = {**_common(visit), "rounds": shown, "older": more, "paged": before is not None}
    return visit.render("console/rounds/list.html", context)


def _form_page(
    visit: Visit,
    values: Mapping[str, str],
    skill_rows: Sequence[str],
    names: SkillNames,
    errors: Mapping[str, str],
    status: int = 200,
) -> HTMLResponse:
    rows = list(skill_rows)
    while len(rows) < SKILL_ROWS or rows[-1].strip():
        rows.append("")
    context = {
        **_common(visit),
        "values": values,
        "skill_rows": rows,
        "skills": names.skills,
        "errors": errors,
        "summary": _summary(errors, visit.language),
        "modes": [(mode.value, visit._(MODE_LABELS[mode])) for mode in RoundMode],
        "mode_help": MODE_HELP,
    }
    return visit.render("console/rounds/new.html", context, status=status)


def _summary(errors: Mapping[str, str], language: Language) -> dict[str, str]:
    """The errors for the list above the form, each with the name of its field."""
    found = {}
    for name, sentence in errors.items():
        group = name.split("-")[0]
        label = FIELD_LABELS.get(group)
        found[name] = (
            language.gettext(
                "%(field)s: %(problem)s", field=language.gettext(label), problem=sentence
            )
            if label
            else sentence
        )
    return found


@router.get("/console/rounds/new", response_class=HTMLResponse)
def new_round_page(visit: VisitDep, session: SessionDep) -> Response:
    """The form that runs a round for a cohort."""
    _coordinator = visit.coordinator
    values = {"mode": RoundMode.OPTIMAL.value, "min_score": "0", "max_per_learner": "1"}
    return _form_page(visit, values, [], skill_names(session), {})


def _usernames(text: str) -> list[str]:
    return [name for name in SEPARATORS.split(text) if name]


def _people(
    session: Session, text: str, field: str, errors: dict[str, str], language: Language
) -> list[int] | None:
    """The ids of the usernames typed (None: nobody named, so everyone eligible)."""
    typed = list(dict.fromkeys(_usernames(text)))
    if not typed:
        return None
    found = round_pages.volunteers_named(session, typed)
    unknown = [name for name in typed if name not in found]
    if unknown:
        errors[field] = language.ngettext(
            "No active volunteer has the username %(names)s.",
            "No active volunteer has these usernames: %(names)s.",
            len(unknown),
            names=language.listing(unknown[:10]) + (" …" if len(unknown) > 10 else ""),
        )
    return sorted(set(found.values()))


def _skills(
    rows: Sequence[str], names: SkillNames, errors: dict[str, str], language: Language
) -> list[str] | None:
    """The skills typed in the rows (an id, a name or an alias; commas between several)."""
    chosen: list[str] = []
    for index, row in enumerate(rows):
        unknown = []
        for typed in row.split(","):
            if not typed.strip():
                continue
            resolved = names.resolve(typed)
            if resolved is None:
                unknown.append(typed.strip())
            elif resolved not in chosen:
                chosen.append(resolved)
        if unknown:
            errors[f"skills-{index}"] = language.gettext(
                "Choose a skill from the list: %(skills)s is not one.",
                skills=language.listing(unknown),
            )
    return chosen or None


def _schema_field(loc: Sequence[str | int]) -> str:
    parts = [str(part) for part in loc if part != "body"]
    if not parts:
        return "_form"
    return "skills-0" if parts[0] == "skills" else parts[0]


@router.post("/console/rounds/new", response_class=HTMLResponse)
def run_round(
    visit: VisitDep, session: SessionDep, form: FormDep, matching: MatchingDep
) -> Response:
    """Run the round (or both modes, to compare them) and show it; errors by their field."""
    me = visit.coordinator
    language = visit.language
    values = forms.text_fields(
        form, "name", "mode", "learners", "mentors", "min_score", "max_per_learner", "action"
    )
    skill_rows = _skill_rows(form)
    names = skill_names(session)
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "mode": values["mode"] or RoundMode.OPTIMAL.value,
        "skills": _skills(skill_rows, names, errors, language),
        "learners": _people(session, values["learners"], "learners", errors, language),
        "mentors": _people(session, values["mentors"], "mentors", errors, language),
    }
    for field, kind, wrong in (
        ("min_score", float, SCORE_RANGE),
        ("max_per_learner", int, forms.MESSAGES["int_parsing"]),
    ):
        typed = values[field].strip().replace(",", ".")
        if not typed:
            continue
        try:
            data[field] = kind(typed)
        except ValueError:
            errors[field] = language.gettext(wrong)
    if not data["name"]:
        errors["name"] = language.gettext(forms.MESSAGES["missing"])
    try:
        question = RoundCreate.model_validate(data)
    except ValidationError as invalid:
        for error in invalid.errors():
            field = _schema_field(error["loc"])
            sentence = forms.message(error, language)
            if field == "min_score":
                sentence = language.gettext(SCORE_RANGE)
            errors.setdefault(field, sentence)
        question = None
    if errors or question is None:
        return _form_page(visit, values, skill_rows, names, errors, status=422)
    try:
        if values["action"] == "compare":
            optimal, stable = round_pages.run_both(session, matching, me, question)
            return visit.redirect(f"/console/rounds/compare?a={optimal.id}&b={stable.id}")
        ran = rounds.run(session, matching, me, question)
    except Invalid as invalid:
        errors["_form"] = invalid.detail
        return _form_page(visit, values, skill_rows, names, errors, status=422)
    return visit.redirect(f"/console/rounds/{ran.id}", notice="round-run")


def _skill_rows(form: FormData) -> list[str]:
    found: dict[int, str] = {}
    for name in form:
        if (match := SKILL_ROW.match(name)) and isinstance(value := form.get(name), str):
            found[int(match.group(1))] = value
    return [found[index] for index in sorted(found)]


def _better(a: float | None, b: float | None, direction: int) -> str | None:
    """'a', 'b' or 'equal' for a metric where ``direction`` says which way is better."""
    if direction == 0 or a is None or b is None:
        return None
    if abs(a - b) < 1e-9:
        return "equal"
    return "a" if (a - b) * direction > 0 else "b"


@router.get("/console/rounds/compare", response_class=HTMLResponse)
def compare_page(
    visit: VisitDep,
    session: SessionDep,
    a: Annotated[int, Query(ge=1, le=MAX_ID)],
    b: Annotated[int, Query(ge=1, le=MAX_ID)],
) -> Response:
    """Two rounds of one cohort side by side: which is better by each metric, and the pairs
    that differ."""
    _coordinator = visit.coordinator
    comparison = round_pages.compare_rounds(session, a, b)
    better = {
        key: _better(
            getattr(comparison.a.metrics, key), getattr(comparison.b.metrics, key), direction
        )
        for key, _name, _meaning, direction in METRICS
    }
    context = {**_common(visit), "comparison": comparison, "better": better}
    return visit.render("console/rounds/compare.html", context)


def _round_page(
    visit: Visit, page: RoundPage, *, refused: str | None = None, status: int = 200
) -> HTMLResponse:
    context = {**_common(visit), "page": page, "refused": refused}
    return visit.render("console/rounds/round.html", context, status=status)


@router.get("/console/rounds/{round_id}", response_class=HTMLResponse)
def round_review(
    round_id: IdPath,
    visit: VisitDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """One round: its metrics, its pairs with their reasons, whom it left, and publishing."""
    _coordinator = visit.coordinator
    return _round_page(visit, round_pages.round_page(session, round_id, page=page))


@router.post("/console/rounds/{round_id}/publish", response_class=HTMLResponse)
def publish_round(
    round_id: IdPath, visit: VisitDep, session: SessionDep, form: FormDep
) -> Response:
    """Send every pair that still holds to its mentor as a request; a round publishes once."""
    _coordinator = visit.coordinator
    try:
        rounds.publish(session, visit.settings, round_id)
    except Conflict:
        shown = round_pages.round_page(session, round_id)
        refused = visit._(
            "This round was already published, on %(date)s: it cannot be published again. "
            "Run a new round for the learners still waiting.",
            date=visit.language.datetime(shown.round.published_at)
            if shown.round.published_at
            else "",
        )
        return _round_page(visit, shown, refused=refused, status=409)
    return visit.redirect(f"/console/rounds/{round_id}", notice="round-published")
