from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from capex.matching import Match, MatchIndex, SkillSpace, VolunteerRecord
from tests.matching.helpers import (
    BOTH_DST_WEEK,
    SUMMER_WEEK,
    TAXONOMY,
    US_ONLY_DST_WEEK,
    engine_and_reference,
    volunteer,
)

LEARNER = 1


def ids(matches: list[Match]) -> list[int]:
    return [m.volunteer_id for m in matches]


def build(records: list[VolunteerRecord], **params: Any) -> MatchIndex:
    index, _ = engine_and_reference(records, **params)
    return index


# -- ranking -------------------------------------------------------------------------------


def test_best_mentor_may_offer_a_sibling_skill() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 4),))
    records = [
        learner,
        volunteer(2, offers=(("python", 4),)),  # sibling at the target level: 0.238
        volunteer(3, offers=(("lua", 1),)),  # the skill itself, three levels short: 0.125
        volunteer(4, offers=(("bots", 4),)),  # a cousin: unrelated
    ]
    index, reference = engine_and_reference(records)
    matches = index.query(LEARNER, "learner")
    assert ids(matches) == [2, 3]
    best = matches[0]
    assert (best.skill, best.wanted_skill) == ("python", "lua")
    assert best.skill_similarity == pytest.approx(0.2381, abs=1e-4)
    assert best.level_fit == 1.0
    assert matches[1].level_fit == 0.125
    assert matches == reference.query(records, LEARNER, "learner")


def test_exact_skill_beats_sibling_when_the_level_gap_is_small() -> None:
    records = [
        volunteer(LEARNER, wants=(("lua", 3),)),
        volunteer(2, offers=(("python", 4),)),
        volunteer(3, offers=(("lua", 2),)),  # 1.0 * 0.5 beats 0.238 * 1.0
    ]
    assert ids(build(records).query(LEARNER)) == [3, 2]


def test_ties_are_broken_by_volunteer_id() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 2),))
    mentors = [volunteer(i, offers=(("lua", 3),)) for i in (42, 7, 19, 3, 88)]
    random.Random(5).shuffle(mentors)
    index = build([learner, *mentors])
    matches = index.query(LEARNER, limit=3)
    assert ids(matches) == [3, 7, 19]
    assert len({m.score for m in matches}) == 1


def test_ties_at_the_limit_cut_keep_the_lowest_ids() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 2),))
    strong = [volunteer(i, offers=(("lua", 3),), languages=(("en", 5),)) for i in (50, 60)]
    equal = [volunteer(i, offers=(("lua", 3),)) for i in range(100, 140)]
    index = build([learner, *equal, *strong])
    assert ids(index.query(LEARNER, limit=4)) == [50, 60, 100, 101]


def test_skill_pair_ties_prefer_similarity_then_skill_ids() -> None:
    # python at level 3 and lua at level 2 for a lua target of 3: 0.238 * 1 vs 1.0 * 0.5;
    # javascript and python are equally good siblings of lua: javascript comes first.
    records = [
        volunteer(LEARNER, wants=(("lua", 3),)),
        volunteer(2, offers=(("python", 3),)),
        volunteer(3, offers=(("python", 4), ("javascript", 4))),
    ]
    index, reference = engine_and_reference(records)
    matches = {m.volunteer_id: m for m in index.query(LEARNER)}
    assert matches[3].skill == "javascript"
    assert index.query(LEARNER) == reference.query(records, LEARNER)


def test_more_overlap_ranks_higher_up_to_two_hours() -> None:
    def with_monday(volunteer_id: int, hours: int) -> VolunteerRecord:
        return volunteer(
            volunteer_id,
            offers=(("lua", 4),),
            timezone="UTC",
            slots=((0, 8 * 60, (8 + hours) * 60),),
        )

    learner = volunteer(LEARNER, wants=(("lua", 1),), timezone="UTC", slots=((0, 8 * 60, 16 * 60),))
    records = [learner, with_monday(2, 1), with_monday(3, 2), with_monday(4, 5)]
    matches = build(records).query(LEARNER)
    assert ids(matches) == [3, 4, 2]  # two hours and five hours tie; one hour is behind
    assert [m.overlap_minutes_per_week for m in matches] == [120, 300, 60]
    assert matches[0].score == matches[1].score > matches[2].score


def test_better_shared_language_ranks_higher() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 1),), languages=(("pt-BR", 5), ("en", 3)))
    records = [
        learner,
        volunteer(2, offers=(("lua", 4),), languages=(("en", 5),)),
        volunteer(3, offers=(("lua", 4),), languages=(("pt", 4), ("en", 5))),
    ]
    matches = build(records).query(LEARNER)
    assert ids(matches) == [3, 2]
    assert matches[0].shared_languages == ("pt", "en")  # min levels 4 and 3
    assert matches[1].shared_languages == ("en",)


def test_score_follows_the_documented_formula() -> None:
    learner = volunteer(
        LEARNER,
        wants=(("lua", 3),),
        languages=(("en", 5),),
        timezone="UTC",
        slots=((2, 600, 690),),
    )
    mentor = volunteer(
        2, offers=(("lua", 2),), languages=(("en", 3),), timezone="UTC", slots=((2, 600, 720),)
    )
    (match,) = build([learner, mentor]).query(LEARNER)
    # sim 1, fit 0.5, overlap 90 min -> avail 0.75, language min(5, 3) / 5 = 0.6
    assert match.score == pytest.approx(0.5 * (0.55 + 0.30 * 0.75 + 0.15 * 0.6))
    assert match.overlap_minutes_per_week == 90
    assert match.reasons["overlap_minutes_per_week"] == 90
    assert match.reasons["wanted_skill"] == "lua"


def test_missing_availability_is_neutral_and_reported_as_none() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 1),), timezone="UTC", slots=((0, 0, 60),))
    mentor = volunteer(2, offers=(("lua", 1),))
    (match,) = build([learner, mentor]).query(LEARNER)
    assert match.overlap_minutes_per_week is None
    assert match.score == pytest.approx(0.55 + 0.30 * 0.5 + 0.15 * 0.8)


def test_new_york_and_london_overlap_follows_the_march_weeks() -> None:
    learner = volunteer(
        LEARNER,
        wants=(("lua", 1),),
        timezone="America/New_York",
        slots=((0, 9 * 60, 11 * 60),),
    )
    mentor = volunteer(
        2, offers=(("lua", 1),), timezone="Europe/London", slots=((0, 13 * 60, 15 * 60),)
    )
    index = build([learner, mentor], week_start=US_ONLY_DST_WEEK)
    assert index.query(LEARNER)[0].overlap_minutes_per_week == 120
    index.set_week(BOTH_DST_WEEK)
    assert index.query(LEARNER)[0].overlap_minutes_per_week == 60


@pytest.mark.parametrize(
    ("learner_zone", "learner_slot", "mentor_zone", "mentor_slot", "week", "overlap"),
    [
        ("Asia/Kathmandu", (0, 540, 600), "Asia/Kolkata", (0, 540, 600), SUMMER_WEEK, 45),
        ("Asia/Kathmandu", (0, 540, 600), "UTC", (0, 180, 240), SUMMER_WEEK, 45),
        ("America/Los_Angeles", (6, 1020, 1200), "UTC", (0, 0, 60), SUMMER_WEEK, 60),
        ("Asia/Tokyo", (0, 480, 600), "UTC", (6, 1380, 1440), SUMMER_WEEK, 60),
        ("Asia/Tokyo", (0, 480, 600), "America/Los_Angeles", (6, 960, 1440), SUMMER_WEEK, 120),
        ("America/New_York", (0, 540, 660), "Europe/London", (0, 780, 900), US_ONLY_DST_WEEK, 120),
        ("America/New_York", (0, 540, 660), "Europe/London", (0, 780, 900), BOTH_DST_WEEK, 60),
    ],
)
def test_overlap_reasons_across_zones(
    learner_zone: str,
    learner_slot: tuple[int, int, int],
    mentor_zone: str,
    mentor_slot: tuple[int, int, int],
    week: datetime,
    overlap: int,
) -> None:
    records = [
        volunteer(LEARNER, wants=(("lua", 1),), timezone=learner_zone, slots=(learner_slot,)),
        volunteer(2, offers=(("lua", 1),), timezone=mentor_zone, slots=(mentor_slot,)),
    ]
    index, reference = engine_and_reference(records, week_start=week)
    (match,) = index.query(LEARNER)
    assert match.overlap_minutes_per_week == overlap
    assert [match] == reference.query(records, LEARNER)


# -- exclusions ----------------------------------------------------------------------------


def test_never_me_never_inactive_never_full_never_without_language_or_overlap() -> None:
    learner = volunteer(
        LEARNER,
        wants=(("lua", 1),),
        offers=(("lua", 4),),
        timezone="UTC",
        slots=((0, 0, 120),),
    )
    records = [
        learner,
        volunteer(2, offers=(("lua", 4),)),  # fine
        volunteer(3, offers=(("lua", 4),), active=False),
        volunteer(4, offers=(("lua", 4),), open_slots=0),
        volunteer(5, offers=(("lua", 4),), languages=(("fr", 5),)),
        volunteer(6, offers=(("lua", 4),), languages=()),
        volunteer(7, offers=(("lua", 4),), timezone="UTC", slots=((0, 120, 240),)),
        volunteer(8, offers=(("copyediting", 4),)),  # unrelated skill
        volunteer(9, offers=(("lua", 4),), timezone="UTC", slots=((0, 0, 180),)),  # best
    ]
    index, reference = engine_and_reference(records)
    assert ids(index.query(LEARNER)) == [9, 2]
    assert index.query(LEARNER) == reference.query(records, LEARNER)


def test_a_mentor_without_open_slots_or_inactive_gets_no_learners() -> None:
    records = [volunteer(LEARNER, wants=(("lua", 1),)), volunteer(2, offers=(("lua", 4),))]
    assert ids(build(records).query(2, "mentor")) == [LEARNER]
    full = [records[0], volunteer(2, offers=(("lua", 4),), open_slots=0)]
    assert build(full).query(2, "mentor") == []
    gone = [records[0], volunteer(2, offers=(("lua", 4),), active=False)]
    assert build(gone).query(2, "mentor") == []


# -- both directions and the skill filter ----------------------------------------------------


def test_as_mentor_skill_is_my_offer_and_wanted_skill_the_learners_want() -> None:
    records = [
        volunteer(LEARNER, wants=(("lua", 2),)),
        volunteer(2, offers=(("python", 3),)),
    ]
    index = build(records)
    (as_learner,) = index.query(LEARNER, "learner")
    (as_mentor,) = index.query(2, "mentor")
    assert (as_learner.volunteer_id, as_learner.skill, as_learner.wanted_skill) == (
        2,
        "python",
        "lua",
    )
    assert (as_mentor.volunteer_id, as_mentor.skill, as_mentor.wanted_skill) == (
        LEARNER,
        "python",
        "lua",
    )
    assert as_learner.score == as_mentor.score


def test_skill_restricts_the_askers_own_side() -> None:
    learner = volunteer(LEARNER, wants=(("lua", 1), ("copyediting", 1)))
    records = [
        learner,
        volunteer(2, offers=(("lua", 4),)),
        volunteer(3, offers=(("copyediting", 4),)),
        volunteer(4, offers=(("python", 4), ("translation", 4))),
    ]
    index, reference = engine_and_reference(records)
    assert ids(index.query(LEARNER, skill="lua")) == [2, 4]
    assert {m.wanted_skill for m in index.query(LEARNER, skill="lua")} == {"lua"}
    assert index.query(LEARNER, skill="python") == []  # not one of my wants
    assert ids(index.query(4, "mentor", skill="translation")) == [LEARNER]
    assert index.query(4, "mentor", skill="translation")[0].wanted_skill == "copyediting"
    for role in ("learner", "mentor"):
        for volunteer_id in (1, 2, 3, 4):
            for skill in (None, "lua", "translation"):
                assert index.query(volunteer_id, role, skill) == reference.query(
                    records, volunteer_id, role, skill
                )


def test_query_with_a_record_uses_it_and_never_matches_its_own_id() -> None:
    records = [volunteer(LEARNER, wants=(("lua", 1),)), volunteer(2, offers=(("lua", 4),))]
    index = build(records)
    changed = volunteer(2, wants=(("python", 1),), offers=(("lua", 4),))
    assert index.query(changed) == []  # only mentor 2 offers a related skill: that is me
    outsider = volunteer(99, wants=(("python", 1),), languages=(("EN-GB", 2), ("sw", 5)))
    (match,) = index.query(outsider)
    assert (match.volunteer_id, match.shared_languages) == (2, ("en",))


# -- keeping up with changes -----------------------------------------------------------------


def test_upsert_replaces_and_remove_drops() -> None:
    records = [
        volunteer(LEARNER, wants=(("lua", 1),)),
        volunteer(2, offers=(("lua", 4),)),
        volunteer(3, offers=(("python", 4),)),
    ]
    index = build(records, compaction_ratio=1.0)
    assert ids(index.query(LEARNER)) == [2, 3]
    index.upsert([volunteer(2, offers=(("copyediting", 4),)), volunteer(4, offers=(("lua", 2),))])
    assert ids(index.query(LEARNER)) == [4, 3]
    assert (index.n_rows_, index.n_dead_, len(index)) == (5, 1, 4)
    index.upsert([volunteer(3, offers=(("python", 4),), active=False)])
    assert ids(index.query(LEARNER)) == [4]
    assert index.remove([4, 12345]) == 1
    assert index.query(LEARNER) == []
    assert 4 not in index
    with pytest.raises(KeyError):
        index.query(4)
    index.compact()
    assert (index.n_rows_, index.n_dead_, len(index)) == (3, 0, 3)
    index.upsert([volunteer(5, offers=(("lua", 4),))])
    assert ids(index.query(LEARNER)) == [5]


def test_dead_rows_past_the_ratio_trigger_compaction() -> None:
    records = [volunteer(i, offers=(("lua", 4),)) for i in range(2, 12)]
    index = build([volunteer(LEARNER, wants=(("lua", 1),)), *records], compaction_ratio=0.25)
    index.remove(range(2, 4))
    assert index.n_dead_ == 2
    index.remove(range(4, 6))  # 4 dead of 11 rows
    assert (index.n_dead_, index.n_rows_) == (0, 7)
    assert ids(index.query(LEARNER)) == list(range(6, 12))


def test_a_bad_record_in_an_upsert_changes_nothing() -> None:
    index = build([volunteer(LEARNER, wants=(("lua", 1),)), volunteer(2, offers=(("lua", 4),))])
    with pytest.raises(ValueError, match="unknown skill 'cobol'"):
        index.upsert([volunteer(2, offers=()), volunteer(3, offers=(("cobol", 2),))])
    assert ids(index.query(LEARNER)) == [2]
    assert index.n_rows_ == 2


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"offers": (("cobol", 2),)}, "unknown skill 'cobol'"),
        ({"offers": (("lua", 5),)}, "offers level must be an integer 1..4"),
        ({"wants": (("lua", 0),)}, "wants level must be an integer 1..4"),
        ({"wants": (("lua", 1), ("lua", 2))}, "names skill 'lua' twice"),
        ({"languages": (("en", 6),)}, "language level must be an integer 1..5"),
        ({"languages": (("1x", 3),)}, "bad language code"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
        ({"slots": ((7, 0, 60),)}, "weekday must be 0..6"),
        ({"slots": ((0, 60, 60),)}, "0 <= start < end <= 1440"),
        ({"slots": ((0, 0, 1455),)}, "0 <= start < end <= 1440"),
        ({"slots": ((0, 10, 60),)}, "multiples of 15"),
        ({"slots": ((0, 0),)}, "slots must be"),
        ({"open_slots": -1}, "open_slots"),
    ],
)
def test_bad_records_raise_value_error(fields: dict[str, Any], message: str) -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK)
    with pytest.raises(ValueError, match=message):
        index.build([volunteer(7, **fields)])


def test_duplicate_ids_in_one_batch_raise() -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK)
    with pytest.raises(ValueError, match="same volunteer id twice"):
        index.build([volunteer(1), volunteer(1)])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"level_decay": 0.0}, "level_decay"),
        ({"base_weight": 0.5}, "add up to 1"),
        ({"availability_weight": -0.1, "base_weight": 0.95}, "availability_weight must be >= 0"),
        ({"overlap_saturation_minutes": 0}, "overlap_saturation_minutes"),
        ({"unknown_availability": 2.0}, "unknown_availability"),
        ({"compaction_ratio": 0.0}, "compaction_ratio"),
        ({"week_start": datetime(2026, 6, 2, tzinfo=UTC)}, "Monday"),
    ],
)
def test_bad_parameters_raise_value_error(params: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"skill_space": SkillSpace(TAXONOMY), "week_start": SUMMER_WEEK}
    arguments.update(params)
    with pytest.raises(ValueError, match=message):
        MatchIndex(**arguments)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"role": "teacher"}, ValueError, "role"),
        ({"limit": 0}, ValueError, "limit"),
        ({"skill": "cobol"}, ValueError, "unknown skill"),
        ({"volunteer": 404}, KeyError, "404"),
    ],
)
def test_bad_queries_raise(arguments: dict[str, Any], error: type[Exception], message: str) -> None:
    index = build([volunteer(LEARNER, wants=(("lua", 1),))])
    with pytest.raises(error, match=message):
        index.query(**{"volunteer": LEARNER, **arguments})


def test_get_params_round_trips() -> None:
    index = build([], level_decay=0.7)
    clone = MatchIndex(**index.get_params())
    assert clone.get_params() == index.get_params()
