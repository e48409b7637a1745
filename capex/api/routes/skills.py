"""The skill taxonomy: public to read, curated by coordinators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from capex.api.deps import Coordinator, PageDep, SessionDep
from capex.models import Skill
from capex.regions import REGIONS
from capex.schemas.common import Page, PlainText, Problem, encode_cursor
from capex.schemas.skills import SkillCreate, SkillDetail, SkillRead, SkillUpdate
from capex.services import skills as skill_service

router = APIRouter(tags=["skills"])


def _read(skill: Skill) -> SkillRead:
    return SkillRead.model_validate(skill_service.skill_view(skill))


@router.get("/skills", response_model=Page[SkillRead], responses={422: {"model": Problem}})
def list_skills(
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        PlainText | None, Query(min_length=1, max_length=100, description="in names and aliases")
    ] = None,
    parent: Annotated[
        PlainText | None,
        Query(max_length=64, description="children of this skill; empty for the roots"),
    ] = None,
) -> Page[SkillRead]:
    """The skill taxonomy, in id order."""
    skills = skill_service.list_skills(
        session, q=q, parent=parent, after=page.position("id", str), limit=page.limit + 1
    )
    shown = skills[: page.limit]
    return Page[SkillRead](
        items=[_read(skill) for skill in shown],
        next_cursor=encode_cursor({"id": shown[-1].id}) if len(skills) > page.limit else None,
    )


@router.get("/skills/{skill_id}", response_model=SkillDetail, responses={404: {"model": Problem}})
def read_skill(skill_id: PlainText, session: SessionDep) -> SkillDetail:
    """One skill, with its children and its path from the root."""
    return SkillDetail.model_validate(skill_service.get_skill(session, skill_id))


@router.post(
    "/skills",
    status_code=status.HTTP_201_CREATED,
    response_model=SkillRead,
    responses={403: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
)
def create_skill(data: SkillCreate, _coordinator: Coordinator, session: SessionDep) -> SkillRead:
    """Add a skill to the taxonomy (coordinators only)."""
    return _read(skill_service.create_skill(session, data))


@router.patch(
    "/skills/{skill_id}",
    response_model=SkillRead,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def update_skill(
    skill_id: PlainText, data: SkillUpdate, _coordinator: Coordinator, session: SessionDep
) -> SkillRead:
    """Edit a skill (coordinators only)."""
    return _read(skill_service.update_skill(session, skill_id, data))


@router.get("/regions", tags=["directory"])
def list_regions() -> dict[str, list[dict[str, str]]]:
    """The regions a profile may name."""
    return {"items": [{"id": key, "name": name} for key, name in REGIONS.items()]}
