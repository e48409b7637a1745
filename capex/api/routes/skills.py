"""The skill taxonomy: public to read, curated by coordinators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from capex.api.deps import Coordinator, SessionDep
from capex.api.schemas.common import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    PlainText,
    Problem,
    cursor_position,
    encode_cursor,
)
from capex.api.schemas.skills import SkillCreate, SkillDetail, SkillRead, SkillUpdate
from capex.regions import REGIONS
from capex.services import skills as skill_service

router = APIRouter(tags=["skills"])


@router.get("/skills", response_model=Page[SkillRead], responses={422: {"model": Problem}})
def list_skills(
    session: SessionDep,
    q: Annotated[
        PlainText | None, Query(min_length=1, max_length=100, description="in names and aliases")
    ] = None,
    parent: Annotated[
        PlainText | None,
        Query(max_length=64, description="children of this skill; empty for the roots"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The skill taxonomy, in id order."""
    skills = skill_service.list_skills(
        session, q=q, parent=parent, after=cursor_position(cursor, "id", str), limit=limit + 1
    )
    page = skills[:limit]
    return {
        "items": [skill_service.skill_document(skill) for skill in page],
        "next_cursor": encode_cursor({"id": page[-1].id}) if len(skills) > limit else None,
    }


@router.get("/skills/{skill_id}", response_model=SkillDetail, responses={404: {"model": Problem}})
def read_skill(skill_id: PlainText, session: SessionDep) -> dict[str, Any]:
    """One skill, with its children and its path from the root."""
    detail = skill_service.get_skill(session, skill_id)
    return {
        **skill_service.skill_document(detail.skill),
        "children": [{"id": c.id, "name": c.name} for c in detail.children],
        "path": [{"id": a.id, "name": a.name} for a in detail.path],
    }


@router.post(
    "/skills",
    status_code=status.HTTP_201_CREATED,
    response_model=SkillRead,
    responses={403: {"model": Problem}, 409: {"model": Problem}, 422: {"model": Problem}},
)
def create_skill(
    data: SkillCreate, _coordinator: Coordinator, session: SessionDep
) -> dict[str, Any]:
    """Add a skill to the taxonomy (coordinators only)."""
    return skill_service.skill_document(skill_service.create_skill(session, data))


@router.patch(
    "/skills/{skill_id}",
    response_model=SkillRead,
    responses={403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def update_skill(
    skill_id: PlainText, data: SkillUpdate, _coordinator: Coordinator, session: SessionDep
) -> dict[str, Any]:
    """Edit a skill (coordinators only)."""
    return skill_service.skill_document(skill_service.update_skill(session, skill_id, data))


@router.get("/regions", tags=["directory"])
def list_regions() -> dict[str, list[dict[str, str]]]:
    """The regions a profile may name."""
    return {"items": [{"id": key, "name": name} for key, name in REGIONS.items()]}
