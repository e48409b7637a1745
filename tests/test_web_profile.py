"""The profile editor and the public profile page of the web client (TestClient, both databases)."""

# The pages write time ranges and levels with an en dash, as people read them.

from __future__ import annotations

import html
import re
from typing import Any

from capex.regions import REGIONS
from capex.services import accounts
from capex.web.routes.profile import REGION_NAMES
from tests.factories import auth_headers, make_volunteer
from tests.webtools import field_errors, post_form, sign_in_browser, value_of

_CHECKED = re.compile(r'<input type="checkbox" id="(avail-\d-\d+)" name="\1" value="1" checked>')


def checked_cells(page: str) -> set[str]:
    return set(_CHECKED.findall(page))


def selected(page: str, name: str) -> str | None:
    """The value of the option chosen in the select named ``name``."""
    found = re.search(
        rf'<select id="{re.escape(name)}" name="{re.escape(name)}".*?</select>', page, re.S
    )
    assert found, f"no select {name}"
    option = re.search(r'<option value="([^"]*)" selected>', found.group(0))
    return option.group(1) if option else None


def textarea(page: str, name: str) -> str:
    found = re.search(
        rf'<textarea id="{re.escape(name)}" name="{re.escape(name)}"[^>]*>(.*?)</textarea>',
        page,
        re.S,
    )
    assert found, f"no textarea {name}"
    return html.unescape(found.group(1))


def full_form(**changes: str) -> dict[str, str]:
    """A whole profile as a person fills the form in, with blank rows left between."""
    form = {
        "display_name": "Amaka Okafor",
        "bio": "Editing since 2012.\r\nI run edit-a-thons.",
        "timezone": "Africa/Lagos",
        "region": "ssa",
        "locale": "",
        "languages-0-code": "pt-BR",
        "languages-0-level": "5",
        "languages-1-code": "",
        "languages-1-level": "",
        "languages-2-code": "en",
        "languages-2-level": "4",
        "avail-0-18": "1",
        "avail-0-19": "1",
        "avail-5-9": "1",
        "avail-5-10": "1",
        "avail-5-11": "1",
        "offers-0-skill": "wikidata EDITING",  # the skill's name, typed in another case
        "offers-0-level": "3",
        "offers-0-note": "queries too",
        "offers-1-skill": "",
        "offers-1-level": "",
        "offers-1-note": "",
        "wants-0-skill": "Scribunto",  # an alias of Lua
        "wants-0-level": "2",
        "wants-0-note": "",
        "mentor_capacity": "4",
    }
    form.update(changes)
    return form


def signed_in(
    client: Any, session: Any, settings: Any, username: str = "amaka", **profile: Any
) -> Any:
    volunteer = make_volunteer(session, username, **profile)
    sign_in_browser(client, session, settings, volunteer)
    return volunteer


def test_the_editor_asks_to_sign_in_first(client):
    answer = client.get("/profile", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/profile"


def test_the_editor_shows_the_saved_profile(client, session, settings):
    signed_in(
        client,
        session,
        settings,
        bio="Hello",
        timezone="America/Sao_Paulo",
        region="lac",
        languages=[{"code": "pt-BR", "level": 5}],
        availability=[{"weekday": 0, "start": "18:30", "end": "20:00"}],
        offers=[{"skill": "lua", "level": 4, "note": "modules"}],
        mentor_capacity=3,
    )
    page = client.get("/profile").text
    assert value_of(page, "display_name") == "Amaka"
    assert value_of(page, "timezone") == "America/Sao_Paulo"
    assert "data-default-timezone" in page
    assert '<datalist id="timezones">' in page
    assert "In your time zone: America/Sao_Paulo" in page
    assert textarea(page, "bio") == "Hello"
    assert selected(page, "region") == "lac"
    assert value_of(page, "languages-0-code") == "pt-BR"
    assert selected(page, "languages-0-level") == "5"
    # The saved rows and two empty ones to add more.
    assert value_of(page, "languages-1-code") == value_of(page, "languages-2-code") == ""
    assert value_of(page, "languages-3-code") is None
    # 18:30-20:00 touches the hours 18 and 19; the grid says it works in whole hours.
    assert checked_cells(page) == {"avail-0-18", "avail-0-19"}
    assert "whole hours" in page
    assert '<label for="avail-0-18" class="visually-hidden">Monday 18:00–19:00</label>' in page
    assert value_of(page, "offers-0-skill") == "Lua"
    assert selected(page, "offers-0-level") == "4"
    assert value_of(page, "offers-0-note") == "modules"
    assert value_of(page, "wants-0-skill") == value_of(page, "wants-1-skill") == ""
    assert value_of(page, "mentor_capacity") == "3"
    assert '<option value="lua">Lua · Scribunto' in page
    assert 'href="/account/password"' in page
    assert page.count("<h1>") == 1
    assert page.count("<fieldset") == page.count("<legend>")


def test_saving_a_full_profile_stores_exactly_that(client, session, settings):
    me = signed_in(client, session, settings)
    answer = post_form(client, "/profile", full_form())
    assert answer.status_code == 303, field_errors(answer.text)
    assert answer.headers["location"] == "/profile?notice=profile-saved"
    saved = client.get("/api/v1/me", headers=auth_headers(session, settings, me)).json()
    assert saved["display_name"] == "Amaka Okafor"
    assert saved["bio"] == "Editing since 2012.\nI run edit-a-thons."
    assert (saved["timezone"], saved["region"], saved["mentor_capacity"]) == (
        "Africa/Lagos",
        "ssa",
        4,
    )
    assert saved["languages"] == [{"code": "pt-BR", "level": 5}, {"code": "en", "level": 4}]
    assert saved["availability"] == [
        {"weekday": 0, "start": "18:00", "end": "20:00"},
        {"weekday": 5, "start": "09:00", "end": "12:00"},
    ]
    assert [(o["skill"], o["level"], o["note"]) for o in saved["offers"]] == [
        ("wikidata-editing", 3, "queries too")
    ]
    assert [(w["skill"], w["level"], w["note"]) for w in saved["wants"]] == [("lua", 2, "")]
    page = client.get(answer.headers["location"]).text
    assert "Your profile is saved." in page
    assert checked_cells(page) == {
        "avail-0-18",
        "avail-0-19",
        "avail-5-9",
        "avail-5-10",
        "avail-5-11",
    }
    # The blank rows between are gone; two empty rows follow the saved ones.
    assert value_of(page, "languages-1-code") == "en"
    assert value_of(page, "offers-0-skill") == "Wikidata editing"
    assert value_of(page, "offers-1-skill") == value_of(page, "offers-2-skill") == ""


def test_bad_input_is_named_next_to_each_field_and_everything_typed_is_kept(
    client, session, settings
):
    me = signed_in(client, session, settings, bio="before")
    headers = auth_headers(session, settings, me)
    before = client.get("/api/v1/me", headers=headers).json()
    bad = full_form(
        **{
            "timezone": "Mars/Olympus_Mons",
            "languages-1-code": "PT-br",  # the same language as row 0, written otherwise
            "languages-1-level": "3",
            "offers-1-skill": "underwater basket weaving",
            "offers-1-level": "2",
            "offers-1-note": "in lakes",
            "mentor_capacity": "99",
            "bio": "x" * 2001,
        }
    )
    answer = post_form(client, "/profile", bad)
    assert answer.status_code == 422
    errors = field_errors(answer.text)
    assert errors == {
        "timezone": "Choose a time zone from the list, like Africa/Lagos.",
        "languages-1-code": "This is listed twice; keep one.",
        "offers-1-skill": "Choose a skill from the list.",
        "mentor_capacity": "This must be at most 20.",
        "bio": "This is too long: at most 2000 characters.",
    }
    page = answer.text
    # The summary at the top names each field, in the order of the page.
    summary = re.findall(r'<li><a href="#([^"]+)">([^<]*)</a></li>', page)
    assert [name for name, _ in summary] == [
        "bio",
        "timezone",
        "languages-1-code",
        "offers-1-skill",
        "mentor_capacity",
    ]
    assert summary[2][1] == "Languages you speak, row 2: This is listed twice; keep one."
    assert 'aria-invalid="true"' in page
    assert 'href="#offers-1-skill"' in page
    assert value_of(page, "timezone") == "Mars/Olympus_Mons"
    assert value_of(page, "languages-0-code") == "pt-BR"
    assert value_of(page, "languages-1-code") == "PT-br"
    assert selected(page, "languages-1-level") == "3"
    assert value_of(page, "languages-2-code") == "en"
    assert value_of(page, "offers-0-skill") == "wikidata EDITING"
    assert value_of(page, "offers-1-skill") == "underwater basket weaving"
    assert value_of(page, "offers-1-note") == "in lakes"
    assert value_of(page, "wants-0-skill") == "Scribunto"
    assert value_of(page, "mentor_capacity") == "99"
    assert textarea(page, "bio") == "x" * 2001
    assert checked_cells(page) == {
        "avail-0-18",
        "avail-0-19",
        "avail-5-9",
        "avail-5-10",
        "avail-5-11",
    }
    assert client.get("/api/v1/me", headers=headers).json() == before


def test_the_grid_turns_checked_hours_into_merged_slots(client, session, settings):
    me = signed_in(client, session, settings)
    cells = {f"avail-2-{hour}": "1" for hour in (8, 9, 11, 22, 23)}
    cells["avail-6-0"] = "1"
    form = {"display_name": "Amaka", "timezone": "Asia/Kolkata", "mentor_capacity": "2", **cells}
    answer = post_form(client, "/profile", form)
    assert answer.status_code == 303, field_errors(answer.text)
    saved = client.get("/api/v1/me", headers=auth_headers(session, settings, me)).json()
    assert saved["availability"] == [
        {"weekday": 2, "start": "08:00", "end": "10:00"},
        {"weekday": 2, "start": "11:00", "end": "12:00"},
        {"weekday": 2, "start": "22:00", "end": "24:00"},
        {"weekday": 6, "start": "00:00", "end": "01:00"},
    ]
    assert checked_cells(client.get("/profile").text) == {f"avail-{k[6:]}" for k in cells}


def test_empty_rows_are_ignored_and_a_half_filled_one_is_not(client, session, settings):
    me = signed_in(client, session, settings, languages=[{"code": "de", "level": 3}])
    form = {
        "display_name": "Amaka",
        "mentor_capacity": "2",
        "languages-0-code": "",
        "languages-0-level": "",
        "offers-0-skill": " ",
        "offers-0-level": "",
        "offers-0-note": "",
    }
    assert post_form(client, "/profile", form).status_code == 303
    saved = client.get("/api/v1/me", headers=auth_headers(session, settings, me)).json()
    assert saved["languages"] == []
    assert saved["offers"] == []
    half = post_form(client, "/profile", {**form, "wants-3-skill": "lua", "wants-3-level": ""})
    assert half.status_code == 422
    # The row keeps its place on the page: the error is on wants-0, the only row sent.
    assert field_errors(half.text) == {"wants-0-level": "Write a whole number."}
    assert value_of(half.text, "wants-0-skill") == "lua"


def test_times_without_a_time_zone_are_an_error_on_the_time_zone(client, session, settings):
    signed_in(client, session, settings)
    form = {"display_name": "Amaka", "mentor_capacity": "2", "timezone": "", "avail-1-7": "1"}
    answer = post_form(client, "/profile", form)
    assert answer.status_code == 422
    assert field_errors(answer.text) == {
        "timezone": "Choose your time zone: your availability is in your own time."
    }
    assert checked_cells(answer.text) == {"avail-1-7"}


def test_the_editor_speaks_portuguese_to_a_portuguese_browser(client, session, settings):
    signed_in(client, session, settings, region="lac")
    client.headers["Accept-Language"] = "pt-BR,pt;q=0.9"
    page = client.get("/profile").text
    assert '<html lang="pt-BR"' in page
    assert "<h1>Seu perfil</h1>" in page
    assert "Idiomas que você fala" in page
    assert "Salvar o perfil" in page
    assert '<option value="lac" selected>América Latina e Caribe</option>' in page
    assert "segunda-feira 18:00–19:00" in page.replace(", ", " ")
    assert "5 – nativo" in page
    answer = post_form(client, "/profile", full_form(mentor_capacity="99"))
    assert field_errors(answer.text)["mentor_capacity"] == "Isto precisa ser no máximo 20."


def test_every_region_has_a_name_to_show():
    assert set(REGION_NAMES) == set(REGIONS)


def test_the_language_saved_on_the_profile_applies_at_once(client, session, settings):
    me = signed_in(client, session, settings)
    client.cookies.set("capex_lang", "en", domain="testserver.local")  # chosen in the switcher
    answer = post_form(client, "/profile", full_form(locale="pt_BR"))
    assert answer.status_code == 303
    assert client.cookies.get("capex_lang") == "pt_BR"
    assert "Seu perfil foi salvo." in client.get(answer.headers["location"]).text
    session.refresh(me)
    assert me.locale == "pt_BR"
    assert selected(client.get("/profile").text, "locale") == "pt_BR"
    # Back to the browser's language: the cookie is forgotten, Accept-Language decides.
    client.headers["Accept-Language"] = "en"
    back = post_form(client, "/profile", full_form(locale=""))
    assert back.status_code == 303
    assert client.cookies.get("capex_lang") is None
    assert "<h1>Your profile</h1>" in client.get("/profile").text
    session.refresh(me)
    assert me.locale is None


def test_the_public_profile_shows_times_on_the_readers_clock_and_never_the_email(
    client, session, settings
):
    mentor = make_volunteer(
        session,
        "bruna",
        bio="Wikidata since 2015",
        timezone="America/Sao_Paulo",  # UTC-3 all year
        region="lac",
        languages=[{"code": "pt-BR", "level": 5}],
        availability=[
            {"weekday": 0, "start": "10:00", "end": "14:00"},
            {"weekday": 6, "start": "20:00", "end": "24:00"},
        ],
        offers=[{"skill": "lua", "level": 4, "note": "modules"}],
        wants=[{"skill": "wikidata-editing", "level": 3}],
        mentor_capacity=2,
    )
    signed_in(client, session, settings, "kenji", timezone="Asia/Tokyo")  # UTC+9 all year
    page = client.get(f"/volunteers/{mentor.id}").text
    assert "<h1>Bruna</h1>" in page
    assert "Wikidata since 2015" in page
    assert "bruna@example.org" not in page
    assert "@example.org" not in page
    assert "Latin America and the Caribbean" in page
    assert "Portuguese (Brazil)" in page
    assert "5 – native" in page
    assert "Lua" in page
    assert "4 – expert" in page
    assert "modules" in page
    assert "Wikidata editing" in page
    assert "2 of 2 places open" in page
    assert f'href="/exchanges/new?mentor={mentor.id}&amp;skill=lua"' in page
    assert "In your time zone: Asia/Tokyo" in page
    # Monday 10-14 in São Paulo is Monday 22:00 to Tuesday 02:00 in Tokyo;
    # Sunday 20-24 is Monday 08-12.
    slots = re.findall(r"<li>(\w+day \d\d:\d\d–\d\d:\d\d)</li>", page)
    assert slots == ["Monday 08:00–12:00", "Monday 22:00–24:00", "Tuesday 00:00–02:00"]


def test_a_reader_without_a_time_zone_sees_the_volunteers_own_times(client, session, settings):
    mentor = make_volunteer(
        session,
        "bruna",
        timezone="America/Sao_Paulo",
        availability=[{"weekday": 0, "start": "18:30", "end": "20:00"}],
    )
    signed_in(client, session, settings, "kenji")
    page = client.get(f"/volunteers/{mentor.id}").text
    assert "In their time zone: America/Sao_Paulo" in page
    assert "<li>Monday 18:30–20:00</li>" in page


def test_ones_own_public_profile_offers_no_request_to_oneself(client, session, settings):
    me = signed_in(client, session, settings, offers=[{"skill": "lua", "level": 2}])
    page = client.get(f"/volunteers/{me.id}").text
    assert "Ask for a mentor" not in page
    assert 'href="/profile"' in page


def test_an_unknown_or_deactivated_volunteer_is_not_found(client, session, settings):
    gone = make_volunteer(session, "gone")
    accounts.deactivate(session, settings, gone)
    session.commit()
    signed_in(client, session, settings)
    for path in (f"/volunteers/{gone.id}", "/volunteers/999999"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "text/html" in answer.headers["content-type"]
        assert "Not found" in answer.text
        assert "Gone" not in answer.text


def test_capacity_below_the_accepted_exchanges_is_refused_on_its_field(client, session, settings):
    mentor = signed_in(
        client, session, settings, "duo", offers=[{"skill": "lua", "level": 3}], mentor_capacity=1
    )
    learner = make_volunteer(session, "lea")
    asked = client.post(
        "/api/v1/exchanges",
        json={"mentor_id": mentor.id, "skill": "lua"},
        headers=auth_headers(session, settings, learner),
    )
    assert asked.status_code == 201, asked.text
    mentor_headers = auth_headers(session, settings, mentor)
    accepted = client.post(f"/api/v1/exchanges/{asked.json()['id']}/accept", headers=mentor_headers)
    assert accepted.status_code == 200, accepted.text
    answer = post_form(client, "/profile", full_form(mentor_capacity="0"))
    assert answer.status_code == 422
    assert field_errors(answer.text) == {
        "mentor_capacity": "You mentor 1 accepted exchange now: complete or cancel it before "
        "lowering your capacity below that."
    }
    assert value_of(answer.text, "mentor_capacity") == "0"
    assert client.get("/api/v1/me", headers=mentor_headers).json()["mentor_capacity"] == 1
