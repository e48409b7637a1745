"""MatchIndex.candidates gives, for many learners at once, what query() gives each of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from capex.matching import Match, MatchIndex, SkillSpace, VolunteerRecord
from capex.matching.candidates import Candidates
from tests.matching.helpers import SUMMER_WEEK, TAXONOMY, volunteer
from tests.matching.test_equivalence import equivalence_settings, make, records, worlds


def listed_for(
    index: MatchIndex, learner: int, wants: list[str], mentors: list[int] | None, min_score: float
) -> list[Match]:
    """What the queries list for ``learner`` restricted to ``wants``, best first.

    Each want is asked alone (``query(skill=w)``); a mentor listed for several keeps the pair
    the query's own skill choice would keep (``sim * fit``, then ``sim``, then the smaller
    wanted and offered ids).
    """
    best: dict[int, Match] = {}
    for want in wants:
        for match in index.query(learner, "learner", want, limit=1000):
            kept = best.get(match.volunteer_id)
            if kept is None or choice_key(match) < choice_key(kept):
                best[match.volunteer_id] = match
    listed = sorted(best.values(), key=lambda m: (-m.score, m.volunteer_id))
    return [
        m for m in listed if (mentors is None or m.volunteer_id in mentors) and m.score >= min_score
    ]


def choice_key(match: Match) -> tuple[float, float, str, str]:
    return (
        -(match.skill_similarity * match.level_fit),
        -match.skill_similarity,
        match.wanted_skill,
        match.skill,
    )


def expected_candidates(
    index: MatchIndex,
    world: list[VolunteerRecord],
    asked: list[int] | None,
    *,
    k: int | None,
    wanted_skills: list[str] | None,
    mentors: list[int] | None,
    per_wanted_skill: bool,
    min_score: float,
) -> tuple[list[tuple[int, int, str, str, float]], list[int], dict[int, int]]:
    """Rows, round learners and round mentors (with open slots), one query at a time."""
    by_id = {record.id: record for record in world}
    rows: list[tuple[int, int, str, str, float]] = []
    learners: list[int] = []
    round_mentors: dict[int, int] = {}
    for learner in sorted(by_id if asked is None else set(asked)):
        record = by_id[learner]
        wants = sorted(skill for skill, _ in record.wants)
        if wanted_skills is not None:
            wants = [skill for skill in wants if skill in wanted_skills]
        if not record.active or not wants:
            continue
        learners.append(learner)
        for group in [[skill] for skill in wants] if per_wanted_skill else [wants]:
            listed = listed_for(index, learner, group, mentors, min_score)
            if group == sorted(skill for skill, _ in record.wants):
                every = index.query(learner, "learner", None, limit=1000)
                assert [(m.volunteer_id, m.score) for m in every] == [
                    (m.volunteer_id, m.score) for m in listed_for(index, learner, group, None, 0)
                ]
            for match in listed:
                round_mentors[match.volunteer_id] = by_id[match.volunteer_id].open_slots
            for match in listed[:k]:
                rows.append(
                    (learner, match.volunteer_id, match.skill, match.wanted_skill, match.score)
                )
    return rows, learners, round_mentors


def rows_of(candidates: Candidates) -> list[tuple[int, int, str, str, float]]:
    skills = candidates.skill_ids
    return [
        (learner, mentor, skills[skill], skills[wanted], score)
        for learner, mentor, skill, wanted, score in zip(
            candidates.learner_ids.tolist(),
            candidates.mentor_ids.tolist(),
            candidates.skills.tolist(),
            candidates.wanted_skills.tolist(),
            candidates.scores.tolist(),
            strict=True,
        )
    ]


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_candidates_are_the_queries_of_every_learner(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    index, _ = make(taxonomy, week, params)
    index.build(records_)
    if data.draw(st.booleans()):
        # Some changes first, so that dead rows and appended rows take part.
        changed = [data.draw(records(sorted(taxonomy), i)) for i in (1, 2, 3, 61)]
        index.upsert(changed)
        index.remove([4, 5])
        current = {r.id: r for r in records_}
        current.update((r.id, r) for r in changed)
        current.pop(4, None)
        current.pop(5, None)
        records_ = list(current.values())
    ids = sorted(r.id for r in records_)
    k = data.draw(st.sampled_from([1, 2, 3, 50, None]))
    per_wanted_skill = data.draw(st.booleans())
    wanted_skills = data.draw(st.none() | st.lists(st.sampled_from(sorted(taxonomy)), max_size=3))
    mentors = data.draw(st.none() | st.lists(st.sampled_from(ids), max_size=10, unique=True))
    learners = data.draw(st.none() | st.lists(st.sampled_from(ids), max_size=10, unique=True))
    min_score = data.draw(st.sampled_from([0.0, 0.3]))

    got = index.candidates(
        learners,
        k=k,
        wanted_skills=wanted_skills,
        mentors=mentors,
        per_wanted_skill=per_wanted_skill,
        min_score=min_score,
    )
    rows, round_learners, round_mentors = expected_candidates(
        index,
        records_,
        learners,
        k=k,
        wanted_skills=wanted_skills,
        mentors=mentors,
        per_wanted_skill=per_wanted_skill,
        min_score=min_score,
    )
    assert rows_of(got) == rows  # same pairs, order, skills and scores (exactly)
    assert got.learners.tolist() == round_learners
    assert dict(zip(got.mentors.tolist(), got.open_slots.tolist(), strict=True)) == round_mentors
    # The reasons of each pair are the query's, asked for the pair's wanted skill.
    for row, explained in enumerate(index.explain(got)):
        learner = int(got.learner_ids[row])
        wanted = got.skill_ids[got.wanted_skills[row]]
        listed = {m.volunteer_id: m for m in index.query(learner, "learner", wanted, limit=1000)}
        assert explained == listed[int(got.mentor_ids[row])]
    if not per_wanted_skill:
        # Cutting in the index and cutting the whole list afterwards are the same.
        every = index.candidates(
            learners, wanted_skills=wanted_skills, mentors=mentors, min_score=min_score
        )
        assert rows_of(every.top(k)) == rows


def test_several_wanted_skills_take_the_best_pair_among_them() -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build(
        [
            volunteer(1, wants=(("lua", 2), ("python", 2), ("speaking", 1))),
            volunteer(2, offers=(("lua", 1), ("speaking", 3))),
            volunteer(3, offers=(("python", 4),)),
        ]
    )
    got = index.candidates(wanted_skills=["lua", "speaking"])
    # Mentor 2 teaches lua below the target (fit 0.5) but speaking in full; mentor 3 is listed
    # through lua (python is a sibling), not through the python want left out.
    assert rows_of(got) == [
        (1, 2, "speaking", "speaking", index.query(1, skill="speaking")[0].score),
        (1, 3, "python", "lua", index.query(1, skill="lua")[-1].score),
    ]
    everything = index.candidates()
    assert rows_of(everything) == [
        (1, m.volunteer_id, m.skill, m.wanted_skill, m.score) for m in index.query(1)
    ]


def test_progress_is_reported_up_to_every_learner() -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build(
        [volunteer(i, wants=(("lua", 1),)) for i in range(1, 6)]
        + [volunteer(10, offers=(("lua", 2),), open_slots=3)]
    )
    seen: list[tuple[int, int]] = []
    index.candidates(progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 5)
    assert seen[-1] == (5, 5)


def test_top_k_cuts_ties_at_the_lowest_mentor_ids() -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build(
        [volunteer(1, wants=(("lua", 1),))]
        + [volunteer(i, offers=(("lua", 1),)) for i in (9, 3, 7, 5)]
    )
    got = index.candidates(k=2)
    assert got.mentor_ids.tolist() == [3, 5]
    assert got.mentors.tolist() == [3, 5, 7, 9]  # the round's mentors are counted before the cut
    assert np.all(got.scores == got.scores[0])


def test_unknown_volunteers_and_bad_arguments_are_refused() -> None:
    index = MatchIndex(SkillSpace(TAXONOMY), SUMMER_WEEK).build([volunteer(1)])
    with pytest.raises(KeyError):
        index.candidates([1, 2])
    with pytest.raises(KeyError):
        index.candidates(mentors=[7])
    with pytest.raises(ValueError, match="unknown skill"):
        index.candidates(wanted_skills=["cobol"])
    with pytest.raises(ValueError, match="k must be"):
        index.candidates(k=0)
    empty = index.candidates()
    assert len(empty) == 0
    assert empty.learners.tolist() == []
