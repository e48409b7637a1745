"""Skill-swap rings: enumeration and exact packing against brute force, edges from the index."""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capex.matching import VolunteerRecord
from capex.matching.swaps import (
    Ring,
    RingMember,
    TeachingEdges,
    all_rings,
    best_disjoint_rings,
    greedy_disjoint_rings,
    rings_of,
    swap_volunteers,
    teaching_edges,
)
from tests.matching.helpers import SUMMER_WEEK, TAXONOMY, engine_and_reference, volunteer

Edge = tuple[str, str, float]  # (teaches, wanted, score)
EdgeMap = dict[tuple[int, int], Edge]

swap_settings = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SKILLS = ["lua", "python", "photography"]


def edges_from(edge_map: EdgeMap) -> TeachingEdges:
    pairs = list(edge_map.items())
    return TeachingEdges(
        np.array([t for (t, _), _ in pairs], dtype=np.int64),
        np.array([lrn for (_, lrn), _ in pairs], dtype=np.int64),
        np.array([e[0] for _, e in pairs], dtype=np.str_),
        np.array([e[1] for _, e in pairs], dtype=np.str_),
        np.array([e[2] for _, e in pairs], dtype=np.float64),
    )


@st.composite
def edge_maps(draw: st.DrawFn, max_volunteers: int = 7) -> EdgeMap:
    """A few volunteers (ids not contiguous) and a random set of edges, at most one per pair."""
    ids = draw(st.lists(st.integers(1, 40), min_size=3, max_size=max_volunteers, unique=True))
    pairs = [(a, b) for a in ids for b in ids if a != b]
    density = draw(st.integers(1, 10))  # in tenths: sparse graphs and nearly complete ones
    chosen = [pair for pair in pairs if draw(st.integers(0, 9)) < density]
    scores = st.sampled_from([0.25, 0.5, 0.75, 1.0]) | st.floats(1e-3, 1.0)
    return {
        pair: (draw(st.sampled_from(SKILLS)), draw(st.sampled_from(SKILLS)), draw(scores))
        for pair in chosen
    }


def brute_force_rings(edge_map: EdgeMap, max_length: int = 3) -> dict[tuple[int, ...], float]:
    """Every ring as its volunteers in ring order from the smallest id, with its score."""
    volunteers = sorted({v for pair in edge_map for v in pair})
    rings: dict[tuple[int, ...], float] = {}
    for a, b in combinations(volunteers, 2):
        if (a, b) in edge_map and (b, a) in edge_map:
            rings[(a, b)] = edge_map[a, b][2] + edge_map[b, a][2]
    if max_length == 3:
        for a, b, c in combinations(volunteers, 3):
            for x, y in permutations((b, c)):
                cycle = ((a, x), (x, y), (y, a))
                if all(pair in edge_map for pair in cycle):
                    rings[(a, x, y)] = sum(edge_map[pair][2] for pair in cycle)
    return rings


def brute_force_optimum(rings: dict[tuple[int, ...], float]) -> float:
    """The best total over every set of rings that share no volunteer."""
    items = sorted(rings.items())

    def best(start: int, used: frozenset[int]) -> float:
        total = 0.0
        for i in range(start, len(items)):
            members, score = items[i]
            if used.isdisjoint(members):
                total = max(total, score + best(i + 1, used | set(members)))
        return total

    return best(0, frozenset())


def rotated(members: tuple[int, ...], first: int) -> tuple[int, ...]:
    at = members.index(first)
    return members[at:] + members[:at]


def assert_real_cycle(ring: Ring, edge_map: EdgeMap) -> None:
    assert len(ring) in (2, 3)
    assert len(set(ring.volunteers)) == len(ring)
    for member, following in zip(ring.members, ring.members[1:] + ring.members[:1], strict=True):
        assert member.learner == following.volunteer
        teaches, wanted, score = edge_map[member.volunteer, member.learner]
        assert (member.teaches, member.wanted_skill, member.score) == (teaches, wanted, score)
    assert ring.score == pytest.approx(sum(m.score for m in ring.members), abs=1e-12)


# -- properties --------------------------------------------------------------------------------


@swap_settings
@given(edge_map=edge_maps(), max_length=st.sampled_from([2, 3]))
def test_every_ring_is_found_once_and_is_a_real_cycle(edge_map: EdgeMap, max_length: int) -> None:
    edges = edges_from(edge_map)
    found = all_rings(edges, max_length)
    expected = brute_force_rings(edge_map, max_length)
    for ring in found:
        assert_real_cycle(ring, edge_map)
        assert ring.volunteers[0] == min(ring.volunteers)
    assert sorted(ring.volunteers for ring in found) == sorted(expected)
    for ring in found:
        assert ring.score == pytest.approx(expected[ring.volunteers], abs=1e-12)
    scores = [ring.score for ring in found]
    assert scores == sorted(scores, reverse=True)


@swap_settings
@given(edge_map=edge_maps(), max_length=st.sampled_from([2, 3]))
def test_rings_of_a_volunteer_are_theirs_best_first(edge_map: EdgeMap, max_length: int) -> None:
    edges = edges_from(edge_map)
    expected = brute_force_rings(edge_map, max_length)
    for volunteer_id in [*sorted({v for pair in edge_map for v in pair}), 999]:
        mine = rings_of(edges, volunteer_id, max_length)
        for ring in mine:
            assert_real_cycle(ring, edge_map)
            assert ring.volunteers[0] == volunteer_id
        assert sorted(ring.volunteers for ring in mine) == sorted(
            rotated(members, volunteer_id) for members in expected if volunteer_id in members
        )
        scores = [ring.score for ring in mine]
        assert scores == sorted(scores, reverse=True)


@swap_settings
@given(
    edge_map=edge_maps(),
    max_length=st.sampled_from([2, 3]),
    batch_rings=st.sampled_from([1, 3, 20_000]),
)
def test_packing_is_disjoint_and_equals_the_brute_force_optimum(
    edge_map: EdgeMap, max_length: int, batch_rings: int
) -> None:
    edges = edges_from(edge_map)
    expected = brute_force_rings(edge_map, max_length)
    packing = best_disjoint_rings(edges, max_length, batch_rings=batch_rings)
    chosen = [v for ring in packing.rings for v in ring.volunteers]
    assert len(chosen) == len(set(chosen))
    for ring in packing.rings:
        assert_real_cycle(ring, edge_map)
        assert ring.volunteers in expected
    optimum = brute_force_optimum(expected)
    assert packing.optimal
    assert packing.unproven_rings == 0
    assert packing.total_score == pytest.approx(optimum, abs=1e-6)
    assert packing.total_score == pytest.approx(sum(r.score for r in packing.rings), abs=1e-12)
    assert packing.upper_bound >= packing.total_score
    assert packing.upper_bound == pytest.approx(optimum, abs=1e-5)
    assert packing.gap <= 1e-6
    assert packing.rings_found == len(expected)
    scores = [ring.score for ring in packing.rings]
    assert scores == sorted(scores, reverse=True)

    greedy = greedy_disjoint_rings(edges, max_length)
    greedy_members = [v for ring in greedy for v in ring.volunteers]
    assert len(greedy_members) == len(set(greedy_members))
    assert sum(ring.score for ring in greedy) <= optimum + 1e-9


# -- worked examples ----------------------------------------------------------------------------

A, B, C = 1, 2, 3


def test_a_teaches_b_lua_and_b_teaches_a_photography() -> None:
    edges = TeachingEdges(
        teacher=[B, A],
        learner=[A, B],
        teaches=["photography", "lua"],
        wanted=["photography", "lua"],
        score=[0.6, 0.8],
    )
    a_teaches_b = RingMember(volunteer=A, teaches="lua", learner=B, wanted_skill="lua", score=0.8)
    b_teaches_a = RingMember(B, "photography", A, "photography", 0.6)
    assert rings_of(edges, A) == [Ring((a_teaches_b, b_teaches_a), 0.8 + 0.6)]
    assert rings_of(edges, B) == [Ring((b_teaches_a, a_teaches_b), 0.6 + 0.8)]
    assert rings_of(edges, C) == []
    packing = best_disjoint_rings(edges)
    assert packing.rings == (Ring((a_teaches_b, b_teaches_a), 0.8 + 0.6),)
    assert packing.optimal
    assert (packing.rings_found, packing.components, packing.largest_component) == (1, 1, 1)


def test_a_one_way_pair_is_no_ring() -> None:
    edges = TeachingEdges([A, B], [B, C], ["lua", "lua"], ["lua", "lua"], [1.0, 1.0])
    assert all_rings(edges) == []
    assert best_disjoint_rings(edges).rings == ()


def test_both_directions_of_a_triangle_are_two_rings_and_overlap() -> None:
    edge_map: EdgeMap = {
        pair: ("lua", "lua", score)
        for pair, score in {(A, B): 0.5, (B, C): 0.5, (C, A): 0.5, (A, C): 0.9, (C, B): 0.9}.items()
    }
    edge_map[B, A] = ("lua", "lua", 0.9)
    edges = edges_from(edge_map)
    # Best first; equal scores in the order of their volunteers' ids.
    assert [r.volunteers for r in all_rings(edges)] == [
        (A, C, B),
        (A, B, C),
        (A, B),
        (A, C),
        (B, C),
    ]
    found = {r.volunteers: r.score for r in all_rings(edges)}
    assert found == pytest.approx(
        {(A, C, B): 2.7, (A, B, C): 1.5, (A, B): 1.4, (A, C): 1.4, (B, C): 1.4}
    )
    assert [r.volunteers for r in best_disjoint_rings(edges).rings] == [(A, C, B)]
    assert [r.volunteers for r in all_rings(edges, max_length=2)] == [(A, B), (A, C), (B, C)]


def test_the_optimum_takes_three_swaps_where_greedy_takes_one_ring() -> None:
    # A strong ring of three blocks three pairs worth more together.
    edge_map: EdgeMap = {(A, B): ("lua", "lua", 0.9), (B, C): ("lua", "lua", 0.9)}
    edge_map[C, A] = ("lua", "lua", 0.9)
    for member, partner in ((A, 4), (B, 5), (C, 6)):
        edge_map[member, partner] = ("python", "python", 0.8)
        edge_map[partner, member] = ("photography", "photography", 0.8)
    edges = edges_from(edge_map)
    greedy = greedy_disjoint_rings(edges)
    assert [r.volunteers for r in greedy] == [(A, B, C)]
    packing = best_disjoint_rings(edges)
    assert sorted(r.volunteers for r in packing.rings) == [(A, 4), (B, 5), (C, 6)]
    assert packing.total_score == pytest.approx(4.8)
    assert packing.optimal
    assert packing.components == 1


def test_separate_components_are_solved_apart() -> None:
    edge_map: EdgeMap = {}
    for base in (10, 20):  # two triangles with both directions, far apart
        for a, b in permutations((base, base + 1, base + 2), 2):
            edge_map[a, b] = ("lua", "lua", 0.5 + 0.01 * (b - base))
    edges = edges_from(edge_map)
    packing = best_disjoint_rings(edges, batch_rings=1)
    assert packing.components == 2
    assert packing.largest_component == 5  # three pairs and two triangles
    assert len(packing.rings) == 2
    assert packing.optimal


def test_best_per_pair_keeps_the_best_edge_of_each_ordered_pair() -> None:
    edges = TeachingEdges.best_per_pair(
        teacher=[A, A, B, A],
        learner=[B, B, A, B],
        teaches=["lua", "python", "lua", "bots"],
        wanted=["lua", "lua", "lua", "lua"],
        score=[0.4, 0.7, 0.5, 0.7],
    )
    assert len(edges) == 2
    assert rings_of(edges, A)[0].members[0] == RingMember(A, "python", B, "lua", 0.7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"score": [0.0]}, "in \\(0, 1\\]"),
        ({"score": [1.5]}, "in \\(0, 1\\]"),
        ({"score": [float("nan")]}, "in \\(0, 1\\]"),
        ({"learner": [A]}, "teaches themself"),
        ({"teacher": [1.5]}, "integer volunteer ids"),
        ({"wanted": ["lua", "lua"]}, "1-D with as many items"),
    ],
)
def test_bad_edges_are_refused(fields: dict[str, list[object]], message: str) -> None:
    arguments: dict[str, list[object]] = {
        "teacher": [A],
        "learner": [B],
        "teaches": ["lua"],
        "wanted": ["lua"],
        "score": [0.5],
    }
    arguments.update(fields)
    with pytest.raises(ValueError, match=message):
        TeachingEdges(**arguments)  # type: ignore[arg-type]


def test_two_edges_for_one_pair_are_refused() -> None:
    with pytest.raises(ValueError, match="two edges from 1 to 2"):
        TeachingEdges([A, A], [B, B], ["lua", "bots"], ["lua", "lua"], [0.5, 0.6])


@pytest.mark.parametrize("max_length", [1, 4, True])
def test_only_rings_of_two_or_three(max_length: int) -> None:
    edges = TeachingEdges([A, B], [B, A], ["lua", "lua"], ["lua", "lua"], [0.5, 0.5])
    with pytest.raises(ValueError, match="max_length"):
        rings_of(edges, A, max_length)
    with pytest.raises(ValueError, match="max_length"):
        best_disjoint_rings(edges, max_length)


def test_no_edges_no_rings() -> None:
    edges = TeachingEdges([], [], [], [], [])
    assert all_rings(edges) == []
    assert rings_of(edges, A) == []
    packing = best_disjoint_rings(edges)
    assert (packing.rings, packing.total_score, packing.optimal) == ((), 0.0, True)


# -- edges from the match index -----------------------------------------------------------------

INDEX_SKILLS = sorted(TAXONOMY)


@st.composite
def swap_worlds(draw: st.DrawFn) -> list[VolunteerRecord]:
    """Volunteers who offer and want a few skills, some full, some inactive, some silent."""
    ids = draw(st.lists(st.integers(1, 60), min_size=2, max_size=25, unique=True))

    def skill_levels() -> tuple[tuple[str, int], ...]:
        chosen = draw(st.lists(st.sampled_from(INDEX_SKILLS), max_size=3, unique=True))
        return tuple((skill, draw(st.integers(1, 4))) for skill in chosen)

    world = []
    for volunteer_id in ids:
        with_time = draw(st.booleans())
        world.append(
            volunteer(
                volunteer_id,
                active=draw(st.integers(0, 9)) > 0,
                timezone="Asia/Kathmandu" if with_time else None,
                slots=((draw(st.integers(0, 6)), 600, 720),) if with_time else (),
                languages=((draw(st.sampled_from(["en", "ne"])), draw(st.integers(1, 5))),),
                offers=skill_levels(),
                wants=skill_levels(),
                open_slots=draw(st.sampled_from([0, 1, 2])),
            )
        )
    return world


@swap_settings
@given(world=swap_worlds(), limit=st.sampled_from([1, 3, 50]))
def test_index_edges_are_exactly_the_pairs_query_lists(
    world: list[VolunteerRecord], limit: int
) -> None:
    index, _ = engine_and_reference(world, SUMMER_WEEK)
    ids = swap_volunteers(world)
    assert ids == [r.id for r in world if r.active and r.offers and r.wants and r.open_slots > 0]
    edges = teaching_edges(index, ids, limit=limit)
    got = sorted(
        zip(
            edges.teacher.tolist(),
            edges.learner.tolist(),
            edges.teaches.tolist(),
            edges.wanted.tolist(),
            edges.score.tolist(),
            strict=True,
        )
    )
    expected = sorted(
        (teacher, m.volunteer_id, m.skill, m.wanted_skill, m.score)
        for teacher in ids
        for m in index.query(teacher, role="mentor", limit=limit)
        if m.volunteer_id in set(ids)
    )
    assert got == expected
    # The learner side lists the same pair with the same skills and score.
    for teacher, learner, teaches, wanted, score in got:
        as_learner = {m.volunteer_id: m for m in index.query(learner, "learner", limit=100)}
        assert (as_learner[teacher].skill, as_learner[teacher].wanted_skill) == (teaches, wanted)
        assert as_learner[teacher].score == score


def test_index_swap_from_records() -> None:
    records = [
        volunteer(A, offers=(("lua", 4),), wants=(("copyediting", 3),)),
        volunteer(B, offers=(("copyediting", 4),), wants=(("lua", 2),)),
        volunteer(C, offers=(("lua", 4),), wants=(("copyediting", 2),), languages=(("ne", 5),)),
        volunteer(4, offers=(("copyediting", 4),), wants=(("lua", 2),), open_slots=0),
        volunteer(5, wants=(("lua", 1),)),
    ]
    index, _ = engine_and_reference(records)
    ids = swap_volunteers(records)
    assert ids == [A, B, C]  # 4 has no open slot, 5 offers nothing
    edges = teaching_edges(index, ids)
    assert sorted(zip(edges.teacher.tolist(), edges.learner.tolist(), strict=True)) == [
        (A, B),
        (B, A),
    ]  # C shares no language with them
    (ring,) = rings_of(edges, B)
    assert [(m.volunteer, m.teaches, m.learner) for m in ring.members] == [
        (B, "copyediting", A),
        (A, "lua", B),
    ]


def test_a_solve_out_of_time_is_flagged_and_keeps_a_valid_packing() -> None:
    rng = np.random.default_rng(7)
    teacher = np.repeat(np.arange(400), 12)
    learner = rng.integers(0, 400, teacher.size)
    kept = teacher != learner
    edges = TeachingEdges.best_per_pair(
        teacher[kept],
        learner[kept],
        np.full(int(kept.sum()), "lua"),
        np.full(int(kept.sum()), "lua"),
        rng.uniform(0.05, 1.0, int(kept.sum())),
    )
    exact = best_disjoint_rings(edges, time_limit=None)
    assert exact.optimal
    hurried = best_disjoint_rings(edges, time_limit=1e-6)
    assert not hurried.optimal
    assert hurried.unproven_rings == hurried.rings_found > 0
    members = [v for ring in hurried.rings for v in ring.volunteers]
    assert len(members) == len(set(members))
    greedy_total = sum(ring.score for ring in greedy_disjoint_rings(edges))
    assert greedy_total - 1e-9 <= hurried.total_score <= exact.total_score + 1e-9
    assert hurried.upper_bound >= exact.total_score - 1e-6
    assert hurried.gap > 0
