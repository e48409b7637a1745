from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest

from capex.matching import ReferenceMatcher, SkillSpace
from tests.matching.helpers import TAXONOMY, WINTER_WEEK


@pytest.fixture(scope="module")
def space() -> SkillSpace:
    return SkillSpace(TAXONOMY)


def test_same_skill_is_exactly_one(space: SkillSpace) -> None:
    for skill in TAXONOMY:
        assert space.similarity(skill, skill) == 1.0


def test_related_skills_decrease_with_distance(space: SkillSpace) -> None:
    parent = space.similarity("lua", "programming")
    sibling = space.similarity("lua", "python")
    grandparent = space.similarity("lua", "technology")
    assert 1.0 > parent > sibling > 0.0
    assert parent > grandparent > 0.0
    # The closed forms for decay 0.5: child-parent, siblings at depth 2, grandchild-root.
    assert parent == pytest.approx((0.5 + 0.5**3) / math.sqrt(1.3125 * 1.25), abs=1e-9)
    assert sibling == pytest.approx((0.25 + 0.0625) / 1.3125, abs=1e-9)
    assert grandparent == pytest.approx(0.25 / math.sqrt(1.3125), abs=1e-9)


def test_uncles_cousins_and_other_areas_are_exactly_zero(space: SkillSpace) -> None:
    assert space.similarity("lua", "tools") == 0.0  # uncle: 0.098 < min_similarity
    assert space.similarity("lua", "bots") == 0.0  # cousin
    assert space.similarity("lua", "copyediting") == 0.0  # another root area
    assert space.similarity("technology", "communication") == 0.0


def test_similarity_is_symmetric_and_matches_the_plain_cosine(space: SkillSpace) -> None:
    reference = ReferenceMatcher(TAXONOMY, WINTER_WEEK)
    for a, b in product(TAXONOMY, repeat=2):
        assert space.similarity(a, b) == space.similarity(b, a)
        assert space.similarity(a, b) == reference.similarity(a, b)


def test_related_lists_positive_similarities_in_id_order(space: SkillSpace) -> None:
    columns, similarities = space.related(space.position("lua"))
    names = [space.skill_ids[c] for c in columns]
    assert names == sorted(["lua", "programming", "python", "javascript", "technology"])
    assert np.all(similarities > 0)


def test_lower_min_similarity_keeps_uncles() -> None:
    assert SkillSpace(TAXONOMY, min_similarity=0.05).similarity("lua", "tools") > 0.0


@pytest.mark.parametrize(
    ("parents", "params", "message"),
    [
        ({"a": "missing"}, {}, "unknown parent"),
        ({"a": "b", "b": "a"}, {}, "cycle"),
        ({}, {}, "at least one skill"),
        ({"a": None}, {"decay": 0.0}, "decay"),
        ({"a": None}, {"decay": 1.5}, "decay"),
        ({"a": None}, {"min_similarity": -0.1}, "min_similarity"),
    ],
)
def test_bad_taxonomy_or_parameters_raise(
    parents: dict[str, str | None], params: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SkillSpace(parents, **params)


def test_unknown_skill_position_raises(space: SkillSpace) -> None:
    with pytest.raises(ValueError, match="unknown skill 'cobol'"):
        space.position("cobol")


def test_neighbours_are_parent_siblings_and_children(space: SkillSpace) -> None:
    def names(skill: str) -> list[str]:
        return [space.skill_ids[column] for column in space.neighbours(space.position(skill))]

    assert names("lua") == ["javascript", "programming", "python"]
    assert names("programming") == ["javascript", "lua", "python", "technology", "tools"]
    assert names("technology") == ["programming", "tools"]  # roots are nobody's siblings
    reference = ReferenceMatcher(TAXONOMY, WINTER_WEEK)
    assert all(names(skill) == reference.neighbours(skill) for skill in TAXONOMY)
