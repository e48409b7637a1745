"""Registration, sign-in and sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from capex.api.deps import ClientAddress, SessionDep, SettingsDep, SignInForm, TokenDep
from capex.api.schemas.common import Problem
from capex.api.schemas.profiles import MeRead, RegisterIn, TokenRead
from capex.services import accounts, profiles

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=MeRead,
    responses={409: {"model": Problem}, 422: {"model": Problem}},
)
def register(data: RegisterIn, session: SessionDep) -> dict[str, object]:
    """Create an account; the answer is the new volunteer's own profile."""
    volunteer = accounts.register(session, data)
    return profiles.own_views(session, volunteer)


@router.post(
    "/token",
    response_model=TokenRead,
    responses={401: {"model": Problem}, 429: {"model": Problem}},
)
def token(
    form: SignInForm,
    session: SessionDep,
    settings: SettingsDep,
    address: ClientAddress,
) -> TokenRead:
    """Sign in with username and password (OAuth2 password grant) for a bearer token."""
    issued = accounts.sign_in(session, settings, form.username, form.password, address)
    return TokenRead(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def logout(session: SessionDep, settings: SettingsDep, token: TokenDep) -> Response:
    """Revoke the token this request carries."""
    accounts.volunteer_for_token(session, settings, token)
    accounts.revoke_token(session, settings, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
