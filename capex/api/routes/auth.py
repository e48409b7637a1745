"""Registration, sign-in and sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from capex.api.deps import (
    ClientAddress,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    SignInForm,
    TokenDep,
)
from capex.errors import Invalid, field_error
from capex.schemas.common import Problem
from capex.schemas.profiles import MeRead, RegisterIn, TokenRead
from capex.services import accounts

router = APIRouter(prefix="/auth", tags=["accounts"])

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def form_body(request: Request) -> None:
    """Refuse a body that is not a form before FastAPI looks for its fields.

    Otherwise a JSON body reads as an empty form and the answer, "Field required", does
    not tell the client what it should have sent.
    """
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        sent = media_type or "a body without a Content-Type"
        raise Invalid(
            f"sign-in takes the form fields 'username' and 'password' sent as "
            f"{FORM_TYPES[0]} (the OAuth2 password grant), not {sent}",
            [field_error(["header", "Content-Type"], f"expected {FORM_TYPES[0]}")],
        )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=MeRead,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
)
def register(data: RegisterIn, session: SessionDep) -> MeRead:
    """Create an account; the answer is the new volunteer's own profile."""
    return MeRead.model_validate(accounts.sign_up(session, data))


@router.post(
    "/token",
    response_model=TokenRead,
    # Checked first: a route's own dependencies run before those of its parameters.
    dependencies=[Depends(form_body)],
    responses={
        401: {"model": Problem},
        403: {"model": Problem, "description": "the account is deactivated"},
        422: {"model": Problem},
        429: {"model": Problem},
    },
)
def token(
    form: SignInForm,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    address: ClientAddress,
) -> TokenRead:
    """Sign in with username and password (OAuth2 password grant) for a bearer token."""
    # No request transaction: sign-in runs its own, which counts a failure before the 401.
    issued = accounts.sign_in(sessions, settings, form.username, form.password, address)
    return TokenRead(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(session: SessionDep, settings: SettingsDep, token: TokenDep) -> Response:
    """Revoke the token this request carries."""
    accounts.volunteer_for_token(session, settings, token)
    accounts.revoke_token(session, settings, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
