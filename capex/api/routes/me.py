"""The signed-in volunteer: own profile, edits, deactivation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from capex.api.deps import CurrentUser, SessionDep, SettingsDep, body_with_known_skills
from capex.schemas.common import Problem
from capex.schemas.profiles import MeRead, ProfileReplace, ProfileUpdate
from capex.services import accounts, profiles

router = APIRouter(tags=["accounts"])

_errors: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 422: {"model": Problem}}


def _body_doc(model: type[ProfileReplace | ProfileUpdate]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


@router.get("/me", response_model=MeRead, responses=_errors)
def read_me(me: CurrentUser, session: SessionDep) -> MeRead:
    """My own profile, with my email and role."""
    return MeRead.model_validate(profiles.my_profile(session, me.id))


@router.put(
    "/me/profile", response_model=MeRead, responses=_errors, openapi_extra=_body_doc(ProfileReplace)
)
def replace_profile(
    me: CurrentUser,
    session: SessionDep,
    data: Annotated[ProfileReplace, Depends(body_with_known_skills(ProfileReplace))],
) -> MeRead:
    """Replace my whole profile; a field left out returns to its default."""
    return MeRead.model_validate(profiles.edit_profile(session, me.id, data))


@router.patch(
    "/me/profile", response_model=MeRead, responses=_errors, openapi_extra=_body_doc(ProfileUpdate)
)
def update_profile(
    me: CurrentUser,
    session: SessionDep,
    data: Annotated[ProfileUpdate, Depends(body_with_known_skills(ProfileUpdate))],
) -> MeRead:
    """Change only the profile fields given."""
    return MeRead.model_validate(profiles.edit_profile(session, me.id, data))


@router.delete(
    "/me",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={409: {"model": Problem, "description": "the last active coordinator"}},
)
def deactivate(me: CurrentUser, session: SessionDep, settings: SettingsDep) -> Response:
    """Deactivate my account: no more sign-in, search or matching; history stays."""
    accounts.deactivate(session, settings, me)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
