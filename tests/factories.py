"""Plain functions that make test data; no magic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from sqlalchemy.orm import Session

from capex.config import Settings
from capex.models import Volunteer
from capex.schemas.profiles import ProfileUpdate
from capex.services import accounts, profiles
from capex.vocabulary import Role

PASSWORD = "correct horse battery"


@lru_cache
def password_hash() -> str:
    # Argon2 is slow on purpose; hash the shared test password once per run.
    return accounts.hash_password(PASSWORD)


def make_volunteer(
    session: Session, username: str, *, role: Role = Role.VOLUNTEER, **profile: Any
) -> Volunteer:
    """An active volunteer with password PASSWORD and the given profile fields."""
    volunteer = accounts.new_volunteer(
        username,
        f"{username.casefold()}@example.org",
        password_hash(),
        display_name=username.title(),
        role=role,
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


@dataclass(frozen=True)
class Person:
    """A volunteer and the bearer header that signs them in."""

    id: int
    username: str
    headers: dict[str, str]

    @property
    def ref(self) -> dict[str, Any]:
        """How the API names this volunteer inside an exchange."""
        return {"id": self.id, "username": self.username, "display_name": self.username.title()}


def sign_in(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def problem_fields(response: Any) -> set[str]:
    """The dotted names of the fields a 422 problem names."""
    return {".".join(str(part) for part in error["loc"]) for error in response.json()["errors"]}
