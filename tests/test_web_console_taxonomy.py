"""The console's taxonomy editor and people pages (TestClient, both databases): what a
coordinator sees and changes, read back through the API; the API's refusals shown next to
their fields with the input kept; everyone else kept out."""

from __future__ import annotations

import html
import re

import pytest

from capex.vocabulary import Role
from tests.factories import auth_headers, make_volunteer
from tests.webtools import field_errors, post_form, sign_in_browser, textarea_of, value_of

SKILLS = "/api/v1/skills"
PAGES = (
    "/console/taxonomy",
    "/console/taxonomy?q=lua",
    "/console/taxonomy/new",
    "/console/taxonomy/lua",
    "/console/people",
)
NEW_SKILL = {
    "id": "osm-mapping",
    "name": "OpenStreetMap mapping",
    "description": "Mapping places that articles describe.",
    "parent": "maps-geodata",
    "aliases": "OSM\nopenstreetmap",
    "wikidata": "Q936",
}


@pytest.fixture
def coordinator(client, session, settings):
    volunteer = make_volunteer(session, "coco", role=Role.COORDINATOR)
    sign_in_browser(client, session, settings, volunteer)
    return volunteer


def api_skill(client, skill_id):
    answer = client.get(f"{SKILLS}/{skill_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("path", PAGES)
def test_a_volunteer_gets_the_403_page_and_nobody_signed_in_is_sent_to_sign_in(
    client, session, settings, path
):
    anonymous = client.get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/sign-in?next=/console/")
    sign_in_browser(client, session, settings, make_volunteer(session, "plain"))
    refused = client.get(path)
    assert refused.status_code == 403
    assert "Only coordinators may see the console." in refused.text


def test_a_volunteer_cannot_add_a_skill_or_change_a_role(client, session, settings):
    plain = make_volunteer(session, "plain")
    sign_in_browser(client, session, settings, plain)
    page = client.get("/profile").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    added = client.post("/console/taxonomy/new", data={"csrf_token": token, **NEW_SKILL})
    assert added.status_code == 403
    assert client.get(f"{SKILLS}/osm-mapping").status_code == 404
    granted = client.post(
        f"/console/people/{plain.id}/role", data={"csrf_token": token, "role": "coordinator"}
    )
    assert granted.status_code == 403
    me = client.get("/api/v1/me", headers=auth_headers(session, settings, plain)).json()
    assert me["role"] == "volunteer"


def test_the_tree_shows_every_skill_of_the_api_under_its_seven_areas(client, coordinator):
    roots = client.get(SKILLS, params={"parent": "", "limit": 100}).json()["items"]
    assert len(roots) == 7
    page = client.get("/console/taxonomy")
    assert page.status_code == 200
    assert "<h1>Taxonomy</h1>" in page.text
    listed = set(re.findall(r'<li id="skill-([a-z0-9-]+)"', page.text))
    ids, cursor = set(), None
    while True:
        answer = client.get(SKILLS, params={"limit": 100, **({"cursor": cursor} if cursor else {})})
        ids |= {item["id"] for item in answer.json()["items"]}
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            break
    assert listed == ids
    for root in roots:
        assert f'<li id="skill-{root["id"]}" class="skill level-1' in page.text
        assert html.escape(root["name"]) in page.text
    assert "<details open" not in page.text  # every area starts closed


def test_open_opens_the_path_down_to_a_skill_and_marks_it(client, coordinator):
    lua = api_skill(client, "lua")
    page = client.get("/console/taxonomy?open=lua").text
    opened = re.findall(r'<li id="skill-([a-z0-9-]+)" class="[^"]*">\s*<details open', page)
    assert opened == [step["id"] for step in lua["path"]]
    assert '<li id="skill-lua" class="skill level-3 marked">' in page


def test_the_tree_names_aliases_wikidata_and_how_many_offer_and_want(client, session, coordinator):
    make_volunteer(
        session,
        "offerer",
        languages=[{"code": "en", "level": 5}],
        offers=[{"skill": "lua", "level": 3}],
        wants=[{"skill": "python", "level": 1}],
    )
    client.patch(
        f"{SKILLS}/lua",
        json={"aliases": ["Scribunto Lua"], "wikidata": "Q207316"},
        headers=auth_headers(session, client.app.state.settings, coordinator),
    )
    page = client.get("/console/taxonomy?open=lua").text
    line = page.split('<li id="skill-lua"')[1].split("</li>")[0]
    assert "Scribunto Lua" in line
    assert '<a class="wikidata" href="https://www.wikidata.org/wiki/Q207316">Q207316</a>' in line
    assert "offered by 1, wanted by 0" in line


def test_search_finds_by_name_and_by_alias_like_the_api(client, session, settings, coordinator):
    client.patch(
        f"{SKILLS}/lua",
        json={"aliases": ["Scribunto"]},
        headers=auth_headers(session, settings, coordinator),
    )
    by_alias = client.get("/console/taxonomy?q=scribunto").text
    found = re.findall(r'<th scope="row"><a href="/console/taxonomy/([a-z0-9-]+)">', by_alias)
    api = [item["id"] for item in client.get(SKILLS, params={"q": "scribunto"}).json()["items"]]
    assert found == api == ["lua"]
    by_name = client.get("/console/taxonomy?q=Wikidata").text
    found = re.findall(r'<th scope="row"><a href="/console/taxonomy/([a-z0-9-]+)">', by_name)
    api = [
        item["id"]
        for item in client.get(SKILLS, params={"q": "Wikidata", "limit": 100}).json()["items"]
    ]
    assert found == api
    assert len(found) >= 1
    nothing = client.get("/console/taxonomy?q=zzzznothing").text
    assert "No skill has this in its id, name or aliases." in nothing


def test_adding_a_skill_saves_it_and_opens_the_tree_at_it(client, coordinator):
    answer = post_form(client, "/console/taxonomy/new?parent=maps-geodata", NEW_SKILL)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/taxonomy?open=osm-mapping&notice=skill-added"
    saved = api_skill(client, "osm-mapping")
    assert saved["name"] == "OpenStreetMap mapping"
    assert saved["parent"] == "maps-geodata"
    assert saved["aliases"] == ["OSM", "openstreetmap"]
    assert saved["wikidata"] == "Q936"
    tree = client.get(answer.headers["location"]).text
    assert "The skill is added to the taxonomy." in tree
    assert '<li id="skill-osm-mapping" class="skill level-3 marked">' in tree


def test_the_add_form_starts_under_the_parent_asked_for(client, coordinator):
    page = client.get("/console/taxonomy/new?parent=maps-geodata").text
    assert value_of(page, "parent") == "maps-geodata"
    assert '<option value="maps-geodata">' in page
    assert '<option value="lua">' not in page  # a third-level skill can hold no skill


def test_a_parent_may_be_typed_as_its_name(client, coordinator):
    name = api_skill(client, "maps-geodata")["name"]
    answer = post_form(client, "/console/taxonomy/new", {**NEW_SKILL, "parent": name.upper()})
    assert answer.status_code == 303
    assert api_skill(client, "osm-mapping")["parent"] == "maps-geodata"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"id": "lua"}, "id", "A skill with this id exists already"),
        ({"id": "OSM Mapping"}, "id", "lowercase slug"),
        ({"parent": "no-such-skill"}, "parent", "There is no such skill"),
        ({"parent": "Nothing by this name"}, "parent", "There is no such skill"),
        ({"parent": "lua"}, "parent", "at most 3 levels deep: here it would be 4"),
        ({"parent": ""}, "parent", "Choose the skill it belongs under"),
        ({"wikidata": "936"}, "wikidata", "A Wikidata item is Q and its number"),
        ({"name": ""}, "name", "Fill in this field."),
        ({"aliases": "OSM\nosm"}, "aliases", "An alias is given twice"),
    ],
)
def test_adding_refuses_what_the_api_refuses_next_to_the_field_with_the_input_kept(
    client, coordinator, change, field, words
):
    sent = {**NEW_SKILL, **change}
    answer = post_form(client, "/console/taxonomy/new", sent)
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    assert words in errors[field], errors
    for kept in ("id", "name", "parent", "wikidata"):
        assert value_of(answer.text, kept) == sent[kept]
    assert textarea_of(answer.text, "aliases") == sent["aliases"]
    if change.get("id") != "lua":
        assert client.get(f"{SKILLS}/{sent['id']}").status_code == 404


def test_renaming_describing_aliases_and_wikidata_are_saved(client, coordinator):
    page = client.get("/console/taxonomy/lua").text
    assert value_of(page, "name") == "Lua"
    parent = api_skill(client, "lua")["parent"]
    assert value_of(page, "parent") == parent
    answer = post_form(
        client,
        "/console/taxonomy/lua",
        {
            "name": "Lua (Scribunto)",
            "description": "Modules for templates.",
            "aliases": "Scribunto\n\nLua modules",
            "wikidata": "Q207316",
            "parent": parent,
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/taxonomy?open=lua&notice=skill-saved"
    saved = api_skill(client, "lua")
    assert saved["name"] == "Lua (Scribunto)"
    assert saved["description"] == "Modules for templates."
    assert saved["aliases"] == ["Scribunto", "Lua modules"]
    assert saved["wikidata"] == "Q207316"
    assert saved["parent"] == parent
    # An alias removed and the Wikidata item emptied: both go.
    page = client.get("/console/taxonomy/lua").text
    assert textarea_of(page, "aliases") == "Scribunto\nLua modules"
    answer = post_form(
        client,
        "/console/taxonomy/lua",
        {
            "name": "Lua",
            "description": "",
            "aliases": "Lua modules",
            "wikidata": "",
            "parent": parent,
        },
    )
    assert answer.status_code == 303
    saved = api_skill(client, "lua")
    assert saved["aliases"] == ["Lua modules"]
    assert saved["wikidata"] is None


def test_moving_a_skill_under_another_parent_is_saved_and_shown_in_the_tree(client, coordinator):
    lua = api_skill(client, "lua")
    target = next(
        item["id"]
        for item in client.get(SKILLS, params={"parent": "technology", "limit": 100}).json()[
            "items"
        ]
        if item["id"] != lua["parent"]
    )
    answer = post_form(
        client, "/console/taxonomy/lua", {"name": "Lua", "parent": target, "aliases": ""}
    )
    assert answer.status_code == 303
    assert api_skill(client, "lua")["parent"] == target
    tree = client.get("/console/taxonomy?open=lua").text
    below_target = tree.split(f'<li id="skill-{target}"')[1].split("</details>")[0]
    assert 'id="skill-lua"' in below_target


def test_a_skill_can_become_a_root_area_only_when_ticked(client, coordinator):
    answer = post_form(
        client, "/console/taxonomy/lua", {"name": "Lua", "parent": "", "root": "yes"}
    )
    assert answer.status_code == 303
    assert api_skill(client, "lua")["parent"] is None
    both = post_form(
        client, "/console/taxonomy/lua", {"name": "Lua", "parent": "technology", "root": "yes"}
    )
    assert both.status_code == 422
    assert "A root area has no parent" in field_errors(both.text)["parent"]


@pytest.mark.parametrize(
    ("skill", "parent", "words"),
    [
        ("technology", "lua", "cannot go under itself or under a skill below it"),
        ("technology", "technology", "cannot go under itself or under a skill below it"),
        ("technology", "community", "at most 3 levels deep: here it would be 4"),
        ("lua", "ghost-skill", "There is no such skill"),
    ],
)
def test_a_move_is_refused_like_the_api_next_to_the_parent_field_with_the_input_kept(
    client, session, settings, coordinator, skill, parent, words
):
    before = api_skill(client, skill)
    through_api = client.patch(
        f"{SKILLS}/{skill}",
        json={"parent": parent},
        headers=auth_headers(session, settings, coordinator),
    )
    assert through_api.status_code == 422
    answer = post_form(
        client,
        f"/console/taxonomy/{skill}",
        {"name": "Renamed meanwhile", "parent": parent, "wikidata": "Q5", "aliases": "x\ny"},
    )
    assert answer.status_code == 422
    assert words in field_errors(answer.text)["parent"]
    assert value_of(answer.text, "parent") == parent
    assert value_of(answer.text, "name") == "Renamed meanwhile"
    assert value_of(answer.text, "wikidata") == "Q5"
    after = api_skill(client, skill)
    assert after["parent"] == before["parent"]
    assert after["name"] == before["name"]  # nothing of the refused form is saved


def test_a_bad_wikidata_item_is_refused_on_its_field(client, coordinator):
    parent = api_skill(client, "lua")["parent"]
    answer = post_form(
        client, "/console/taxonomy/lua", {"name": "Lua", "parent": parent, "wikidata": "Q0"}
    )
    assert answer.status_code == 422
    assert "A Wikidata item is Q and its number, like Q52." in field_errors(answer.text)["wikidata"]
    assert value_of(answer.text, "wikidata") == "Q0"


def test_an_unknown_skill_page_is_the_404_page(client, coordinator):
    assert client.get("/console/taxonomy/no-such-skill").status_code == 404


def test_people_search_finds_by_username_name_and_email_and_shows_role_and_state(
    client, session, coordinator
):
    make_volunteer(session, "amara_k")
    gone = make_volunteer(session, "gone_one")
    gone.is_active = False
    gone.display_name = "Quentin Left"
    session.commit()
    by_username = client.get("/console/people?q=amara").text
    assert 'id="person-amara_k"' in by_username
    assert 'id="person-coco"' not in by_username
    assert "amara_k@example.org" in by_username
    by_name = client.get("/console/people?q=quentin").text
    row = by_name.split('id="person-gone_one"')[1].split("</tr>")[0]
    assert "deactivated" in row
    assert "Make coordinator" not in row
    by_email = client.get("/console/people?q=coco@example").text
    row = by_email.split('id="person-coco"')[1].split("</tr>")[0]
    assert "coordinator" in row
    assert "(you)" in row


def test_granting_and_taking_back_the_coordinator_role(client, session, settings, coordinator):
    amara = make_volunteer(session, "amara_k")
    headers = auth_headers(session, settings, amara)
    answer = post_form(
        client,
        "/console/people?q=amara",
        {"role": "coordinator", "q": "amara"},
        action=f"/console/people/{amara.id}/role",
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/people?q=amara&notice=role-granted"
    assert client.get("/api/v1/me", headers=headers).json()["role"] == "coordinator"
    shown = client.get(answer.headers["location"]).text
    assert "The coordinator role is given." in shown
    assert "Take back the coordinator role" in shown.split('id="person-amara_k"')[1]
    answer = post_form(
        client,
        "/console/people?q=amara",
        {"role": "volunteer", "q": "amara"},
        action=f"/console/people/{amara.id}/role",
    )
    assert answer.status_code == 303
    assert client.get("/api/v1/me", headers=headers).json()["role"] == "volunteer"
    assert "The coordinator role is taken back." in client.get(answer.headers["location"]).text


def test_taking_back_the_last_coordinators_role_is_refused_in_words(
    client, session, settings, coordinator
):
    confirm = post_form(
        client,
        "/console/people",
        {"role": "volunteer"},
        action=f"/console/people/{coordinator.id}/role",
    )
    assert confirm.status_code == 200
    assert "Give up your coordinator role?" in confirm.text
    answer = post_form(
        client,
        "/console/people",
        {"role": "volunteer", "confirm": "yes"},
        action=f"/console/people/{coordinator.id}/role",
    )
    assert answer.status_code == 409
    assert "This is the last active coordinator" in answer.text
    me = client.get("/api/v1/me", headers=auth_headers(session, settings, coordinator)).json()
    assert me["role"] == "coordinator"


def test_giving_up_ones_own_role_asks_first_then_leaves_the_console(
    client, session, settings, coordinator
):
    make_volunteer(session, "other_coord", role=Role.COORDINATOR)
    action = f"/console/people/{coordinator.id}/role"
    asked = post_form(client, "/console/people", {"role": "volunteer"}, action=action)
    assert asked.status_code == 200
    assert "Yes, I am no longer a coordinator" in asked.text
    me = client.get("/api/v1/me", headers=auth_headers(session, settings, coordinator)).json()
    assert me["role"] == "coordinator"  # asking changed nothing
    done = post_form(
        client, "/console/people", {"role": "volunteer", "confirm": "yes"}, action=action
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/profile?notice=role-given-up"
    assert "You are no longer a coordinator." in client.get(done.headers["location"]).text
    assert client.get("/console/people").status_code == 403


def test_the_pages_speak_portuguese(client, coordinator):
    client.headers["Accept-Language"] = "pt-BR"
    tree = client.get("/console/taxonomy")
    assert '<html lang="pt-BR"' in tree.text
    assert "Taxonomia" in tree.text
    assert "Pesquisar" in tree.text
    too_deep = post_form(client, "/console/taxonomy/new", {**NEW_SKILL, "parent": "lua"})
    assert field_errors(too_deep.text)["parent"] == (
        "A taxonomia tem no máximo 3 níveis: aqui ela teria 4."
    )
    bad_item = post_form(client, "/console/taxonomy/new", {**NEW_SKILL, "wikidata": "x"})
    assert field_errors(bad_item.text)["wikidata"] == (
        "Um item do Wikidata é Q seguido do seu número, como Q52."
    )
    people = client.get("/console/people").text
    assert "Retirar o papel de coordenador" in people
    assert "Pessoas" in people


def test_a_skill_added_here_is_offered_at_once_by_the_profile_editor(client, session, settings):
    coordinator = make_volunteer(session, "coco", role=Role.COORDINATOR)
    volunteer = make_volunteer(session, "vic", languages=[{"code": "en", "level": 5}])
    sign_in_browser(client, session, settings, coordinator)
    assert post_form(client, "/console/taxonomy/new", NEW_SKILL).status_code == 303
    client.cookies.clear()
    sign_in_browser(client, session, settings, volunteer)
    editor = client.get("/profile").text
    assert (
        '<option value="osm-mapping">OpenStreetMap mapping · OSM, openstreetmap</option>' in editor
    )
    saved = post_form(
        client,
        "/profile",
        {
            "display_name": "Vic",
            "timezone": "UTC",
            "languages-0-code": "en",
            "languages-0-level": "5",
            "offers-0-skill": "openstreetmap MAPPING",  # its name, in another case
            "offers-0-level": "3",
            "mentor_capacity": "2",
        },
    )
    assert saved.status_code == 303, field_errors(saved.text)
    me = client.get("/api/v1/me", headers=auth_headers(session, settings, volunteer)).json()
    assert [offer["skill"] for offer in me["offers"]] == ["osm-mapping"]
    public = client.get(f"/volunteers/{volunteer.id}").text
    assert "OpenStreetMap mapping" in public
