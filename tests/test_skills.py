"""The skill taxonomy: the shipped starting tree, browsing, curation, import and export."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from capex.errors import Invalid
from capex.models import MAX_SKILL_DEPTH, Skill
from capex.services import skills as skill_service
from tests.factories import auth_headers, make_volunteer, problem_fields

SKILLS = "/api/v1/skills"
ROOTS = {
    "organizational",
    "communication",
    "learning",
    "community",
    "social",
    "strategic",
    "technology",
}
PROBLEM_JSON = "application/problem+json"


def all_skill_ids(client, *, limit=100, **params):
    """Every id the list endpoint returns, following next_cursor to the end."""
    ids, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(SKILLS, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def coordinator_headers(session, settings):
    coordinator = make_volunteer(session, "coord", role="coordinator")
    return auth_headers(session, settings, coordinator)


@pytest.fixture
def volunteer_headers(session, settings):
    volunteer = make_volunteer(session, "plainvolunteer")
    return auth_headers(session, settings, volunteer)


def new_skill(**fields):
    return {
        "id": "osm-mapping",
        "name": "OpenStreetMap mapping",
        "description": "Mapping places that Wikipedia articles describe.",
        "parent": "maps-geodata",
        "aliases": ["OSM"],
        "wikidata": "Q936",
        **fields,
    }


# The starting taxonomy


def test_starting_taxonomy_has_seven_roots_and_at_least_80_skills(session):
    tree = skill_service.parents(session)
    assert len(tree) >= 80
    assert {skill_id for skill_id, parent in tree.items() if parent is None} == ROOTS


def test_starting_taxonomy_is_at_most_three_levels_deep(session):
    tree = skill_service.parents(session)
    depths = {skill_id: skill_service.depth_of(tree, skill_id) for skill_id in tree}
    assert MAX_SKILL_DEPTH == 3
    assert max(depths.values()) <= MAX_SKILL_DEPTH


def test_every_starting_skill_has_a_description(session):
    blank = session.scalars(select(Skill.id).where(func.trim(Skill.description) == "")).all()
    assert blank == []


def test_database_holds_the_shipped_taxonomy_file(session):
    shipped = skill_service.starting_taxonomy()
    tree = {entry["id"]: entry["parent"] for entry in shipped}
    parents_first = sorted(
        shipped, key=lambda entry: (skill_service.depth_of(tree, entry["id"]), entry["id"])
    )
    assert skill_service.export_skills(session) == parents_first


# Browsing


def test_list_skills_is_a_page_of_skill_documents(client):
    response = client.get(SKILLS)
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 20
    assert page["next_cursor"]
    assert set(page["items"][0]) == {"id", "name", "description", "parent", "wikidata", "aliases"}


@pytest.mark.parametrize("q", ["scribunto", "SCRIBUNTO", "sCrIbUnTo"])
def test_q_matches_aliases_case_insensitively(client, q):
    response = client.get(SKILLS, params={"q": q})
    assert response.status_code == 200
    items = response.json()["items"]
    assert "lua" in [item["id"] for item in items]
    lua = next(item for item in items if item["id"] == "lua")
    assert "Scribunto" in lua["aliases"]


def test_q_matches_names_case_insensitively(client):
    response = client.get(SKILLS, params={"q": "PROJECT MANAGEMENT"})
    assert [item["id"] for item in response.json()["items"]] == ["project-management"]


def test_q_that_matches_nothing_gives_an_empty_page(client):
    response = client.get(SKILLS, params={"q": "no-such-skill-anywhere"})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_q_treats_like_wildcards_literally(client):
    response = client.get(SKILLS, params={"q": "%"})
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_empty_parent_lists_the_roots(client):
    response = client.get(SKILLS, params={"parent": "", "limit": 100})
    assert response.status_code == 200
    items = response.json()["items"]
    assert {item["id"] for item in items} == ROOTS
    assert all(item["parent"] is None for item in items)


def test_parent_lists_its_children(client, session):
    response = client.get(SKILLS, params={"parent": "technology", "limit": 100})
    assert response.status_code == 200
    ids = {item["id"] for item in response.json()["items"]}
    expected = {
        skill_id for skill_id, p in skill_service.parents(session).items() if p == "technology"
    }
    assert ids == expected
    assert {"templates-modules", "wikidata-editing"} <= ids
    assert "lua" not in ids  # a grandchild


def test_unknown_parent_filter_is_422_naming_query_parent(client):
    response = client.get(SKILLS, params={"parent": "no-such-skill"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert problem_fields(response) == {"query.parent"}


def test_paging_visits_every_skill_once_in_id_order(client, session):
    in_id_order = session.scalars(select(Skill.id).order_by(Skill.id)).all()
    visited = all_skill_ids(client, limit=37)
    assert visited == in_id_order


def test_paging_a_filtered_list_stays_filtered(client):
    assert sorted(all_skill_ids(client, limit=2, parent="")) == sorted(ROOTS)


def test_page_that_reaches_the_end_exactly_has_no_next_cursor(client):
    page = client.get(SKILLS, params={"parent": "", "limit": 7}).json()
    assert len(page["items"]) == 7
    assert page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["not-a-cursor!", "bm9wZQ", "eyJpZCI6MX0"])
def test_bad_cursor_is_422_naming_query_cursor(client, cursor):
    # "bm9wZQ" is base64 of "nope"; "eyJpZCI6MX0" of {"id":1}, a cursor of another list.
    response = client.get(SKILLS, params={"cursor": cursor})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert problem_fields(response) == {"query.cursor"}


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_limit_out_of_range_is_422(client, limit):
    response = client.get(SKILLS, params={"limit": limit})
    assert response.status_code == 422
    assert problem_fields(response) == {"query.limit"}


def test_get_one_skill_has_its_children_and_path(client):
    response = client.get(f"{SKILLS}/templates-modules")
    assert response.status_code == 200
    skill = response.json()
    assert skill["id"] == "templates-modules"
    assert skill["parent"] == "technology"
    assert "lua" in [child["id"] for child in skill["children"]]
    assert [ancestor["id"] for ancestor in skill["path"]] == ["technology"]


def test_get_a_leaf_has_no_children_and_a_path_from_the_root(client):
    skill = client.get(f"{SKILLS}/lua").json()
    assert skill["children"] == []
    assert [a["id"] for a in skill["path"]] == ["technology", "templates-modules"]
    assert skill["aliases"][0] == "Scribunto"
    assert skill["wikidata"] == "Q207316"


def test_get_a_root_has_an_empty_path(client):
    skill = client.get(f"{SKILLS}/technology").json()
    assert skill["path"] == []
    assert skill["parent"] is None
    assert len(skill["children"]) > 3


def test_get_unknown_skill_is_404_problem(client):
    response = client.get(f"{SKILLS}/no-such-skill")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 404
    assert "no-such-skill" in body["detail"]


# Creating skills


def test_create_skill_by_coordinator_is_201_and_then_visible(client, coordinator_headers):
    response = client.post(SKILLS, json=new_skill(), headers=coordinator_headers)
    assert response.status_code == 201, response.text
    assert response.json() == new_skill()

    shown = client.get(f"{SKILLS}/osm-mapping").json()
    assert shown["name"] == "OpenStreetMap mapping"
    assert [a["id"] for a in shown["path"]] == ["technology", "maps-geodata"]
    siblings = client.get(SKILLS, params={"parent": "maps-geodata", "limit": 100}).json()
    assert "osm-mapping" in [item["id"] for item in siblings["items"]]
    found = client.get(SKILLS, params={"q": "osm"}).json()
    assert "osm-mapping" in [item["id"] for item in found["items"]]


def test_create_root_skill_with_only_id_and_name(client, coordinator_headers):
    response = client.post(
        SKILLS, json={"id": "heritage", "name": "Heritage"}, headers=coordinator_headers
    )
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": "heritage",
        "name": "Heritage",
        "description": "",
        "parent": None,
        "wikidata": None,
        "aliases": [],
    }
    roots = client.get(SKILLS, params={"parent": ""}).json()["items"]
    assert "heritage" in [item["id"] for item in roots]


def test_create_skill_by_a_volunteer_is_403(client, volunteer_headers):
    response = client.post(SKILLS, json=new_skill(), headers=volunteer_headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert client.get(f"{SKILLS}/osm-mapping").status_code == 404


def test_create_skill_anonymously_is_401_with_bearer_challenge(client):
    response = client.post(SKILLS, json=new_skill())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM_JSON


def test_create_skill_with_a_bad_token_is_401(client):
    response = client.post(SKILLS, json=new_skill(), headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_create_skill_with_existing_id_is_409(client, coordinator_headers):
    response = client.post(SKILLS, json=new_skill(id="lua"), headers=coordinator_headers)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert client.get(f"{SKILLS}/lua").json()["name"] == "Lua"


@pytest.mark.parametrize("bad_id", ["Bad Id", "a--b", "UPPER", "-lead", "trail-", "", "x" * 65])
def test_create_skill_with_id_not_a_lowercase_slug_is_422_naming_body_id(
    client, coordinator_headers, bad_id
):
    response = client.post(SKILLS, json=new_skill(id=bad_id), headers=coordinator_headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert problem_fields(response) == {"body.id"}


def test_create_skill_with_unknown_parent_is_422_naming_body_parent(client, coordinator_headers):
    response = client.post(
        SKILLS, json=new_skill(parent="no-such-skill"), headers=coordinator_headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.parent"}
    assert client.get(f"{SKILLS}/osm-mapping").status_code == 404


def test_create_skill_on_a_fourth_level_is_422(client, coordinator_headers):
    response = client.post(SKILLS, json=new_skill(parent="lua"), headers=coordinator_headers)
    assert response.status_code == 422
    assert problem_fields(response) == {"body.parent"}
    assert client.get(f"{SKILLS}/osm-mapping").status_code == 404


@pytest.mark.parametrize("wikidata", ["X12", "Q", "Q0", "q42", "Q12a"])
def test_create_skill_with_bad_wikidata_item_is_422(client, coordinator_headers, wikidata):
    response = client.post(SKILLS, json=new_skill(wikidata=wikidata), headers=coordinator_headers)
    assert response.status_code == 422
    assert problem_fields(response) == {"body.wikidata"}


def test_create_skill_with_duplicate_aliases_is_422(client, coordinator_headers):
    response = client.post(
        SKILLS, json=new_skill(aliases=["OSM", "osm "]), headers=coordinator_headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.aliases"}


def test_create_skill_names_every_bad_field(client, coordinator_headers):
    response = client.post(
        SKILLS,
        json=new_skill(id="Bad Id", name="", wikidata="X12", colour="blue"),
        headers=coordinator_headers,
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.id", "body.name", "body.wikidata", "body.colour"}


# Editing skills


def test_patch_renames_a_skill(client, coordinator_headers):
    response = client.patch(
        f"{SKILLS}/lua", json={"name": "Lua scripting"}, headers=coordinator_headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Lua scripting"
    shown = client.get(f"{SKILLS}/lua").json()
    assert shown["name"] == "Lua scripting"
    # Fields not given keep their values.
    assert shown["aliases"] == ["Scribunto", "Lua modules", "Module namespace"]
    assert shown["parent"] == "templates-modules"


def test_patch_replaces_the_aliases(client, coordinator_headers):
    response = client.patch(
        f"{SKILLS}/lua", json={"aliases": ["Lua 5.1", "Scribunto"]}, headers=coordinator_headers
    )
    assert response.status_code == 200, response.text
    assert client.get(f"{SKILLS}/lua").json()["aliases"] == ["Lua 5.1", "Scribunto"]
    assert "lua" not in [
        item["id"] for item in client.get(SKILLS, params={"q": "module namespace"}).json()["items"]
    ]
    assert "lua" in [
        item["id"] for item in client.get(SKILLS, params={"q": "lua 5.1"}).json()["items"]
    ]


def test_patch_moves_a_skill_under_another_parent(client, coordinator_headers):
    response = client.patch(
        f"{SKILLS}/lua", json={"parent": "programming"}, headers=coordinator_headers
    )
    assert response.status_code == 200, response.text
    assert [a["id"] for a in client.get(f"{SKILLS}/lua").json()["path"]] == [
        "technology",
        "programming",
    ]


@pytest.mark.parametrize(
    ("skill_id", "new_parent"),
    [("technology", "lua"), ("templates-modules", "lua"), ("lua", "lua")],
)
def test_patch_moving_a_skill_under_its_own_descendant_is_422(
    client, coordinator_headers, skill_id, new_parent
):
    before = client.get(f"{SKILLS}/{skill_id}").json()
    response = client.patch(
        f"{SKILLS}/{skill_id}", json={"parent": new_parent}, headers=coordinator_headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.parent"}
    assert client.get(f"{SKILLS}/{skill_id}").json() == before


def test_patch_moving_a_subtree_below_the_third_level_is_422(client, coordinator_headers):
    # templates-modules has children, so under another second-level skill they would be fourth.
    response = client.patch(
        f"{SKILLS}/templates-modules", json={"parent": "programming"}, headers=coordinator_headers
    )
    assert response.status_code == 422
    assert problem_fields(response) == {"body.parent"}


def test_patch_by_a_volunteer_is_403(client, volunteer_headers):
    response = client.patch(f"{SKILLS}/lua", json={"name": "Mine"}, headers=volunteer_headers)
    assert response.status_code == 403
    assert client.get(f"{SKILLS}/lua").json()["name"] == "Lua"


def test_patch_unknown_skill_is_404(client, coordinator_headers):
    response = client.patch(
        f"{SKILLS}/no-such-skill", json={"name": "Ghost"}, headers=coordinator_headers
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


# Import and export


def test_import_modified_export_creates_and_updates(session):
    document = skill_service.export_skills(session)
    lua = next(entry for entry in document if entry["id"] == "lua")
    lua["name"] = "Lua scripting"
    lua["aliases"] = ["Scribunto", "Lua 5.1"]
    lua["wikidata"] = None
    document.append(new_skill())

    result = skill_service.import_skills(session, copy.deepcopy(document))
    session.expire_all()

    assert (result.created, result.updated) == (1, len(document) - 1)
    exported = {entry["id"]: entry for entry in skill_service.export_skills(session)}
    assert exported["lua"] == lua
    assert exported["osm-mapping"] == new_skill()
    assert len(exported) == len(document)


@pytest.mark.parametrize(
    "document",
    [
        {"id": "not-a-list", "name": "Not a list"},
        [{"id": "fine-skill", "name": "Fine"}, {"id": "Bad Id", "name": "Bad"}],
        [{"id": "fine-skill", "name": "Fine"}, {"name": "No id"}],
    ],
)
def test_import_invalid_document_is_invalid_and_writes_nothing(session, document):
    before = skill_service.export_skills(session)
    with pytest.raises(Invalid) as raised:
        skill_service.import_skills(session, document)
    assert raised.value.errors
    session.expire_all()
    assert session.get(Skill, "fine-skill") is None
    assert skill_service.export_skills(session) == before


def test_import_with_unknown_parent_names_the_entry_and_is_rolled_back(session):
    before = skill_service.export_skills(session)
    document = [
        {"id": "fine-skill", "name": "Fine", "parent": "technology"},
        {"id": "orphan", "name": "Orphan", "parent": "no-such-skill"},
    ]
    with pytest.raises(Invalid) as raised:
        skill_service.import_skills(session, document)
    assert raised.value.errors == [{"loc": ["1", "parent"], "msg": "unknown skill"}]
    # The caller's transaction (the CLI's session_scope) rolls back: all or nothing.
    session.rollback()
    assert session.get(Skill, "fine-skill") is None
    assert skill_service.export_skills(session) == before
