"""The JSON door's dependencies: who is calling (a bearer token), sign-in forms, bodies that
know the taxonomy; and, re-exported, what both doors share (``capex.deps``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ValidationError

from capex.deps import (
    Clock,
    IdPath,
    MatchingDep,
    NowDep,
    PageDep,
    PageRequest,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    StatsDep,
    get_session,
    get_session_factory,
    get_settings,
)
from capex.errors import Forbidden, Unauthorized
from capex.models import Volunteer
from capex.schemas.common import control_character
from capex.services import accounts
from capex.services import skills as skill_service
from capex.vocabulary import Role

__all__ = [
    "ClientAddress",
    "Clock",
    "Coordinator",
    "CurrentUser",
    "IdPath",
    "MatchingDep",
    "NowDep",
    "PageDep",
    "PageRequest",
    "SessionDep",
    "SessionFactoryDep",
    "SettingsDep",
    "SignInForm",
    "StatsDep",
    "TokenDep",
    "body_with_known_skills",
    "get_coordinator",
    "get_session",
    "get_session_factory",
    "get_settings",
    "get_token",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerToken = Annotated[str | None, Depends(_bearer)]


async def get_token(token: BearerToken) -> str:
    if not token:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>'")
    return token


TokenDep = Annotated[str, Depends(get_token)]


def get_current_user(session: SessionDep, settings: SettingsDep, token: TokenDep) -> Volunteer:
    return accounts.volunteer_for_token(session, settings, token)


CurrentUser = Annotated[Volunteer, Depends(get_current_user)]


async def get_coordinator(user: CurrentUser) -> Volunteer:
    if user.role != Role.COORDINATOR:
        raise Forbidden("only coordinators may do this")
    return user


Coordinator = Annotated[Volunteer, Depends(get_coordinator)]


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


async def sign_in_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> OAuth2PasswordRequestForm:
    """The OAuth2 password form, its fields held to the rule of every text field."""
    errors = [
        {
            "loc": ("body", name),
            "msg": f"holds the control character {found}; only tab and newline are allowed",
            "type": "control_character",
        }
        for name in ("username", "password")
        if (found := control_character(getattr(form, name))) is not None
    ]
    if errors:
        raise RequestValidationError(errors)
    return form


SignInForm = Annotated[OAuth2PasswordRequestForm, Depends(sign_in_form)]


def prefixed(errors: list[Any], prefix: str) -> list[dict[str, Any]]:
    return [{**error, "loc": (prefix, *error["loc"])} for error in errors]


def body_with_known_skills(model: type[ModelT]) -> Callable[..., ModelT]:
    """Validate a JSON body against ``model`` knowing the taxonomy.

    An unknown skill is then named in the same 422 as every other bad field.
    """

    def dependency(
        payload: Annotated[dict[str, Any], Body(media_type="application/json")],
        session: SessionDep,
    ) -> ModelT:
        context = {"known_skills": skill_service.known_ids(session)}
        try:
            return model.model_validate(payload, context=context)
        except ValidationError as error:
            raise RequestValidationError(prefixed(list(error.errors()), "body")) from error

    return dependency
