"""Meeting times from two weekly availabilities: against a minute-by-minute reference, around
daylight-saving changes, the weekly overlap as both read it, and the iCalendar text."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capex.matching.availability import availability_bitmap, overlap_minutes
from capex.services.meeting_times import (
    Interval,
    LocalStretch,
    SharedSlot,
    ics_event,
    materialise,
    shared_times,
    weekly_overlap,
)
from capex.services.profiles import WeeklySlot

MINUTE = timedelta(minutes=1)
Slot = tuple[int, int, int]
ALWAYS = [(day, 0, 1440) for day in range(7)]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def spans(intervals: list[Interval]) -> list[tuple[datetime, datetime]]:
    return [(i.start_utc, i.end_utc) for i in intervals]


# -- the reference: every UTC minute, read on each wall clock -------------------------------

ZONES = [
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Europe/Lisbon",
    "Pacific/Chatham",
    "America/New_York",
    "Europe/Berlin",
    "UTC",
]
# Days on which some of these zones change their clocks (Sao Paulo still did in 2018/19, at
# midnight), each zone with the wall times skipped or repeated [from, to) in minutes; and a
# day on which none changes.
CHANGE_DAYS: dict[date, dict[str, tuple[int, int]]] = {
    date(2026, 3, 8): {"America/New_York": (120, 180)},
    date(2026, 3, 29): {"Europe/Lisbon": (60, 120), "Europe/Berlin": (120, 180)},
    date(2026, 4, 5): {"Pacific/Chatham": (165, 225)},  # 03:45 back to 02:45
    date(2026, 9, 27): {"Pacific/Chatham": (165, 225)},  # 02:45 on to 03:45
    date(2026, 10, 25): {"Europe/Lisbon": (60, 120), "Europe/Berlin": (120, 180)},
    date(2026, 11, 1): {"America/New_York": (60, 120)},
    date(2018, 11, 4): {"America/Sao_Paulo": (0, 60)},
    date(2019, 2, 16): {"America/Sao_Paulo": (1380, 1440)},
    date(2026, 6, 15): {},
}
MARGIN_DAYS = 3
SPAN_DAYS = 4


@lru_cache(maxsize=256)
def wall_minutes(timezone: str, around: date) -> tuple[datetime, list[datetime], list[datetime]]:
    """From ``around - MARGIN - 2 days`` on, minute by minute for 2 * (MARGIN + 2) + SPAN days:
    the wall clock reading of each UTC minute, and its running maximum (when the clock has
    first reached a wall time)."""
    zone = ZoneInfo(timezone)
    base = datetime.combine(around, datetime.min.time(), tzinfo=UTC) - timedelta(
        days=MARGIN_DAYS + 2
    )
    count = (2 * (MARGIN_DAYS + 2) + SPAN_DAYS) * 1440
    walls = [(base + k * MINUTE).astimezone(zone).replace(tzinfo=None) for k in range(count)]
    reached, highest = [], walls[0]
    for wall in walls:
        highest = max(highest, wall)
        reached.append(highest)
    return base, walls, reached


def reference_free(
    slots: list[tuple[int, int, int]], timezone: str, around: date, start: datetime, end: datetime
) -> np.ndarray:
    """For each minute of ``[start, end)``: is the person free? Free from the first minute their
    clock shows a slot's start (or later) until the first minute it shows its end."""
    base, walls, reached = wall_minutes(timezone, around)
    free = np.zeros(len(walls), dtype=bool)
    days = {wall.date() for wall in walls}
    for day in days:
        for weekday, first, last in slots:
            if day.weekday() != weekday:
                continue
            midnight = datetime.combine(day, datetime.min.time())
            begin = bisect.bisect_left(reached, midnight + first * MINUTE)
            finish = bisect.bisect_left(reached, midnight + last * MINUTE)
            free[begin:finish] = True
    offset = (start - base) // MINUTE
    return free[offset : offset + (end - start) // MINUTE]


def runs(shared: np.ndarray, start: datetime, min_minutes: int) -> list[tuple[datetime, datetime]]:
    found, k = [], 0
    while k < len(shared):
        if not shared[k]:
            k += 1
            continue
        j = k
        while j < len(shared) and shared[j]:
            j += 1
        if j - k >= min_minutes:
            found.append((start + k * MINUTE, start + j * MINUTE))
        k = j
    return found


@st.composite
def weekly_slots(draw: st.DrawFn, around: date, changed: tuple[int, int]) -> list[Slot]:
    """Slots, often on the change day or next to it, starting or ending at, in or next to
    the wall times that day skips or repeats."""
    low, high = changed
    edges = sorted({low - 1, low, low + 1, (low + high) // 2, high - 1, high, high + 1, 0, 1440})
    slots = []
    for _ in range(draw(st.integers(0, 4))):
        near = (around.weekday() + draw(st.sampled_from([0, 0, 0, -1, 1]))) % 7
        weekday = draw(st.one_of(st.just(near), st.integers(0, 6)))
        starts = [m for m in edges if 0 <= m < 1440]
        first = draw(st.one_of(st.sampled_from(starts), st.integers(0, 1439)))
        ends = [m for m in edges if first < m <= 1440]
        last = draw(st.one_of(st.sampled_from(ends), st.integers(first + 1, 1440)))
        slots.append((weekday, first, last))
    return slots


@st.composite
def cases(draw: st.DrawFn) -> tuple[date, str, list[Slot], str, list[Slot]]:
    """A change day, and two people often in a zone that changes then, one of them sometimes
    always free (so that the other's change shows)."""
    around = draw(st.sampled_from(sorted(CHANGE_DAYS)))
    changing = sorted(CHANGE_DAYS[around])
    zones = st.sampled_from(ZONES)
    if changing:
        zones = st.one_of(st.sampled_from(changing), st.sampled_from(changing), zones)
    tz_a, tz_b = draw(zones), draw(zones)
    slots_a = draw(weekly_slots(around, CHANGE_DAYS[around].get(tz_a, (0, 60))))
    slots_b = draw(
        st.one_of(weekly_slots(around, CHANGE_DAYS[around].get(tz_b, (0, 60))), st.just(ALWAYS))
    )
    return around, tz_a, slots_a, tz_b, slots_b


@settings(max_examples=400, deadline=None)
@given(
    case=cases(),
    shift=st.integers(-MARGIN_DAYS * 1440 // 2, MARGIN_DAYS * 1440 // 2),
    length=st.integers(1, SPAN_DAYS * 1440),
    min_minutes=st.sampled_from([0, 1, 30, 90]),
)
def test_shared_times_equal_the_minute_by_minute_reference(case, shift, length, min_minutes):
    around, tz_a, slots_a, tz_b, slots_b = case
    start = datetime.combine(around, datetime.min.time(), tzinfo=UTC) + shift * MINUTE
    end = start + length * MINUTE
    shared = reference_free(slots_a, tz_a, around, start, end) & reference_free(
        slots_b, tz_b, around, start, end
    )
    found = shared_times(slots_a, tz_a, slots_b, tz_b, start, end, min_minutes=min_minutes)
    assert spans(found) == runs(shared, start, min_minutes)


# -- daylight-saving changes ----------------------------------------------------------------

SUNDAY = 6


def berlin(slots, start, end):
    return spans(materialise(slots, "Europe/Berlin", start, end))


def test_a_slot_over_the_jump_forward_is_an_hour_shorter():
    window = (utc(2026, 3, 28), utc(2026, 3, 30))
    assert berlin([(SUNDAY, "01:00", "03:00")], *window) == [
        (utc(2026, 3, 29, 0), utc(2026, 3, 29, 1))
    ]


def test_a_slot_over_the_jump_back_keeps_the_repeated_hour():
    window = (utc(2026, 10, 24), utc(2026, 10, 26))
    assert berlin([(SUNDAY, "01:00", "03:00")], *window) == [
        (utc(2026, 10, 24, 23), utc(2026, 10, 25, 2))
    ]


def test_a_slot_in_the_skipped_hour_is_empty_and_one_starting_in_it_starts_at_the_jump():
    window = (utc(2026, 3, 28), utc(2026, 3, 30))
    assert berlin([(SUNDAY, "02:00", "03:00")], *window) == []
    assert berlin([(SUNDAY, "02:30", "04:00")], *window) == [
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2))
    ]


def test_a_repeated_wall_time_counts_the_first_time():
    window = (utc(2026, 10, 24), utc(2026, 10, 26))
    # 02:00-02:30 happens twice on the wall; the slot is the first (summer time) one.
    assert berlin([(SUNDAY, "02:00", "02:30")], *window) == [
        (utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30))
    ]


def test_midnight_skipped_in_sao_paulo_starts_the_day_at_one():
    # 4 November 2018: clocks went from 00:00 (-03) to 01:00 (-02).
    found = materialise([(SUNDAY, 0, 120)], "America/Sao_Paulo", utc(2018, 11, 3), utc(2018, 11, 5))
    assert spans(found) == [(utc(2018, 11, 4, 3), utc(2018, 11, 4, 4))]


def test_chatham_quarter_hour_offsets_across_its_change():
    # 5 April 2026, 03:45 (+13:45) becomes 02:45 (+12:45); a Sunday 02:00-05:00 slot keeps it.
    found = materialise(
        [(SUNDAY, "02:00", "05:00")], "Pacific/Chatham", utc(2026, 4, 3), utc(2026, 4, 6)
    )
    assert spans(found) == [(utc(2026, 4, 4, 12, 15), utc(2026, 4, 4, 16, 15))]


def test_new_york_and_lisbon_meet_at_other_utc_times_while_only_one_has_changed():
    new_york = [(0, "09:00", "12:00")]
    lisbon = [(0, "13:00", "17:00")]
    found = shared_times(
        new_york, "America/New_York", lisbon, "Europe/Lisbon", utc(2026, 3, 2), utc(2026, 3, 10)
    )
    assert spans(found) == [
        (utc(2026, 3, 2, 14), utc(2026, 3, 2, 17)),  # New York -05:00
        (utc(2026, 3, 9, 13), utc(2026, 3, 9, 16)),  # New York -04:00 since 8 March
    ]


def test_touching_slots_merge_clipping_and_short_pieces():
    slots = [(0, "22:00", "24:00"), (1, "00:00", "02:00"), (2, "10:00", "10:20")]
    window = (utc(2026, 11, 30), utc(2026, 12, 7))
    assert spans(shared_times(slots, "UTC", ALWAYS, "UTC", *window)) == [
        (utc(2026, 11, 30, 22), utc(2026, 12, 1, 2))
    ]
    assert spans(shared_times(slots, "UTC", ALWAYS, "UTC", *window, min_minutes=15)) == [
        (utc(2026, 11, 30, 22), utc(2026, 12, 1, 2)),
        (utc(2026, 12, 2, 10), utc(2026, 12, 2, 10, 20)),
    ]
    # From 01:40 on Tuesday only 20 minutes are left: shorter than 30.
    late = (utc(2026, 12, 1, 1, 40), utc(2026, 12, 7))
    assert shared_times(slots, "UTC", ALWAYS, "UTC", *late) == []
    clipped = (utc(2026, 12, 1, 1), utc(2026, 12, 7))
    assert spans(shared_times(slots, "UTC", ALWAYS, "UTC", *clipped)) == [
        (utc(2026, 12, 1, 1), utc(2026, 12, 1, 2))
    ]


def test_minutes_and_wall_times_are_the_same_slot():
    window = (utc(2026, 11, 30), utc(2026, 12, 7))
    as_text = shared_times([(0, "18:30", "24:00")], "Asia/Kolkata", ALWAYS, "UTC", *window)
    as_minutes = shared_times([(0, 1110, 1440)], "Asia/Kolkata", ALWAYS, "UTC", *window)
    assert as_text == as_minutes == [Interval(utc(2026, 11, 30, 13), utc(2026, 11, 30, 18, 30))]


@pytest.mark.parametrize(
    ("slots", "timezone", "start"),
    [
        ([(7, 0, 60)], "UTC", utc(2026, 1, 1)),
        ([(0, 60, 60)], "UTC", utc(2026, 1, 1)),
        ([(0, "9:00", "10:00")], "UTC", utc(2026, 1, 1)),
        ([(0, "24:30", "25:00")], "UTC", utc(2026, 1, 1)),
        ([(0, 0, 60)], "Mars/Olympus", utc(2026, 1, 1)),
        ([(0, 0, 60)], "UTC", datetime(2026, 1, 1)),
    ],
)
def test_bad_input_is_a_value_error(slots, timezone, start):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        shared_times(slots, timezone, ALWAYS, "UTC", start, start + timedelta(days=1))


# -- the week as both read it ---------------------------------------------------------------

WINTER_WEEK = utc(2026, 11, 30)  # a Monday


def test_weekly_overlap_names_the_other_day_when_the_other_clock_is_past_midnight():
    found = weekly_overlap(
        [(0, "18:00", "20:00")], "America/New_York", ALWAYS, "Europe/Istanbul", WINTER_WEEK
    )
    assert found == [
        SharedSlot(LocalStretch(0, "18:00", "20:00"), LocalStretch(1, "02:00", "04:00"), 120)
    ]


def test_weekly_overlap_cuts_a_stretch_at_the_other_clock_midnight():
    found = weekly_overlap(
        [(0, "19:00", "21:00")],
        "America/Sao_Paulo",
        [(0, "20:00", "24:00"), (1, "00:00", "06:00")],
        "Europe/Berlin",
        WINTER_WEEK,
    )
    assert found == [
        SharedSlot(LocalStretch(0, "19:00", "20:00"), LocalStretch(0, "23:00", "24:00"), 60),
        SharedSlot(LocalStretch(0, "20:00", "21:00"), LocalStretch(1, "00:00", "01:00"), 60),
    ]


def test_weekly_overlap_joins_the_week_end_to_its_start_and_cuts_at_each_midnight():
    found = weekly_overlap(
        [(SUNDAY, "22:00", "24:00"), (0, "00:00", "02:00")],
        "UTC",
        [(0, "03:30", "07:30")],
        "Asia/Kolkata",
        WINTER_WEEK,
    )
    assert found == [
        SharedSlot(LocalStretch(0, "00:00", "02:00"), LocalStretch(0, "05:30", "07:30"), 120),
        SharedSlot(LocalStretch(SUNDAY, "22:00", "24:00"), LocalStretch(0, "03:30", "05:30"), 120),
    ]


def test_weekly_overlap_of_people_never_free_together_is_empty():
    assert weekly_overlap([(0, 0, 600)], "UTC", [(1, 0, 600)], "UTC", WINTER_WEEK) == []


# -- iCalendar ------------------------------------------------------------------------------


def parse_ics(text: str) -> list[tuple[str, str]]:
    """A strict reading of RFC 5545 content lines: CRLF only, at most 75 octets a line, folds
    that split no UTF-8 character; the unfolded (name, value) pairs."""
    raw = text.encode("utf-8")
    assert raw.endswith(b"\r\n")
    physical = raw[:-2].split(b"\r\n")
    lines: list[str] = []
    for line in physical:
        assert b"\r" not in line
        assert b"\n" not in line
        assert len(line) <= 75, line
        piece = line.decode("utf-8")  # each physical line is whole UTF-8 on its own
        if piece.startswith(" "):
            lines[-1] += piece[1:]
        else:
            lines.append(piece)
    return [tuple(line.split(":", 1)) for line in lines]  # type: ignore[misc]


def unescape(value: str) -> str:
    out, k = [], 0
    while k < len(value):
        char = value[k]
        if char == "\\":
            following = value[k + 1]
            assert following in "\\;,nN", value
            out.append("\n" if following in "nN" else following)
            k += 2
            continue
        assert char not in ";,", value  # unescaped separators are not TEXT
        out.append(char)
        k += 1
    return "".join(out)


def test_ics_event_is_strict_rfc_5545():
    summary = "capex: Lua \u2014 Zoë and Bob; really, truly"
    description = "Line one\\two\nLine \u00e9" + "\u00e9" * 80 + "\r\nend \U0001f600" * 5
    text = ics_event(
        "exchange-7-20261201T2100Z@capex",
        utc(2026, 12, 1, 21),
        utc(2026, 12, 1, 23, 30),
        summary,
        description,
        now=utc(2026, 11, 30, 12, 0, 5),
        url="https://capex.example.org/exchanges/7",
    )
    pairs = parse_ics(text)
    names = [name for name, _ in pairs]
    assert names[:2] == ["BEGIN", "VERSION"]
    assert names[-2:] == ["END", "END"]
    fields = dict(pairs)
    assert fields["VERSION"] == "2.0"
    assert fields["METHOD"] == "PUBLISH"
    assert fields["PRODID"]
    assert [value for name, value in pairs if name in ("BEGIN", "END")] == [
        "VCALENDAR",
        "VEVENT",
        "VEVENT",
        "VCALENDAR",
    ]
    assert fields["DTSTART"] == "20261201T210000Z"
    assert fields["DTEND"] == "20261201T233000Z"
    assert fields["DTSTAMP"] == "20261130T120005Z"
    assert unescape(fields["UID"]) == "exchange-7-20261201T2100Z@capex"
    assert unescape(fields["SUMMARY"]) == summary
    assert unescape(fields["DESCRIPTION"]) == description.replace("\r\n", "\n")
    assert fields["URL"] == "https://capex.example.org/exchanges/7"
    # The long description was folded.
    assert text.count("\r\n ") >= 3


def test_ics_folds_at_exactly_75_octets_and_escapes_exactly():
    text = ics_event(
        "u", utc(2026, 1, 1), utc(2026, 1, 1, 1), "a,b;c\\d\ne", "x" * 200, utc(2026, 1, 1)
    )
    assert "SUMMARY:a\\,b\\;c\\\\d\\ne\r\n" in text
    physical = text.split("\r\n")
    at = next(k for k, line in enumerate(physical) if line.startswith("DESCRIPTION:"))
    lines = [line.removeprefix("DESCRIPTION:") for line in physical[at : at + 3]]
    assert len(("DESCRIPTION:" + lines[0]).encode()) == 75
    assert lines[1] == " " + "x" * 74
    assert lines[2] == " " + "x" * (200 - 63 - 74)
    assert "URL" not in text


def test_ics_leaves_out_control_characters_and_refuses_a_bad_url():
    text = ics_event(
        "u", utc(2026, 1, 1), utc(2026, 1, 1, 1), "a\x00b\x07c\td", "", utc(2026, 1, 1)
    )
    assert "SUMMARY:abc\td\r\n" in text
    with pytest.raises(ValueError, match="URI"):
        ics_event("u", utc(2026, 1, 1), utc(2026, 1, 1, 1), "s", "d", utc(2026, 1, 1), url="a\r\nb")
    with pytest.raises(ValueError, match="ends after"):
        ics_event("u", utc(2026, 1, 1), utc(2026, 1, 1), "s", "d", utc(2026, 1, 1))


def test_a_profile_weekly_slot_is_a_slot():
    found = weekly_overlap(
        [WeeklySlot(0, "18:00", "20:00")],
        "America/New_York",
        ALWAYS,
        "Europe/Istanbul",
        WINTER_WEEK,
    )
    assert [(slot.a, slot.b) for slot in found] == [
        (LocalStretch(0, "18:00", "20:00"), LocalStretch(1, "02:00", "04:00"))
    ]


quarter_slots = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 95), st.integers(1, 96)).map(
        lambda t: (t[0], 15 * min(t[1], t[2] - 1), 15 * max(t[2], t[1] + 1))
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    slots_a=quarter_slots,
    tz_a=st.sampled_from(ZONES),
    slots_b=quarter_slots,
    tz_b=st.sampled_from(ZONES),
)
def test_the_weekly_overlap_adds_up_to_what_matching_counts(slots_a, tz_a, slots_b, tz_b):
    # A week in which none of these zones changes its clocks, nor the weeks either side.
    week = utc(2026, 6, 15)
    found = weekly_overlap(slots_a, tz_a, slots_b, tz_b, week)
    counted = overlap_minutes(
        availability_bitmap(slots_a, tz_a, week), availability_bitmap(slots_b, tz_b, week)
    )
    assert sum(slot.minutes for slot in found) == int(counted)
    for slot in found:
        assert slot.minutes > 0
        assert slot.a.start < slot.a.end
        assert slot.b.start < slot.b.end
