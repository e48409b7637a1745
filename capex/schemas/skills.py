"""Skill taxonomy schemas."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from capex.schemas.common import InputSchema, Schema

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
WIKIDATA_PATTERN = r"^Q[1-9][0-9]{0,11}$"

SkillId = Annotated[str, Field(min_length=1, max_length=64, pattern=SLUG_PATTERN)]


def _explain_wikidata(value: object) -> object:
    # Before the pattern, whose own message shows the regular expression.
    if isinstance(value, str) and not re.match(WIKIDATA_PATTERN, value):
        raise ValueError("a Wikidata item is 'Q' and its number, for example 'Q52'")
    return value


WikidataItem = Annotated[str, Field(pattern=WIKIDATA_PATTERN), BeforeValidator(_explain_wikidata)]


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
    """Some fields of a skill (PATCH): only those given change; ``wikidata: null`` clears it."""

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    parent: SkillId | None = Field(default=None, description="move the skill under this one")
    root: Literal[True] | None = Field(
        default=None, description="true: make the skill a root area (it leaves its parent)"
    )
    aliases: Aliases | None = None
    wikidata: WikidataItem | None = None

    @field_validator("name", "description", "aliases", "root", "parent")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name == "parent":
            # A null parent used to make the skill an extra root area by accident.
            raise ValueError(
                'parent cannot be null; to make the skill a root area send "root": true'
            )
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
        return value

    @model_validator(mode="after")
    def _root_or_parent(self) -> SkillUpdate:
        if self.root and self.parent is not None:
            raise ValueError('give "parent" or "root": true, not both')
        return self


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
