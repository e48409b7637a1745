"""The in-memory match index: sparse skill postings, language lists and availability bitmaps.

Every volunteer is one row. A changed volunteer is not edited in place: its old row is marked
dead (a tombstone) and a new row is appended, so an update costs time in proportion to the
volunteers changed, not to the index. When dead rows pass ``compaction_ratio`` of all rows the
index is compacted (the live rows copied, in order, into fresh arrays).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from capex.matching._arrays import GrowableArray, Postings, RaggedRows
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
from capex.matching.taxonomy import SkillSpace
from capex.matching.types import ROLES, Match, Role, VolunteerRecord

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_MAX_LEVEL = 5  # level tables are indexed by level 0..4 (0 unused)


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
        self._row_of: dict[int, int] = {}
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
        for volunteer_id in ids:
            old = self._row_of.get(volunteer_id)
            if old is not None:
                self._kill(old)
        self._row_of.update(zip(ids, rows.tolist(), strict=True))

        zones = np.array([self._zone_column(tz) for tz in batch.timezones], dtype=np.int32)
        self._ids.extend(batch.ids)
        self._alive.extend(np.ones(len(batch), dtype=np.bool_))
        self._active.extend(batch.active)
        self._open_slots.extend(batch.open_slots)
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
                row = self._row_of.pop(int(volunteer_id), None)
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
            self._row_of = dict(zip(self._ids.values.tolist(), range(keep.size), strict=True))
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

    # -- queries -----------------------------------------------------------------------------

    def _querier_from_row(self, row: int) -> _Querier:
        languages, language_levels = self._languages.row(row)
        offers, offer_levels = self._offers.row(row)
        wants, want_levels = self._wants.row(row)
        return _Querier(
            volunteer_id=int(self._ids.values[row]),
            active=bool(self._active.values[row]),
            open_slots=int(self._open_slots.values[row]),
            bitmap=self._bitmaps[:, row].copy() if self._has_availability.values[row] else None,
            languages=dict(zip(languages.tolist(), language_levels.tolist(), strict=True)),
            offers=dict(zip(offers.tolist(), offer_levels.tolist(), strict=True)),
            wants=dict(zip(wants.tolist(), want_levels.tolist(), strict=True)),
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
        if record.timezone is not None and record.slots:
            slots = list(
                zip(
                    batch.slot_weekdays.tolist(),
                    batch.slot_starts.tolist(),
                    batch.slot_ends.tolist(),
                    strict=True,
                )
            )
            bitmap = availability_bitmap(slots, record.timezone, self.week_start)
        return _Querier(
            volunteer_id=int(batch.ids[0]),
            active=bool(batch.active[0]),
            open_slots=int(batch.open_slots[0]),
            bitmap=bitmap,
            languages=languages,
            offers=dict(zip(batch.offer_skills.tolist(), batch.offer_levels.tolist(), strict=True)),
            wants=dict(zip(batch.want_skills.tolist(), batch.want_levels.tolist(), strict=True)),
        )

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
            if isinstance(volunteer, VolunteerRecord):
                querier = self._querier_from_record(volunteer)
            else:
                if isinstance(volunteer, bool) or not isinstance(volunteer, int | np.integer):
                    raise ValueError(
                        f"volunteer must be an id or a VolunteerRecord, got {volunteer!r}"
                    )
                row = self._row_of.get(int(volunteer))
                if row is None:
                    raise KeyError(f"volunteer {volunteer!r} is not in the index")
                querier = self._querier_from_row(row)
            return self._query(querier, role, skill_column, limit)

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
