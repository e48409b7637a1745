"""The directory of volunteers, and role changes by coordinators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from capex.api.deps import Coordinator, CurrentUser, IdPath, PageDep, SessionDep
from capex.schemas.common import Page, PlainText, Problem, encode_cursor
from capex.schemas.profiles import LanguageCode, MeRead, Region, RoleIn, VolunteerRead
from capex.schemas.skills import SkillId
from capex.services import accounts, directory, profiles

router = APIRouter(prefix="/volunteers", tags=["directory"])

_errors: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 422: {"model": Problem}}


@router.get("", response_model=Page[VolunteerRead], responses=_errors)
def list_volunteers(
    _me: CurrentUser,
    session: SessionDep,
    page: PageDep,
    offers: Annotated[
        SkillId | None, Query(description="offers this skill or one below it")
    ] = None,
    wants: Annotated[SkillId | None, Query(description="wants this skill or one below it")] = None,
    language: Annotated[LanguageCode | None, Query(description="'pt' also finds 'pt-BR'")] = None,
    region: Annotated[Region | None, Query()] = None,
    q: Annotated[PlainText | None, Query(min_length=1, max_length=100)] = None,
) -> Page[VolunteerRead]:
    """Public profiles of active volunteers, filtered, in a stable order."""
    query = directory.DirectoryQuery(
        offers=offers,
        wants=wants,
        language=language,
        region=region,
        q=q,
        after_id=page.position("id", int),
        limit=page.limit,
    )
    found = directory.browse(session, query)
    return Page[VolunteerRead](
        items=[VolunteerRead.model_validate(view) for view in found.items],
        next_cursor=encode_cursor({"id": found.items[-1].id}) if found.more else None,
    )


@router.get("/{volunteer_id}", response_model=VolunteerRead, responses={404: {"model": Problem}})
def read_volunteer(volunteer_id: IdPath, _me: CurrentUser, session: SessionDep) -> VolunteerRead:
    """One public profile (never the email)."""
    return VolunteerRead.model_validate(profiles.public_profile(session, volunteer_id))


@router.put(
    "/{volunteer_id}/role",
    response_model=MeRead,
    responses={
        403: {"model": Problem},
        404: {"model": Problem},
        409: {"model": Problem, "description": "it would leave no active coordinator"},
    },
)
def set_role(
    volunteer_id: IdPath, data: RoleIn, coordinator: Coordinator, session: SessionDep
) -> MeRead:
    """Make a volunteer a coordinator, or a volunteer again (never the last coordinator)."""
    changed = accounts.change_role(session, volunteer_id, data.role, by=coordinator)
    return MeRead.model_validate(changed)
