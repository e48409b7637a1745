"""Plain functions that make test data; no magic."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.models import Volunteer
from capex.schemas.profiles import ProfileUpdate
from capex.services import accounts, profiles

PASSWORD = "correct horse battery"


@lru_cache
def password_hash() -> str:
    # Argon2 is slow on purpose; hash the shared test password once per run.
    return accounts.hash_password(PASSWORD)


def make_volunteer(
    session: Session, username: str, *, role: str = "volunteer", **profile: Any
) -> Volunteer:
    """An active volunteer with password PASSWORD and the given profile fields."""
    volunteer = Volunteer(
        username=username,
        username_key=username.casefold(),
        email=f"{username.casefold()}@example.org",
        password_hash=password_hash(),
        display_name=username.title(),
        bio="",
        mentor_capacity=2,
        role=role,
        is_active=True,
        languages=[],
        availability=[],
        offers=[],
        wants=[],
    )
    session.add(volunteer)
    session.flush()
    if profile:
        profiles.save_profile(session, volunteer.id, ProfileUpdate.model_validate(profile))
    session.commit()
    return volunteer


def auth_headers(session: Session, settings: Settings, volunteer: Volunteer) -> dict[str, str]:
    """A bearer token for ``volunteer``, issued directly (no slow password check)."""
    issued = accounts.issue_token(session, settings, volunteer)
    session.commit()
    return {"Authorization": f"Bearer {issued.access_token}"}


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def problem_fields(response: Any) -> set[str]:
    """The dotted names of the fields a 422 problem names."""
    return {".".join(str(part) for part in error["loc"]) for error in response.json()["errors"]}
