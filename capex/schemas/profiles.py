"""Accounts, profiles and directory schemas, with the validation rules of API.md."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from itertools import pairwise
from typing import Annotated, Any, Literal

import langcodes
from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from capex.regions import REGIONS
from capex.schemas.common import InputSchema, RequiredUtcTimestamp, RoleWord, Schema
from capex.schemas.skills import SkillId

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,32}$"
MAX_LIST_ITEMS = 50
TIME_PATTERN = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=USERNAME_PATTERN)]
Password = Annotated[str, Field(min_length=10, max_length=256)]
DisplayName = Annotated[str, Field(min_length=1, max_length=80)]
Bio = Annotated[str, Field(max_length=2000)]
Note = Annotated[str, Field(max_length=280)]
SkillLevel = Annotated[int, Field(ge=1, le=4, description="1 basic .. 4 expert")]
LanguageLevel = Annotated[int, Field(ge=1, le=5, description="1 .. 5, 5 meaning native")]
MentorCapacity = Annotated[int, Field(ge=0, le=20)]


# Names in the tz database that are not zones a person lives in: the posix/ and right/
# copies of the whole tree (right/ counts leap seconds, which no wall clock shows), the
# template 'posixrules', 'Factory' (a placeholder whose abbreviation is '-00') and the
# machine's own 'localtime'. Links kept for compatibility ('US/Eastern', 'Asia/Calcutta')
# are real IANA names that existing profiles may hold, so they stay accepted as given.
_NOT_ZONES = frozenset({"posixrules", "Factory", "localtime"})


@cache
def iana_timezones() -> frozenset[str]:
    """The IANA time zone names a profile may name."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def check_timezone(value: str) -> str:
    if value not in iana_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone (for example 'Africa/Lagos')")
    return value


def standardize_language(value: str) -> str:
    """The standard form of a BCP 47 tag ('EN-gb' -> 'en-GB'), or ValueError."""
    try:
        valid = langcodes.tag_is_valid(value)
        tag: str = langcodes.standardize_tag(value) if valid else ""
    except (ValueError, LookupError):
        valid = False
    if not valid or "_" in value or tag in ("und", "") or not langcodes.Language.get(tag).language:
        raise ValueError(f"{value!r} is not a BCP 47 language code (for example 'pt-BR')")
    return tag


def check_region(value: str) -> str:
    if value not in REGIONS:
        raise ValueError(f"{value!r} is not a region; one of: {', '.join(REGIONS)}")
    return value


Timezone = Annotated[str, AfterValidator(check_timezone)]
LanguageCode = Annotated[str, Field(max_length=35), AfterValidator(standardize_language)]
Region = Annotated[str, AfterValidator(check_region)]


def parse_time(value: object) -> int:
    """'HH:MM' to minutes after midnight; '24:00' is 1440."""
    if not isinstance(value, str):
        raise PydanticCustomError("time_format", "a time is a string 'HH:MM'")
    match = TIME_PATTERN.match(value)
    if not match:
        raise PydanticCustomError(
            "time_format", "'{value}' is not a time 'HH:MM' (00:00 .. 24:00)", {"value": value}
        )
    hours, minutes = (match.group(1), match.group(2)) if match.group(1) else ("24", "00")
    total = int(hours) * 60 + int(minutes)
    if total % 15:
        raise PydanticCustomError(
            "time_quarter", "times are on the quarter hour (:00, :15, :30 or :45)"
        )
    return total


def format_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class LanguageIn(InputSchema):
    code: LanguageCode
    level: LanguageLevel


class SlotIn(InputSchema):
    weekday: Annotated[int, Field(ge=0, le=6, description="0 Monday .. 6 Sunday")]
    start: Annotated[str, Field(examples=["18:00"])]
    end: Annotated[str, Field(examples=["20:30"], description="after start; '24:00' allowed")]

    @field_validator("start", "end", mode="after")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_time(value)
        return value

    @field_validator("start", mode="after")
    @classmethod
    def _start_before_midnight(cls, value: str) -> str:
        if value == "24:00":
            raise ValueError("a slot cannot start at 24:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SlotIn:
        if parse_time(self.end) <= parse_time(self.start):
            raise PydanticCustomError(
                "slot_order",
                "the slot ends ({end}) at or before it starts ({start}); split a slot that "
                "crosses midnight into two",
                {"start": self.start, "end": self.end},
            )
        return self

    @property
    def start_minute(self) -> int:
        return parse_time(self.start)

    @property
    def end_minute(self) -> int:
        return parse_time(self.end)


class SkillEntryIn(InputSchema):
    skill: SkillId
    level: SkillLevel
    note: Note = ""

    @field_validator("skill", mode="after")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("known_skills")
        if known is not None and value not in known:
            raise ValueError(f"unknown skill {value!r}; see GET /api/v1/skills")
        return value


def _no_duplicates(items: list[Any], key: str, label: str) -> None:
    seen: dict[Any, int] = {}
    for index, item in enumerate(items):
        value = getattr(item, key)
        if value in seen:
            raise PydanticCustomError(
                "duplicate",
                "{label} '{value}' is given twice (items {first} and {second})",
                {"label": label, "value": value, "first": seen[value], "second": index},
            )
        seen[value] = index


def _check_languages(items: list[LanguageIn]) -> list[LanguageIn]:
    _no_duplicates(items, "code", "language")
    return items


def _check_skill_entries(items: list[SkillEntryIn]) -> list[SkillEntryIn]:
    _no_duplicates(items, "skill", "skill")
    return items


def _check_slots(slots: list[SlotIn]) -> list[SlotIn]:
    ordered = sorted(enumerate(slots), key=lambda pair: (pair[1].weekday, pair[1].start_minute))
    for (i, a), (j, b) in pairwise(ordered):
        if a.weekday == b.weekday and b.start_minute < a.end_minute:
            raise PydanticCustomError(
                "slot_overlap",
                "slots {first} and {second} overlap on weekday {weekday}; merge them",
                {"first": min(i, j), "second": max(i, j), "weekday": a.weekday},
            )
    return slots


Languages = Annotated[list[LanguageIn], Field(max_length=20), AfterValidator(_check_languages)]
Slots = Annotated[list[SlotIn], Field(max_length=MAX_LIST_ITEMS), AfterValidator(_check_slots)]
SkillEntries = Annotated[
    list[SkillEntryIn], Field(max_length=MAX_LIST_ITEMS), AfterValidator(_check_skill_entries)
]


class ProfileReplace(InputSchema):
    """The whole profile (PUT): a field left out returns to its default."""

    display_name: DisplayName | None = None
    bio: Bio = ""
    timezone: Timezone | None = None
    region: Region | None = None
    languages: Languages = Field(default_factory=list)
    availability: Slots = Field(default_factory=list)
    offers: SkillEntries = Field(default_factory=list)
    wants: SkillEntries = Field(default_factory=list)
    mentor_capacity: MentorCapacity = 2

    @model_validator(mode="after")
    def _slots_need_timezone(self) -> ProfileReplace:
        if self.availability and not self.timezone:
            raise PydanticCustomError(
                "timezone_required",
                "availability is given in the volunteer's own time zone: set timezone too",
            )
        return self


class ProfileUpdate(InputSchema):
    """Some profile fields (PATCH): only those given change."""

    display_name: DisplayName | None = None
    bio: Bio | None = None
    timezone: Timezone | None = None
    region: Region | None = None
    languages: Languages | None = None
    availability: Slots | None = None
    offers: SkillEntries | None = None
    wants: SkillEntries | None = None
    mentor_capacity: MentorCapacity | None = None

    @field_validator(
        "display_name", "bio", "languages", "availability", "offers", "wants", "mentor_capacity"
    )
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it")
        return value

    @model_validator(mode="after")
    def _slots_need_timezone(self) -> ProfileUpdate:
        if self.availability and "timezone" in self.model_fields_set and not self.timezone:
            raise PydanticCustomError(
                "timezone_required",
                "availability is given in the volunteer's own time zone: set timezone too",
            )
        return self


class RegisterIn(InputSchema):
    username: Username
    email: EmailStr
    password: Password
    display_name: DisplayName | None = None

    @field_validator("username", mode="before")
    @classmethod
    def _explain_username(cls, value: object) -> object:
        if isinstance(value, str) and not re.match(USERNAME_PATTERN, value.strip()):
            raise ValueError("a username is 3 to 32 characters of letters, digits, '_', '.', '-'")
        return value


class RoleIn(InputSchema):
    role: RoleWord


class LanguageRead(Schema):
    code: str
    level: int


class SlotRead(Schema):
    weekday: int
    start: str
    end: str


class SkillEntryRead(Schema):
    skill: str
    name: str
    level: int
    note: str


class VolunteerRef(Schema):
    id: int
    username: str
    display_name: str


class RatingRead(Schema):
    average: float = Field(description="mean of the learners' ratings, 1..5")
    count: int = Field(description="how many learners rated; shown from 3 on")


class VolunteerRead(Schema):
    """A public profile: what any signed-in volunteer may see."""

    id: int
    username: str
    display_name: str
    bio: str
    timezone: str | None
    region: str | None
    languages: list[LanguageRead]
    availability: list[SlotRead]
    offers: list[SkillEntryRead]
    wants: list[SkillEntryRead]
    mentor_capacity: int
    open_slots: int
    rating: RatingRead | None = Field(description="as a mentor, once 3 learners rated")
    created_at: RequiredUtcTimestamp


class MeRead(VolunteerRead):
    """The own profile: the public fields plus what only its owner sees."""

    email: str
    role: str
    is_active: bool


class TokenRead(Schema):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
