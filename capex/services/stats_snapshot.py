"""The statistics from a columnar snapshot in memory, refreshed incrementally.

:class:`StatsIndex` answers every question of :mod:`capex.services.stats` (it is a
``StatsSource``) with the same definitions, the same ordering and the same rounding, but
from numpy arrays of just what the figures need, so that any filter is a few vectorised
passes (milliseconds at 100,000 volunteers and a million exchanges) instead of a scan in
the database:

- per volunteer: id, active, region, capacity, accepted exchanges, created and last seen;
- per volunteer and skill: offers and wants, as ``scipy.sparse`` matrices (and per area);
- per volunteer: spoken languages (primary subtags) and codes (``pt-BR``);
- per exchange: skill, learner, mentor, stored state, and created, responded, accepted and
  closed times as int64 microseconds since the epoch (``NONE`` when unset);
- per feedback row: the exchange, the subject, whether a learner wrote it, the rating.

Every answer says ``as_of``: the time the snapshot was taken, which is also the "now" of its
figures (expiry, 30-day windows, waiting days). A snapshot older than ``max_age_seconds``
is refreshed before answering (``0``: on every answer); :meth:`StatsIndex.start` keeps it
fresh in a background thread instead, so that answers never wait after the first build.

A refresh rereads only what changed since the previous one, as ``MatchingService`` polls:
exchanges by ``updated_at`` (stamped on creation and every transition), volunteers by
``updated_at`` (every profile change and every move of ``accepted_as_mentor``) or
``last_seen_at``, feedback by ``created_at`` (it is never edited), each looking
``POLL_OVERLAP`` further back for transactions that commit late. Row counts that disagree
with the database afterwards (a row deleted), or a changed taxonomy, mean a full rebuild.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import InitVar, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sqlalchemy import BigInteger, Engine, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from capex.config import Settings
from capex.db import log_failure, session_scope
from capex.errors import Invalid, field_error
from capex.models import (
    Exchange,
    Feedback,
    Skill,
    SkillOffer,
    SkillWant,
    Volunteer,
    VolunteerLanguage,
)
from capex.models.base import utcnow
from capex.services.matches import POLL_OVERLAP
from capex.services.profiles import VolunteerRef, volunteer_refs
from capex.services.stats import (
    FUNNEL_STAGES,
    INTERVALS,
    LEVELS,
    LOST_STATES,
    RECENT,
    Funnel,
    FunnelStage,
    LanguageRow,
    LanguageTable,
    LoadRow,
    MentorStats,
    Overview,
    RegionRow,
    RegionTable,
    SkillRow,
    SkillTable,
    StatsQuery,
    Timeline,
    TimelineRow,
    TopMentor,
    WaitingRequest,
    period_of,
)
from capex.vocabulary import ExchangeState, Side

logger = logging.getLogger("capex.stats")

Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

NONE = np.iinfo(np.int64).min  # an unset timestamp
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
# More changed volunteers than this in one refresh: their child rows are read in full.
MANY_CHANGED = 2000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATES = list(ExchangeState)
CODE = {state: code for code, state in enumerate(STATES)}
REQUESTED, ACCEPTED = CODE[ExchangeState.REQUESTED], CODE[ExchangeState.ACCEPTED]
EXPIRED, COMPLETED = CODE[ExchangeState.EXPIRED], CODE[ExchangeState.COMPLETED]


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _moment(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _day(days: int) -> date:
    """The calendar day ``days`` after 1 January 1970."""
    return (EPOCH + timedelta(days=days)).date()


# -- reading the database ------------------------------------------------------------------


def _epoch_us(column: Any, dialect: str) -> Any:
    """SQL for a timestamp column as int64 microseconds since the epoch, NONE when NULL."""
    micros: Any
    if dialect == "postgresql":
        micros = cast(extract("epoch", column) * 1_000_000, BigInteger)
    else:
        # Stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC; integer arithmetic, no float.
        micros = cast(func.strftime("%s", column), BigInteger) * 1_000_000 + cast(
            func.substr(column, 21, 6), BigInteger
        )
    return func.coalesce(micros, int(NONE))


def _raw_rows(session: Session, statement: Any) -> list[tuple[Any, ...]]:
    """The rows of a ``statement`` of plain SQL values, as the driver's tuples.

    A million rows through the ORM's result objects take seconds more; these columns need
    no result processing (ints and text computed in SQL).
    """
    result = session.connection().execute(statement)
    try:
        cursor = result.cursor
        assert cursor is not None
        return list(cursor.fetchall())
    finally:
        result.close()


def _int_rows(session: Session, statement: Any, width: int) -> Ints:
    """The rows of an all-integer ``statement`` as one (n, width) int64 array."""
    rows = _raw_rows(session, statement)
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


def _changed_rows(
    session: Session, statement: Any, stamp: Any, since: datetime | None, width: int
) -> Ints:
    """Every row in id order (the first column), or those whose ``stamp`` is after ``since``.

    The changed rows are sorted here, not in SQL: asked for id order, SQLite walks the whole
    table in it instead of looking the few changed rows up by their stamp's index.
    """
    if since is None:
        return _int_rows(session, statement.order_by(statement.selected_columns[0]), width)
    rows = _int_rows(session, statement.where(stamp > since), width)
    return rows[np.argsort(rows[:, 0], kind="stable")]


@dataclass(frozen=True)
class _Taxonomy:
    ids: list[str]
    names: list[str]
    index: dict[str, int]
    root: Int32s  # per skill, the index of its root skill
    version: tuple[int, Any]  # (count, latest updated_at): a change means a full rebuild


def _read_taxonomy(session: Session) -> _Taxonomy:
    rows = session.execute(select(Skill.id, Skill.name, Skill.parent_id).order_by(Skill.id)).all()
    ids = [row[0] for row in rows]
    index = {skill_id: k for k, skill_id in enumerate(ids)}
    parent = {row[0]: row[2] for row in rows}
    root = np.empty(len(ids), dtype=np.int32)
    for k, skill_id in enumerate(ids):
        current = skill_id
        while (up := parent[current]) is not None:
            current = up
        root[k] = index[current]
    count, latest = session.execute(select(func.count(), func.max(Skill.updated_at))).one()
    return _Taxonomy(ids, [row[1] for row in rows], index, root, (int(count), latest))


@dataclass(frozen=True)
class _Tables:
    """The columns the figures need, as read (plus what the refreshes merged in).

    Volunteers and exchanges are rows in the order first read (``v_id``, ``e_id`` give
    their ids); the exchanges' learner and mentor, and the feedback's subject and exchange,
    are rows. Timestamps are microseconds since the epoch, ``NONE`` when unset; states are
    indices in ``STATES``; skills, regions, languages and codes indices in their lists.
    """

    taxonomy: _Taxonomy
    regions: list[str | None]
    languages: list[str]
    codes: list[str]
    v_id: Ints
    v_active: Bools
    v_region: Int32s
    v_capacity: Ints
    v_accepted: Ints
    v_created: Ints
    v_seen: Ints
    # (volunteer row, language, code) per spoken language; (volunteer row, skill) per entry.
    l_v: Int32s
    l_language: Int32s
    l_code: Int32s
    o_v: Int32s
    o_s: Int32s
    w_v: Int32s
    w_s: Int32s
    e_id: Ints
    e_skill: Int32s
    e_learner: Int32s
    e_mentor: Int32s
    e_state: npt.NDArray[np.int8]
    e_created: Ints
    e_responded: Ints
    e_accepted: Ints
    e_closed: Ints
    f_id: Ints
    f_exchange: Int32s
    f_subject: Int32s
    f_learner: Bools
    f_rating: Ints


class _Vocabulary:
    """Strings to small ints, growing as new ones are seen."""

    def __init__(self, words: Iterable[Any] = ()) -> None:
        self.words: list[Any] = list(words)
        self.index = {word: k for k, word in enumerate(self.words)}

    def code(self, word: Any) -> int:
        found = self.index.get(word)
        if found is None:
            found = self.index[word] = len(self.words)
            self.words.append(word)
        return found


class _IdIndex:
    """Row positions by id, for ids in any order."""

    def __init__(self, ids: Ints) -> None:
        self.order = np.argsort(ids, kind="stable").astype(np.int64)
        self.sorted = ids[self.order]

    def positions(self, ids: Ints) -> Ints:
        """The row of each of ``ids``, -1 for those not held."""
        if len(self.sorted) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.sorted, ids), len(self.sorted) - 1)
        return np.where(self.sorted[at] == ids, self.order[at], -1)


class _Reader:
    """The SELECTs of a build or a refresh, on one session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def us(self, column: Any) -> Any:
        return _epoch_us(column, self.dialect)

    def volunteers(self, since: datetime | None) -> tuple[Ints, list[str | None]]:
        """(id, active, capacity, accepted, created, last seen) rows, and their regions."""
        statement = select(
            Volunteer.id,
            case((Volunteer.is_active.is_(True), 1), else_=0),
            Volunteer.mentor_capacity,
            Volunteer.accepted_as_mentor,
            self.us(Volunteer.created_at),
            self.us(Volunteer.last_seen_at),
            Volunteer.region,
        ).order_by(Volunteer.id)
        if since is not None:
            statement = statement.where(
                or_(Volunteer.updated_at > since, Volunteer.last_seen_at > since)
            )
        rows = _raw_rows(self.session, statement)
        numbers = np.array([row[:6] for row in rows], dtype=np.int64).reshape(len(rows), 6)
        return numbers, [row[6] for row in rows]

    def entries(
        self, table: type[SkillOffer] | type[SkillWant], ids: Ints | None
    ) -> list[tuple[int, str]]:
        statement = select(table.volunteer_id, table.skill_id)
        if ids is not None:
            statement = statement.where(table.volunteer_id.in_(ids.tolist()))
        return [(int(v), s) for v, s in _raw_rows(self.session, statement)]

    def languages(self, ids: Ints | None) -> list[tuple[int, str, str]]:
        statement = select(
            VolunteerLanguage.volunteer_id, VolunteerLanguage.language, VolunteerLanguage.code
        )
        if ids is not None:
            statement = statement.where(VolunteerLanguage.volunteer_id.in_(ids.tolist()))
        return [
            (int(v), language, code) for v, language, code in _raw_rows(self.session, statement)
        ]

    def exchanges(self, since: datetime | None) -> Ints:
        """(id, skill, learner id, mentor id, state, created, responded, accepted, closed)."""
        # The skill as its index in the taxonomy: the skills numbered in the order read.
        numbered = select(
            Skill.id.label("id"), (func.row_number().over(order_by=Skill.id) - 1).label("k")
        ).subquery()
        state = case(*((Exchange.state == s.value, CODE[s]) for s in STATES), else_=-1)
        statement = select(
            Exchange.id,
            numbered.c.k,
            Exchange.learner_id,
            Exchange.mentor_id,
            state,
            self.us(Exchange.created_at),
            self.us(Exchange.responded_at),
            self.us(Exchange.accepted_at),
            self.us(Exchange.closed_at),
        ).join(numbered, numbered.c.id == Exchange.skill_id)
        return _changed_rows(self.session, statement, Exchange.updated_at, since, 9)

    def feedback(self, since: datetime | None) -> Ints:
        """(id, exchange id, subject id, written by the learner, rating)."""
        statement = select(
            Feedback.id,
            Feedback.exchange_id,
            Feedback.subject_id,
            case((Feedback.author_role == Side.LEARNER.value, 1), else_=0),
            Feedback.rating,
        )
        return _changed_rows(self.session, statement, Feedback.created_at, since, 5)

    def counts(self) -> tuple[int, int, int]:
        return (
            int(self.session.scalar(select(func.count()).select_from(Volunteer)) or 0),
            int(self.session.scalar(select(func.count()).select_from(Exchange)) or 0),
            int(self.session.scalar(select(func.count()).select_from(Feedback)) or 0),
        )


def _empty(dtype: Any) -> Any:
    return np.zeros(0, dtype=dtype)


def _merge_volunteers(
    tables: _Tables | None, numbers: Ints, regions: list[str | None]
) -> dict[str, Any]:
    """Volunteer columns with these rows overwritten or appended; their positions."""
    region_words = _Vocabulary(tables.regions if tables else ())
    region_codes = np.array([region_words.code(r) for r in regions], dtype=np.int32)
    ids = numbers[:, 0]
    columns: dict[str, Any]
    if tables is None:
        columns = {
            "v_id": ids.copy(),
            "v_active": numbers[:, 1].astype(bool),
            "v_region": region_codes,
            "v_capacity": numbers[:, 2].copy(),
            "v_accepted": numbers[:, 3].copy(),
            "v_created": numbers[:, 4].copy(),
            "v_seen": numbers[:, 5].copy(),
        }
        positions = np.arange(len(ids), dtype=np.int64)
    else:
        positions = _IdIndex(tables.v_id).positions(ids)
        new = positions < 0
        positions[new] = len(tables.v_id) + np.arange(int(new.sum()))
        size = len(tables.v_id) + int(new.sum())

        def merged(old: Any, values: Any) -> Any:
            out = np.empty(size, dtype=old.dtype)
            out[: len(old)] = old
            out[positions] = values
            return out

        columns = {
            "v_id": merged(tables.v_id, ids),
            "v_active": merged(tables.v_active, numbers[:, 1].astype(bool)),
            "v_region": merged(tables.v_region, region_codes),
            "v_capacity": merged(tables.v_capacity, numbers[:, 2]),
            "v_accepted": merged(tables.v_accepted, numbers[:, 3]),
            "v_created": merged(tables.v_created, numbers[:, 4]),
            "v_seen": merged(tables.v_seen, numbers[:, 5]),
        }
    columns["regions"] = region_words.words
    columns["_positions"] = positions
    return columns


def _read_tables(
    reader: _Reader, taxonomy: _Taxonomy, tables: _Tables | None, since: datetime | None
) -> _Tables:
    """``tables`` with every row changed since ``since`` read again (all of them: None)."""
    numbers, regions = reader.volunteers(since)
    columns = _merge_volunteers(tables, numbers, regions)
    changed = columns.pop("_positions")
    v_index = _IdIndex(columns["v_id"])
    # Child rows: those of the changed volunteers replaced (all of them read again when many
    # changed, rather than name thousands of ids in one IN list).
    old = tables if tables is not None and len(numbers) <= MANY_CHANGED else None
    changed_ids = None if old is None else numbers[:, 0]
    drop = np.zeros(len(columns["v_id"]), dtype=bool)
    drop[changed] = True

    def merged(name: str, new_rows: npt.NDArray[Any], by: str) -> npt.NDArray[Any]:
        if old is None:
            return new_rows
        kept = ~drop[getattr(old, by)]
        return np.concatenate([getattr(old, name)[kept], new_rows])

    language_words = _Vocabulary(tables.languages if tables else ())
    code_words = _Vocabulary(tables.codes if tables else ())
    spoken = reader.languages(changed_ids)
    l_v = v_index.positions(np.array([row[0] for row in spoken], dtype=np.int64))
    l_language = np.array([language_words.code(row[1]) for row in spoken], dtype=np.int32)
    l_code = np.array([code_words.code(row[2]) for row in spoken], dtype=np.int32)
    children: dict[str, Any] = {
        "l_v": merged("l_v", l_v.astype(np.int32), "l_v"),
        "l_language": merged("l_language", l_language, "l_v"),
        "l_code": merged("l_code", l_code, "l_v"),
    }
    for name, table in (("o", SkillOffer), ("w", SkillWant)):
        rows = reader.entries(table, changed_ids)
        v = v_index.positions(np.array([row[0] for row in rows], dtype=np.int64))
        s = np.array([taxonomy.index.get(row[1], -1) for row in rows], dtype=np.int32)
        children[f"{name}_v"] = merged(f"{name}_v", v.astype(np.int32), f"{name}_v")
        children[f"{name}_s"] = merged(f"{name}_s", s, f"{name}_v")

    # Exchanges: changed rows overwritten, new ones appended.
    changes = reader.exchanges(since)
    learner = v_index.positions(changes[:, 2])
    mentor = v_index.positions(changes[:, 3])
    if (learner < 0).any() or (mentor < 0).any() or (changes[:, 1] < 0).any():
        raise _Rebuild("an exchange names a volunteer or skill not read")
    values: dict[str, npt.NDArray[Any]] = {
        "e_id": changes[:, 0],
        "e_skill": changes[:, 1].astype(np.int32),
        "e_learner": learner.astype(np.int32),
        "e_mentor": mentor.astype(np.int32),
        "e_state": changes[:, 4].astype(np.int8),
        "e_created": changes[:, 5],
        "e_responded": changes[:, 6],
        "e_accepted": changes[:, 7],
        "e_closed": changes[:, 8],
    }
    exchanges: dict[str, Any]
    if tables is None:
        exchanges = {name: column.copy() for name, column in values.items()}
    elif len(changes) == 0:
        # Nothing changed: the very same arrays, so that what derives from them is kept.
        exchanges = {name: getattr(tables, name) for name in values}
    else:
        at = _IdIndex(tables.e_id).positions(changes[:, 0])
        new = at < 0
        at[new] = len(tables.e_id) + np.arange(int(new.sum()))
        size = len(tables.e_id) + int(new.sum())
        exchanges = {}
        for name, column in values.items():
            old = getattr(tables, name)
            out = np.empty(size, dtype=old.dtype)
            out[: len(old)] = old
            out[at] = column
            exchanges[name] = out

    # Feedback: never edited, so only rows not seen yet are added.
    feedback = reader.feedback(since)
    if tables is not None and len(feedback):
        feedback = feedback[~np.isin(feedback[:, 0], tables.f_id)]
    f_exchange = _IdIndex(exchanges["e_id"]).positions(feedback[:, 1])
    f_subject = v_index.positions(feedback[:, 2])
    if (f_exchange < 0).any() or (f_subject < 0).any():
        raise _Rebuild("feedback names an exchange or volunteer not read")
    f_columns: dict[str, Any] = {
        "f_id": feedback[:, 0].copy(),
        "f_exchange": f_exchange.astype(np.int32),
        "f_subject": f_subject.astype(np.int32),
        "f_learner": feedback[:, 3].astype(bool),
        "f_rating": feedback[:, 4].copy(),
    }
    if tables is not None:
        f_columns = {
            name: np.concatenate([getattr(tables, name), column])
            if len(column)
            else getattr(tables, name)
            for name, column in f_columns.items()
        }
    result = _Tables(
        taxonomy=taxonomy,
        languages=language_words.words,
        codes=code_words.words,
        **children,
        **columns,
        **exchanges,
        **f_columns,
    )
    if (result.o_s < 0).any() or (result.w_s < 0).any():
        raise _Rebuild("an offer or want names a skill not read")
    if tables is not None and reader.counts() != (
        len(result.v_id),
        len(result.e_id),
        len(result.f_id),
    ):
        raise _Rebuild("rows were deleted")
    return result


class _Rebuild(Exception):
    """An incremental refresh cannot be trusted: build the snapshot afresh."""


# -- the snapshot: the tables and what is derived from them --------------------------------


def _matrix(rows: Int32s, cols: Int32s, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A 0/1 CSR matrix with a one wherever (row, col) occurs (duplicates count once)."""
    data = np.ones(len(rows), dtype=np.int64)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


@dataclass(frozen=True)
class _Sorted:
    """Answered exchanges sorted by (key, response time): medians per key by position."""

    order: Ints
    keys: Int32s
    hours: Floats

    @classmethod
    def of(cls, answered: Ints, key: Int32s, micros: Ints) -> _Sorted:
        keys, times = key[answered].astype(np.int64), micros[answered]
        if len(times) and times.min() >= 0 and times.max() < 1 << 42 and keys.max() < 1 << 20:
            # One int64 sort key (response times under 50 days): faster than a lexsort.
            by = np.argsort((keys << 42) | times)
        else:
            by = np.lexsort((times, keys))
        order = answered[by]
        return cls(order, key[order], micros[order] / US_PER_HOUR)

    def medians(self, keep: Bools, size: int) -> dict[int, float]:
        chosen = keep[self.order]
        keys, hours = self.keys[chosen], self.hours[chosen]
        counts = np.bincount(keys, minlength=size)
        starts = np.cumsum(counts) - counts
        present = np.flatnonzero(counts)
        low = starts[present] + (counts[present] - 1) // 2
        high = starts[present] + counts[present] // 2
        middle = (hours[low] + hours[high]) / 2
        return {int(k): round(float(m), 2) for k, m in zip(present, middle, strict=True)}


@dataclass
class _Snapshot:
    """The tables and the arrays and matrices the answers read, derived from them once.

    ``previous``: a snapshot whose exchange-derived arrays are reused if its exchanges are
    the very same arrays (none changed).
    """

    tables: _Tables
    as_of: datetime
    watermark: datetime  # the database time the next refresh reads changes from
    previous: InitVar[_Snapshot | None] = None

    def __post_init__(self, previous: _Snapshot | None) -> None:
        t = self.tables
        n_v, n_s = len(t.v_id), len(t.taxonomy.ids)
        root = t.taxonomy.root
        self.n_v, self.n_s, self.root = n_v, n_s, root
        self.now = _micros(self.as_of)
        self.offers = _matrix(t.o_v, t.o_s, (n_v, n_s))
        self.wants = _matrix(t.w_v, t.w_s, (n_v, n_s))
        self.offers_root = _matrix(t.o_v, root[t.o_s], (n_v, n_s))
        self.wants_root = _matrix(t.w_v, root[t.w_s], (n_v, n_s))
        self.offers_any: Bools = np.diff(self.offers.indptr) > 0
        self.wants_any: Bools = np.diff(self.wants.indptr) > 0
        self.speaks = _matrix(t.l_v, t.l_language, (n_v, len(t.languages)))
        self.open_slots = t.v_capacity - t.v_accepted
        # Who can take a learner now: an active mentor with an open slot.
        available = t.v_active & (t.v_accepted < t.v_capacity)
        # Per want (v, s): does another available mentor offer s? (The learner is no mentor
        # of themselves: their own offer of s, if they are available, is taken off.)
        w = self.wants.tocoo()
        self.w_row, self.w_col = w.row.astype(np.int64), w.col.astype(np.int64)
        own = np.isin(self.w_row * n_s + self.w_col, t.o_v.astype(np.int64) * n_s + t.o_s)
        own_counted = (own & available[self.w_row]).astype(np.int64)
        offering = np.asarray(self.offers.T @ available.astype(np.int64)).ravel()
        self.w_ok = offering[self.w_col] - own_counted > 0
        self.teachable = np.bincount(self.w_row[self.w_ok], minlength=n_v) > 0
        # The same per spoken language: a mentor who speaks it. One pair per (want, language
        # of the learner); ``pair`` is the (learner, language) entry of ``speaks``.
        speaks = self.speaks
        per_language = (speaks[available].T @ self.offers[available]).toarray()
        languages_of = np.diff(speaks.indptr)[self.w_row]
        want = np.repeat(np.arange(len(self.w_row)), languages_of)
        first = speaks.indptr[self.w_row][want]
        offset = np.arange(len(want)) - np.repeat(
            np.cumsum(languages_of) - languages_of, languages_of
        )
        self.pair = first + offset
        self.pair_want = want
        pair_language = speaks.indices[self.pair]
        self.pair_ok = per_language[pair_language, self.w_col[want]] - own_counted[want] > 0
        self.speaker = np.repeat(np.arange(n_v), np.diff(speaks.indptr))
        self.speaker_language = speaks.indices.astype(np.int64)
        self.pair_teachable = (
            np.bincount(self.pair[self.pair_ok], minlength=speaks.nnz) > 0
            if len(self.pair)
            else np.zeros(speaks.nnz, dtype=bool)
        )
        # Exchanges.
        self.has_feedback: Bools = np.zeros(len(t.e_id), dtype=bool)
        self.has_feedback[t.f_exchange] = True
        self.orders: tuple[_Sorted, _Sorted, _Sorted, Ints]
        if previous is not None and previous.tables.e_state is t.e_state:
            self.orders = previous.orders
        else:
            self.orders = _orders(t)
        self.by_skill, self.by_root, self.by_all, self.requested = self.orders


def _orders(t: _Tables) -> tuple[_Sorted, _Sorted, _Sorted, Ints]:
    """Answered exchanges by skill, by area and all together, each by response time; and
    the stored requests by (created_at, id)."""
    root = t.taxonomy.root
    answered = np.flatnonzero(t.e_responded != NONE).astype(np.int64)
    response = np.where(t.e_responded != NONE, t.e_responded - t.e_created, 0)
    requested = np.flatnonzero(t.e_state == REQUESTED)
    return (
        _Sorted.of(answered, t.e_skill, response),
        _Sorted.of(answered, root[t.e_skill].astype(np.int32), response),
        _Sorted.of(answered, np.zeros(len(t.e_id), dtype=np.int32), response),
        requested[np.lexsort((t.e_id[requested], t.e_created[requested]))],
    )


def _read_snapshot(
    session: Session, previous: _Snapshot | None, as_of: datetime, started: datetime
) -> _Snapshot:
    reader = _Reader(session)
    taxonomy = _read_taxonomy(session)
    tables = None
    since = None
    if previous is not None and previous.tables.taxonomy.version == taxonomy.version:
        tables = previous.tables
        since = previous.watermark - POLL_OVERLAP
    try:
        fresh = _read_tables(reader, taxonomy, tables, since)
    except _Rebuild as reason:
        if tables is None:
            raise
        logger.info("statistics snapshot rebuilt: %s", reason)
        fresh = _read_tables(reader, taxonomy, None, None)
    return _Snapshot(fresh, as_of, started, previous)


# -- the answers ---------------------------------------------------------------------------


@dataclass
class _Scope:
    """A filter resolved against one snapshot: who and which exchanges it keeps."""

    snap: _Snapshot
    area: int | None  # the root skill's index
    people: Bools  # active volunteers of the region and language
    everyone: Bools  # the same, deactivated ones too
    exchanges: Bools
    cutoff: int
    stale: Ints  # positions of stored requests that count as expired now


def _scope(snap: _Snapshot, query: StatsQuery) -> _Scope:
    t, f = snap.tables, query.filters
    area: int | None = None
    if f.area is not None:
        k = t.taxonomy.index.get(f.area)
        if k is None or snap.root[k] != k:
            raise Invalid(
                f"unknown area {f.area!r}: an area is a root skill",
                [field_error(["query", "area"], "not a root skill")],
            )
        area = k
    everyone = np.ones(snap.n_v, dtype=bool)
    if f.region is not None:
        code = t.regions.index(f.region) if f.region in t.regions else -1
        everyone &= t.v_region == code
    if f.language is not None:
        everyone &= _speakers(t, f.language, snap.n_v)
    people = everyone & t.v_active
    exchanges = np.ones(len(t.e_id), dtype=bool)
    if f.since is not None:
        exchanges &= t.e_created >= _micros(datetime.combine(f.since, time(), UTC))
    if f.until is not None:
        exchanges &= t.e_created < _micros(
            datetime.combine(f.until + timedelta(days=1), time(), UTC)
        )
    if area is not None:
        exchanges &= (snap.root == area)[t.e_skill]
    if f.region is not None or f.language is not None:
        exchanges &= everyone[t.e_learner]
    ttl = timedelta(days=query.settings.request_ttl_days) // timedelta(microseconds=1)
    cutoff = snap.now - ttl
    requested = snap.requested
    stale = requested[t.e_created[requested] <= cutoff]
    return _Scope(snap, area, people, everyone, exchanges, cutoff, stale)


def _speakers(t: _Tables, language: str, n_v: int) -> Bools:
    """Volunteers who speak ``language``: a primary subtag, or a full code with a '-'."""
    words, column = (t.codes, t.l_code) if "-" in language else (t.languages, t.l_language)
    out = np.zeros(n_v, dtype=bool)
    if language in words:
        out[t.l_v[column == words.index(language)]] = True
    return out


def _count(mask: Bools) -> int:
    return int(np.count_nonzero(mask))


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _offers_in(scope: _Scope) -> Bools:
    snap = scope.snap
    if scope.area is None:
        return snap.offers_any
    return np.asarray(snap.offers_root[:, scope.area].todense()).ravel() > 0


def _wants_in(scope: _Scope) -> Bools:
    snap = scope.snap
    if scope.area is None:
        return snap.wants_any
    return np.asarray(snap.wants_root[:, scope.area].todense()).ravel() > 0


def _mentors(scope: _Scope) -> Bools:
    return scope.people & (scope.snap.tables.v_capacity > 0) & _offers_in(scope)


def _states(scope: _Scope) -> dict[ExchangeState, int]:
    t = scope.snap.tables
    counts = np.bincount(t.e_state[scope.exchanges], minlength=len(STATES))
    stale = _count(scope.exchanges[scope.stale])
    counts[REQUESTED] -= stale
    counts[EXPIRED] += stale
    return {state: int(counts[CODE[state]]) for state in STATES}


def overview(snap: _Snapshot, query: StatsQuery) -> Overview:
    scope = _scope(snap, query)
    t, keep = snap.tables, scope.exchanges
    recent = snap.now - RECENT // timedelta(microseconds=1)
    mentors = _mentors(scope)
    by_state = _states(scope)
    waiting = by_state[ExchangeState.REQUESTED]
    decided = sum(by_state.values()) - waiting
    ever = keep & (t.e_accepted != NONE)
    return Overview(
        as_of=snap.as_of,
        volunteers=_count(scope.people),
        active_volunteers_30d=_count(scope.people & (t.v_seen >= recent) & (t.v_seen != NONE)),
        new_volunteers_30d=_count(scope.everyone & (t.v_created >= recent)),
        mentors=_count(mentors),
        mentors_with_open_slots=_count(mentors & (t.v_accepted < t.v_capacity)),
        learners=_count(scope.people & _wants_in(scope)),
        exchanges=by_state,
        requests_waiting=waiting,
        acceptance_rate=_rate(_count(ever), decided),
        completion_rate=_rate(
            by_state[ExchangeState.COMPLETED], _count(ever & (t.e_state != ACCEPTED))
        ),
        expiry_rate=_rate(by_state[ExchangeState.EXPIRED], decided),
        median_response_hours=snap.by_all.medians(keep, 1).get(0),
    )


def _per_key(values: Ints, keys: Any, size: int) -> Ints:
    return np.bincount(keys, weights=values, minlength=size).astype(np.int64)


def skills(snap: _Snapshot, query: StatsQuery, level: str) -> SkillTable:
    if level not in LEVELS:
        raise Invalid(
            f"unknown level {level!r}", [field_error(["query", "level"], "skill or area")]
        )
    scope = _scope(snap, query)
    t, keep, n_s = snap.tables, scope.exchanges, snap.n_s
    by_area = level == "area"
    offers = snap.offers_root if by_area else snap.offers
    wants = snap.wants_root if by_area else snap.wants
    mentor = (scope.people & (t.v_capacity > 0)).astype(np.int64)
    offered = offers.T @ mentor
    open_slots = offers.T @ (mentor * snap.open_slots)
    wanted = wants.T @ scope.people.astype(np.int64)
    key = snap.root[t.e_skill] if by_area else t.e_skill
    requested = np.bincount(key[keep], minlength=n_s)
    accepted = np.bincount(key[keep & (t.e_accepted != NONE)], minlength=n_s)
    completed = np.bincount(key[keep & (t.e_state == COMPLETED)], minlength=n_s)
    stale = scope.stale[keep[scope.stale]]
    expired = np.bincount(key[keep & (t.e_state == EXPIRED)], minlength=n_s) + np.bincount(
        key[stale], minlength=n_s
    )
    medians = (snap.by_root if by_area else snap.by_skill).medians(keep, n_s)
    shown = range(n_s)
    if by_area:
        shown = [k for k in shown if snap.root[k] == k]  # type: ignore[assignment]
    if scope.area is not None:
        shown = [k for k in shown if snap.root[k] == scope.area]  # type: ignore[assignment]
    items = [
        SkillRow(
            skill=t.taxonomy.ids[k],
            name=t.taxonomy.names[k],
            offered=int(offered[k]),
            open_slots=int(open_slots[k]),
            wanted=int(wanted[k]),
            gap=int(wanted[k]) - int(open_slots[k]),
            requested=int(requested[k]),
            accepted=int(accepted[k]),
            completed=int(completed[k]),
            expired=int(expired[k]),
            median_response_hours=medians.get(k),
        )
        for k in shown
    ]
    items.sort(key=lambda row: (-row.gap, row.skill))
    return SkillTable(as_of=snap.as_of, level=level, items=items)


def funnel(snap: _Snapshot, query: StatsQuery) -> Funnel:
    scope = _scope(snap, query)
    t, keep = snap.tables, scope.exchanges
    done = keep & (t.e_state == COMPLETED)
    counts = [
        _count(keep),
        _count(keep & (t.e_responded != NONE)),
        _count(keep & (t.e_accepted != NONE)),
        _count(done),
        _count(done & snap.has_feedback),
    ]
    stages = []
    previous: int | None = None
    for stage, count in zip(FUNNEL_STAGES, counts, strict=True):
        stages.append(FunnelStage(stage, count, None if not previous else count / previous))
        previous = count
    by_state = _states(scope)
    return Funnel(
        as_of=snap.as_of, stages=stages, lost={state: by_state[state] for state in LOST_STATES}
    )


def timeline(snap: _Snapshot, query: StatsQuery, interval: str) -> Timeline:
    if interval not in INTERVALS:
        raise Invalid(
            f"unknown interval {interval!r}",
            [field_error(["query", "interval"], "month or week")],
        )
    scope = _scope(snap, query)
    t, keep = snap.tables, scope.exchanges
    ttl = timedelta(days=query.settings.request_ttl_days) // timedelta(microseconds=1)
    created_day = t.e_created // US_PER_DAY
    stale = scope.stale[keep[scope.stale]]
    closed = t.e_closed // US_PER_DAY
    days = {
        "new_volunteers": [t.v_created[scope.everyone] // US_PER_DAY],
        "requested": [created_day[keep]],
        "accepted": [t.e_accepted[keep & (t.e_accepted != NONE)] // US_PER_DAY],
        "completed": [closed[keep & (t.e_state == COMPLETED) & (t.e_closed != NONE)]],
        # A stale request expires request_ttl_days after the day it was made (as stats.py).
        "expired": [
            closed[keep & (t.e_state == EXPIRED) & (t.e_closed != NONE)],
            (created_day[stale] * US_PER_DAY + ttl) // US_PER_DAY,
        ],
    }
    every = np.concatenate([part for parts in days.values() for part in parts])
    if len(every) == 0:
        return Timeline(as_of=snap.as_of, interval=interval, items=[])
    first, last = int(every.min()), int(every.max())
    labels: list[str] = []
    period_index = np.empty(last - first + 1, dtype=np.int64)
    for offset in range(last - first + 1):
        label = period_of(_day(first + offset), interval)
        if not labels or labels[-1] != label:
            labels.append(label)
        period_index[offset] = len(labels) - 1
    figures = {
        name: sum(
            (np.bincount(period_index[part - first], minlength=len(labels)) for part in parts),
            np.zeros(len(labels), dtype=np.int64),
        )
        for name, parts in days.items()
    }
    items = [
        TimelineRow(label, **{name: int(counts[k]) for name, counts in figures.items()})
        for k, label in enumerate(labels)
    ]
    items.sort(key=lambda row: row.period)
    return Timeline(as_of=snap.as_of, interval=interval, items=items)


def _reach(
    scope: _Scope, groups: sparse.csr_matrix, waiting: Ints
) -> tuple[list[Ints], Ints, Ints]:
    """Per group (a column of ``groups``, volunteers by row): the five people figures, and
    the kept exchanges' requested and completed by the learner's group."""
    t, keep = scope.snap.tables, scope.exchanges
    people = scope.people.astype(np.int64)
    mentor = _mentors(scope).astype(np.int64)
    learner = (scope.people & _wants_in(scope)).astype(np.int64)
    totals = [
        groups.T @ people,
        groups.T @ mentor,
        groups.T @ (mentor * scope.snap.open_slots),
        groups.T @ learner,
        waiting,
    ]
    n_v = scope.snap.n_v
    requested = groups.T @ np.bincount(t.e_learner[keep], minlength=n_v)
    completed = groups.T @ np.bincount(t.e_learner[keep & (t.e_state == COMPLETED)], minlength=n_v)
    return totals, requested, completed


def _reach_at(
    totals: list[Ints], requested: Ints, completed: Ints, k: int
) -> tuple[int, int, int, int, int, int, int]:
    """The fields of ``Reach`` for group ``k``, in their order."""
    volunteers, mentors, open_slots, learners, waiting = (int(column[k]) for column in totals)
    return volunteers, mentors, open_slots, learners, waiting, int(requested[k]), int(completed[k])


def _teachable_in(scope: _Scope) -> tuple[Bools, Bools]:
    """Per volunteer (anywhere) and per (volunteer, language) pair: someone can teach them
    a skill they want, within the area."""
    snap = scope.snap
    if scope.area is None:
        return snap.teachable, snap.pair_teachable
    in_area = (snap.root == scope.area)[snap.w_col]
    teachable = np.bincount(snap.w_row[snap.w_ok & in_area], minlength=snap.n_v) > 0
    ok = snap.pair_ok & in_area[snap.pair_want]
    pair = np.bincount(snap.pair[ok], minlength=snap.speaks.nnz) > 0
    return teachable, pair


def regions(snap: _Snapshot, query: StatsQuery) -> RegionTable:
    scope = _scope(snap, query)
    t = snap.tables
    n_r = len(t.regions)
    groups = _matrix(np.arange(snap.n_v, dtype=np.int32), t.v_region, (snap.n_v, n_r))
    teachable, _ = _teachable_in(scope)
    waiting_people = scope.people & _wants_in(scope) & ~teachable
    waiting = np.bincount(t.v_region[waiting_people], minlength=n_r)
    totals, requested, completed = _reach(scope, groups, waiting)
    shown = [r for r in range(n_r) if totals[0][r] > 0 or requested[r] > 0]
    shown.sort(key=lambda r: (t.regions[r] is None, t.regions[r] or ""))
    items = [
        RegionRow(*_reach_at(totals, requested, completed, r), region=t.regions[r]) for r in shown
    ]
    return RegionTable(as_of=snap.as_of, items=items)


def languages(snap: _Snapshot, query: StatsQuery) -> LanguageTable:
    scope = _scope(snap, query)
    t = snap.tables
    n_l = len(t.languages)
    _, pair_teachable = _teachable_in(scope)
    learner = scope.people & _wants_in(scope)
    waiting_pairs = learner[snap.speaker] & ~pair_teachable
    waiting = np.bincount(snap.speaker_language[waiting_pairs], minlength=n_l)
    totals, requested, completed = _reach(scope, snap.speaks, waiting)
    keep = query.filters.language.split("-")[0] if query.filters.language is not None else None
    shown = sorted(
        t.languages[k]
        for k in range(n_l)
        if (totals[0][k] > 0 or requested[k] > 0) and (keep is None or t.languages[k] == keep)
    )
    items = []
    for language in shown:
        k = t.languages.index(language)
        items.append(LanguageRow(*_reach_at(totals, requested, completed, k), language=language))
    return LanguageTable(as_of=snap.as_of, items=items)


def mentors(
    snap: _Snapshot, query: StatsQuery, limit: int, names: Callable[[Sequence[int]], Any]
) -> MentorStats:
    scope = _scope(snap, query)
    t, keep = snap.tables, scope.exchanges
    histogram = np.bincount(t.v_accepted[_mentors(scope)])
    load = [LoadRow(accepted, int(count)) for accepted, count in enumerate(histogram)]
    waiting_rows = snap.requested[t.e_created[snap.requested] > scope.cutoff]
    waiting_rows = waiting_rows[keep[waiting_rows]][: max(limit, 0)]
    completed = np.bincount(t.e_mentor[keep & (t.e_state == COMPLETED)], minlength=snap.n_v)
    done = np.flatnonzero(completed)
    top = done[np.lexsort((t.v_id[done], -completed[done]))][: max(limit, 0)]
    rated = t.f_learner & keep[t.f_exchange]
    rating_sum = np.bincount(t.f_subject[rated], weights=t.f_rating[rated], minlength=snap.n_v)
    ratings = np.bincount(t.f_subject[rated], minlength=snap.n_v)
    shown = [int(t.v_id[m]) for m in t.e_mentor[waiting_rows]] + [int(t.v_id[m]) for m in top]
    refs: dict[int, VolunteerRef] = names(sorted(set(shown))) if shown else {}
    return MentorStats(
        as_of=snap.as_of,
        load=load,
        waiting_requests=[
            WaitingRequest(
                int(t.e_id[e]),
                refs[int(t.v_id[t.e_mentor[e]])],
                t.taxonomy.ids[t.e_skill[e]],
                round((snap.as_of - _moment(int(t.e_created[e]))).total_seconds() / 86400, 2),
            )
            for e in waiting_rows
        ],
        top=[
            TopMentor(
                refs[int(t.v_id[m])],
                int(completed[m]),
                None if ratings[m] == 0 else round(float(rating_sum[m] / ratings[m]), 2),
                int(ratings[m]),
            )
            for m in top
        ],
    )


# -- the holder ----------------------------------------------------------------------------


class StatsIndex:
    """Every statistics answer from an in-memory snapshot at most ``max_age_seconds`` old.

    The first answer builds the snapshot (and waits for it); later answers use the current
    one, refreshing it first only when it is older than ``max_age_seconds`` (``0``: every
    answer reflects the database when it is asked). :meth:`start` runs a background thread
    that refreshes every ``max_age_seconds / 2``, so that answers do not wait. Thread-safe:
    a refresh builds a new snapshot beside the one being read and swaps it in.

    Parameters
    ----------
    session_factory : sessionmaker
        Where the snapshot is read from.
    settings : Settings
        The application's settings. (Which requests count as expired follows each query's
        ``settings.request_ttl_days``, as in the SQL answers: the snapshot stores states,
        not expiries.)
    max_age_seconds : float, default 60
        How old an answer's figures may be.
    clock : callable, default utcnow
        The current aware UTC time: the ``as_of`` of a snapshot and the age of one.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        max_age_seconds: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.max_age = timedelta(seconds=max_age_seconds)
        self.clock = clock
        self._snapshot: _Snapshot | None = None
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- freshness

    def refresh(self) -> None:
        """Bring the snapshot up to date now: reread what changed since the last one."""
        with self._refreshing:
            self._refresh()

    def _refresh(self) -> None:
        as_of, started = self.clock(), utcnow()
        with self.session_factory() as session:
            bind = session.get_bind()
            if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
                # Every SELECT of the refresh sees the same committed state.
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            try:
                self._snapshot = _read_snapshot(session, self._snapshot, as_of, started)
            finally:
                session.rollback()

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None or self._too_old(snapshot):
            with self._refreshing:
                snapshot = self._snapshot
                if snapshot is None or self._too_old(snapshot):
                    self._refresh()
                    snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def _too_old(self, snapshot: _Snapshot) -> bool:
        return self.max_age <= timedelta(0) or self.clock() - snapshot.as_of >= self.max_age

    def start(self) -> None:
        """Build the snapshot now and refresh it every ``max_age_seconds / 2``, in a daemon
        thread (none for ``0``: every answer refreshes)."""
        if self._thread is not None or self.max_age <= timedelta(0):
            return
        self._stop.clear()
        interval = self.max_age.total_seconds() / 2

        def run() -> None:
            wait = 0.0  # the first build at once, so that the first answer need not wait
            while not self._stop.wait(wait):
                wait = interval
                try:
                    self.refresh()
                except Exception as error:
                    log_failure(
                        logger, "refreshing the statistics snapshot failed; kept the old one", error
                    )

        self._thread = threading.Thread(target=run, name="capex-stats-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread, if one runs, and wait for it."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    # -- the answers (StatsSource)

    def overview(self, query: StatsQuery) -> Overview:
        return overview(self._current(), query)

    def skills(self, query: StatsQuery, *, level: str = "skill") -> SkillTable:
        return skills(self._current(), query, level)

    def funnel(self, query: StatsQuery) -> Funnel:
        return funnel(self._current(), query)

    def timeline(self, query: StatsQuery, *, interval: str = "month") -> Timeline:
        return timeline(self._current(), query, interval)

    def regions(self, query: StatsQuery) -> RegionTable:
        return regions(self._current(), query)

    def languages(self, query: StatsQuery) -> LanguageTable:
        return languages(self._current(), query)

    def mentors(self, query: StatsQuery, *, limit: int = 20) -> MentorStats:
        return mentors(self._current(), query, limit, self._names)

    def _names(self, ids: Sequence[int]) -> dict[int, VolunteerRef]:
        with session_scope(self.session_factory) as session:
            return volunteer_refs(session, ids)
