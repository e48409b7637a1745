"""Dependencies as ``Annotated`` aliases: the session, the settings, who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Body, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from capex.api.schemas.common import MAX_ID, control_character
from capex.config import Settings
from capex.errors import CapexError, Forbidden, Unauthorized
from capex.models import Volunteer
from capex.services import accounts
from capex.services import skills as skill_service

ModelT = TypeVar("ModelT", bound=BaseModel)

# An integer id in a path; out of range it is simply not found.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


# Dependencies that do no I/O are async: FastAPI runs them on the event loop instead of
# handing each to the thread pool (a hop per dependency per request).
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request) -> Iterator[Session]:
    """One request, one transaction: commit when the endpoint returns, else roll back."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # SQLite: take the write lock when the transaction begins. A deferred transaction
        # that reads and then writes fails at once if another writer got in between.
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    try:
        yield session
    except CapexError as error:
        if error.keep_changes:
            session.commit()
        else:
            session.rollback()
        raise
    except BaseException:
        session.rollback()
        raise
    else:
        session.commit()
    finally:
        session.close()


# scope="function": the commit happens before the response is sent, so a client that
# reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

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
    if user.role != "coordinator":
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
