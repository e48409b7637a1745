"""Weekly availability as 672-bit UTC bitmaps (one bit per quarter hour of the coming week).

A volunteer gives slots ``(weekday, start_minute, end_minute)`` on the wall clock of their own
IANA time zone. For the coming week ``[week_start, week_start + 7 days)`` (``week_start`` is a
Monday 00:00 UTC), local weekday ``d`` is the calendar date ``week_start.date() + d``; each slot
end is converted on that date with :mod:`zoneinfo`, so a daylight-saving change applies exactly
to the days after it. A wall time is converted to the earliest instant at which the wall clock
shows it (the first of two, when clocks go back); a wall time skipped when clocks go forward is
converted to the instant of the jump. The UTC interval, as minutes since ``week_start``, is
taken modulo the week: a Sunday-evening slot in Los Angeles lands on Monday morning, a
Monday-morning slot in Tokyo on Sunday.

Every UTC offset in use today is a whole number of quarter hours (+5:30, +5:45, +12:45, ...),
so quarter-hour bits are exact: bit ``q`` of the week is ``1 << (q % 64)`` in word ``q // 64``,
11 ``uint64`` words a week (the last one half used).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

MINUTES_PER_DAY = 1440
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
QUARTER_MINUTES = 15
QUARTERS_PER_DAY = MINUTES_PER_DAY // QUARTER_MINUTES
QUARTERS_PER_WEEK = MINUTES_PER_WEEK // QUARTER_MINUTES  # 672
WORDS_PER_WEEK = -(-QUARTERS_PER_WEEK // 64)  # 11

# A wall time skipped by a daylight-saving jump takes the instant of the next wall time that
# exists; no zone jumps by more than two hours, so three hours of look-ahead always find one.
_GAP_LOOKAHEAD_QUARTERS = 12
# Rows turned into bitmaps at once: bounds the temporary (rows, 672) boolean block to 22 MB.
_BITMAP_CHUNK_ROWS = 32768

Bitmaps = npt.NDArray[np.uint64]


def validate_week_start(week_start: datetime) -> datetime:
    """Check that ``week_start`` is an aware Monday 00:00 UTC; return it with ``tzinfo=UTC``."""
    if not isinstance(week_start, datetime):
        raise ValueError(f"week_start must be a datetime, got {type(week_start).__name__}")
    offset = week_start.utcoffset()
    if offset is None:
        raise ValueError("week_start must be timezone-aware (UTC)")
    if offset != timedelta(0):
        raise ValueError(f"week_start must be in UTC, got offset {offset}")
    if week_start.weekday() != 0 or week_start.time() != time(0):
        raise ValueError(f"week_start must be a Monday 00:00 UTC, got {week_start.isoformat()}")
    return week_start.replace(tzinfo=UTC)


def next_week_start(now: datetime) -> datetime:
    """The first Monday 00:00 UTC at or after the aware datetime ``now``."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now_utc = now.astimezone(UTC)
    monday = datetime.combine(now_utc.date(), time(0), tzinfo=UTC) - timedelta(
        days=now_utc.weekday()
    )
    return monday if monday == now_utc else monday + timedelta(days=7)


@lru_cache(maxsize=1024)
def load_zone(timezone: str) -> ZoneInfo:
    """The :class:`~zoneinfo.ZoneInfo` for an IANA name; ValueError for an unknown one."""
    if not isinstance(timezone, str) or not timezone:
        raise ValueError(f"time zone must be a non-empty IANA name, got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the wall time ``wall`` (aware, fold 0) is shown by the clock in ``zone``."""
    back = wall.astimezone(UTC).astimezone(zone)
    return back.replace(tzinfo=None) == wall.replace(tzinfo=None)


@lru_cache(maxsize=4096)
def _cached_wall_clock_table(timezone: str, week_start: datetime) -> npt.NDArray[np.int64]:
    zone = load_zone(timezone)
    table = np.empty((7, QUARTERS_PER_DAY + 1), dtype=np.int64)
    minute = timedelta(minutes=1)
    for weekday in range(7):
        day: date = week_start.date() + timedelta(days=weekday)
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        following: datetime | None = None
        # Backwards, so that a skipped wall time takes the instant of the next one that exists.
        for quarter in range(QUARTERS_PER_DAY + _GAP_LOOKAHEAD_QUARTERS, -1, -1):
            wall = midnight + timedelta(minutes=quarter * QUARTER_MINUTES)
            if _exists(wall, zone):
                following = wall.astimezone(UTC)
            if quarter <= QUARTERS_PER_DAY:
                if following is None:  # pragma: no cover - no zone skips three hours
                    raise ValueError(f"{timezone}: no wall time exists after {wall}")
                table[weekday, quarter] = (following - week_start) // minute
    table.setflags(write=False)
    return table


def wall_clock_table(timezone: str, week_start: datetime) -> npt.NDArray[np.int64]:
    """When the wall clock of ``timezone`` shows each quarter hour of the coming week.

    Parameters
    ----------
    timezone : str
        IANA time zone name.
    week_start : datetime
        Aware Monday 00:00 UTC that starts the coming week.

    Returns
    -------
    ndarray of int64, shape (7, 97), read-only
        ``table[d, q]`` is the instant, in minutes since ``week_start`` (possibly negative or
        past the week's end, not yet wrapped), at which local weekday ``d`` of the coming week
        reaches wall time ``15 * q`` minutes; ``q = 96`` is 24:00, the next day's midnight.
    """
    return _cached_wall_clock_table(timezone, validate_week_start(week_start))


def bitmaps_from_intervals(
    n_rows: int,
    rows: npt.NDArray[np.int64],
    start_minutes: npt.NDArray[np.int64],
    end_minutes: npt.NDArray[np.int64],
) -> Bitmaps:
    """Weekly bitmaps from UTC intervals, wrapped modulo the week.

    Parameters
    ----------
    n_rows : int
        Number of bitmaps to return.
    rows : ndarray of int, shape (k,)
        The bitmap (0 <= row < n_rows) each interval belongs to.
    start_minutes, end_minutes : ndarray of int, shape (k,)
        Interval ``[start, end)`` in minutes since the week's start, unwrapped, with
        ``end - start`` shorter than a week; both are rounded down to a quarter hour.

    Returns
    -------
    ndarray of uint64, shape (11, n_rows)
        Word-major bitmaps: ``bitmaps[w, r]`` holds quarters ``64 w .. 64 w + 63`` of row ``r``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    first = np.floor_divide(start_minutes, QUARTER_MINUTES).astype(np.int64)
    lengths = np.floor_divide(end_minutes, QUARTER_MINUTES).astype(np.int64) - first
    lengths = np.clip(lengths, 0, QUARTERS_PER_WEEK)
    bitmaps = np.zeros((WORDS_PER_WEEK, n_rows), dtype=np.uint64)
    for chunk_start in range(0, n_rows, _BITMAP_CHUNK_ROWS):
        chunk_rows = min(_BITMAP_CHUNK_ROWS, n_rows - chunk_start)
        selected = (rows >= chunk_start) & (rows < chunk_start + chunk_rows) & (lengths > 0)
        if not selected.any():
            continue
        length = lengths[selected]
        owner = np.repeat(np.arange(length.size), length)
        step = np.arange(owner.size) - np.repeat(np.cumsum(length) - length, length)
        quarter = (first[selected][owner] + step) % QUARTERS_PER_WEEK
        local_row = rows[selected][owner] - chunk_start
        bits = np.zeros((chunk_rows, WORDS_PER_WEEK * 64), dtype=np.bool_)
        bits[local_row, quarter] = True
        packed = np.packbits(bits, axis=1, bitorder="little")
        bitmaps[:, chunk_start : chunk_start + chunk_rows] = packed.view("<u8").T
    return bitmaps


def slot_intervals(
    slots: Sequence[tuple[int, int, int]], timezone: str, week_start: datetime
) -> list[tuple[int, int]]:
    """The UTC intervals of local ``slots`` in the coming week, in minutes since ``week_start``.

    Unwrapped (a start may be negative or past the week); an interval that lies wholly in a
    daylight-saving gap comes out empty (``start == end``).
    """
    table = wall_clock_table(timezone, week_start)
    return [
        (
            int(table[weekday, start // QUARTER_MINUTES]),
            int(table[weekday, end // QUARTER_MINUTES]),
        )
        for weekday, start, end in slots
    ]


def availability_bitmap(
    slots: Sequence[tuple[int, int, int]], timezone: str, week_start: datetime
) -> Bitmaps:
    """One volunteer's bitmap for the coming week.

    Parameters
    ----------
    slots : sequence of (weekday, start_minute, end_minute)
        Local slots; minutes multiples of 15, ``0 <= start < end <= 1440``.
    timezone : str
        IANA time zone of the slots.
    week_start : datetime
        Aware Monday 00:00 UTC that starts the coming week.

    Returns
    -------
    ndarray of uint64, shape (11,)
    """
    intervals = slot_intervals(slots, timezone, week_start)
    starts = np.array([start for start, _ in intervals], dtype=np.int64)
    ends = np.array([end for _, end in intervals], dtype=np.int64)
    rows = np.zeros(len(intervals), dtype=np.int64)
    bitmap: Bitmaps = bitmaps_from_intervals(1, rows, starts, ends)[:, 0]
    return bitmap


def overlap_minutes(bitmap: Bitmaps, others: Bitmaps) -> npt.NDArray[np.int64]:
    """Minutes a week that ``bitmap`` shares with each of ``others``.

    Parameters
    ----------
    bitmap : ndarray of uint64, shape (11,)
    others : ndarray of uint64, shape (11,) or (11, n)

    Returns
    -------
    ndarray of int64, shape () or (n,)
    """
    if others.ndim == 1:
        shared = np.bitwise_count(bitmap & others).sum(dtype=np.int64)
    else:
        shared = np.bitwise_count(bitmap[:, None] & others).sum(axis=0, dtype=np.int64)
    minutes: npt.NDArray[np.int64] = shared * QUARTER_MINUTES
    return minutes
