"""The in-memory match index: sparse skill postings, language lists and availability bitmaps.

Every volunteer is one row. A changed volunteer is not edited in place: its old row is marked
dead (a tombstone) and a new row is appended, so an update costs time in proportion to the
volunteers changed, not to the index. When dead rows pass ``compaction_ratio`` of all rows the
index is compacted (the live rows copied, in order, into fresh arrays).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from capex.matching._arrays import (
    GrowableArray,
    Postings,
    RaggedRows,
    RowLookup,
    segment_positions,
)
from capex.matching._records import RecordBatch, parse_records
from capex.matching.availability import (
    QUARTER_MINUTES,
    WORDS_PER_WEEK,
    Bitmaps,
    availability_bitmap,
    bitmaps_from_intervals,
    validate_week_start,
    wall_clock_table,
)
from capex.matching.candidates import Candidates, first_of_groups, rank_in_groups
from capex.matching.taxonomy import SkillSpace
from capex.matching.types import (
    ROLES,
    AvailabilityChange,
    LanguageChange,
    Match,
    ProfileChange,
    Role,
    SkillChange,
    SkillExplanation,
    Suggestion,
    VolunteerRecord,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_MAX_LEVEL = 5  # level tables are indexed by level 0..4 (0 unused)
# Join entries (learner, want, offer, mentor) per block of ``candidates``: about 40 bytes each
# in the arrays alive at once, so some 200 MB a block.
_BLOCK_ENTRIES = 4_000_000
# The parts of the asker's own day that ``explain_skills`` tries as new availability, as
# (start, end) minutes: morning, afternoon and evening. Nights (00:00-06:00) are not
# suggested: a fix that asks someone to be free at 03:00 is no fix.
DAY_PARTS: tuple[tuple[int, int], ...] = ((6 * 60, 12 * 60), (12 * 60, 18 * 60), (18 * 60, 24 * 60))
# Suggestions of one kind rank before another's at the same would_add, in this order.
_CHANGE_ORDER = {AvailabilityChange: 0, LanguageChange: 1, SkillChange: 2}


@dataclass(frozen=True)
class _Querier:
    """The asking volunteer, in columns: skills and languages by their index positions."""

    volunteer_id: int
    active: bool
    open_slots: int
    bitmap: Bitmaps | None  # (11,), None when no availability was given
    languages: dict[int, int]  # language column -> level
    offers: dict[int, int]  # skill column -> level
    wants: dict[int, int]  # skill column -> target level
    timezone: str | None = None
    slots: tuple[tuple[int, int, int], ...] = ()  # (weekday, start, end) on the own wall clock


@dataclass(frozen=True)
class _Counterparts:
    """Who lists some skills exactly on the other side, and which rules of ``query`` they pass.

    Every array has shape (m,): one entry per (skill, counterpart) listing it.
    """

    rows: IntArray
    group: IntArray  # which of the skills asked about the counterpart lists
    speaks: npt.NDArray[np.bool_]  # shares a language with the asker
    meets: npt.NDArray[np.bool_]  # free when the asker is, or either gave no availability
    has_slot: npt.NDArray[np.bool_]  # the pair's mentor has an open slot (and the asker is active)

    @property
    def listed(self) -> npt.NDArray[np.bool_]:
        """Passes every rule: ``query`` lists the counterpart."""
        listed: npt.NDArray[np.bool_] = self.speaks & self.meets & self.has_slot
        return listed

    def count(self, n_groups: int, where: npt.NDArray[np.bool_] | None = None) -> IntArray:
        """Per skill, how many counterparts (those in ``where``), shape (n_groups,)."""
        group = self.group if where is None else self.group[where]
        counts: IntArray = np.bincount(group, minlength=n_groups).astype(np.int64)
        return counts


@dataclass(frozen=True)
class _SkillPass:
    """One (wanted, offered) skill pair to score against a posting list."""

    wanted: int
    offered: int
    similarity: float
    level: int  # the asker's side: target level (as learner) or offered level (as mentor)


class MatchIndex:
    """Ranks mentors for a learner, or learners for a mentor, over an updatable index.

    Score of a learner ``L`` and a mentor ``M`` (see ``docs/matching.md``)::

        skill = max over (w in L.wants, o in M.offers) of sim(w, o) * fit(level(o), target(w))
        fit(level, target) = 1 if level >= target else level_decay ** (target - level)
        avail = min(overlap, overlap_saturation_minutes) / overlap_saturation_minutes
                if both gave availability, else unknown_availability
        lang  = max over shared languages of min(level_L, level_M) / 5
        score = min(1, skill * (base_weight + availability_weight * avail
                                + language_weight * lang))

    Parameters
    ----------
    skill_space : SkillSpace
        The taxonomy; records may only name its skills.
    week_start : datetime
        Aware Monday 00:00 UTC that starts the coming week, for which slots become UTC.
    level_decay : float, default 0.5
        Level fit per missing level, in (0, 1]: a mentor one level below the target fits 0.5.
    base_weight, availability_weight, language_weight : float, default 0.55, 0.30, 0.15
        Non-negative weights that add up to 1.
    overlap_saturation_minutes : int, default 120
        Weekly overlap at which availability counts in full; more does not rank higher.
    unknown_availability : float, default 0.5
        The availability term, in [0, 1], when either side gave no availability.
    compaction_ratio : float, default 0.25
        Compact when dead rows exceed this share of all rows, in (0, 1].

    Attributes
    ----------
    n_rows_ : int
        Rows held, live and dead.
    n_dead_ : int
        Dead rows (tombstones) awaiting compaction.
    """

    def __init__(
        self,
        skill_space: SkillSpace,
        week_start: datetime,
        *,
        level_decay: float = 0.5,
        base_weight: float = 0.55,
        availability_weight: float = 0.30,
        language_weight: float = 0.15,
        overlap_saturation_minutes: int = 120,
        unknown_availability: float = 0.5,
        compaction_ratio: float = 0.25,
    ) -> None:
        self.skill_space = skill_space
        self.week_start = week_start
        self.level_decay = level_decay
        self.base_weight = base_weight
        self.availability_weight = availability_weight
        self.language_weight = language_weight
        self.overlap_saturation_minutes = overlap_saturation_minutes
        self.unknown_availability = unknown_availability
        self.compaction_ratio = compaction_ratio
        self._validate_params()
        self.week_start = validate_week_start(week_start)
        # fit[level, target], computed once with the same float operations as the reference.
        self._fit = np.array(
            [
                [self._level_fit(level, target) for target in range(_MAX_LEVEL)]
                for level in range(_MAX_LEVEL)
            ],
            dtype=np.float64,
        )
        self._lock = threading.RLock()
        self._language_index: dict[str, int] = {}
        self._language_codes: list[str] = []
        self._zone_index: dict[str, int] = {}
        self._zone_names: list[str] = []
        self._zone_tables: list[IntArray] = []
        self._clear()

    # -- parameters --------------------------------------------------------------------------

    def _validate_params(self) -> None:
        if not isinstance(self.skill_space, SkillSpace):
            raise ValueError("skill_space must be a SkillSpace")
        if not 0.0 < self.level_decay <= 1.0:
            raise ValueError(f"level_decay must be in (0, 1], got {self.level_decay!r}")
        weights = {
            "base_weight": self.base_weight,
            "availability_weight": self.availability_weight,
            "language_weight": self.language_weight,
        }
        for name, weight in weights.items():
            if not weight >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {weight!r}")
        if abs(sum(weights.values()) - 1.0) > 1e-9:
            raise ValueError(f"the weights must add up to 1, got {sum(weights.values())!r}")
        saturation = self.overlap_saturation_minutes
        if not isinstance(saturation, int) or isinstance(saturation, bool) or saturation < 1:
            raise ValueError(
                f"overlap_saturation_minutes must be an integer >= 1, got {saturation!r}"
            )
        if not 0.0 <= self.unknown_availability <= 1.0:
            raise ValueError(
                f"unknown_availability must be in [0, 1], got {self.unknown_availability!r}"
            )
        if not 0.0 < self.compaction_ratio <= 1.0:
            raise ValueError(f"compaction_ratio must be in (0, 1], got {self.compaction_ratio!r}")

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn estimators give them."""
        return {
            "skill_space": self.skill_space,
            "week_start": self.week_start,
            "level_decay": self.level_decay,
            "base_weight": self.base_weight,
            "availability_weight": self.availability_weight,
            "language_weight": self.language_weight,
            "overlap_saturation_minutes": self.overlap_saturation_minutes,
            "unknown_availability": self.unknown_availability,
            "compaction_ratio": self.compaction_ratio,
        }

    def _level_fit(self, level: int, target: int) -> float:
        return 1.0 if level >= target else self.level_decay ** (target - level)

    # -- storage -----------------------------------------------------------------------------

    def _clear(self) -> None:
        n_skills = len(self.skill_space)
        self._ids = GrowableArray(np.int64)
        self._alive = GrowableArray(np.bool_)
        self._active = GrowableArray(np.bool_)
        self._open_slots = GrowableArray(np.int64)
        self._versions = GrowableArray(np.int64)
        self._zones = GrowableArray(np.int32)  # -1: no time zone
        self._has_availability = GrowableArray(np.bool_)
        # Who may be a counterpart at all, kept up to date so a query reads one array:
        # live and active (as a learner), and with an open slot too (as a mentor).
        self._eligible_learner = GrowableArray(np.bool_)
        self._eligible_mentor = GrowableArray(np.bool_)
        self._bitmaps: Bitmaps = np.zeros((WORDS_PER_WEEK, 16), dtype=np.uint64)
        self._languages = RaggedRows(np.int32, np.int8)
        self._offers = RaggedRows(np.int32, np.int8)
        self._wants = RaggedRows(np.int32, np.int8)
        self._slot_rows = GrowableArray(np.int64)
        self._slot_weekdays = GrowableArray(np.int16)
        self._slot_starts = GrowableArray(np.int16)
        self._slot_ends = GrowableArray(np.int16)
        self._offer_postings = Postings(n_skills, np.int8)
        self._want_postings = Postings(n_skills, np.int8)
        self._row_of = RowLookup()
        self._n_dead = 0

    @property
    def n_rows_(self) -> int:
        return len(self._ids)

    @property
    def n_dead_(self) -> int:
        return self._n_dead

    def __len__(self) -> int:
        """Number of volunteers held (active or not)."""
        return len(self._row_of)

    def __contains__(self, volunteer_id: object) -> bool:
        return volunteer_id in self._row_of

    def version_of(self, volunteer_id: int) -> int | None:
        """The ``version`` of the record held for ``volunteer_id``, None when not held."""
        with self._lock:
            row = self._row_of.get(volunteer_id)
            return None if row is None else int(self._versions.values[row])

    def _language_columns(self, codes: list[str], *, add: bool) -> IntArray:
        columns = np.empty(len(codes), dtype=np.int64)
        for i, code in enumerate(codes):
            column = self._language_index.get(code)
            if column is None:
                if not add:
                    columns[i] = -1
                    continue
                column = self._language_index[code] = len(self._language_codes)
                self._language_codes.append(code)
            columns[i] = column
        return columns

    def _zone_column(self, timezone: str | None) -> int:
        if timezone is None:
            return -1
        column = self._zone_index.get(timezone)
        if column is None:
            column = self._zone_index[timezone] = len(self._zone_tables)
            self._zone_names.append(timezone)
            self._zone_tables.append(wall_clock_table(timezone, self.week_start))
        return column

    def _slot_bitmaps(
        self,
        n_rows: int,
        rows: IntArray,
        zones: npt.NDArray[np.int32],
        weekdays: npt.NDArray[np.int16],
        starts: npt.NDArray[np.int16],
        ends: npt.NDArray[np.int16],
    ) -> Bitmaps:
        """Bitmaps, shape (11, n_rows), of slots ``rows``-relative; slots without a zone skip."""
        has_zone = zones >= 0
        if not has_zone.any():
            return np.zeros((WORDS_PER_WEEK, n_rows), dtype=np.uint64)
        tables = np.stack(self._zone_tables)  # (n_zones, 7, 97)
        zone, weekday = zones[has_zone], weekdays[has_zone]
        start_utc = tables[zone, weekday, starts[has_zone] // QUARTER_MINUTES]
        end_utc = tables[zone, weekday, ends[has_zone] // QUARTER_MINUTES]
        return bitmaps_from_intervals(n_rows, rows[has_zone], start_utc, end_utc)

    def _ensure_bitmap_capacity(self, n_rows: int) -> None:
        capacity = self._bitmaps.shape[1]
        if n_rows > capacity:
            grown = np.zeros((WORDS_PER_WEEK, max(n_rows, 2 * capacity)), dtype=np.uint64)
            grown[:, :capacity] = self._bitmaps
            self._bitmaps = grown

    def _append(self, batch: RecordBatch) -> None:
        """Append ``batch`` as new rows, tombstoning the rows it replaces."""
        ids = batch.ids.tolist()
        if len(set(ids)) != len(ids):
            raise ValueError("a batch names the same volunteer id twice")
        first = self.n_rows_
        rows = np.arange(first, first + len(batch), dtype=np.int64)
        if len(self._row_of):
            for volunteer_id in ids:
                old = self._row_of.get(volunteer_id)
                if old is not None:
                    self._kill(old)
        self._row_of.set_many(batch.ids, rows)

        zones = np.array([self._zone_column(tz) for tz in batch.timezones], dtype=np.int32)
        self._ids.extend(batch.ids)
        self._alive.extend(np.ones(len(batch), dtype=np.bool_))
        self._active.extend(batch.active)
        self._open_slots.extend(batch.open_slots)
        self._versions.extend(batch.versions)
        self._zones.extend(zones)
        self._has_availability.extend((zones >= 0) & (batch.slot_counts > 0))
        self._eligible_learner.extend(batch.active)
        self._eligible_mentor.extend(batch.active & (batch.open_slots > 0))

        self._languages.append(
            batch.language_counts,
            self._language_columns(batch.language_codes, add=True),
            batch.language_levels,
        )
        self._offers.append(batch.offer_counts, batch.offer_skills, batch.offer_levels)
        self._wants.append(batch.want_counts, batch.want_skills, batch.want_levels)
        self._offer_postings.append(
            np.repeat(rows, batch.offer_counts), batch.offer_skills, batch.offer_levels
        )
        self._want_postings.append(
            np.repeat(rows, batch.want_counts), batch.want_skills, batch.want_levels
        )

        local_slot_rows = np.repeat(np.arange(len(batch), dtype=np.int64), batch.slot_counts)
        self._slot_rows.extend(local_slot_rows + first)
        self._slot_weekdays.extend(batch.slot_weekdays)
        self._slot_starts.extend(batch.slot_starts)
        self._slot_ends.extend(batch.slot_ends)
        self._ensure_bitmap_capacity(first + len(batch))
        self._bitmaps[:, first : first + len(batch)] = self._slot_bitmaps(
            len(batch),
            local_slot_rows,
            zones[local_slot_rows],
            batch.slot_weekdays,
            batch.slot_starts,
            batch.slot_ends,
        )

    # -- updates -----------------------------------------------------------------------------

    def build(self, records: Iterable[VolunteerRecord]) -> MatchIndex:
        """Replace the whole index with ``records`` (unique ids); returns ``self``."""
        batch = parse_records(records, self.skill_space)
        with self._lock:
            self._clear()
            self._append(batch)
        return self

    def upsert(self, records: Iterable[VolunteerRecord]) -> None:
        """Add or replace volunteers (a deactivated one is an upsert with ``active=False``).

        All records are validated before anything changes; a bad one raises ValueError and
        leaves the index as it was.
        """
        batch = parse_records(records, self.skill_space)
        with self._lock:
            self._append(batch)
            self._compact_if_needed()

    def remove(self, volunteer_ids: Iterable[int]) -> int:
        """Drop volunteers; ids not held are ignored. Returns how many were dropped."""
        with self._lock:
            removed = 0
            for volunteer_id in volunteer_ids:
                row = self._row_of.pop(int(volunteer_id))
                if row is not None:
                    self._kill(row)
                    removed += 1
            self._compact_if_needed()
            return removed

    def _kill(self, row: int) -> None:
        """Tombstone ``row``."""
        self._alive.values[row] = False
        self._eligible_learner.values[row] = False
        self._eligible_mentor.values[row] = False
        self._n_dead += 1

    def _compact_if_needed(self) -> None:
        if self._n_dead > self.compaction_ratio * self.n_rows_:
            self.compact()

    def compact(self) -> None:
        """Drop dead rows now; live rows keep their order."""
        with self._lock:
            keep = np.flatnonzero(self._alive.values)
            new_row = np.full(self.n_rows_, -1, dtype=np.int64)
            new_row[keep] = np.arange(keep.size)
            for column in (
                self._ids,
                self._alive,
                self._active,
                self._open_slots,
                self._versions,
                self._zones,
                self._has_availability,
                self._eligible_learner,
                self._eligible_mentor,
            ):
                column.replace(column.values[keep])
            self._bitmaps = np.ascontiguousarray(self._bitmaps[:, keep])
            self._languages = self._languages.take(keep)
            self._offers = self._offers.take(keep)
            self._wants = self._wants.take(keep)
            slot_rows = new_row[self._slot_rows.values]
            kept_slots = slot_rows >= 0
            self._slot_rows.replace(slot_rows[kept_slots])
            for slot_column in (self._slot_weekdays, self._slot_starts, self._slot_ends):
                slot_column.replace(slot_column.values[kept_slots])
            n_skills = len(self.skill_space)
            self._offer_postings = Postings.from_rows(n_skills, self._offers)
            self._want_postings = Postings.from_rows(n_skills, self._wants)
            self._row_of = RowLookup.of(self._ids.values, np.arange(keep.size, dtype=np.int64))
            self._n_dead = 0

    def set_week(self, week_start: datetime) -> None:
        """Move to another week: every bitmap is recomputed from the stored slots."""
        week_start = validate_week_start(week_start)
        with self._lock:
            self.week_start = week_start
            self._zone_tables = [
                wall_clock_table(timezone, week_start) for timezone in self._zone_index
            ]
            slot_rows = self._slot_rows.values
            self._bitmaps = self._slot_bitmaps(
                self._bitmaps.shape[1],
                slot_rows,
                self._zones.values[slot_rows],
                self._slot_weekdays.values,
                self._slot_starts.values,
                self._slot_ends.values,
            )

    # -- as arrays, for a file that many processes map (capex.matching.store) ----------------

    def _growable(self) -> dict[str, GrowableArray]:
        """Every growable array the index holds, by a stable name."""
        stores = {
            "ids": self._ids,
            "alive": self._alive,
            "active": self._active,
            "open_slots": self._open_slots,
            "versions": self._versions,
            "zones": self._zones,
            "has_availability": self._has_availability,
            "eligible_learner": self._eligible_learner,
            "eligible_mentor": self._eligible_mentor,
            "slot_rows": self._slot_rows,
            "slot_weekdays": self._slot_weekdays,
            "slot_starts": self._slot_starts,
            "slot_ends": self._slot_ends,
        }
        for name, ragged in (
            ("languages", self._languages),
            ("offers", self._offers),
            ("wants", self._wants),
        ):
            stores[f"{name}.indptr"] = ragged.indptr
            stores[f"{name}.columns"] = ragged.columns
            stores[f"{name}.values"] = ragged.values
        for name, postings in (
            ("offer_postings", self._offer_postings),
            ("want_postings", self._want_postings),
        ):
            for column in range(postings.n_columns):
                rows, values = postings.stores(column)
                stores[f"{name}.{column}.rows"] = rows
                stores[f"{name}.{column}.values"] = values
        return stores

    def export_state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """The whole index as JSON-ready values and filled arrays (dead rows dropped first).

        Returns
        -------
        described : dict
            Parameters, week, taxonomy, language codes and time zones.
        arrays : dict of str to ndarray
            Growable arrays by name, shape (n,); ``bitmaps`` shape (11, n_rows_);
            ``zone_tables`` shape (n_zones, 7, 97); ``lookup.ids`` and ``lookup.rows``, the
            held ids ascending and their rows.
        """
        with self._lock:
            if self._n_dead:
                self.compact()
            self._row_of.fold()
            params = self.get_params()
            del params["skill_space"], params["week_start"]
            described = {
                "params": params,
                "week_start": self.week_start.isoformat(),
                "skills": {
                    "parents": self.skill_space.parents,
                    "decay": self.skill_space.decay,
                    "min_similarity": self.skill_space.min_similarity,
                },
                "languages": list(self._language_codes),
                "zones": list(self._zone_names),
            }
            arrays: dict[str, npt.NDArray[Any]] = {
                name: store.values for name, store in self._growable().items()
            }
            arrays["bitmaps"] = self._bitmaps[:, : self.n_rows_]
            arrays["zone_tables"] = (
                np.stack(self._zone_tables)
                if self._zone_tables
                else np.zeros((0, 7, 97), dtype=np.int64)
            )
            arrays["lookup.ids"] = self._row_of.sorted_ids
            arrays["lookup.rows"] = self._row_of.sorted_rows
            return described, arrays

    @classmethod
    def from_state(
        cls,
        described: dict[str, Any],
        buffers: dict[str, tuple[npt.NDArray[Any], int]],
    ) -> MatchIndex:
        """An index over the arrays ``export_state`` gave, kept as they are (not copied).

        Parameters
        ----------
        described : dict
            ``export_state``'s first value.
        buffers : dict of str to (ndarray, int)
            Per array name, a buffer and how much of it is filled: shape (capacity,) for the
            growable arrays, whose spare capacity later appends use; (11, capacity) for
            ``bitmaps``; the others exactly filled.
        """
        taxonomy = described["skills"]
        skills = SkillSpace(
            taxonomy["parents"], decay=taxonomy["decay"], min_similarity=taxonomy["min_similarity"]
        )
        index = cls(skills, datetime.fromisoformat(described["week_start"]), **described["params"])
        stores = {
            name: GrowableArray.adopt(buffer, size)
            for name, (buffer, size) in buffers.items()
            if name not in ("bitmaps", "zone_tables", "lookup.ids", "lookup.rows")
        }
        for name in ("ids", "alive", "active", "open_slots", "versions", "zones"):
            setattr(index, f"_{name}", stores[name])
        index._has_availability = stores["has_availability"]
        index._eligible_learner = stores["eligible_learner"]
        index._eligible_mentor = stores["eligible_mentor"]
        index._slot_rows = stores["slot_rows"]
        index._slot_weekdays = stores["slot_weekdays"]
        index._slot_starts = stores["slot_starts"]
        index._slot_ends = stores["slot_ends"]
        index._languages, index._offers, index._wants = (
            RaggedRows.adopt(
                stores[f"{name}.indptr"], stores[f"{name}.columns"], stores[f"{name}.values"]
            )
            for name in ("languages", "offers", "wants")
        )
        index._offer_postings, index._want_postings = (
            Postings.adopt(
                [stores[f"{name}.{column}.rows"] for column in range(len(skills))],
                [stores[f"{name}.{column}.values"] for column in range(len(skills))],
                np.int8,
            )
            for name in ("offer_postings", "want_postings")
        )
        index._bitmaps = buffers["bitmaps"][0]
        index._language_codes = list(described["languages"])
        index._language_index = {code: i for i, code in enumerate(index._language_codes)}
        index._zone_names = list(described["zones"])
        index._zone_index = {zone: i for i, zone in enumerate(index._zone_names)}
        index._zone_tables = list(buffers["zone_tables"][0])
        index._row_of = RowLookup(buffers["lookup.ids"][0], buffers["lookup.rows"][0])
        index._n_dead = 0
        return index

    # -- queries -----------------------------------------------------------------------------

    def _querier_from_row(self, row: int) -> _Querier:
        languages, language_levels = self._languages.row(row)
        offers, offer_levels = self._offers.row(row)
        wants, want_levels = self._wants.row(row)
        zone = int(self._zones.values[row])
        # Slots are stored in row order, so a row's slots are one run.
        first, last = np.searchsorted(self._slot_rows.values, [row, row + 1])
        slots = zip(
            self._slot_weekdays.values[first:last].tolist(),
            self._slot_starts.values[first:last].tolist(),
            self._slot_ends.values[first:last].tolist(),
            strict=True,
        )
        return _Querier(
            volunteer_id=int(self._ids.values[row]),
            active=bool(self._active.values[row]),
            open_slots=int(self._open_slots.values[row]),
            bitmap=self._bitmaps[:, row].copy() if self._has_availability.values[row] else None,
            languages=dict(zip(languages.tolist(), language_levels.tolist(), strict=True)),
            offers=dict(zip(offers.tolist(), offer_levels.tolist(), strict=True)),
            wants=dict(zip(wants.tolist(), want_levels.tolist(), strict=True)),
            timezone=None if zone < 0 else self._zone_names[zone],
            slots=tuple(slots),
        )

    def _querier_from_record(self, record: VolunteerRecord) -> _Querier:
        batch = parse_records([record], self.skill_space)
        columns = self._language_columns(batch.language_codes, add=False)
        languages = {
            int(column): int(level)
            for column, level in zip(columns, batch.language_levels, strict=True)
            if column >= 0  # a language nobody in the index speaks cannot be shared
        }
        bitmap = None
        slots = list(
            zip(
                batch.slot_weekdays.tolist(),
                batch.slot_starts.tolist(),
                batch.slot_ends.tolist(),
                strict=True,
            )
        )
        if record.timezone is not None and slots:
            bitmap = availability_bitmap(slots, record.timezone, self.week_start)
        return _Querier(
            volunteer_id=int(batch.ids[0]),
            active=bool(batch.active[0]),
            open_slots=int(batch.open_slots[0]),
            bitmap=bitmap,
            languages=languages,
            offers=dict(zip(batch.offer_skills.tolist(), batch.offer_levels.tolist(), strict=True)),
            wants=dict(zip(batch.want_skills.tolist(), batch.want_levels.tolist(), strict=True)),
            timezone=record.timezone,
            slots=tuple(slots),
        )

    def _querier(self, volunteer: int | VolunteerRecord) -> _Querier:
        """The asker: a held volunteer's row, or a record as given (call under the lock)."""
        if isinstance(volunteer, VolunteerRecord):
            return self._querier_from_record(volunteer)
        if isinstance(volunteer, bool) or not isinstance(volunteer, int | np.integer):
            raise ValueError(f"volunteer must be an id or a VolunteerRecord, got {volunteer!r}")
        row = self._row_of.get(int(volunteer))
        if row is None:
            raise KeyError(f"volunteer {volunteer!r} is not in the index")
        return self._querier_from_row(row)

    def _skill_passes(self, querier: _Querier, role: Role, skill: int | None) -> list[_SkillPass]:
        """The skill pairs to score, in ascending (wanted, offered) order."""
        own = querier.wants if role == "learner" else querier.offers
        passes: list[_SkillPass] = []
        for column, level in own.items():
            if skill is not None and column != skill:
                continue
            related, similarities = self.skill_space.related(column)
            for other, similarity in zip(related.tolist(), similarities.tolist(), strict=True):
                wanted, offered = (column, other) if role == "learner" else (other, column)
                passes.append(_SkillPass(wanted, offered, similarity, level))
        passes.sort(key=lambda p: (p.wanted, p.offered))
        return passes

    def _best_skill_pairs(
        self, passes: list[_SkillPass], role: Role
    ) -> tuple[FloatArray, npt.NDArray[np.int32]]:
        """Per row, the best ``sim * fit`` over ``passes`` and which pass gave it.

        Returns
        -------
        best : ndarray of float64, shape (n_rows,)
            0 where no pass applies.
        choice : ndarray of int32, shape (n_rows,)
            1 + the index of the chosen pass, 0 where none. Ties in ``sim * fit`` go to the
            higher similarity, then to the earlier pass (smaller wanted, then offered, id).
        """
        n_rows = self.n_rows_
        best = np.zeros(n_rows, dtype=np.float64)
        choice = np.zeros(n_rows, dtype=np.int32)
        pass_similarity = np.array([0.0] + [p.similarity for p in passes], dtype=np.float64)
        for number, skill_pass in enumerate(passes, start=1):
            if role == "learner":
                rows, levels = self._offer_postings.column(skill_pass.offered)
                fit_by_level = self._fit[:, skill_pass.level]
            else:
                rows, levels = self._want_postings.column(skill_pass.wanted)
                fit_by_level = self._fit[skill_pass.level, :]
            if rows.size == 0:
                continue
            values = skill_pass.similarity * fit_by_level[levels]
            current = best[rows]
            better = values > current
            tied = values == current
            if tied.any():
                better |= tied & (skill_pass.similarity > pass_similarity[choice[rows]])
            improved = rows[better]
            best[improved] = values[better]
            choice[improved] = number
        return best, choice

    def _overlap_minutes(self, rows: IntArray, bitmap: Bitmaps) -> IntArray:
        """Weekly minutes each of ``rows`` shares with ``bitmap``, shape (m,)."""
        shared_quarters = np.zeros(rows.size, dtype=np.int64)
        for word in range(WORDS_PER_WEEK):
            if bitmap[word]:
                shared_quarters += np.bitwise_count(self._bitmaps[word, rows] & bitmap[word])
        minutes: IntArray = shared_quarters * QUARTER_MINUTES
        return minutes

    def _shared_language_levels(self, rows: IntArray, querier: _Querier) -> IntArray:
        """Per row, the best ``min(level_asker, level_row)`` over shared languages, shape (m,)."""
        own_level = np.zeros(len(self._language_codes) + 1, dtype=np.int8)
        for column, level in querier.languages.items():
            own_level[column] = level
        counts = self._languages.counts(rows)
        _, columns, levels = self._languages.gather(rows)
        shared = np.minimum(own_level[columns], levels)
        best = np.zeros(rows.size, dtype=np.int64)
        spoken = counts > 0
        if shared.size:
            offsets = np.cumsum(counts) - counts
            best[spoken] = np.maximum.reduceat(shared, offsets[spoken])
        return best

    def query(
        self,
        volunteer: int | VolunteerRecord,
        role: Role = "learner",
        skill: str | None = None,
        limit: int = 10,
    ) -> list[Match]:
        """The best counterparts for one volunteer, best first.

        Parameters
        ----------
        volunteer : int or VolunteerRecord
            A volunteer id held by the index (its row is used), or a record (used as given,
            never matched with its own id).
        role : {"learner", "mentor"}, default "learner"
            ``learner``: mentors who offer what the volunteer wants; ``mentor``: learners who
            want what the volunteer offers.
        skill : str, optional
            Only the asker's own skill with this id: a want as learner, an offer as mentor.
            If the asker does not list it, nothing matches.
        limit : int, default 10
            At most this many matches (>= 1).

        Returns
        -------
        list of Match
            Ordered by score descending, then volunteer id ascending.
        """
        if role not in ROLES:
            raise ValueError(f"role must be 'learner' or 'mentor', got {role!r}")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        skill_column = None if skill is None else self.skill_space.position(skill)
        with self._lock:
            return self._query(self._querier(volunteer), role, skill_column, limit)

    def _query(self, querier: _Querier, role: Role, skill: int | None, limit: int) -> list[Match]:
        if not querier.active or (role == "mentor" and querier.open_slots < 1):
            return []
        passes = self._skill_passes(querier, role, skill)
        best, choice = self._best_skill_pairs(passes, role)
        # The counterpart is a mentor when I ask as a learner, and a learner when I mentor.
        eligible = self._eligible_mentor if role == "learner" else self._eligible_learner
        own_row = self._row_of.get(querier.volunteer_id)
        if own_row is not None:
            best[own_row] = 0.0
        rows = np.flatnonzero((best > 0.0) & eligible.values)

        # Availability first: where both gave it, it is usually the stronger filter.
        if querier.bitmap is None:
            overlap = np.zeros(rows.size, dtype=np.int64)
            known = np.zeros(rows.size, dtype=np.bool_)
        else:
            overlap = self._overlap_minutes(rows, querier.bitmap)
            known = self._has_availability.values[rows]
            keep = ~known | (overlap > 0)
            rows, overlap, known = rows[keep], overlap[keep], known[keep]

        language_level = self._shared_language_levels(rows, querier)
        keep = language_level > 0
        rows, overlap, known, language_level = (
            rows[keep],
            overlap[keep],
            known[keep],
            language_level[keep],
        )

        saturation = self.overlap_saturation_minutes
        availability = np.where(
            known, np.minimum(overlap, saturation) / saturation, self.unknown_availability
        )
        language = language_level / 5
        multiplier = (
            self.base_weight
            + self.availability_weight * availability
            + self.language_weight * language
        )
        scores = np.minimum(1.0, best[rows] * multiplier)

        ids = self._ids.values[rows]
        if rows.size > limit:
            cutoff = scores[np.argpartition(-scores, limit - 1)[:limit]].min()
            candidates = np.flatnonzero(scores >= cutoff)
        else:
            candidates = np.arange(rows.size)
        top = candidates[np.lexsort((ids[candidates], -scores[candidates]))[:limit]]

        matches = []
        for i in top.tolist():
            row = int(rows[i])
            skill_pass = passes[int(choice[row]) - 1]
            matches.append(
                Match(
                    volunteer_id=int(ids[i]),
                    skill=self.skill_space.skill_ids[skill_pass.offered],
                    wanted_skill=self.skill_space.skill_ids[skill_pass.wanted],
                    score=float(scores[i]),
                    skill_similarity=skill_pass.similarity,
                    level_fit=self._chosen_level_fit(row, skill_pass, role),
                    overlap_minutes_per_week=int(overlap[i]) if known[i] else None,
                    shared_languages=self._shared_languages(row, querier),
                )
            )
        return matches

    def _chosen_level_fit(self, row: int, skill_pass: _SkillPass, role: Role) -> float:
        if role == "learner":
            skills, levels = self._offers.row(row)
            level, target = int(levels[skills == skill_pass.offered][0]), skill_pass.level
        else:
            skills, levels = self._wants.row(row)
            level, target = skill_pass.level, int(levels[skills == skill_pass.wanted][0])
        return float(self._fit[level, target])

    def _shared_languages(self, row: int, querier: _Querier) -> tuple[str, ...]:
        columns, levels = self._languages.row(row)
        shared = [
            (-min(level, querier.languages[column]), self._language_codes[column])
            for column, level in zip(columns.tolist(), levels.tolist(), strict=True)
            if column in querier.languages
        ]
        return tuple(code for _, code in sorted(shared))

    # -- why so few ----------------------------------------------------------------------------

    def explain_skills(
        self,
        volunteer: int | VolunteerRecord,
        role: Role = "learner",
        skill: str | None = None,
        *,
        few: int = 5,
        n_suggestions: int = 3,
    ) -> list[SkillExplanation]:
        """Why each of the asker's skills finds the counterparts it does, and what would help.

        For each of the asker's skills on the ``role`` side (wants as learner, offers as
        mentor), a funnel over the live, active counterparts other than the asker who list
        that skill exactly on the other side: all of them, those sharing a language, of those
        the ones free when the asker is (the rule of ``query``: availabilities overlap in the
        index's week, or either gave none), and of those the ones whose pair has a mentor with
        an open slot. As learner that is the counterpart mentor's slot; as mentor the learners
        need none, so the last stage is all of the previous one when the asker has an open
        slot, else 0. An inactive asker matches nobody: the last stage is 0. The last stage
        is how many counterparts listing the skill exactly ``query(skill=skill)`` lists;
        ``query`` also lists counterparts with near skills, which the funnel leaves out.

        Suggestions, each counted over counterparts listing the skill exactly:

        - ``AvailabilityChange``: a part of one day (``DAY_PARTS``: 06-12, 12-18, 18-24 on the
          asker's own wall clock) on which the asker has no slot yet, when the asker gave
          availability; it adds the counterparts that pass every rule but time and have time
          in that block.
        - ``LanguageChange``: a language of the counterparts that pass every rule but
          language; it adds those who speak it.
        - ``SkillChange``, only for a skill fewer than ``few`` counterparts list: a neighbour
          in the taxonomy (``SkillSpace.neighbours``: parent, siblings, children) that the
          asker does not list on that side yet; it would add, for that new skill, the
          counterparts listing it exactly and passing every rule (some of them may be listed
          already, as near-skill matches of the explained skill).

        Parameters
        ----------
        volunteer : int or VolunteerRecord
            As for ``query``.
        role : {"learner", "mentor"}, default "learner"
        skill : str, optional
            Only this one of the asker's skills; none when the asker does not list it.
        few : int, default 5
            Skill changes are suggested for a skill fewer than this many counterparts list.
        n_suggestions : int, default 3
            At most this many suggestions per skill: the largest ``would_add`` first (only
            positive ones); ties go to availability, then language, then skill changes, then
            to the earlier weekday and block, the smaller language code or skill id.

        Returns
        -------
        list of SkillExplanation
            One per explained skill, by ascending skill id.
        """
        if role not in ROLES:
            raise ValueError(f"role must be 'learner' or 'mentor', got {role!r}")
        for name, value in (("few", few), ("n_suggestions", n_suggestions)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        skill_column = None if skill is None else self.skill_space.position(skill)
        with self._lock:
            querier = self._querier(volunteer)
            return self._explain_skills(querier, role, skill_column, few, n_suggestions)

    def _explain_skills(
        self, querier: _Querier, role: Role, skill: int | None, few: int, n_suggestions: int
    ) -> list[SkillExplanation]:
        own = querier.wants if role == "learner" else querier.offers
        columns = np.array(
            sorted(column for column in own if skill is None or column == skill), dtype=np.int64
        )
        n_skills = columns.size
        if n_skills == 0:
            return []
        found = self._counterparts(columns, querier, role)
        offering = found.count(n_skills)
        sharing_language = found.count(n_skills, found.speaks)
        overlapping = found.count(n_skills, found.speaks & found.meets)
        with_open_slot = found.count(n_skills, found.listed)

        options: list[list[Suggestion]] = [[] for _ in range(n_skills)]
        # Blocked by time alone: they gave availability (else they would meet), so did I.
        blocked = found.speaks & found.has_slot & ~found.meets
        if blocked.any():
            blocks, per_block = self._block_hits(
                querier, found.rows[blocked], found.group[blocked], n_skills
            )
            for block, group in zip(*np.nonzero(per_block), strict=True):
                weekday, start, end = blocks[block]
                options[group].append(
                    Suggestion(
                        AvailabilityChange(weekday, start, end), int(per_block[block, group])
                    )
                )
        # Blocked by language alone.
        unspoken = found.meets & found.has_slot & ~found.speaks
        if unspoken.any():
            owner, languages, _ = self._languages.gather(found.rows[unspoken])
            width = len(self._language_codes)
            keys = found.group[unspoken][owner] * width + languages
            per_language = np.bincount(keys, minlength=n_skills * width).reshape(n_skills, width)
            for group, language in zip(*np.nonzero(per_language), strict=True):
                spoken = LanguageChange(self._language_codes[language])
                options[group].append(Suggestion(spoken, int(per_language[group, language])))
        # Few list it at all: the skills next to it in the tree, that I do not list yet.
        near: list[tuple[int, int]] = [
            (group, int(neighbour))
            for group in np.flatnonzero(offering < few).tolist()
            for neighbour in self.skill_space.neighbours(int(columns[group])).tolist()
            if neighbour not in own
        ]
        if near:
            neighbours = np.unique([neighbour for _, neighbour in near])
            nearby = self._counterparts(neighbours, querier, role)
            listable = nearby.count(neighbours.size, nearby.listed)
            for group, neighbour in near:
                would_add = int(listable[np.searchsorted(neighbours, neighbour)])
                if would_add:
                    added = SkillChange(self.skill_space.skill_ids[neighbour])
                    options[group].append(Suggestion(added, would_add))

        return [
            SkillExplanation(
                skill=self.skill_space.skill_ids[int(columns[group])],
                offering=int(offering[group]),
                sharing_language=int(sharing_language[group]),
                overlapping=int(overlapping[group]),
                with_open_slot=int(with_open_slot[group]),
                suggestions=tuple(sorted(options[group], key=_suggestion_order)[:n_suggestions]),
            )
            for group in range(n_skills)
        ]

    def _counterparts(self, columns: IntArray, querier: _Querier, role: Role) -> _Counterparts:
        """The counterparts listing each of ``columns`` exactly on the other side of ``role``.

        Parameters
        ----------
        columns : ndarray of int64, shape (s,)
            Skill columns; entry ``i`` of the result's ``group`` refers to ``columns[i]``.
        """
        postings = self._offer_postings if role == "learner" else self._want_postings
        posted = [postings.column(int(column))[0] for column in columns.tolist()]
        rows = np.concatenate(posted).astype(np.int64, copy=False)
        group = np.repeat(np.arange(columns.size, dtype=np.int64), [part.size for part in posted])
        # Postings keep tombstoned rows until compaction.
        keep = self._alive.values[rows] & self._active.values[rows]
        own_row = self._row_of.get(querier.volunteer_id)
        if own_row is not None:
            keep &= rows != own_row
        rows, group = rows[keep], group[keep]

        speaks = self._shared_language_levels(rows, querier) > 0
        if querier.bitmap is None:
            meets = np.ones(rows.size, dtype=np.bool_)
        else:
            overlap = self._overlap_minutes(rows, querier.bitmap)
            meets = ~self._has_availability.values[rows] | (overlap > 0)
        if not querier.active:
            has_slot = np.zeros(rows.size, dtype=np.bool_)
        elif role == "learner":
            has_slot = self._open_slots.values[rows] > 0
        else:
            has_slot = np.full(rows.size, querier.open_slots > 0, dtype=np.bool_)
        return _Counterparts(rows, group, speaks, meets, has_slot)

    def _block_hits(
        self, querier: _Querier, rows: IntArray, group: IntArray, n_groups: int
    ) -> tuple[list[tuple[int, int, int]], IntArray]:
        """How many of ``rows`` each day part the asker has no slot in would overlap.

        Parameters
        ----------
        rows, group : ndarray of int64, shape (m,)
            Counterparts that share no time with the asker, and the skill of each.
        n_groups : int
            Number of skills ``group`` refers to.

        Returns
        -------
        blocks : list of (weekday, start_minute, end_minute), length b
            The day parts tried, on the asker's wall clock, by weekday then start.
        hits : ndarray of int64, shape (b, n_groups)
            Per block and skill, the counterparts with time in that block.
        """
        blocks = [
            (weekday, start, end)
            for weekday in range(7)
            for start, end in DAY_PARTS
            if not any(
                day == weekday and own_start < end and start < own_end
                for day, own_start, own_end in querier.slots
            )
        ]
        if not blocks or querier.timezone is None:
            return [], np.zeros((0, n_groups), dtype=np.int64)
        # The same wall-clock conversion as the asker's own slots, so a block saved to the
        # profile overlaps exactly the counterparts counted here.
        table = wall_clock_table(querier.timezone, self.week_start)
        weekdays = np.array([block[0] for block in blocks], dtype=np.int64)
        starts = np.array([block[1] for block in blocks], dtype=np.int64) // QUARTER_MINUTES
        ends = np.array([block[2] for block in blocks], dtype=np.int64) // QUARTER_MINUTES
        block_bits = bitmaps_from_intervals(
            len(blocks),
            np.arange(len(blocks), dtype=np.int64),
            table[weekdays, starts],
            table[weekdays, ends],
        )
        touches = np.zeros((len(blocks), rows.size), dtype=np.bool_)
        for word in range(WORDS_PER_WEEK):
            touches |= (block_bits[word][:, None] & self._bitmaps[word, rows][None, :]) != 0
        block, counterpart = np.nonzero(touches)
        hits = np.bincount(
            block * n_groups + group[counterpart], minlength=len(blocks) * n_groups
        ).reshape(len(blocks), n_groups)
        return blocks, hits.astype(np.int64)

    # -- many learners at once ---------------------------------------------------------------

    def candidates(
        self,
        learners: Iterable[int] | None = None,
        *,
        k: int | None = None,
        wanted_skills: Iterable[str] | None = None,
        mentors: Iterable[int] | None = None,
        per_wanted_skill: bool = False,
        min_score: float = 0.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> Candidates:
        """Each learner's best ``k`` mentors, for many learners at once.

        A learner's pairs are exactly ``query(learner, role="learner", limit=k)``: the same
        mentors, scores, skill choices and exclusions (never oneself, a shared language,
        overlapping time where both gave availability, an open mentor slot).

        Parameters
        ----------
        learners : iterable of int, optional
            The round's learners (ids held by the index; KeyError otherwise). Default: every
            active volunteer with a want. Inactive ones are left out.
        k : int or None, default None
            At most this many mentors per learner (per wanted skill with
            ``per_wanted_skill``), the best first; None keeps every listed pair. A round
            pruned this way can lose most of its optimum when many mentors score high for
            everyone (``capex/matching/rounds.py``, "Pruning"), so rounds keep every pair.
        wanted_skills : iterable of str, optional
            Only these wants of the learners take part (with one skill, the pairs are
            ``query(learner, skill=that_skill)``); learners wanting none of them are not in
            the round.
        mentors : iterable of int, optional
            Only these mentors (ids held by the index; KeyError otherwise).
        per_wanted_skill : bool, default False
            One list per (learner, wanted skill), as ``query(learner, skill=w, limit=k)``
            for each want ``w``, instead of one per learner.
        min_score : float, default 0.0
            Only pairs scoring at least this.
        progress : callable, optional
            Called as ``progress(learners_done, learners_total)`` after each block of
            learners (a progress bar; it runs under the index's lock, so keep it quick).

        Returns
        -------
        Candidates
            Rows ordered by learner id, (wanted skill,) score descending, mentor id.
        """
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ValueError(f"k must be an integer >= 1 or None, got {k!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score!r}")
        n_skills = len(self.skill_space)
        allowed_wants = np.ones(n_skills, dtype=np.bool_)
        if wanted_skills is not None:
            allowed_wants[:] = False
            allowed_wants[self.skill_space.positions(list(wanted_skills))] = True
        with self._lock:
            learner_rows = self._rows_of(learners, self._eligible_learner.values)
            mentor_rows = self._rows_of(mentors, self._eligible_mentor.values)
            return self._candidates(
                learner_rows, mentor_rows, allowed_wants, k, per_wanted_skill, min_score, progress
            )

    def _rows_of(self, ids: Iterable[int] | None, eligible: npt.NDArray[np.bool_]) -> IntArray:
        """Eligible rows of ``ids`` (all eligible rows when None), ordered by id."""
        if ids is None:
            rows = np.flatnonzero(eligible)
        else:
            wanted = sorted({int(i) for i in ids})
            missing = [i for i in wanted if i not in self._row_of]
            if missing:
                raise KeyError(f"volunteers {missing[:10]!r} are not in the index")
            rows = np.array([self._row_of[i] for i in wanted], dtype=np.int64)
            rows = rows[eligible[rows]]
        ordered: IntArray = rows[np.argsort(self._ids.values[rows], kind="stable")]
        return ordered

    def _pass_ranks(self) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
        """The skill-choice order of every (related skill pair, mentor level, target).

        Returns
        -------
        rank : ndarray of int64, shape (n_related * 25,)
            Rank of combination ``pair * 25 + level * 5 + target``, where ``pair`` is a
            position in ``similarity_.data``; smaller is chosen first.
        value, wanted, offered : ndarrays, shape (n_related * 25,)
            ``sim * fit``, wanted and offered column of each rank.
        """
        similarity = self.skill_space.similarity_
        n_pairs = similarity.data.size
        wanted_of_pair = np.repeat(
            np.arange(len(self.skill_space), dtype=np.int64), np.diff(similarity.indptr)
        )
        offered_of_pair = similarity.indices.astype(np.int64)
        sim = similarity.data.astype(np.float64)
        # The same float product as the query: similarity * fit[level, target].
        value = (sim[:, None] * self._fit.reshape(1, -1)).ravel()
        pair = np.repeat(np.arange(n_pairs, dtype=np.int64), _MAX_LEVEL * _MAX_LEVEL)
        order = np.lexsort((offered_of_pair[pair], wanted_of_pair[pair], -sim[pair], -value))
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size, dtype=np.int64)
        return rank, value[order], wanted_of_pair[pair[order]], offered_of_pair[pair[order]]

    def _candidates(
        self,
        learner_rows: IntArray,
        mentor_rows: IntArray,
        allowed_wants: npt.NDArray[np.bool_],
        k: int | None,
        per_wanted_skill: bool,
        min_score: float,
        progress: Callable[[int, int], None] | None,
    ) -> Candidates:
        n_skills = len(self.skill_space)
        similarity = self.skill_space.similarity_
        sim_indptr = similarity.indptr.astype(np.int64)
        rank_of, rank_value, rank_wanted, rank_offered = self._pass_ranks()

        # The round's learners: those with a want taking part.
        want_owner, want_columns, _ = self._wants.gather(learner_rows)
        in_round = np.zeros(learner_rows.size, dtype=np.bool_)
        in_round[want_owner[allowed_wants[want_columns]]] = True
        learner_rows = learner_rows[in_round]
        round_learners = self._ids.values[learner_rows]
        # Their wants, one entry each, learner after learner (ascending id).
        want_owner, want_columns, want_targets = self._wants.gather(learner_rows)
        kept = allowed_wants[want_columns]
        want_owner = want_owner[kept]
        want_columns = want_columns[kept].astype(np.int64)
        want_targets = want_targets[kept].astype(np.int64)

        # The mentors' offers as postings: per skill, mentor positions (ascending) and levels.
        n_mentors = mentor_rows.size
        offer_owner, offer_columns, offer_levels = self._offers.gather(mentor_rows)
        by_skill = np.argsort(offer_columns, kind="stable")
        posting_mentor = offer_owner[by_skill]
        posting_level = offer_levels[by_skill].astype(np.int64)
        posting_indptr = np.zeros(n_skills + 1, dtype=np.int64)
        np.cumsum(np.bincount(offer_columns, minlength=n_skills), out=posting_indptr[1:])
        posting_count = np.diff(posting_indptr)
        # Join entries a want of each skill makes: the postings of its related skills.
        wanted_of_pair = np.repeat(np.arange(n_skills, dtype=np.int64), np.diff(sim_indptr))
        entries_per_skill = np.bincount(
            wanted_of_pair, posting_count[similarity.indices], minlength=n_skills
        )
        entries_per_want = entries_per_skill[want_columns]

        # Blocks of whole learners holding about _BLOCK_ENTRIES join entries each.
        learner_entries = np.bincount(want_owner, entries_per_want, minlength=learner_rows.size)
        cumulative = np.cumsum(learner_entries)
        bounds = [0]
        while bounds[-1] < learner_rows.size:
            base = cumulative[bounds[-1] - 1] if bounds[-1] else 0.0
            end = int(np.searchsorted(cumulative, base + _BLOCK_ENTRIES, side="right"))
            bounds.append(max(end, bounds[-1] + 1))
        want_bounds = np.searchsorted(want_owner, bounds)

        parts: list[tuple[IntArray, IntArray, IntArray, FloatArray]] = []
        used_mentors = np.zeros(n_mentors, dtype=np.bool_)
        for block in range(len(bounds) - 1):
            if progress is not None:
                progress(bounds[block], learner_rows.size)
            first, last = int(want_bounds[block]), int(want_bounds[block + 1])
            if first == last or not entries_per_want[first:last].any():
                continue
            block_part = self._candidate_block(
                learner_rows,
                mentor_rows,
                want_owner[first:last],
                want_columns[first:last],
                want_targets[first:last],
                sim_indptr,
                posting_indptr,
                posting_mentor,
                posting_level,
                rank_of,
                rank_value,
                k,
                per_wanted_skill,
                min_score,
                used_mentors,
            )
            parts.append(block_part)
        if progress is not None:
            progress(learner_rows.size, learner_rows.size)

        if parts:
            owner, mentor, best, scores = (
                np.concatenate([part[i] for part in parts]) for i in range(4)
            )
        else:
            owner = mentor = best = np.zeros(0, dtype=np.int64)
            scores = np.zeros(0, dtype=np.float64)
        mentor_ids = self._ids.values[mentor_rows]
        return Candidates(
            learner_ids=self._ids.values[learner_rows[owner]],
            mentor_ids=mentor_ids[mentor],
            skills=rank_offered[best],
            wanted_skills=rank_wanted[best],
            scores=scores.astype(np.float64),
            skill_ids=self.skill_space.skill_ids,
            learners=round_learners,
            mentors=np.sort(mentor_ids[used_mentors]),
            open_slots=self._open_slots.values[mentor_rows[used_mentors]][
                np.argsort(mentor_ids[used_mentors], kind="stable")
            ],
        )

    def _candidate_block(
        self,
        learner_rows: IntArray,
        mentor_rows: IntArray,
        want_owner: IntArray,
        want_columns: IntArray,
        want_targets: IntArray,
        sim_indptr: IntArray,
        posting_indptr: IntArray,
        posting_mentor: IntArray,
        posting_level: IntArray,
        rank_of: IntArray,
        rank_value: FloatArray,
        k: int | None,
        per_wanted_skill: bool,
        min_score: float,
        used_mentors: npt.NDArray[np.bool_],
    ) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """One block of ``candidates``: the kept pairs of the learners owning these wants.

        Returns
        -------
        owner, mentor : ndarray of int64, shape (p,)
            Positions in ``learner_rows`` and ``mentor_rows``.
        best : ndarray of int64, shape (p,)
            The rank (see ``_pass_ranks``) of the pair's chosen skill combination.
        scores : ndarray of float64, shape (p,)
        """
        n_mentors = mentor_rows.size
        related_skills = self.skill_space.similarity_.indices
        # want -> related offered skill: one entry per (want, position in similarity_.data).
        want_of, pair = segment_positions(
            sim_indptr[want_columns], sim_indptr[want_columns + 1] - sim_indptr[want_columns]
        )
        offered = related_skills[pair].astype(np.int64)
        # related skill -> mentors offering it.
        related_of, posting = segment_positions(
            posting_indptr[offered], posting_indptr[offered + 1] - posting_indptr[offered]
        )
        entry = want_of[related_of]
        rank = rank_of[
            pair[related_of] * (_MAX_LEVEL * _MAX_LEVEL)
            + posting_level[posting] * _MAX_LEVEL
            + want_targets[entry]
        ]
        del want_of, pair, offered, related_of
        # A group is a learner, or one want of a learner; keep each (group, mentor)'s best rank.
        if per_wanted_skill:
            group_owner = want_owner
            group_wanted = want_columns
            group = entry
        else:
            group_owner = np.arange(want_owner[0], want_owner[-1] + 1, dtype=np.int64)
            group_wanted = np.zeros(group_owner.size, dtype=np.int64)
            group = want_owner[entry] - want_owner[0]
        key = group * n_mentors + posting_mentor[posting]
        del entry, posting, group
        n_ranks = rank_of.size
        if group_owner.size * n_mentors * n_ranks < 2**62:
            combined = key * n_ranks + rank
            del key, rank
            combined.sort()
            keys = combined // n_ranks
            first = first_of_groups(keys)
            best = combined[first] % n_ranks
            keys = keys[first]
            del combined
        else:
            order = np.lexsort((rank, key))
            keys = key[order]
            first = first_of_groups(keys)
            best = rank[order][first]
            keys = keys[first]
            del order, key, rank
        pair_group, mentor = np.divmod(keys, n_mentors)
        owner = group_owner[pair_group]
        learner_row = learner_rows[owner]
        mentor_row = mentor_rows[mentor]

        keep = self._ids.values[learner_row] != self._ids.values[mentor_row]
        has_availability = self._has_availability.values
        known = has_availability[learner_row] & has_availability[mentor_row]
        overlap = np.zeros(keys.size, dtype=np.int64)
        both = np.flatnonzero(known)
        if both.size:
            shared_quarters = np.zeros(both.size, dtype=np.int64)
            both_learners, both_mentors = learner_row[both], mentor_row[both]
            for word in range(WORDS_PER_WEEK):
                bits = self._bitmaps[word]
                shared_quarters += np.bitwise_count(bits[both_learners] & bits[both_mentors])
            overlap[both] = shared_quarters * QUARTER_MINUTES
        keep &= ~known | (overlap > 0)
        selected = np.flatnonzero(keep)
        language_level = self._shared_language_levels_of_pairs(
            learner_row[selected], mentor_row[selected]
        )
        spoken = language_level > 0
        selected, language_level = selected[spoken], language_level[spoken]

        # The query's formula and float operations, so the scores are the same bits.
        saturation = self.overlap_saturation_minutes
        known, overlap = known[selected], overlap[selected]
        availability = np.where(
            known, np.minimum(overlap, saturation) / saturation, self.unknown_availability
        )
        language = language_level / 5
        multiplier = (
            self.base_weight
            + self.availability_weight * availability
            + self.language_weight * language
        )
        best = best[selected]
        scores: FloatArray = np.minimum(1.0, rank_value[best] * multiplier)
        listed = scores >= min_score
        pair_group = pair_group[selected][listed]
        owner, mentor = owner[selected][listed], mentor[selected][listed]
        best, scores = best[listed], scores[listed]
        used_mentors[mentor] = True

        # Best k per group: by learner, (wanted skill,) score descending, mentor id ascending.
        mentor_ids = self._ids.values[mentor_rows[mentor]]
        order = np.lexsort((mentor_ids, -scores, group_wanted[pair_group], owner))
        if k is not None:
            # A group (a learner, or one want) is one run after sorting.
            order = order[rank_in_groups(pair_group[order]) < k]
        return owner[order], mentor[order], best[order], scores[order]

    def _shared_language_levels_of_pairs(
        self, learner_rows: IntArray, mentor_rows: IntArray
    ) -> IntArray:
        """Per pair, the best ``min(level_learner, level_mentor)`` over shared languages."""
        width = len(self._language_codes) + 1
        # The learners' (row, language) -> level, as sorted keys to look up.
        unique_learners, learner_index = np.unique(learner_rows, return_inverse=True)
        owner, columns, levels = self._languages.gather(unique_learners)
        learner_keys = owner * width + columns
        by_key = np.argsort(learner_keys, kind="stable")
        learner_keys, learner_levels = learner_keys[by_key], levels[by_key]
        counts = self._languages.counts(mentor_rows)
        pair, mentor_columns, mentor_levels = self._languages.gather(mentor_rows)
        best = np.zeros(mentor_rows.size, dtype=np.int64)
        if pair.size == 0 or learner_keys.size == 0:
            return best
        wanted_keys = learner_index[pair] * width + mentor_columns
        found = np.minimum(np.searchsorted(learner_keys, wanted_keys), learner_keys.size - 1)
        learner_level = np.where(learner_keys[found] == wanted_keys, learner_levels[found], 0)
        shared = np.minimum(learner_level, mentor_levels)
        spoken = counts > 0
        offsets = np.cumsum(counts) - counts
        best[spoken] = np.maximum.reduceat(shared, offsets[spoken])
        return best

    def explain(self, candidates: Candidates, rows: npt.ArrayLike | None = None) -> list[Match]:
        """The matches behind candidate pairs, with their reasons, as ``query`` gives them.

        Row ``r`` becomes the ``Match`` that ``query(learner, skill=wanted_skill)`` lists for
        its mentor (the same skill choice, score, similarity, level fit, overlap and shared
        languages). ``candidates`` must come from this index, unchanged since (a volunteer
        removed since raises KeyError).

        Parameters
        ----------
        candidates : Candidates
        rows : array of int, optional
            Positions in ``candidates`` (an ``Assignment``'s rows); default all.

        Returns
        -------
        list of Match, one per row, in the order of ``rows``.
        """
        if candidates.skill_ids != self.skill_space.skill_ids:
            raise ValueError("candidates name another skill taxonomy than this index")
        chosen = np.arange(len(candidates)) if rows is None else np.asarray(rows, np.int64)
        with self._lock:
            learner_rows = np.array(
                [self._row_of[i] for i in candidates.learner_ids[chosen].tolist()], np.int64
            )
            mentor_rows = np.array(
                [self._row_of[i] for i in candidates.mentor_ids[chosen].tolist()], np.int64
            )
            has_availability = self._has_availability.values
            known = (has_availability[learner_rows] & has_availability[mentor_rows]).tolist()
            quarters = np.zeros(chosen.size, dtype=np.int64)
            for word in range(WORDS_PER_WEEK):
                bits = self._bitmaps[word]
                quarters += np.bitwise_count(bits[learner_rows] & bits[mentor_rows])
            overlaps = (quarters * QUARTER_MINUTES).tolist()
            matches = []
            for i, (row, learner_row, mentor_row) in enumerate(
                zip(chosen.tolist(), learner_rows.tolist(), mentor_rows.tolist(), strict=True)
            ):
                wanted = int(candidates.wanted_skills[row])
                offered = int(candidates.skills[row])
                related, similarities = self.skill_space.related(wanted)
                similarity = float(similarities[np.searchsorted(related, offered)])
                want_columns, want_levels = self._wants.row(learner_row)
                offer_columns, offer_levels = self._offers.row(mentor_row)
                target = int(want_levels[want_columns == wanted][0])
                level = int(offer_levels[offer_columns == offered][0])
                languages, language_levels = self._languages.row(learner_row)
                learner = _Querier(
                    volunteer_id=int(candidates.learner_ids[row]),
                    active=True,
                    open_slots=0,
                    bitmap=None,
                    languages=dict(zip(languages.tolist(), language_levels.tolist(), strict=True)),
                    offers={},
                    wants={},
                )
                matches.append(
                    Match(
                        volunteer_id=int(candidates.mentor_ids[row]),
                        skill=self.skill_space.skill_ids[offered],
                        wanted_skill=self.skill_space.skill_ids[wanted],
                        score=float(candidates.scores[row]),
                        skill_similarity=similarity,
                        level_fit=float(self._fit[level, target]),
                        overlap_minutes_per_week=int(overlaps[i]) if known[i] else None,
                        shared_languages=self._shared_languages(mentor_row, learner),
                    )
                )
            return matches


def _suggestion_order(suggestion: Suggestion) -> tuple[int, int, tuple[int | str, ...]]:
    """Most added first; then availability, language, skill; then weekday and start, or id."""
    change: ProfileChange = suggestion.change
    detail: tuple[int | str, ...]
    if isinstance(change, AvailabilityChange):
        detail = (change.weekday, change.start_minute)
    elif isinstance(change, LanguageChange):
        detail = (change.language,)
    else:
        detail = (change.skill,)
    return -suggestion.would_add, _CHANGE_ORDER[type(change)], detail
