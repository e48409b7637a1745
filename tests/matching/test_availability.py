from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from capex.matching import availability_bitmap, next_week_start, overlap_minutes
from capex.matching.availability import (
    QUARTERS_PER_WEEK,
    WORDS_PER_WEEK,
    slot_intervals,
    validate_week_start,
    wall_clock_table,
)
from tests.matching.helpers import BOTH_DST_WEEK, SUMMER_WEEK, US_ONLY_DST_WEEK, WINTER_WEEK

MONDAY = 0
SUNDAY = 6


def quarters(bitmap: np.ndarray) -> list[int]:
    """The set bits of a (11,) bitmap, as quarter-hour numbers of the week."""
    return [q for q in range(QUARTERS_PER_WEEK) if int(bitmap[q // 64]) >> (q % 64) & 1]


def utc_minutes(slots: list[tuple[int, int, int]], zone: str, week: datetime) -> list[int]:
    return [15 * q for q in quarters(availability_bitmap(slots, zone, week))]


Slots = tuple[list[tuple[int, int, int]], str]


def overlap(a: Slots, b: Slots, week: datetime) -> int:
    return int(overlap_minutes(availability_bitmap(*a, week), availability_bitmap(*b, week)))


def hours(day: int, hour: float) -> int:
    return int(day * 1440 + hour * 60)


@pytest.mark.parametrize(
    ("week", "expected_overlap"),
    [
        (WINTER_WEEK, 60),  # New York 09:00 EST = 14:00 UTC; London 13:00 GMT
        (US_ONLY_DST_WEEK, 120),  # New York on EDT (13:00 UTC), London still on GMT
        (BOTH_DST_WEEK, 60),  # London on BST: 13:00 local = 12:00 UTC
    ],
)
def test_new_york_against_london_in_march(week: datetime, expected_overlap: int) -> None:
    new_york = ([(MONDAY, 9 * 60, 11 * 60)], "America/New_York")
    london = ([(MONDAY, 13 * 60, 15 * 60)], "Europe/London")
    assert overlap(new_york, london, week) == expected_overlap


def test_the_week_of_the_us_change_converts_each_day_with_its_own_offset() -> None:
    # 2026-03-02 .. 03-08: New York moves to EDT at 02:00 on Sunday 8 March.
    week = datetime(2026, 3, 2, tzinfo=UTC)
    minutes = utc_minutes(
        [(MONDAY, 9 * 60, 10 * 60), (5, 9 * 60, 10 * 60)], "America/New_York", week
    )
    assert minutes[0] == hours(0, 14)  # Monday on EST
    minutes = utc_minutes([(SUNDAY, 9 * 60, 10 * 60)], "America/New_York", week)
    assert minutes[0] == hours(6, 13)  # Sunday already on EDT


def test_half_and_three_quarter_hour_zones_are_exact() -> None:
    week = WINTER_WEEK
    kolkata = ([(MONDAY, 9 * 60, 10 * 60)], "Asia/Kolkata")  # 03:30-04:30 UTC
    kathmandu = ([(MONDAY, 9 * 60, 10 * 60)], "Asia/Kathmandu")  # 03:15-04:15 UTC
    utc = ([(MONDAY, 3 * 60, 4 * 60)], "UTC")
    assert utc_minutes(*kolkata, week)[0] == hours(0, 3.5)
    assert utc_minutes(*kathmandu, week)[0] == hours(0, 3.25)
    assert overlap(kolkata, kathmandu, week) == 45
    assert overlap(kolkata, utc, week) == 30
    assert overlap(kathmandu, utc, week) == 45


def test_sunday_evening_in_los_angeles_is_monday_morning_utc() -> None:
    minutes = utc_minutes([(SUNDAY, 17 * 60, 20 * 60)], "America/Los_Angeles", SUMMER_WEEK)
    assert minutes == list(range(0, 180, 15))  # Monday 00:00-03:00 UTC (PDT is UTC-7)
    utc_monday = ([(MONDAY, 0, 60)], "UTC")
    los_angeles = ([(SUNDAY, 17 * 60, 20 * 60)], "America/Los_Angeles")
    assert overlap(los_angeles, utc_monday, SUMMER_WEEK) == 60


def test_monday_morning_in_tokyo_is_sunday_utc_and_wraps_the_week() -> None:
    minutes = utc_minutes([(MONDAY, 8 * 60, 10 * 60)], "Asia/Tokyo", WINTER_WEEK)
    # 08:00-10:00 JST = Sunday 23:00 - Monday 01:00 UTC: the end of the week and its start.
    assert minutes == [*range(0, 60, 15), *range(hours(6, 23), hours(7, 0), 15)]
    utc_sunday = ([(SUNDAY, 23 * 60, 1440)], "UTC")
    assert overlap(([(MONDAY, 8 * 60, 10 * 60)], "Asia/Tokyo"), utc_sunday, WINTER_WEEK) == 60


def test_a_24_00_end_is_the_next_midnight() -> None:
    assert utc_minutes([(4, 23 * 60, 1440)], "UTC", WINTER_WEEK) == list(
        range(hours(4, 23), hours(5, 0), 15)
    )
    assert utc_minutes([(SUNDAY, 0, 1440)], "UTC", WINTER_WEEK) == list(
        range(hours(6, 0), hours(7, 0), 15)
    )
    # The whole week, in a zone whose week ends on Sunday 15:00 UTC, is still the whole week.
    every_day = [(day, 0, 1440) for day in range(7)]
    assert len(utc_minutes(every_day, "Asia/Tokyo", WINTER_WEEK)) == QUARTERS_PER_WEEK


def test_wall_times_skipped_by_spring_forward_do_not_count() -> None:
    week = datetime(2026, 3, 2, tzinfo=UTC)  # Sunday 8 March: 02:00 EST jumps to 03:00 EDT
    assert slot_intervals([(SUNDAY, 120, 180)], "America/New_York", week) == [
        (hours(6, 7), hours(6, 7))
    ]
    # 01:00-04:00 on that night lasts two real hours: 06:00-08:00 UTC.
    assert utc_minutes([(SUNDAY, 60, 240)], "America/New_York", week) == list(
        range(hours(6, 6), hours(6, 8), 15)
    )
    # A skipped start takes the instant of the jump: 02:30-04:00 is 03:00-04:00 EDT.
    assert utc_minutes([(SUNDAY, 150, 240)], "America/New_York", week) == list(
        range(hours(6, 7), hours(6, 8), 15)
    )


def test_wall_times_repeated_by_fall_back_count_both_times() -> None:
    week = datetime(2026, 10, 26, tzinfo=UTC)  # Sunday 1 November: 02:00 EDT back to 01:00 EST
    # 01:00-02:00 is shown twice, 05:00-07:00 UTC: two real hours.
    assert utc_minutes([(SUNDAY, 60, 120)], "America/New_York", week) == list(
        range(hours(6, 5), hours(6, 7), 15)
    )


def test_a_zone_that_skips_midnight_moves_24_00_to_the_jump() -> None:
    # America/Santiago skips 00:00-01:00 on Sunday 6 September 2026.
    week = datetime(2026, 8, 31, tzinfo=UTC)
    table = wall_clock_table("America/Santiago", week)
    assert table[5, 96] == table[6, 0] == table[6, 4]  # 24:00 Saturday = 00:00 = 01:00 Sunday


def test_lord_howe_half_hour_daylight_saving() -> None:
    week = datetime(2026, 3, 30, tzinfo=UTC)  # Lord Howe leaves +11 for +10:30 on 5 April
    monday = utc_minutes([(MONDAY, 12 * 60, 13 * 60)], "Australia/Lord_Howe", week)
    sunday = utc_minutes([(SUNDAY, 12 * 60, 13 * 60)], "Australia/Lord_Howe", week)
    assert monday[0] == hours(0, 1)  # 12:00 at +11
    assert sunday[0] == hours(6, 1.5)  # 12:00 at +10:30


def test_bitmaps_have_eleven_words_and_no_bits_past_the_week() -> None:
    bitmap = availability_bitmap([(day, 0, 1440) for day in range(7)], "UTC", WINTER_WEEK)
    assert bitmap.shape == (WORDS_PER_WEEK,)
    assert bitmap.dtype == np.uint64
    assert int(bitmap[-1]) == (1 << 32) - 1


@pytest.mark.parametrize(
    "week_start",
    [
        datetime(2026, 3, 9),  # naive
        datetime(2026, 3, 10, tzinfo=UTC),  # a Tuesday
        datetime(2026, 3, 9, 1, tzinfo=UTC),  # not midnight
        datetime(2026, 3, 9, tzinfo=timezone(timedelta(hours=1))),  # not UTC
    ],
)
def test_week_start_must_be_a_utc_monday_midnight(week_start: datetime) -> None:
    with pytest.raises(ValueError, match="week_start"):
        validate_week_start(week_start)


def test_unknown_time_zone_raises() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus_Mons'"):
        availability_bitmap([(0, 0, 60)], "Mars/Olympus_Mons", WINTER_WEEK)


def test_next_week_start() -> None:
    assert next_week_start(datetime(2026, 3, 11, 15, tzinfo=UTC)) == US_ONLY_DST_WEEK + timedelta(
        days=7
    )
    assert next_week_start(US_ONLY_DST_WEEK) == US_ONLY_DST_WEEK
    # Sunday 21:00 in New York is already Monday 01:00 in UTC.
    new_york = datetime(2026, 3, 15, 21, tzinfo=timezone(timedelta(hours=-4)))
    assert next_week_start(new_york) == datetime(2026, 3, 23, tzinfo=UTC)
