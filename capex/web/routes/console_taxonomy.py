"""The coordinators' console: the taxonomy editor and the people (see docs/web.md).

Every change goes through the services the API calls (``skills.create_skill``,
``skills.update_skill``, ``accounts.change_role``), so a page refuses what the API refuses
(a cycle, a fourth level, an unknown parent, a taken id, the last coordinator), worded for
its reader next to the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from capex.deps import IdPath, SessionDep
from capex.errors import Conflict, Invalid
from capex.models import MAX_SKILL_DEPTH
from capex.schemas.common import PlainText
from capex.schemas.skills import SkillCreate, SkillUpdate
from capex.services import accounts, taxonomy_pages
from capex.services import skills as skill_service
from capex.services.taxonomy_pages import SkillChoice
from capex.vocabulary import Role
from capex.web import forms
from capex.web.i18n import N_
from capex.web.pages import NOTICES, FormDep, HtmlRoute, Visit, VisitDep

router = APIRouter(route_class=HtmlRoute)

NOTICES.update(
    {
        "skill-added": N_("The skill is added to the taxonomy."),
        "skill-saved": N_("The skill is saved."),
        "role-granted": N_("The coordinator role is given."),
        "role-taken": N_("The coordinator role is taken back."),
        "role-given-up": N_("You are no longer a coordinator."),
    }
)

SearchQuery = Annotated[PlainText | None, Query(max_length=100)]
SkillPath = Annotated[PlainText, Path(min_length=1, max_length=64)]
SKILL_FIELDS = ("id", "name", "description", "parent", "aliases", "wikidata", "root")

# Our schemas' and the skills service's own messages (their texts hold these), for a page.
SKILL_MESSAGES = (
    (
        "a skill id is a lowercase slug",
        N_(
            "An id is a lowercase slug: letters a-z, digits and single hyphens, like "
            "wikidata-editing."
        ),
    ),
    ("a Wikidata item is", N_("A Wikidata item is Q and its number, like Q52.")),
    ("aliases must not be blank", N_("An alias cannot be blank.")),
    ("is given twice", N_("An alias is given twice; keep one.")),
    ("unknown skill", N_("There is no such skill: choose one from the list.")),
    (
        "cannot be placed under itself",
        N_("A skill cannot go under itself or under a skill below it."),
    ),
)
DEPTH = re.compile(r"make it (\d+) levels deep")


def _skill_message(text: str, visit: Visit) -> str | None:
    for fragment, sentence in SKILL_MESSAGES:
        if fragment in text:
            return visit._(sentence)
    found = DEPTH.search(text)
    if found:
        return visit._(
            "The taxonomy is at most %(most)d levels deep: here it would be %(depth)d.",
            most=MAX_SKILL_DEPTH,
            depth=int(found.group(1)),
        )
    return None


def _field(loc: Any) -> str:
    name = forms.field_name([part for part in loc if isinstance(part, str | int)])
    # One field holds every alias, one a line: an error of any of them is shown on it.
    return "aliases" if name.startswith("aliases") else name


def _errors(errors: Any, visit: Visit) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in errors:
        name = _field(error.get("loc", ()))
        text = str(error.get("msg", ""))
        if name == "parent" and error.get("type") == "string_pattern_mismatch":
            text = "unknown skill"  # a typed name that is no skill's
        if (
            error.get("type") == "string_too_short"
            and (error.get("ctx") or {}).get("min_length") == 1
        ):
            error = {**error, "type": "missing"}  # an emptied field
        found.setdefault(name, _skill_message(text, visit) or forms.message(error, visit.language))
    return found


def _parse(
    model: type[BaseModel], data: Mapping[str, Any], visit: Visit
) -> tuple[Any, dict[str, str]]:
    try:
        return model.model_validate(data), {}
    except ValidationError as error:
        return None, _errors(error.errors(), visit)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _placement(
    values: Mapping[str, str], choices: tuple[SkillChoice, ...], visit: Visit
) -> tuple[dict[str, Any], dict[str, str]]:
    """Where the form puts the skill: under a parent, or a root area when ticked."""
    parent = values["parent"].strip()
    if values["root"]:
        if parent:
            return {}, {"parent": visit._("A root area has no parent: empty this field.")}
        return {"root": True}, {}
    if not parent:
        return {}, {"parent": visit._("Choose the skill it belongs under, or make it a root area.")}
    return {"parent": taxonomy_pages.resolve_skill(choices, parent)}, {}


def _service_errors(error: Invalid, visit: Visit) -> dict[str, str]:
    shown = _errors(error.errors, visit)
    return shown or {"_form": _skill_message(error.detail, visit) or error.detail}


def _opened_at(skill_id: str) -> str:
    return "/console/taxonomy?" + urlencode({"open": skill_id})


# -- the tree and the search -------------------------------------------------------------


@router.get("/console/taxonomy", response_class=HTMLResponse)
def taxonomy(
    visit: VisitDep,
    session: SessionDep,
    q: SearchQuery = None,
    open_at: Annotated[PlainText | None, Query(alias="open", max_length=64)] = None,
) -> Response:
    """The taxonomy as a tree of its root areas, and a search in names and aliases."""
    visit.coordinator  # noqa: B018 - coordinators only
    query = (q or "").strip()
    page = taxonomy_pages.taxonomy_page(session, query or None)
    opened = set(page.path_to(open_at)) if open_at else set()
    context = {
        "nav": "console",
        "console_nav": "taxonomy",
        "page": page,
        "q": query,
        "opened": opened,
        "marked": open_at,
    }
    return visit.render("console/taxonomy/tree.html", context)


# -- adding a skill ----------------------------------------------------------------------


def _new_page(
    visit: Visit,
    session: Session,
    values: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> Response:
    context = {
        "nav": "console",
        "console_nav": "taxonomy",
        "values": values,
        "errors": errors,
        "choices": taxonomy_pages.parent_choices(session),
    }
    return visit.render("console/taxonomy/new.html", context, status=status)


@router.get("/console/taxonomy/new", response_class=HTMLResponse)
def new_skill_page(
    visit: VisitDep, session: SessionDep, parent: Annotated[PlainText, Query(max_length=64)] = ""
) -> Response:
    """The form to add a skill, under ``parent`` if given."""
    visit.coordinator  # noqa: B018 - coordinators only
    return _new_page(visit, session, {"parent": parent}, {})


@router.post("/console/taxonomy/new", response_class=HTMLResponse)
def add_skill(visit: VisitDep, session: SessionDep, form: FormDep) -> Response:
    """Add the skill (the API's checks); the tree opens at it."""
    visit.coordinator  # noqa: B018 - coordinators only
    values = forms.text_fields(form, *SKILL_FIELDS)
    choices = taxonomy_pages.parent_choices(session)
    placement, errors = _placement(values, choices, visit)
    data: dict[str, Any] = {
        "id": values["id"].strip(),
        "name": values["name"].strip(),
        "description": values["description"].strip(),
        "aliases": _lines(values["aliases"]),
        "wikidata": values["wikidata"].strip() or None,
    }
    if "parent" in placement:
        data["parent"] = placement["parent"]
    parsed, parse_errors = _parse(SkillCreate, data, visit)
    errors = {**parse_errors, **errors}
    if parsed is not None and not errors:
        try:
            skill = skill_service.create_skill(session, parsed)
        except Conflict:
            errors["id"] = visit._("A skill with this id exists already; choose another.")
        except Invalid as error:
            errors.update(_service_errors(error, visit))
        else:
            return visit.redirect(_opened_at(skill.id), notice="skill-added")
    return _new_page(visit, session, values, errors, status=422)


# -- one skill ---------------------------------------------------------------------------


def _skill_page(
    visit: Visit,
    session: Session,
    skill_id: str,
    values: Mapping[str, str] | None,
    errors: Mapping[str, str],
    status: int = 200,
) -> Response:
    page = taxonomy_pages.skill_page(session, skill_id)
    if values is None:
        skill = page.skill
        values = {
            "name": skill.name,
            "description": skill.description,
            "aliases": "\n".join(skill.aliases),
            "wikidata": skill.wikidata or "",
            "parent": skill.parent or "",
            "root": "" if skill.parent else "yes",
        }
    context = {
        "nav": "console",
        "console_nav": "taxonomy",
        "page": page,
        "values": values,
        "errors": errors,
        "choices": [choice for choice in page.choices if choice.id != skill_id],
    }
    return visit.render("console/taxonomy/skill.html", context, status=status)


@router.get("/console/taxonomy/{skill_id}", response_class=HTMLResponse)
def skill_page(visit: VisitDep, session: SessionDep, skill_id: SkillPath) -> Response:
    """One skill: rename it, describe it, its aliases, its Wikidata item, its parent."""
    visit.coordinator  # noqa: B018 - coordinators only
    return _skill_page(visit, session, skill_id, None, {})


@router.post("/console/taxonomy/{skill_id}", response_class=HTMLResponse)
def save_skill(
    visit: VisitDep, session: SessionDep, form: FormDep, skill_id: SkillPath
) -> Response:
    """Save the skill (the API's checks: no cycle, at most three levels)."""
    visit.coordinator  # noqa: B018 - coordinators only
    values = forms.text_fields(form, *SKILL_FIELDS)
    choices = taxonomy_pages.parent_choices(session)
    placement, errors = _placement(values, choices, visit)
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "description": values["description"].strip(),
        "aliases": _lines(values["aliases"]),
        "wikidata": values["wikidata"].strip() or None,
        **placement,
    }
    parsed, parse_errors = _parse(SkillUpdate, data, visit)
    errors = {**parse_errors, **errors}
    if parsed is not None and not errors:
        try:
            skill = skill_service.update_skill(session, skill_id, parsed)
        except Invalid as error:
            errors.update(_service_errors(error, visit))
        else:
            return visit.redirect(_opened_at(skill.id), notice="skill-saved")
    return _skill_page(visit, session, skill_id, values, errors, status=422)


# -- people ------------------------------------------------------------------------------


def _people_page(
    visit: Visit, session: Session, q: str, problem: str | None = None, status: int = 200
) -> Response:
    context = {
        "nav": "console",
        "console_nav": "people",
        "q": q,
        "page": taxonomy_pages.find_people(session, q or None),
        "problem": problem,
        "roles": Role,
    }
    return visit.render("console/taxonomy/people.html", context, status=status)


@router.get("/console/people", response_class=HTMLResponse)
def people(visit: VisitDep, session: SessionDep, q: SearchQuery = None) -> Response:
    """Find volunteers by username, name or email; see and change their role."""
    visit.coordinator  # noqa: B018 - coordinators only
    return _people_page(visit, session, (q or "").strip())


@router.post("/console/people/{volunteer_id}/role", response_class=HTMLResponse)
def change_role(
    visit: VisitDep, session: SessionDep, form: FormDep, volunteer_id: IdPath
) -> Response:
    """Give or take back the coordinator role (never the last coordinator's)."""
    me = visit.coordinator
    values = forms.text_fields(form, "role", "confirm", "q")
    try:
        role = Role(values["role"])
    except ValueError:
        raise Invalid(visit._("Choose a role: coordinator or volunteer.")) from None
    giving_up = volunteer_id == me.id and role != Role.COORDINATOR
    if giving_up and values["confirm"] != "yes":
        context = {"nav": "console", "console_nav": "people", "q": values["q"]}
        return visit.render("console/taxonomy/give_up.html", context)
    try:
        changed = accounts.change_role(session, volunteer_id, role, by=me)
    except Conflict:
        problem = visit._(
            "This is the last active coordinator: make someone else a coordinator first, "
            "so that somebody can still give the role."
        )
        return _people_page(visit, session, values["q"].strip(), problem, status=409)
    if giving_up:
        return visit.redirect("/profile", notice="role-given-up")
    back = "/console/people?" + urlencode({"q": values["q"].strip() or changed.username})
    notice = "role-granted" if role == Role.COORDINATOR else "role-taken"
    return visit.redirect(back, notice=notice)
