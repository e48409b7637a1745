"""The directory: filters, text search and cursor pagination."""

from __future__ import annotations

import pytest

from capex.services import accounts
from tests.factories import auth_headers, make_volunteer, problem_fields

DIRECTORY = "/api/v1/volunteers"


@pytest.fixture
def people(session):
    """A small population; returns username -> volunteer."""
    specs = {
        "ada": {
            "region": "ssa",
            "languages": [{"code": "en", "level": 5}, {"code": "yo", "level": 4}],
            "offers": [{"skill": "lua", "level": 4}],
            "wants": [{"skill": "public-speaking", "level": 2}],
            "bio": "Template wrangler from Lagos.",
        },
        "bruno": {
            "region": "lac",
            "languages": [{"code": "pt-BR", "level": 5}, {"code": "en", "level": 2}],
            "offers": [{"skill": "sparql", "level": 3}],
            "wants": [{"skill": "lua", "level": 3}],
        },
        "chen": {
            "region": "eseap",
            "languages": [{"code": "zh", "level": 5}],
            "offers": [{"skill": "public-speaking", "level": 2}],
            "wants": [{"skill": "sparql", "level": 1}],
        },
        "dina": {
            "region": "ssa",
            "languages": [{"code": "pt", "level": 5}],
            "offers": [{"skill": "lua", "level": 2}],
            "bio": "I run edit-a-thons 100% of weekends_",
        },
    }
    return {name: make_volunteer(session, name, **spec) for name, spec in specs.items()}


@pytest.fixture
def viewer(session, settings):
    return auth_headers(session, settings, make_volunteer(session, "zed"))


def _names(client, headers, **params):
    response = client.get(DIRECTORY, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["username"] for item in response.json()["items"]]


def test_directory_needs_sign_in(client):
    assert client.get(DIRECTORY).status_code == 401


def test_offers_filter_matches_the_skill(client, people, viewer):
    assert _names(client, viewer, offers="lua") == ["ada", "dina"]


def test_offers_filter_includes_skills_below(client, people, viewer):
    # sparql sits under wikidata-editing, lua under templates-modules, all under technology.
    assert _names(client, viewer, offers="wikidata-editing") == ["bruno"]
    assert _names(client, viewer, offers="technology") == ["ada", "bruno", "dina"]


def test_wants_filter(client, people, viewer):
    assert _names(client, viewer, wants="sparql") == ["chen"]
    assert _names(client, viewer, wants="lua") == ["bruno"]


def test_language_filter_matches_the_primary_language(client, people, viewer):
    assert _names(client, viewer, language="pt") == ["bruno", "dina"]
    assert _names(client, viewer, language="pt-BR") == ["bruno"]
    assert _names(client, viewer, language="EN") == ["ada", "bruno"]


def test_filters_combine(client, people, viewer):
    assert _names(client, viewer, offers="lua", language="en") == ["ada"]
    assert _names(client, viewer, offers="lua", region="ssa", language="pt") == ["dina"]


def test_region_filter(client, people, viewer):
    assert _names(client, viewer, region="ssa") == ["ada", "dina"]


def test_text_search_in_names_and_bios(client, people, viewer):
    assert _names(client, viewer, q="LAGOS") == ["ada"]
    assert _names(client, viewer, q="Chen") == ["chen"]
    # LIKE wildcards in the query are plain text.
    assert _names(client, viewer, q="100%") == ["dina"]
    assert _names(client, viewer, q="s_") == ["dina"]


def test_inactive_volunteers_are_not_listed(client, session, settings, people, viewer):
    accounts.deactivate(session, settings, people["ada"])
    session.commit()
    assert _names(client, viewer, offers="lua") == ["dina"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"offers": "no-such-skill"}, "query.offers"),
        ({"wants": "Not a slug"}, "query.wants"),
        ({"language": "xx"}, "query.language"),
        ({"region": "moon"}, "query.region"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"cursor": "garbage!"}, "query.cursor"),
        ({"cursor": "eyJpZCI6ICJ4In0"}, "query.cursor"),
    ],
)
def test_bad_filter_is_422_naming_it(client, viewer, params, field):
    response = client.get(DIRECTORY, params=params, headers=viewer)
    assert response.status_code == 422
    assert problem_fields(response) == {field}


def test_pages_cover_everyone_once_in_a_stable_order(client, session, viewer):
    for index in range(23):
        make_volunteer(session, f"user{index:02d}", languages=[{"code": "fr", "level": 3}])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"language": "fr", "limit": 5, **({"cursor": cursor} if cursor else {})}
        body = client.get(DIRECTORY, params=params, headers=viewer).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == 23
    assert seen == sorted(set(seen))


def test_new_volunteers_do_not_shift_a_page_in_progress(client, session, viewer):
    for index in range(6):
        make_volunteer(session, f"early{index}", region="mena")
    first = client.get(DIRECTORY, params={"region": "mena", "limit": 3}, headers=viewer).json()
    make_volunteer(session, "latecomer", region="mena")
    second = client.get(
        DIRECTORY,
        params={"region": "mena", "limit": 3, "cursor": first["next_cursor"]},
        headers=viewer,
    ).json()
    assert [i["username"] for i in second["items"]] == ["early3", "early4", "early5"]


def test_items_are_public_profiles(client, people, viewer):
    item = client.get(DIRECTORY, params={"offers": "sparql"}, headers=viewer).json()["items"][0]
    assert item["username"] == "bruno"
    assert "email" not in item
    assert item["offers"] == [{"skill": "sparql", "name": "SPARQL queries", "level": 3, "note": ""}]
    assert item["languages"][0] == {"code": "pt-BR", "level": 5}
    assert item["open_slots"] == 2


def test_unknown_volunteer_is_404(client, viewer):
    response = client.get(f"{DIRECTORY}/999999", headers=viewer)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
