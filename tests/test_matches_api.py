"""GET /me/matches: ranked candidates with reasons, through the API, on both databases."""

from __future__ import annotations

import pytest

from capex.services import accounts
from tests.factories import auth_headers, make_volunteer, problem_fields

MATCHES = "/api/v1/me/matches"
EVENINGS = [{"weekday": day, "start": "18:00", "end": "21:00"} for day in range(5)]
ENGLISH = [{"code": "en", "level": 5}]


def mentor(session, name, skill="lua", level=4, **profile):
    profile.setdefault("timezone", "Europe/London")
    profile.setdefault("languages", ENGLISH)
    profile.setdefault("availability", EVENINGS)
    return make_volunteer(session, name, offers=[{"skill": skill, "level": level}], **profile)


@pytest.fixture
def learner(session, settings):
    volunteer = make_volunteer(
        session,
        "learner",
        timezone="Europe/London",
        languages=ENGLISH,
        availability=EVENINGS,
        wants=[{"skill": "lua", "level": 3}],
        offers=[{"skill": "public-speaking", "level": 3}],
    )
    return volunteer, auth_headers(session, settings, volunteer)


@pytest.fixture
def fresh(client):
    # Poll on every request, so that a change made just before is always seen.
    client.app.state.matching.poll_interval = 0
    return client


def _usernames(response):
    assert response.status_code == 200, response.text
    return [item["volunteer"]["username"] for item in response.json()["items"]]


def test_learner_gets_mentors_best_first_with_reasons(fresh, session, learner):
    mentor(session, "expert", level=4)
    mentor(session, "novice", level=1)
    mentor(session, "sibling", skill="template-editing", level=4)
    _, headers = learner
    response = fresh.get(MATCHES, params={"as": "learner"}, headers=headers)
    # novice: lua at level 1 for a target of 3, fit 0.5**2 = 0.25; sibling: template-editing
    # at level 4, similarity of two depth-3 siblings, a little below 0.25 (docs/matching.md).
    assert _usernames(response) == ["expert", "novice", "sibling"]
    scores = [item["score"] for item in response.json()["items"]]
    assert scores == sorted(scores, reverse=True)
    best = response.json()["items"][0]
    assert best["skill"] == "lua"
    assert best["score"] == pytest.approx(1.0)
    assert best["reasons"] == {
        "skill_similarity": 1.0,
        "level_fit": 1.0,
        "overlap_minutes_per_week": 5 * 180,
        "shared_languages": ["en"],
        "wanted_skill": "lua",
    }
    sibling = response.json()["items"][2]
    assert sibling["skill"] == "template-editing"
    assert 0 < sibling["reasons"]["skill_similarity"] < 1
    assert sibling["reasons"]["wanted_skill"] == "lua"


def test_never_me_inactive_full_mentors_or_pairs_without_language_or_time(
    fresh, session, settings, learner
):
    mentor(session, "good")
    gone = mentor(session, "gone")
    accounts.deactivate(session, settings, gone)
    mentor(session, "full", mentor_capacity=0)
    mentor(session, "silent", languages=[{"code": "ja", "level": 5}])
    mentor(session, "night", timezone="Asia/Tokyo")  # Tokyo evenings are London mornings
    mentor(session, "anytime", availability=[], timezone=None)
    session.commit()
    _, headers = learner
    assert _usernames(fresh.get(MATCHES, headers=headers)) == ["good", "anytime"]


def test_as_mentor_lists_learners_for_my_offers(fresh, session, learner):
    make_volunteer(
        session,
        "speaker",
        languages=ENGLISH,
        wants=[{"skill": "public-speaking", "level": 2}],
    )
    _, headers = learner
    response = fresh.get(MATCHES, params={"as": "mentor"}, headers=headers)
    assert _usernames(response) == ["speaker"]
    item = response.json()["items"][0]
    assert item["skill"] == "public-speaking"
    assert item["reasons"]["overlap_minutes_per_week"] is None


def test_skill_filter_and_its_errors(fresh, session, learner):
    mentor(session, "expert")
    _, headers = learner
    assert _usernames(fresh.get(MATCHES, params={"skill": "lua"}, headers=headers)) == ["expert"]
    not_mine = fresh.get(MATCHES, params={"skill": "sparql"}, headers=headers)
    assert not_mine.status_code == 422
    assert "do not want" in not_mine.json()["detail"]
    unknown = fresh.get(MATCHES, params={"skill": "no-such-skill"}, headers=headers)
    assert unknown.status_code == 422
    assert problem_fields(unknown) == {"query.skill"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"as": "teacher"}, "query.as"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
    ],
)
def test_bad_parameters_are_422(fresh, learner, params, field):
    response = fresh.get(MATCHES, params=params, headers=learner[1])
    assert response.status_code == 422
    assert problem_fields(response) == {field}


def test_matches_need_sign_in(fresh):
    assert fresh.get(MATCHES).status_code == 401


def test_limit_cuts_the_ranking(fresh, session, learner):
    for index in range(5):
        mentor(session, f"m{index}")
    names = _usernames(fresh.get(MATCHES, params={"limit": 3}, headers=learner[1]))
    assert names == ["m0", "m1", "m2"]  # equal scores: lower id first


def test_profile_changes_show_in_the_next_answer(fresh, session, settings, learner):
    late = mentor(session, "late", skill="sparql")
    _, headers = learner
    assert _usernames(fresh.get(MATCHES, headers=headers)) == []
    late_headers = auth_headers(session, settings, late)
    changed = fresh.patch(
        "/api/v1/me/profile", json={"offers": [{"skill": "lua", "level": 4}]}, headers=late_headers
    )
    assert changed.status_code == 200
    assert _usernames(fresh.get(MATCHES, headers=headers)) == ["late"]
    assert fresh.delete("/api/v1/me", headers=late_headers).status_code == 204
    assert _usernames(fresh.get(MATCHES, headers=headers)) == []


def test_scores_read_as_short_decimals(fresh, session, learner):
    # lua at level 4 for a target of 3 (skill 1), evenings overlap in full (availability 1),
    # English 5 and 4 (language 0.8): 0.55 + 0.30 + 0.15 * 0.8, which floats make
    # 0.9700000000000001.
    mentor(session, "fluent", languages=[{"code": "en", "level": 4}])
    _, headers = learner
    response = fresh.get(MATCHES, headers=headers)
    assert response.status_code == 200, response.text
    assert '"score":0.97,' in response.text
    (item,) = response.json()["items"]
    assert item["score"] == 0.97
    assert item["reasons"]["level_fit"] == 1.0


def test_a_profile_just_saved_is_ranked_before_any_poll(client, session, learner):
    # The service polls for other people's changes only every half second; the asker's
    # own profile is read with their request.
    mentor(session, "lua-mentor")
    mentor(session, "python-mentor", skill="python")
    _, headers = learner
    client.app.state.matching.poll_interval = 3600
    assert _usernames(client.get(MATCHES, headers=headers)) == ["lua-mentor"]
    saved = client.patch(
        "/api/v1/me/profile", json={"wants": [{"skill": "python", "level": 2}]}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    assert _usernames(client.get(MATCHES, headers=headers)) == ["python-mentor"]


SATURDAY_MORNINGS = [{"weekday": 5, "start": "09:00", "end": "11:00"}]


def _explain(response):
    assert response.status_code == 200, response.text
    return response.json()["explain"]


def test_no_match_is_explained_with_counts_and_the_saturday_that_would_help(
    fresh, session, learner
):
    for index in range(4):
        mentor(session, f"english{index}", availability=SATURDAY_MORNINGS)
    for index in range(8):
        mentor(
            session,
            f"spanish{index}",
            languages=[{"code": "es", "level": 5}],
            availability=SATURDAY_MORNINGS,
        )
    _, headers = learner
    response = fresh.get(MATCHES, headers=headers)
    assert _usernames(response) == []
    (lua,) = _explain(response)
    # The Spanish speakers are kept apart by language as well, so Saturday adds only four.
    assert lua == {
        "skill": "lua",
        "offering": 12,
        "sharing_language": 4,
        "overlapping": 0,
        "with_open_slot": 0,
        "suggestions": [
            {
                "change": {"kind": "availability", "weekday": 5, "start": "06:00", "end": "12:00"},
                "would_add": 4,
            }
        ],
    }
    change = lua["suggestions"][0]["change"]
    slot = {key: change[key] for key in ("weekday", "start", "end")}
    saved = fresh.patch(
        "/api/v1/me/profile", json={"availability": [*EVENINGS, slot]}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    response = fresh.get(MATCHES, headers=headers)
    assert sorted(_usernames(response)) == [f"english{index}" for index in range(4)]
    (lua,) = _explain(response)
    assert (lua["overlapping"], lua["with_open_slot"]) == (4, 4)
    assert lua["suggestions"][0] == {
        "change": {"kind": "language", "language": "es"},
        "would_add": 8,
    }


def test_a_language_suggestion_once_saved_lists_those_mentors(fresh, session, learner):
    for index in range(3):
        mentor(session, f"nepali{index}", languages=[{"code": "ne", "level": 5}])
    mentor(session, "night", timezone="Asia/Tokyo", languages=[{"code": "ne", "level": 5}])
    _, headers = learner
    (lua,) = _explain(fresh.get(MATCHES, headers=headers))
    assert (lua["offering"], lua["sharing_language"], lua["with_open_slot"]) == (4, 0, 0)
    assert lua["suggestions"] == [
        {"change": {"kind": "language", "language": "ne"}, "would_add": 3}
    ]
    saved = fresh.patch(
        "/api/v1/me/profile",
        json={"languages": [*ENGLISH, {"code": "ne", "level": 2}]},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    assert sorted(_usernames(fresh.get(MATCHES, headers=headers))) == [
        "nepali0",
        "nepali1",
        "nepali2",
    ]


def test_explain_covers_each_of_my_skills_on_the_side_asked_or_the_one_named(
    fresh, session, learner
):
    _, headers = learner
    saved = fresh.patch(
        "/api/v1/me/profile",
        json={"wants": [{"skill": "lua", "level": 3}, {"skill": "python", "level": 1}]},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text
    mentor(session, "expert")
    mentor(session, "full", mentor_capacity=0)
    for index in range(2):
        make_volunteer(
            session,
            f"speaker{index}",
            languages=ENGLISH,
            wants=[{"skill": "public-speaking", "level": 1}],
        )
    both = _explain(fresh.get(MATCHES, headers=headers))
    assert [(e["skill"], e["offering"], e["with_open_slot"]) for e in both] == [
        ("lua", 2, 1),
        ("python", 0, 0),
    ]
    only = _explain(fresh.get(MATCHES, params={"skill": "python"}, headers=headers))
    assert [e["skill"] for e in only] == ["python"]
    # As a mentor the learners need no slot: all of them count while I have one.
    (speaking,) = _explain(fresh.get(MATCHES, params={"as": "mentor"}, headers=headers))
    assert speaking["skill"] == "public-speaking"
    assert speaking["offering"] == speaking["with_open_slot"] == 2
    full = fresh.patch("/api/v1/me/profile", json={"mentor_capacity": 0}, headers=headers)
    assert full.status_code == 200, full.text
    (speaking,) = _explain(fresh.get(MATCHES, params={"as": "mentor"}, headers=headers))
    assert (speaking["offering"], speaking["with_open_slot"]) == (2, 0)


def test_explain_follows_a_profile_just_saved_before_any_poll(client, session, learner):
    mentor(session, "python-mentor", skill="python")
    _, headers = learner
    client.app.state.matching.poll_interval = 3600
    assert [e["skill"] for e in _explain(client.get(MATCHES, headers=headers))] == ["lua"]
    saved = client.patch(
        "/api/v1/me/profile", json={"wants": [{"skill": "python", "level": 2}]}, headers=headers
    )
    assert saved.status_code == 200, saved.text
    (python,) = _explain(client.get(MATCHES, headers=headers))
    assert (python["skill"], python["offering"], python["with_open_slot"]) == ("python", 1, 1)
