"""Shared test data for the matching engine: a small taxonomy and record builders."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from capex.matching import MatchIndex, ReferenceMatcher, SkillSpace, VolunteerRecord

# Three root areas, two or three levels deep: enough for parents, siblings, uncles and cousins.
TAXONOMY: dict[str, str | None] = {
    "technology": None,
    "programming": "technology",
    "lua": "programming",
    "python": "programming",
    "javascript": "programming",
    "tools": "technology",
    "bots": "tools",
    "gadgets": "tools",
    "communication": None,
    "writing": "communication",
    "copyediting": "writing",
    "translation": "writing",
    "speaking": "communication",
    "community": None,
    "events": "community",
    "edit-a-thons": "events",
}

# Reference weeks (each a Monday 00:00 UTC).
WINTER_WEEK = datetime(2026, 2, 2, tzinfo=UTC)
US_ONLY_DST_WEEK = datetime(2026, 3, 9, tzinfo=UTC)  # New York on EDT, London still on GMT
BOTH_DST_WEEK = datetime(2026, 3, 30, tzinfo=UTC)  # London on BST from 29 March
SUMMER_WEEK = datetime(2026, 6, 1, tzinfo=UTC)


def volunteer(volunteer_id: int, **fields: Any) -> VolunteerRecord:
    """A record that matches by default: active, English, one open slot, no availability."""
    defaults: dict[str, Any] = {
        "active": True,
        "timezone": None,
        "languages": (("en", 4),),
        "slots": (),
        "offers": (),
        "wants": (),
        "open_slots": 1,
    }
    defaults.update(fields)
    return VolunteerRecord(id=volunteer_id, **defaults)


def engine_and_reference(
    records: list[VolunteerRecord],
    week_start: datetime = SUMMER_WEEK,
    taxonomy: dict[str, str | None] | None = None,
    **params: Any,
) -> tuple[MatchIndex, ReferenceMatcher]:
    """An index over ``records`` and the reference with the same parameters."""
    taxonomy = TAXONOMY if taxonomy is None else taxonomy
    space_params = {key: params.pop(key) for key in ("decay", "min_similarity") if key in params}
    space = SkillSpace(taxonomy, **space_params)
    index = MatchIndex(space, week_start, **params).build(records)
    params.pop("compaction_ratio", None)
    reference = ReferenceMatcher(taxonomy, week_start, **space_params, **params)
    return index, reference
