"""Validate volunteer records and flatten a batch of them into arrays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from capex.matching.availability import MINUTES_PER_DAY, QUARTER_MINUTES, load_zone
from capex.matching.taxonomy import SkillSpace
from capex.matching.types import VolunteerRecord

MAX_SKILL_LEVEL = 4
MAX_LANGUAGE_LEVEL = 5

IntArray = npt.NDArray[np.int64]


def primary_subtag(code: str) -> str:
    """The primary language subtag of a BCP 47 code, lower case: ``'pt-BR'`` -> ``'pt'``."""
    return code.split("-", 1)[0].lower()


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _level(value: Any, highest: int, what: str) -> int:
    if not _is_int(value) or not 1 <= value <= highest:
        raise ValueError(f"{what} must be an integer 1..{highest}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RecordBatch:
    """A validated batch of ``b`` records as flat arrays (ragged lists as counts + values).

    Skills are columns of the skill space; languages are primary subtags, one per language
    with the volunteer's highest level for it.
    """

    ids: IntArray  # (b,)
    active: npt.NDArray[np.bool_]  # (b,)
    open_slots: IntArray  # (b,)
    versions: IntArray  # (b,)
    timezones: list[str | None]  # (b,)
    language_counts: IntArray  # (b,)
    language_codes: list[str]  # (language_counts.sum(),)
    language_levels: npt.NDArray[np.int8]
    offer_counts: IntArray  # (b,)
    offer_skills: npt.NDArray[np.int32]  # (offer_counts.sum(),)
    offer_levels: npt.NDArray[np.int8]
    want_counts: IntArray  # (b,)
    want_skills: npt.NDArray[np.int32]  # (want_counts.sum(),)
    want_levels: npt.NDArray[np.int8]
    slot_counts: IntArray  # (b,)
    slot_weekdays: npt.NDArray[np.int16]  # (slot_counts.sum(),)
    slot_starts: npt.NDArray[np.int16]
    slot_ends: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return int(self.ids.size)


def _skills(entries: Any, skills: SkillSpace, kind: str, volunteer: int) -> list[tuple[int, int]]:
    parsed: list[tuple[int, int]] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            skill, level = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"volunteer {volunteer}: {kind} must be (skill, level) pairs, got {entry!r}"
            ) from None
        if skill not in skills:
            raise ValueError(f"volunteer {volunteer}: {kind} names an unknown skill {skill!r}")
        if skill in seen:
            raise ValueError(f"volunteer {volunteer}: {kind} names skill {skill!r} twice")
        seen.add(skill)
        parsed.append(
            (
                skills.position(skill),
                _level(level, MAX_SKILL_LEVEL, f"volunteer {volunteer}: {kind} level"),
            )
        )
    return parsed


def _languages(entries: Any, volunteer: int) -> dict[str, int]:
    levels: dict[str, int] = {}
    for entry in entries:
        try:
            code, level = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"volunteer {volunteer}: languages must be (code, level) pairs, got {entry!r}"
            ) from None
        primary = primary_subtag(code) if isinstance(code, str) else ""
        if not (primary.isascii() and primary.isalpha() and 2 <= len(primary) <= 8):
            raise ValueError(f"volunteer {volunteer}: bad language code {code!r}")
        level = _level(level, MAX_LANGUAGE_LEVEL, f"volunteer {volunteer}: language level")
        levels[primary] = max(level, levels.get(primary, 0))
    return levels


def _slots(entries: Any, volunteer: int) -> list[tuple[int, int, int]]:
    parsed: list[tuple[int, int, int]] = []
    for entry in entries:
        try:
            weekday, start, end = entry
        except (TypeError, ValueError):
            raise ValueError(
                f"volunteer {volunteer}: slots must be (weekday, start_minute, end_minute), "
                f"got {entry!r}"
            ) from None
        if not (_is_int(weekday) and _is_int(start) and _is_int(end)):
            raise ValueError(f"volunteer {volunteer}: slot {entry!r} must hold integers")
        if not 0 <= weekday <= 6:
            raise ValueError(f"volunteer {volunteer}: slot {entry!r}: weekday must be 0..6")
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise ValueError(
                f"volunteer {volunteer}: slot {entry!r}: need 0 <= start < end <= 1440"
            )
        if start % QUARTER_MINUTES or end % QUARTER_MINUTES:
            raise ValueError(
                f"volunteer {volunteer}: slot {entry!r}: minutes must be multiples of 15"
            )
        parsed.append((int(weekday), int(start), int(end)))
    return parsed


def parse_records(records: Iterable[VolunteerRecord], skills: SkillSpace) -> RecordBatch:
    """Validate ``records`` and flatten them; raises ValueError naming the bad field."""
    ids: list[int] = []
    active: list[bool] = []
    open_slots: list[int] = []
    versions: list[int] = []
    timezones: list[str | None] = []
    language_counts: list[int] = []
    language_codes: list[str] = []
    language_levels: list[int] = []
    ragged: dict[str, tuple[list[int], list[int], list[int]]] = {
        "offers": ([], [], []),
        "wants": ([], [], []),
    }
    slot_counts: list[int] = []
    slot_fields: tuple[list[int], list[int], list[int]] = ([], [], [])
    for record in records:
        if not isinstance(record, VolunteerRecord):
            raise TypeError(f"expected VolunteerRecord, got {type(record).__name__}")
        volunteer = record.id
        if not _is_int(volunteer):
            raise ValueError(f"volunteer id must be an integer, got {volunteer!r}")
        if not isinstance(record.active, bool | np.bool_):
            raise ValueError(f"volunteer {volunteer}: active must be a bool")
        if not _is_int(record.open_slots) or record.open_slots < 0:
            raise ValueError(f"volunteer {volunteer}: open_slots must be an integer >= 0")
        if not _is_int(record.version):
            raise ValueError(f"volunteer {volunteer}: version must be an integer")
        if record.timezone is not None:
            load_zone(record.timezone)
        ids.append(int(volunteer))
        active.append(bool(record.active))
        open_slots.append(int(record.open_slots))
        versions.append(int(record.version))
        timezones.append(record.timezone)
        languages = _languages(record.languages, volunteer)
        language_counts.append(len(languages))
        language_codes.extend(languages)
        language_levels.extend(languages.values())
        for kind, entries in (("offers", record.offers), ("wants", record.wants)):
            counts, columns, levels = ragged[kind]
            parsed = _skills(entries, skills, kind, volunteer)
            counts.append(len(parsed))
            columns.extend(column for column, _ in parsed)
            levels.extend(level for _, level in parsed)
        slots = _slots(record.slots, volunteer)
        slot_counts.append(len(slots))
        for weekday, start, end in slots:
            slot_fields[0].append(weekday)
            slot_fields[1].append(start)
            slot_fields[2].append(end)
    return RecordBatch(
        ids=np.array(ids, dtype=np.int64),
        active=np.array(active, dtype=np.bool_),
        open_slots=np.array(open_slots, dtype=np.int64),
        versions=np.array(versions, dtype=np.int64),
        timezones=timezones,
        language_counts=np.array(language_counts, dtype=np.int64),
        language_codes=language_codes,
        language_levels=np.array(language_levels, dtype=np.int8),
        offer_counts=np.array(ragged["offers"][0], dtype=np.int64),
        offer_skills=np.array(ragged["offers"][1], dtype=np.int32),
        offer_levels=np.array(ragged["offers"][2], dtype=np.int8),
        want_counts=np.array(ragged["wants"][0], dtype=np.int64),
        want_skills=np.array(ragged["wants"][1], dtype=np.int32),
        want_levels=np.array(ragged["wants"][2], dtype=np.int8),
        slot_counts=np.array(slot_counts, dtype=np.int64),
        slot_weekdays=np.array(slot_fields[0], dtype=np.int16),
        slot_starts=np.array(slot_fields[1], dtype=np.int16),
        slot_ends=np.array(slot_fields[2], dtype=np.int16),
    )
