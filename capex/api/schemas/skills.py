"""Skill taxonomy schemas."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from capex.api.schemas.common import InputSchema, Schema

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
WIKIDATA_PATTERN = r"^Q[1-9][0-9]{0,11}$"

SkillId = Annotated[str, Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)]
WikidataItem = Annotated[str, Field(pattern=WIKIDATA_PATTERN)]


def _clean_aliases(aliases: list[str]) -> list[str]:
    seen: set[str] = set()
    for alias in aliases:
        if not alias.strip():
            raise ValueError("aliases must not be blank")
        key = alias.strip().casefold()
        if key in seen:
            raise ValueError(f"alias {alias!r} is given twice")
        seen.add(key)
    return [alias.strip() for alias in aliases]


Aliases = Annotated[
    list[Annotated[str, Field(max_length=120)]],
    Field(max_length=20),
    AfterValidator(_clean_aliases),
]


class SkillCreate(InputSchema):
    id: SkillId
    name: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(max_length=1000)] = ""
    parent: SkillId | None = None
    aliases: Aliases = Field(default_factory=list)
    wikidata: WikidataItem | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _explain_slug(cls, value: object) -> object:
        if isinstance(value, str) and not re.match(SLUG_PATTERN, value):
            raise ValueError(
                "a skill id is a lowercase slug: letters a-z, digits and single hyphens "
                "(for example 'wikidata-editing')"
            )
        return value


class SkillUpdate(InputSchema):
    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    parent: SkillId | None = None
    aliases: Aliases | None = None
    wikidata: WikidataItem | None = None


class SkillRef(Schema):
    id: str
    name: str


class SkillRead(Schema):
    id: str
    name: str
    description: str
    parent: str | None
    wikidata: str | None
    aliases: list[str]


class SkillDetail(SkillRead):
    children: list[SkillRef]
    path: list[SkillRef] = Field(description="the ancestors, root first")
