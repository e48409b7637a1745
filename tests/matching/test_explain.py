"""explain_skills: the funnel per skill and the suggested changes, against the reference."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capex.matching import (
    AvailabilityChange,
    LanguageChange,
    MatchIndex,
    SkillChange,
    SkillExplanation,
    Suggestion,
    VolunteerRecord,
)
from capex.matching.types import ROLES, Role
from tests.matching.helpers import engine_and_reference, volunteer
from tests.matching.test_equivalence import equivalence_settings, make, records, worlds

ME = 1
LONDON_EVENINGS = tuple((day, 18 * 60, 21 * 60) for day in range(5))
SATURDAY_MORNING = ((5, 9 * 60, 11 * 60),)


def lua_mentor(volunteer_id: int, **fields: Any) -> VolunteerRecord:
    fields.setdefault("timezone", "Europe/London")
    fields.setdefault("slots", SATURDAY_MORNING)
    return volunteer(volunteer_id, offers=(("lua", 4),), **fields)


def lua_learner(**fields: Any) -> VolunteerRecord:
    fields.setdefault("timezone", "Europe/London")
    fields.setdefault("slots", LONDON_EVENINGS)
    return volunteer(ME, wants=(("lua", 3),), **fields)


def apply(record: VolunteerRecord, change: object, role: Role) -> VolunteerRecord:
    """``record`` with a suggested change saved to it."""
    if isinstance(change, AvailabilityChange):
        slot = (change.weekday, change.start_minute, change.end_minute)
        return replace(record, slots=(*record.slots, slot))
    if isinstance(change, LanguageChange):
        return replace(record, languages=(*record.languages, (change.language, 1)))
    assert isinstance(change, SkillChange)
    if role == "learner":
        return replace(record, wants=(*record.wants, (change.skill, 1)))
    return replace(record, offers=(*record.offers, (change.skill, 1)))


def listed_exactly(
    index: MatchIndex,
    world: dict[int, VolunteerRecord],
    asker: int | VolunteerRecord,
    role: Role,
    skill: str,
) -> set[int]:
    """Who ``query(skill=skill)`` lists among those listing ``skill`` on the other side."""
    found = index.query(asker, role, skill, limit=1000)
    return {
        match.volunteer_id
        for match in found
        if skill
        in dict(
            world[match.volunteer_id].offers
            if role == "learner"
            else world[match.volunteer_id].wants
        )
    }


# -- the example ------------------------------------------------------------------


def test_twelve_offer_four_share_a_language_none_is_free_and_saturday_would_add_them() -> None:
    english = [lua_mentor(10 + i, languages=(("en", 4),)) for i in range(4)]
    spanish = [lua_mentor(20 + i, languages=(("es", 5),)) for i in range(8)]
    records = [lua_learner(), *english, *spanish]
    index, reference = engine_and_reference(records)
    (lua,) = index.explain_skills(ME)
    assert (lua.skill, lua.offering, lua.sharing_language, lua.overlapping) == ("lua", 12, 4, 0)
    assert lua.with_open_slot == 0
    # Only Saturday mornings help: the Spanish speakers fail on language as well.
    assert lua.suggestions == (Suggestion(AvailabilityChange(5, 360, 720), 4),)
    assert index.explain_skills(ME) == reference.explain_skills(records, ME)
    assert index.query(ME) == []
    saturday = apply(records[0], lua.suggestions[0].change, "learner")
    assert {m.volunteer_id for m in index.query(saturday)} == {10, 11, 12, 13}


def test_a_language_the_blocked_counterparts_speak_is_suggested_by_count() -> None:
    records = [
        lua_learner(slots=SATURDAY_MORNING),
        *(lua_mentor(10 + i, languages=(("es", 5),)) for i in range(3)),
        *(lua_mentor(20 + i, languages=(("es", 3), ("pt-BR", 4))) for i in range(2)),
        lua_mentor(30, languages=(("ne", 5),), slots=LONDON_EVENINGS),  # fails on time too
        lua_mentor(31),  # English: listed
    ]
    index, reference = engine_and_reference(records)
    (lua,) = index.explain_skills(ME)
    assert (lua.offering, lua.sharing_language, lua.overlapping, lua.with_open_slot) == (
        7,
        1,
        1,
        1,
    )
    assert [(s.change, s.would_add) for s in lua.suggestions] == [
        (LanguageChange("es"), 5),
        (LanguageChange("pt"), 2),
    ]
    assert index.explain_skills(ME) == reference.explain_skills(records, ME)


def test_full_mentors_fall_at_the_last_stage_and_no_change_of_mine_helps() -> None:
    records = [lua_learner(), lua_mentor(10, open_slots=0, slots=LONDON_EVENINGS)]
    (lua,) = engine_and_reference(records)[0].explain_skills(ME)
    assert (lua.offering, lua.sharing_language, lua.overlapping, lua.with_open_slot) == (
        1,
        1,
        1,
        0,
    )
    assert lua.suggestions == ()


def test_as_mentor_the_last_stage_is_all_or_nothing_on_my_own_open_slot() -> None:
    learners = [volunteer(10 + i, wants=(("lua", 2),)) for i in range(3)]
    me = volunteer(ME, offers=(("lua", 4), ("python", 3)))
    index, _ = engine_and_reference([me, *learners, volunteer(20, wants=(("python", 1),))])
    with_slot = {e.skill: e.with_open_slot for e in index.explain_skills(ME, "mentor")}
    assert with_slot == {"lua": 3, "python": 1}
    full = replace(me, open_slots=0)
    explained = index.explain_skills(full, "mentor", skill="lua")
    assert [(e.skill, e.offering, e.overlapping, e.with_open_slot) for e in explained] == [
        ("lua", 3, 3, 0)
    ]
    assert index.query(full, "mentor") == []


def test_a_rare_skill_suggests_its_neighbours_with_the_counterparts_they_would_list() -> None:
    records = [
        volunteer(ME, wants=(("lua", 3), ("javascript", 2))),
        *(volunteer(10 + i, offers=(("python", 4),)) for i in range(3)),  # sibling
        volunteer(20, offers=(("programming", 2),)),  # parent
        volunteer(21, offers=(("javascript", 2),)),  # a sibling I want already
        volunteer(22, offers=(("python", 4),), languages=(("ja", 5),)),  # not listable
    ]
    index, reference = engine_and_reference(records)
    lua = next(e for e in index.explain_skills(ME) if e.skill == "lua")
    assert lua.offering == 0
    assert [(s.change, s.would_add) for s in lua.suggestions] == [
        (SkillChange("python"), 3),
        (SkillChange("programming"), 1),
    ]
    assert index.explain_skills(ME, few=0)[1].suggestions == ()
    assert index.explain_skills(ME) == reference.explain_skills(records, ME)


def test_no_block_i_already_have_time_in_is_suggested_and_ties_go_by_weekday() -> None:
    # Mentors free 06:00-12:00 UTC at weekends; I am free on Saturday 13:00-14:00 in London
    # (12:00-13:00 UTC in June): we never meet.
    mornings = tuple((day, 6 * 60, 12 * 60) for day in (5, 6))
    records = [
        lua_learner(slots=((5, 13 * 60, 14 * 60),)),
        *(lua_mentor(10 + i, slots=mornings, timezone="UTC") for i in range(2)),
    ]
    index, reference = engine_and_reference(records)
    (lua,) = index.explain_skills(ME, n_suggestions=50)
    assert (lua.overlapping, lua.with_open_slot) == (0, 0)
    # London mornings (05-11 UTC) of both days, and Sunday afternoon (11-17 UTC, touching
    # 11-12). Saturday afternoon would touch it too, but I have time in it already.
    assert [s.change for s in lua.suggestions] == [
        AvailabilityChange(5, 360, 720),
        AvailabilityChange(6, 360, 720),
        AvailabilityChange(6, 720, 1080),
    ]
    assert all(s.would_add == 2 for s in lua.suggestions)
    assert index.explain_skills(ME, n_suggestions=50) == reference.explain_skills(
        records, ME, n_suggestions=50
    )


def test_explain_checks_its_arguments() -> None:
    index, _ = engine_and_reference([lua_learner()])
    with pytest.raises(ValueError, match="role"):
        index.explain_skills(ME, "teacher")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="few"):
        index.explain_skills(ME, few=-1)
    with pytest.raises(ValueError, match="unknown skill"):
        index.explain_skills(ME, skill="cobol")
    with pytest.raises(KeyError):
        index.explain_skills(99)
    assert index.explain_skills(ME, skill="python") == []  # not one of mine
    assert index.explain_skills(ME, "mentor") == []  # I offer nothing


# -- random worlds ------------------------------------------------------------------------


def check_suggestions_add_what_they_say(
    index: MatchIndex,
    world: dict[int, VolunteerRecord],
    asker: VolunteerRecord,
    role: Role,
    explained: list[SkillExplanation],
) -> None:
    for explanation in explained:
        before = listed_exactly(index, world, asker, role, explanation.skill)
        assert len(before) == explanation.with_open_slot
        for suggestion in explanation.suggestions:
            assert suggestion.would_add > 0
            changed = apply(asker, suggestion.change, role)
            skill = (
                suggestion.change.skill
                if isinstance(suggestion.change, SkillChange)
                else explanation.skill
            )
            after = listed_exactly(index, world, changed, role, skill)
            gained = after - (before if skill == explanation.skill else set())
            assert after >= (before if skill == explanation.skill else set())
            assert len(gained) == suggestion.would_add


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_explain_agrees_with_reference_and_suggestions_add_what_they_say(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    index, reference = make(taxonomy, week, params)
    index.build(records_)
    by_id = {record.id: record for record in records_}
    askers = list(data.draw(st.lists(st.sampled_from(records_), max_size=4, unique_by=id)))
    askers.append(data.draw(records(sorted(taxonomy), 1000)))  # asking with a record
    for asker in askers:
        for role in ROLES:
            skill = data.draw(st.none() | st.sampled_from(sorted(taxonomy)))
            few = data.draw(st.sampled_from([0, 2, 5, 100]))
            n_suggestions = data.draw(st.sampled_from([1, 3, 50]))
            got = index.explain_skills(
                asker.id if asker.id in by_id else asker,
                role,
                skill,
                few=few,
                n_suggestions=n_suggestions,
            )
            assert got == reference.explain_skills(
                records_, asker, role, skill, few=few, n_suggestions=n_suggestions
            )
            for explanation in got:
                assert (
                    explanation.offering
                    >= explanation.sharing_language
                    >= explanation.overlapping
                    >= explanation.with_open_slot
                )
            check_suggestions_add_what_they_say(index, by_id, asker, role, got)


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_explain_agrees_with_reference_after_upserts_and_removes(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    index, reference = make(taxonomy, week, params, data.draw(st.sampled_from([0.1, 0.5, 1.0])))
    index.build(records_)
    current = {record.id: record for record in records_}
    for _ in range(data.draw(st.integers(1, 4))):
        ids = data.draw(st.lists(st.integers(1, 70), min_size=1, max_size=8, unique=True))
        if data.draw(st.booleans()):
            changed = [data.draw(records(sorted(taxonomy), volunteer_id)) for volunteer_id in ids]
            index.upsert(changed)
            current.update((record.id, record) for record in changed)
        else:
            index.remove(ids)
            for volunteer_id in ids:
                current.pop(volunteer_id, None)
    world_now = list(current.values())
    for asker in data.draw(st.lists(st.sampled_from(sorted(current) or [0]), max_size=4)):
        if asker not in current:
            continue
        for role in ROLES:
            assert index.explain_skills(asker, role) == reference.explain_skills(
                world_now, asker, role
            )
