"""GET /exchanges/{id}/meeting-times, on both databases: the times an accepted exchange's
learner (Sao Paulo) and mentor (Berlin) are both free, and the iCalendar event of one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from capex.api.app import create_app
from capex.models import Volunteer
from capex.services import meetings
from tests.factories import Person, auth_headers, make_volunteer, problem_fields
from tests.test_meeting_times import parse_ics, unescape

API = "/api/v1"
ENGLISH = [{"code": "en", "level": 5}]
# A Tuesday morning; offered times begin at the next quarter hour, 09:15.
NOW = datetime(2026, 12, 1, 9, 7, tzinfo=UTC)
LEARNER_SLOTS = [
    {"weekday": 0, "start": "18:00", "end": "21:00"},
    {"weekday": 2, "start": "18:00", "end": "21:00"},
    {"weekday": 5, "start": "09:00", "end": "12:00"},
    {"weekday": 6, "start": "06:00", "end": "07:00"},
]
MENTOR_SLOTS = [
    *({"weekday": day, "start": "20:00", "end": "24:00"} for day in range(5)),
    {"weekday": 1, "start": "00:00", "end": "01:00"},
    {"weekday": 5, "start": "14:00", "end": "15:30"},
    {"weekday": 6, "start": "10:00", "end": "10:15"},
]
# Sao Paulo keeps -03:00 all year (no summer time since 2019); Berlin is +01:00 in December.
SAO_PAULO = timezone(timedelta(hours=-3))
BERLIN = timezone(timedelta(hours=1))


@pytest.fixture
def client(settings, session_factory) -> Iterator[TestClient]:
    app = create_app(settings, session_factory, clock=lambda: NOW)
    app.state.matching.rebuild_in_background = False
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def person(session, settings, name: str, **profile: Any) -> Person:
    volunteer = make_volunteer(session, name, languages=ENGLISH, **profile)
    return Person(volunteer.id, volunteer.username, auth_headers(session, settings, volunteer))


@pytest.fixture
def learner(session, settings) -> Person:
    return person(
        session,
        settings,
        "alice",
        timezone="America/Sao_Paulo",
        availability=LEARNER_SLOTS,
        wants=[{"skill": "lua", "level": 3}],
    )


@pytest.fixture
def mentor(session, settings) -> Person:
    return person(
        session,
        settings,
        "bruno",
        timezone="Europe/Berlin",
        availability=MENTOR_SLOTS,
        offers=[{"skill": "lua", "level": 4}],
    )


def requested(client: TestClient, learner: Person, mentor: Person) -> int:
    response = client.post(
        f"{API}/exchanges", json={"mentor_id": mentor.id, "skill": "lua"}, headers=learner.headers
    )
    assert response.status_code == 201, response.text
    exchange_id: int = response.json()["id"]
    return exchange_id


@pytest.fixture
def accepted(client, learner, mentor) -> int:
    exchange_id = requested(client, learner, mentor)
    response = client.post(f"{API}/exchanges/{exchange_id}/accept", headers=mentor.headers)
    assert response.status_code == 200, response.text
    return exchange_id


def meeting_times(client: TestClient, who: Person, exchange_id: int, **params: Any) -> Any:
    return client.get(
        f"{API}/exchanges/{exchange_id}/meeting-times", params=params, headers=who.headers
    )


def free_minutes(slots: list[dict[str, str]], offset: timezone, start: datetime, end: datetime):
    """The UTC minutes of [start, end) in which someone on a fixed-offset clock is free."""
    free = set()
    minute = start
    while minute < end:
        local = minute.astimezone(offset)
        wall = local.hour * 60 + local.minute
        for slot in slots:
            first = int(slot["start"][:2]) * 60 + int(slot["start"][3:])
            last = int(slot["end"][:2]) * 60 + int(slot["end"][3:])
            if local.weekday() == slot["weekday"] and first <= wall < last:
                free.add(minute)
        minute += timedelta(minutes=1)
    return free


def expected_items(weeks: int) -> list[dict[str, Any]]:
    start = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    end = start + timedelta(weeks=weeks)
    both = sorted(
        free_minutes(LEARNER_SLOTS, SAO_PAULO, start, end)
        & free_minutes(MENTOR_SLOTS, BERLIN, start, end)
    )
    runs: list[list[datetime]] = []
    for minute in both:
        if runs and runs[-1][1] == minute:
            runs[-1][1] = minute + timedelta(minutes=1)
        else:
            runs.append([minute, minute + timedelta(minutes=1)])

    def local(first: datetime, last: datetime, offset: timezone, name: str) -> dict[str, str]:
        return {
            "start": first.astimezone(offset).isoformat(),
            "end": last.astimezone(offset).isoformat(),
            "timezone": name,
        }

    return [
        {
            "start": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": last.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "learner_local": local(first, last, SAO_PAULO, "America/Sao_Paulo"),
            "mentor_local": local(first, last, BERLIN, "Europe/Berlin"),
        }
        for first, last in runs
        if last - first >= timedelta(minutes=30)
    ]


def test_both_participants_get_the_times_both_are_free_in_both_clocks(
    client, learner, mentor, accepted
):
    for who in (learner, mentor):
        response = meeting_times(client, who, accepted)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["items"] == expected_items(weeks=2)
        assert body["without_availability"] == []
    items = meeting_times(client, learner, accepted).json()["items"]
    # Wednesday evening in Sao Paulo is late evening in Berlin; the 15 Sunday minutes are
    # too short to offer.
    assert items[0] == {
        "start": "2026-12-02T21:00:00Z",
        "end": "2026-12-02T23:00:00Z",
        "learner_local": {
            "start": "2026-12-02T18:00:00-03:00",
            "end": "2026-12-02T20:00:00-03:00",
            "timezone": "America/Sao_Paulo",
        },
        "mentor_local": {
            "start": "2026-12-02T22:00:00+01:00",
            "end": "2026-12-03T00:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    }
    # Monday 18:00-21:00 in Sao Paulo runs past midnight in Berlin: one time, not two.
    assert {"start": "2026-12-07T21:00:00Z", "end": "2026-12-08T00:00:00Z"}.items() <= items[
        2
    ].items()
    assert len(items) == 6


def test_weeks_reaches_further(client, learner, accepted):
    one = meeting_times(client, learner, accepted, weeks=1).json()["items"]
    eight = meeting_times(client, learner, accepted, weeks=8).json()["items"]
    assert one == expected_items(weeks=1)
    assert len(one) == 3
    assert eight == expected_items(weeks=8)
    assert len(eight) == 24


@pytest.mark.parametrize("weeks", [0, 9, -1, "two"])
def test_weeks_outside_one_to_eight_is_422(client, learner, accepted, weeks):
    response = meeting_times(client, learner, accepted, weeks=weeks)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == {"query.weeks"}


def test_a_request_not_yet_accepted_has_no_meeting_times(client, learner, mentor):
    exchange_id = requested(client, learner, mentor)
    for who in (learner, mentor):
        response = meeting_times(client, who, exchange_id)
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == "meeting times are offered once the mentor has accepted"


def test_a_closed_exchange_has_no_meeting_times(client, learner, mentor, accepted):
    client.post(f"{API}/exchanges/{accepted}/complete", headers=learner.headers)
    assert meeting_times(client, learner, accepted).status_code == 409
    assert (
        meeting_times(
            client, learner, accepted, format="ics", start="2026-12-02T21:00:00Z"
        ).status_code
        == 409
    )


def test_strangers_get_404_and_coordinators_who_take_no_part_403(
    client, session, settings, accepted
):
    stranger = person(session, settings, "stranger")
    coordinator = person(session, settings, "boss", role="coordinator")
    assert meeting_times(client, stranger, accepted).status_code == 404
    assert meeting_times(client, stranger, 999_999).status_code == 404
    ics = {"format": "ics", "start": "2026-12-02T21:00:00Z"}
    assert meeting_times(client, stranger, accepted, **ics).status_code == 404
    assert meeting_times(client, coordinator, accepted).status_code == 403
    assert client.get(f"{API}/exchanges/{accepted}/meeting-times").status_code == 401


def test_a_participant_without_availability_is_named_and_nothing_is_offered(
    client, session, settings, learner
):
    mentor = person(session, settings, "nozone", offers=[{"skill": "lua", "level": 2}])
    exchange_id = requested(client, learner, mentor)
    assert client.post(f"{API}/exchanges/{exchange_id}/accept", headers=mentor.headers).is_success
    body = meeting_times(client, learner, exchange_id).json()
    assert body == {
        "items": [],
        "without_availability": [{"id": mentor.id, "username": "nozone", "display_name": "Nozone"}],
    }


def test_the_ics_download_is_the_event_of_one_offered_time(client, learner, mentor, accepted):
    item = meeting_times(client, mentor, accepted).json()["items"][2]
    for start in (item["start"], item["learner_local"]["start"], item["mentor_local"]["start"]):
        response = meeting_times(client, learner, accepted, format="ics", start=start)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/calendar; charset=utf-8"
        assert response.headers["content-disposition"] == (
            f'attachment; filename="capex-exchange-{accepted}-20261207T2100Z.ics"'
        )
        fields = dict(parse_ics(response.text))
        assert fields["DTSTART"] == "20261207T210000Z"
        assert fields["DTEND"] == "20261208T000000Z"
        assert fields["DTSTAMP"] == "20261201T090700Z"
        assert fields["METHOD"] == "PUBLISH"
        assert unescape(fields["SUMMARY"]) == "capex: Lua \u2014 Alice and Bruno"
        description = unescape(fields["DESCRIPTION"])
        assert "Alice (alice) learns Lua from Bruno (bruno)." in description
        assert "Mon 07 Dec 18:00-21:00 America/Sao_Paulo" in description
        assert "Mon 07 Dec 22:00-01:00 Europe/Berlin" in description
        assert f"/exchanges/{accepted}" in description
        assert unescape(fields["UID"]) == f"exchange-{accepted}-20261207T2100Z@capex"


@pytest.mark.parametrize(
    "start",
    [
        "2026-12-07T21:15:00Z",  # within an offered time, not its start
        "2026-12-06T09:00:00Z",  # both free, but for 15 minutes only
        "2027-02-01T21:00:00Z",  # a Monday time, but past 8 weeks
        "2026-11-30T21:00:00Z",  # the Monday before now
        "9999-12-31T23:59:59-01:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    ],
)
def test_an_ics_start_that_is_no_offered_time_is_404(client, learner, accepted, start):
    response = meeting_times(client, learner, accepted, format="ics", start=start)
    assert response.status_code == 404, response.text
    assert (
        response.json()["detail"] == "no shared time starts then; pick one from the meeting times"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"format": "ics"},
        {"format": "ics", "start": "2026-12-07T21:00:00"},
        {"format": "ics", "start": "monday"},
    ],
)
def test_an_ics_without_a_start_with_its_offset_is_422_naming_start(
    client, learner, accepted, params
):
    response = meeting_times(client, learner, accepted, **params)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == {"query.start"}


def test_an_unknown_format_is_422(client, learner, accepted):
    response = meeting_times(client, learner, accepted, format="pdf")
    assert response.status_code == 422
    assert problem_fields(response) == {"query.format"}


def test_a_time_under_way_is_offered_from_the_next_quarter_hour(
    session, settings, accepted, learner
):
    viewer = session.get_one(Volunteer, learner.id)
    during = datetime(2026, 12, 2, 21, 40, 12, tzinfo=UTC)
    plan = meetings.meeting_times(session, settings, accepted, viewer, weeks=1, now=during)
    assert plan.items[0].start == datetime(2026, 12, 2, 21, 45, tzinfo=UTC)
    assert plan.items[0].end == datetime(2026, 12, 2, 23, tzinfo=UTC)
    filename, _ = meetings.meeting_ics(
        session, settings, accepted, viewer, datetime(2026, 12, 2, 21, 45, tzinfo=UTC), during
    )
    assert filename.endswith("-20261202T2145Z.ics")
