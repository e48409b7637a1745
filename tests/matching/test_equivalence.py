"""The vectorised index gives the reference scorer's answers, on random small worlds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capex.matching import (
    Match,
    MatchIndex,
    ReferenceMatcher,
    SkillSpace,
    VolunteerRecord,
    availability_bitmap,
)
from capex.matching.availability import QUARTERS_PER_WEEK
from capex.matching.types import ROLES
from tests.matching.helpers import TAXONOMY

ZONES = [
    None,
    "UTC",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "America/Santiago",
    "Antarctica/Troll",
]
# Mondays of weeks with and without daylight-saving changes in the zones above.
WEEKS = [
    datetime(2026, 2, 2, tzinfo=UTC),
    datetime(2026, 3, 2, tzinfo=UTC),  # US and Canada move on Sunday 8 March
    datetime(2026, 3, 9, tzinfo=UTC),
    datetime(2026, 3, 23, tzinfo=UTC),  # Europe and Troll move on Sunday 29 March
    datetime(2026, 3, 30, tzinfo=UTC),  # Lord Howe, Chatham, Santiago on Sunday 5 April
    datetime(2026, 8, 31, tzinfo=UTC),  # Santiago skips midnight on Sunday 6 September
    datetime(2026, 9, 21, tzinfo=UTC),  # Chatham on Sunday 27 September
    datetime(2026, 10, 26, tzinfo=UTC),  # US falls back on Sunday 1 November
]
LANGUAGES = ["en", "en-GB", "pt", "pt-BR", "ne", "hi"]
PARAMETERS: list[dict[str, Any]] = [
    {},
    {"decay": 0.7, "min_similarity": 0.05, "level_decay": 0.8},
    {"decay": 0.3, "min_similarity": 0.2, "overlap_saturation_minutes": 240},
    {
        "base_weight": 0.4,
        "availability_weight": 0.4,
        "language_weight": 0.2,
        "unknown_availability": 0.25,
        "overlap_saturation_minutes": 60,
    },
]
SPACE_KEYS = ("decay", "min_similarity")

# No example database: the tests leave nothing behind in the working tree.
equivalence_settings = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def taxonomies(draw: st.DrawFn) -> dict[str, str | None]:
    """A subtree of the test taxonomy: some skills and all their ancestors."""
    chosen = draw(st.sets(st.sampled_from(sorted(TAXONOMY)), min_size=1, max_size=6))
    closed: set[str] = set()
    for skill in chosen:
        current: str | None = skill
        while current is not None:
            closed.add(current)
            current = TAXONOMY[current]
    return {skill: TAXONOMY[skill] for skill in closed}


@st.composite
def slot_lists(draw: st.DrawFn) -> tuple[tuple[int, int, int], ...]:
    slots = []
    for day in sorted(draw(st.sets(st.integers(0, 6), max_size=3))):
        points = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=4)))
        for start, end in zip(points[::2], points[1::2], strict=False):
            slots.append((day, start * 15, end * 15))
    return tuple(slots)


@st.composite
def records(draw: st.DrawFn, skills: list[str], volunteer_id: int) -> VolunteerRecord:
    def skill_levels() -> tuple[tuple[str, int], ...]:
        chosen = draw(st.lists(st.sampled_from(skills), min_size=1, max_size=3, unique=True))
        return tuple((skill, draw(st.integers(1, 4))) for skill in chosen)

    languages = draw(st.lists(st.sampled_from(LANGUAGES), min_size=1, max_size=3, unique=True))
    return VolunteerRecord(
        id=volunteer_id,
        active=draw(st.integers(0, 9)) > 0,
        timezone=draw(st.sampled_from(ZONES)),
        languages=tuple((code, draw(st.integers(1, 5))) for code in languages),
        slots=draw(slot_lists()),
        offers=skill_levels(),
        wants=skill_levels(),
        open_slots=draw(st.sampled_from([0, 1, 2, 3])),
    )


@st.composite
def worlds(draw: st.DrawFn) -> tuple[dict[str, str | None], datetime, dict[str, Any], list[Any]]:
    taxonomy = draw(taxonomies())
    skills = sorted(taxonomy)
    ids = draw(st.lists(st.integers(1, 60), min_size=5, max_size=40, unique=True))
    world = [draw(records(skills, volunteer_id)) for volunteer_id in ids]
    return taxonomy, draw(st.sampled_from(WEEKS)), draw(st.sampled_from(PARAMETERS)), world


def make(
    taxonomy: dict[str, str | None],
    week: datetime,
    params: dict[str, Any],
    compaction_ratio: float = 0.25,
) -> tuple[MatchIndex, ReferenceMatcher]:
    space_params = {k: v for k, v in params.items() if k in SPACE_KEYS}
    index_params = {k: v for k, v in params.items() if k not in SPACE_KEYS}
    space = SkillSpace(taxonomy, **space_params)
    index = MatchIndex(space, week, compaction_ratio=compaction_ratio, **index_params)
    return index, ReferenceMatcher(taxonomy, week, **params)


def assert_same_matches(engine: list[Match], reference: list[Match]) -> None:
    assert [m.volunteer_id for m in engine] == [m.volunteer_id for m in reference]
    for got, want in zip(engine, reference, strict=True):
        assert got.score == pytest.approx(want.score, abs=1e-9)
        assert got.skill_similarity == pytest.approx(want.skill_similarity, abs=1e-9)
        assert got.level_fit == pytest.approx(want.level_fit, abs=1e-9)
        assert (got.skill, got.wanted_skill) == (want.skill, want.wanted_skill)
        assert got.overlap_minutes_per_week == want.overlap_minutes_per_week
        assert got.shared_languages == want.shared_languages
        assert 0.0 < got.score <= 1.0


def check_queries(
    index: MatchIndex,
    reference: ReferenceMatcher,
    world: list[VolunteerRecord],
    queriers: list[int | VolunteerRecord],
    data: st.DataObject,
) -> None:
    skills = list(reference.parents)
    for querier in queriers:
        for role in ROLES:
            skill = data.draw(st.none() | st.sampled_from(skills))
            limit = data.draw(st.sampled_from([1, 3, 10, 100]))
            assert_same_matches(
                index.query(querier, role, skill, limit),
                reference.query(world, querier, role, skill, limit),
            )


def change_at_random(
    index: MatchIndex,
    current: dict[int, VolunteerRecord],
    taxonomy: dict[str, str | None],
    data: st.DataObject,
    *,
    rounds: int,
    most: int,
) -> None:
    """Up to ``rounds`` batches of upserts (up to ``most`` records) or removals (up to 8 ids),
    applied to ``index`` and to ``current``, the records it should then hold."""
    for _ in range(data.draw(st.integers(1, rounds))):
        if data.draw(st.booleans()):
            ids = data.draw(st.lists(st.integers(1, 70), min_size=1, max_size=most, unique=True))
            changed = [data.draw(records(sorted(taxonomy), volunteer_id)) for volunteer_id in ids]
            index.upsert(changed)
            current.update((record.id, record) for record in changed)
        else:
            ids = data.draw(st.lists(st.integers(1, 70), max_size=8, unique=True))
            index.remove(ids)
            for volunteer_id in ids:
                current.pop(volunteer_id, None)


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_index_agrees_with_reference(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    index, reference = make(taxonomy, week, params)
    index.build(records_)
    queriers: list[int | VolunteerRecord] = list(
        data.draw(st.lists(st.sampled_from([r.id for r in records_]), max_size=6, unique=True))
    )
    # Someone outside the index, asking with a record.
    queriers.append(data.draw(records(sorted(taxonomy), 1000)))
    check_queries(index, reference, records_, queriers, data)


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_index_agrees_with_reference_after_upserts_and_removes(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    index, reference = make(taxonomy, week, params, data.draw(st.sampled_from([0.1, 0.5, 1.0])))
    index.build(records_)
    current = {record.id: record for record in records_}
    change_at_random(index, current, taxonomy, data, rounds=4, most=8)
    assert len(index) == len(current)
    world_now = list(current.values())
    if world_now:
        queriers: list[int | VolunteerRecord] = list(
            data.draw(st.lists(st.sampled_from(sorted(current)), max_size=5, unique=True))
        )
        check_queries(index, reference, world_now, queriers, data)


@settings(max_examples=30, deadline=None, database=None)
@given(world=worlds())
def test_learner_and_mentor_views_of_a_pair_agree(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
) -> None:
    taxonomy, week, params, records_ = world
    index, _ = make(taxonomy, week, params)
    index.build(records_)
    as_learner = {
        (r.id, m.volunteer_id): m.score for r in records_ for m in index.query(r.id, limit=100)
    }
    as_mentor = {
        (m.volunteer_id, r.id): m.score
        for r in records_
        for m in index.query(r.id, "mentor", limit=100)
    }
    assert as_learner == as_mentor


# Slot ends near midnight and the small hours, where clocks change.
clock_change_quarters = st.integers(0, 96) | st.integers(0, 16) | st.integers(88, 96)


@st.composite
def clock_change_slots(draw: st.DrawFn) -> tuple[tuple[int, int, int], ...]:
    slots = []
    for day in sorted(draw(st.sets(st.sampled_from([0, 5, 6, 6, 3]), min_size=1, max_size=3))):
        points = sorted(draw(st.sets(clock_change_quarters, min_size=2, max_size=6)))
        for start, end in zip(points[::2], points[1::2], strict=False):
            slots.append((day, start * 15, end * 15))
    return tuple(slots)


@settings(max_examples=300, deadline=None, database=None)
@given(
    zone=st.sampled_from([zone for zone in ZONES if zone is not None]),
    week=st.sampled_from(WEEKS),
    slots=clock_change_slots(),
)
def test_bitmaps_agree_with_reference_minutes(
    zone: str, week: datetime, slots: tuple[tuple[int, int, int], ...]
) -> None:
    record = VolunteerRecord(id=1, timezone=zone, slots=slots)
    expected = ReferenceMatcher(TAXONOMY, week).available_minutes(record)
    bitmap = availability_bitmap(slots, zone, week)
    got = {
        15 * quarter + minute
        for quarter in range(QUARTERS_PER_WEEK)
        if int(bitmap[quarter // 64]) >> (quarter % 64) & 1
        for minute in range(15)
    }
    assert got == expected
