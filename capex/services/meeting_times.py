"""When two people's weekly availabilities meet, as real instants, and as an iCalendar event.

Pure time arithmetic on :mod:`zoneinfo`: no ORM, no web framework. A slot is
``(weekday, start, end)``: weekday 0 (Monday) .. 6 (Sunday), ``start`` and ``end`` minutes after
local midnight (``0 <= start < end <= 1440``) or ``"HH:MM"`` (``"24:00"`` allowed as an end), on
the wall clock of the person's IANA time zone; a profile's ``WeeklySlot`` will do as well.

Each slot is materialised day by day on the local calendar: on local date ``D`` with
``D.weekday() == weekday`` it runs from the instant the person's clock first reaches ``D start``
to the instant it first reaches ``D end`` (``24:00`` is the next day's midnight). For a wall
time that exists once this is simply that instant. Around daylight-saving changes:

- clocks going forward skip wall times; a skipped time is first "reached" at the instant of the
  jump, so a slot 01:00-03:00 in Berlin on the spring-forward day lasts one hour, and a slot
  that lies wholly in the gap is empty;
- clocks going back show some wall times twice; the first of the two counts (``fold=0``), so a
  slot 01:00-03:00 in Berlin on the autumn day lasts three hours (it keeps the repeated hour).

This is the rule the matching engine uses for its weekly bitmaps (``capex.matching.availability``),
so what matching promises and what is offered here agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from capex.matching.availability import load_zone

MINUTES_PER_DAY = 1440
WEEK = timedelta(days=7)

SlotTime = int | str


class WallSlot(Protocol):
    """A slot as profiles show it (``profiles.WeeklySlot``): weekday and 'HH:MM' times."""

    @property
    def weekday(self) -> int: ...
    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...


# (weekday, start, end) in minutes or 'HH:MM', or a profile's WeeklySlot.
Slot = tuple[int, SlotTime, SlotTime] | WallSlot


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A stretch of time ``[start_utc, end_utc)``, both aware UTC datetimes."""

    start_utc: datetime
    end_utc: datetime

    @property
    def minutes(self) -> int:
        return int((self.end_utc - self.start_utc) // timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class LocalStretch:
    """A stretch within one local day: weekday 0 (Monday) .. 6, and ``"HH:MM"`` wall times
    (``end`` ``"24:00"`` when it runs to midnight)."""

    weekday: int
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class SharedSlot:
    """One weekly stretch both are free, on A's wall clock and on B's, and how long it is."""

    a: LocalStretch
    b: LocalStretch
    minutes: int


# -- slots -----------------------------------------------------------------------------------


def _minute(value: SlotTime, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be minutes or 'HH:MM', got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        hours, colon, minutes = value.partition(":")
        digits = hours + minutes
        well_formed = colon and len(hours) == len(minutes) == 2
        if well_formed and digits.isascii() and digits.isdigit() and int(minutes) < 60:
            return int(hours) * 60 + int(minutes)
    raise ValueError(f"{what} must be minutes or 'HH:MM', got {value!r}")


def normalise_slots(slots: Iterable[Slot]) -> list[tuple[int, int, int]]:
    """Slots as ``(weekday, start_minute, end_minute)``; ValueError names a bad one."""
    normal = []
    for slot in slots:
        weekday, start, end = (
            slot if isinstance(slot, tuple) else (slot.weekday, slot.start, slot.end)
        )
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"slot {slot!r}: weekday must be 0 (Monday) .. 6 (Sunday)")
        first, last = _minute(start, "start"), _minute(end, "end")
        if not 0 <= first < last <= MINUTES_PER_DAY:
            raise ValueError(f"slot {slot!r}: need 00:00 <= start < end <= 24:00")
        normal.append((weekday, first, last))
    return normal


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def first_reached(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock of ``zone`` shows ``wall`` (naive) or later.

    A wall time shown twice: the first of the two (``fold=0``). A wall time skipped by a jump
    forward: the instant of the jump.
    """
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # Skipped: fold=0 reads it with the offset before the jump, which lands after the jump;
    # fold=1 (the offset after) lands before it. The jump lies in between: bisect on seconds.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # The clock shows less than ``wall`` at ``low`` and at least ``wall`` at ``high``.
    low, high = sorted((int(before.timestamp()), int(instant.timestamp())))
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined and empty ones dropped."""
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if interval.end_utc <= interval.start_utc:
            continue
        if merged and interval.start_utc <= merged[-1].end_utc:
            last = merged[-1]
            merged[-1] = Interval(last.start_utc, max(last.end_utc, interval.end_utc))
        else:
            merged.append(interval)
    return merged


def materialise(
    slots: Iterable[Slot], timezone: str, start: datetime, end: datetime
) -> list[Interval]:
    """One person's weekly ``slots`` as UTC intervals overlapping ``[start, end)``, merged
    (not clipped: a slot that began before ``start`` is whole)."""
    zone = load_zone(timezone)
    start, end = _utc(start, "start"), _utc(end, "end")
    by_weekday: dict[int, list[tuple[int, int]]] = {}
    for weekday, first, last in normalise_slots(slots):
        by_weekday.setdefault(weekday, []).append((first, last))
    found = []
    # A day's slots lie within that local day; one day more on either side is cheap insurance
    # for clocks that go back over midnight.
    day: date = start.astimezone(zone).date() - timedelta(days=1)
    last_day: date = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        midnight = datetime.combine(day, time(0))
        for first, last in by_weekday.get(day.weekday(), ()):
            interval = Interval(
                first_reached(midnight + timedelta(minutes=first), zone),
                first_reached(midnight + timedelta(minutes=last), zone),
            )
            if interval.end_utc > start and interval.start_utc < end:
                found.append(interval)
        day += timedelta(days=1)
    return _merged(found)


def _intersection(left: Sequence[Interval], right: Sequence[Interval]) -> list[Interval]:
    shared, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        low = max(left[i].start_utc, right[j].start_utc)
        high = min(left[i].end_utc, right[j].end_utc)
        if low < high:
            shared.append(Interval(low, high))
        if left[i].end_utc <= right[j].end_utc:
            i += 1
        else:
            j += 1
    return shared


def shared_times(
    slots_a: Iterable[Slot],
    tz_a: str,
    slots_b: Iterable[Slot],
    tz_b: str,
    start: datetime,
    end: datetime,
    min_minutes: int = 30,
) -> list[Interval]:
    """The stretches in ``[start, end)`` when both A and B are free, in time order.

    Both weekly availabilities are laid on the real calendar in their own zones (see the
    module docstring for daylight-saving changes), intersected, touching pieces joined, then
    clipped to ``[start, end)``; pieces shorter than ``min_minutes`` after clipping are left out.
    ValueError for an unknown zone, a bad slot, or a naive datetime.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if min_minutes < 0:
        raise ValueError("min_minutes must be >= 0")
    if end <= start:
        return []
    shared = _merged(
        _intersection(
            materialise(slots_a, tz_a, start, end), materialise(slots_b, tz_b, start, end)
        )
    )
    clipped = [
        Interval(max(piece.start_utc, start), min(piece.end_utc, end))
        for piece in shared
        if piece.end_utc > start and piece.start_utc < end
    ]
    wanted = timedelta(minutes=min_minutes)
    return [piece for piece in clipped if piece.end_utc - piece.start_utc >= wanted]


# -- the week as both see it -----------------------------------------------------------------


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _next_midnight(instant: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``instant`` at which the clock of ``zone`` starts a new day."""
    tomorrow = _wall(instant, zone).date() + timedelta(days=1)
    return first_reached(datetime.combine(tomorrow, time(0)), zone)


def _hhmm(wall: datetime, day: date) -> str:
    minutes = (wall - datetime.combine(day, time(0))) // timedelta(minutes=1)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _stretch(piece: Interval, zone: ZoneInfo) -> LocalStretch:
    start = _wall(piece.start_utc, zone)
    end = _wall(piece.end_utc, zone)
    # A piece ends at most at the next local midnight, shown as 24:00 of its own day.
    return LocalStretch(start.weekday(), _hhmm(start, start.date()), _hhmm(end, start.date()))


def weekly_overlap(
    slots_a: Iterable[Slot],
    tz_a: str,
    slots_b: Iterable[Slot],
    tz_b: str,
    week_start: datetime,
) -> list[SharedSlot]:
    """The week ``[week_start, week_start + 7 days)`` both are free, as both would say it.

    Each shared stretch is cut at local midnight in either zone, so that every piece lies
    within one local day for A and for B: Monday 19:00-21:00 for A in Sao Paulo is, for B in
    Berlin in winter, Monday 23:00-24:00 and Tuesday 00:00-01:00: two pieces. A stretch that
    runs over the week's end is joined with the one the week starts with (the week repeats).
    Pieces come in A's week order (weekday, start).
    """
    week_start = _utc(week_start, "week_start")
    week_end = week_start + WEEK
    slots_a, slots_b = list(slots_a), list(slots_b)
    stretches = shared_times(slots_a, tz_a, slots_b, tz_b, week_start, week_end, min_minutes=0)
    if len(stretches) > 1 and (
        stretches[-1].end_utc == week_end and stretches[0].start_utc == week_start
    ):
        first = stretches.pop(0)
        last = stretches.pop()
        stretches.append(Interval(last.start_utc, last.end_utc + (first.end_utc - week_start)))
    zone_a, zone_b = load_zone(tz_a), load_zone(tz_b)
    shared = []
    for stretch in stretches:
        moment = stretch.start_utc
        while moment < stretch.end_utc:
            # A clock that goes back over midnight may have shown the next midnight already.
            midnights = [_next_midnight(moment, zone) for zone in (zone_a, zone_b)]
            cut = min([stretch.end_utc, *(m for m in midnights if m > moment)])
            piece = Interval(moment, cut)
            shared.append(
                SharedSlot(_stretch(piece, zone_a), _stretch(piece, zone_b), piece.minutes)
            )
            moment = cut
    return sorted(shared, key=lambda slot: (slot.a.weekday, slot.a.start, slot.b.weekday))


# -- iCalendar (RFC 5545) ----------------------------------------------------------------------

_LINE_OCTETS = 75
PRODID = "-//capex//meeting times//EN"


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newlines escaped (RFC 5545 3.3.11);
    control characters other than tab, which TEXT cannot hold, left out."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(c for c in value if c in "\t\n" or not (ord(c) < 32 or ord(c) == 127))
    return kept.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded into physical lines of at most 75 octets, each ended by CRLF;
    a continuation starts with one space, and no UTF-8 character is split."""
    pieces: list[str] = []
    current: list[str] = []
    size, limit = 0, _LINE_OCTETS
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > limit:
            pieces.append("".join(current))
            # A continuation line's leading space counts toward its 75 octets.
            current, size, limit = [], 0, _LINE_OCTETS - 1
        current.append(char)
        size += octets
    pieces.append("".join(current))
    return "\r\n ".join(pieces) + "\r\n"


def _stamp(moment: datetime, what: str) -> str:
    return _utc(moment, what).strftime("%Y%m%dT%H%M%SZ")


def ics_event(
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str,
    now: datetime,
    url: str | None = None,
) -> str:
    """A VCALENDAR with one VEVENT (METHOD:PUBLISH), times in UTC, lines CRLF-ended and folded.

    ``now`` is the DTSTAMP. ``url`` must be an absolute URI without spaces or control
    characters (ValueError otherwise).
    """
    if _utc(end, "end") <= _utc(start, "start"):
        raise ValueError("an event ends after it starts")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(uid)}",
        f"DTSTAMP:{_stamp(now, 'now')}",
        f"DTSTART:{_stamp(start, 'start')}",
        f"DTEND:{_stamp(end, 'end')}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
    ]
    if url is not None:
        if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            raise ValueError(f"not a URI: {url!r}")
        lines.append(f"URL:{url}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) for line in lines)
