"""Append-friendly array containers behind the index: rows are appended, never edited in place.

``GrowableArray`` is a 1-D array with spare capacity; ``RaggedRows`` is a row-major sparse
matrix (CSR) that grows by whole rows; ``Postings`` is its column-major twin (CSC) with spare
capacity per column, so that new rows can be appended to every column they touch;
``RowLookup`` finds a volunteer's row from sorted arrays plus a small dict of later changes.

Any of their buffers may be a copy-on-write view of a mapped file (``capex.matching.store``):
appends go into its spare capacity, so only the pages they touch become the process's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


class GrowableArray:
    """A 1-D array that doubles its buffer when full, so appends are amortised O(1) per item."""

    def __init__(self, dtype: npt.DTypeLike, capacity: int = 16) -> None:
        self._buffer: npt.NDArray[Any] = np.empty(max(capacity, 1), dtype=dtype)
        self._size = 0

    @classmethod
    def adopt(cls, buffer: npt.NDArray[Any], size: int) -> GrowableArray:
        """An array over ``buffer`` (kept, not copied) whose first ``size`` items are filled."""
        if not 0 <= size <= buffer.size:
            raise ValueError(f"size must be in [0, {buffer.size}], got {size}")
        adopted = cls.__new__(cls)
        adopted._buffer = buffer
        adopted._size = size
        return adopted

    @property
    def buffer(self) -> npt.NDArray[Any]:
        """The whole buffer, filled part and spare capacity."""
        return self._buffer

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> npt.NDArray[Any]:
        """The filled part, shape (len(self),); a view, valid until the next append."""
        return self._buffer[: self._size]

    def extend(self, values: npt.ArrayLike) -> None:
        """Append ``values`` (1-D)."""
        items = np.asarray(values, dtype=self._buffer.dtype).ravel()
        needed = self._size + items.size
        if needed > self._buffer.size:
            grown = np.empty(max(needed, 2 * self._buffer.size), dtype=self._buffer.dtype)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown
        self._buffer[self._size : needed] = items
        self._size = needed

    def replace(self, values: npt.ArrayLike) -> None:
        """Make ``values`` the whole content (used by compaction)."""
        items = np.asarray(values, dtype=self._buffer.dtype).ravel()
        self._buffer = np.empty(max(items.size, 16), dtype=self._buffer.dtype)
        self._buffer[: items.size] = items
        self._size = items.size


def segment_positions(starts: IntArray, counts: IntArray) -> tuple[IntArray, IntArray]:
    """Flatten segments ``[starts[i], starts[i] + counts[i])``.

    Returns
    -------
    owner : ndarray of int64, shape (counts.sum(),)
        The segment ``i`` of each position.
    positions : ndarray of int64, shape (counts.sum(),)
        The positions, segment after segment.
    """
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    offsets = np.cumsum(counts) - counts
    positions = np.arange(owner.size, dtype=np.int64) - offsets[owner] + starts[owner]
    return owner, positions


class RaggedRows:
    """A sparse matrix stored by rows (CSR) that grows by appending rows.

    Row ``r`` holds columns ``columns[indptr[r]:indptr[r + 1]]`` with ``values`` alongside.
    """

    def __init__(self, column_dtype: npt.DTypeLike, value_dtype: npt.DTypeLike) -> None:
        self.indptr = GrowableArray(np.int64)
        self.indptr.extend([0])
        self.columns = GrowableArray(column_dtype)
        self.values = GrowableArray(value_dtype)

    @classmethod
    def adopt(
        cls, indptr: GrowableArray, columns: GrowableArray, values: GrowableArray
    ) -> RaggedRows:
        """A store over existing arrays (kept, not copied)."""
        adopted = cls.__new__(cls)
        adopted.indptr, adopted.columns, adopted.values = indptr, columns, values
        return adopted

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def append(self, counts: IntArray, columns: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Append ``counts.size`` rows; their entries are ``columns``/``values`` in row order."""
        self.indptr.extend(self.indptr.values[-1] + np.cumsum(counts))
        self.columns.extend(columns)
        self.values.extend(values)

    def row(self, row: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Columns and values of one row."""
        start, end = self.indptr.values[row], self.indptr.values[row + 1]
        return self.columns.values[start:end], self.values.values[start:end]

    def counts(self, rows: IntArray | None = None) -> IntArray:
        """Entries per row, shape (n_rows,) or (rows.size,)."""
        indptr = self.indptr.values
        if rows is None:
            return np.diff(indptr)
        counts: IntArray = indptr[rows + 1] - indptr[rows]
        return counts

    def gather(self, rows: IntArray) -> tuple[IntArray, npt.NDArray[Any], npt.NDArray[Any]]:
        """The entries of ``rows``, shape (k,) each: owner (index into ``rows``), column, value."""
        owner, positions = segment_positions(self.indptr.values[rows], self.counts(rows))
        return owner, self.columns.values[positions], self.values.values[positions]

    def take(self, rows: IntArray) -> RaggedRows:
        """A new store with only ``rows``, in that order."""
        kept = RaggedRows(self.columns.values.dtype, self.values.values.dtype)
        _, columns, values = self.gather(rows)
        kept.append(self.counts(rows), columns, values)
        return kept


class Postings:
    """Per column, the rows that have an entry there and its value: CSC with slack.

    Rows are appended in increasing order, so each column's rows stay sorted and unique
    (a row has at most one entry per column).
    """

    def __init__(self, n_columns: int, value_dtype: npt.DTypeLike) -> None:
        self._value_dtype = np.dtype(value_dtype)
        self._rows = [GrowableArray(np.int64, 0) for _ in range(n_columns)]
        self._values = [GrowableArray(self._value_dtype, 0) for _ in range(n_columns)]

    @classmethod
    def adopt(
        cls, rows: list[GrowableArray], values: list[GrowableArray], value_dtype: npt.DTypeLike
    ) -> Postings:
        """Postings over existing per-column arrays (kept, not copied)."""
        if len(rows) != len(values):
            raise ValueError("rows and values must list the same columns")
        adopted = cls.__new__(cls)
        adopted._value_dtype = np.dtype(value_dtype)
        adopted._rows, adopted._values = rows, values
        return adopted

    @property
    def n_columns(self) -> int:
        return len(self._rows)

    def stores(self, column: int) -> tuple[GrowableArray, GrowableArray]:
        """The growable arrays behind one column: rows and values."""
        return self._rows[column], self._values[column]

    @classmethod
    def from_rows(cls, n_columns: int, store: RaggedRows) -> Postings:
        """The column view of ``store``."""
        postings = cls(n_columns, store.values.values.dtype)
        rows = np.repeat(np.arange(store.n_rows, dtype=np.int64), store.counts())
        postings.append(rows, store.columns.values, store.values.values)
        return postings

    def append(self, rows: IntArray, columns: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Append entries ``(rows[i], columns[i], values[i])``; rows beyond any already held."""
        columns = np.asarray(columns, dtype=np.int64)
        values = np.asarray(values, dtype=self._value_dtype)
        order = np.argsort(columns, kind="stable")
        sorted_columns = columns[order]
        boundaries = np.flatnonzero(np.diff(sorted_columns)) + 1
        for segment in np.split(order, boundaries):
            if segment.size:
                column = int(columns[segment[0]])
                self._rows[column].extend(rows[segment])
                self._values[column].extend(values[segment])

    def column(self, column: int) -> tuple[IntArray, npt.NDArray[Any]]:
        """Rows (ascending) and values of one column."""
        return self._rows[column].values, self._values[column].values


class RowLookup:
    """Volunteer id -> row: sorted arrays for the bulk, a dict for what changed since.

    A build fills the sorted arrays in one vectorised step (and a mapped index shares them
    between processes); later upserts and removals go into the dict, which is folded back
    into the arrays once it passes an eighth of them, so a lookup stays one dict probe and
    one binary search, and memory stays near 16 bytes a volunteer.
    """

    def __init__(self, ids: IntArray | None = None, rows: IntArray | None = None) -> None:
        empty = np.empty(0, dtype=np.int64)
        self._ids: IntArray = empty if ids is None else ids
        self._rows: IntArray = empty if rows is None else rows
        if self._ids.shape != self._rows.shape:
            raise ValueError("ids and rows must have the same shape")
        self._changed: dict[int, int] = {}  # id -> row, or -1 for removed
        self._size = int(self._ids.size)

    @classmethod
    def of(cls, ids: IntArray, rows: IntArray) -> RowLookup:
        """The lookup of distinct ``ids`` at ``rows``, in any order."""
        order = np.argsort(ids, kind="stable")
        return cls(np.ascontiguousarray(ids[order]), np.ascontiguousarray(rows[order]))

    @property
    def sorted_ids(self) -> IntArray:
        """The ids held in the arrays, ascending (some may be overridden by later changes)."""
        return self._ids

    @property
    def sorted_rows(self) -> IntArray:
        """The row of each of ``sorted_ids``."""
        return self._rows

    def _base_row(self, volunteer_id: int) -> int | None:
        position = int(np.searchsorted(self._ids, volunteer_id))
        if position < self._ids.size and int(self._ids[position]) == volunteer_id:
            return int(self._rows[position])
        return None

    def get(self, volunteer_id: int) -> int | None:
        """The row of ``volunteer_id``, None when not held."""
        changed = self._changed.get(volunteer_id)
        if changed is not None:
            return changed if changed >= 0 else None
        return self._base_row(volunteer_id)

    def __getitem__(self, volunteer_id: int) -> int:
        row = self.get(volunteer_id)
        if row is None:
            raise KeyError(volunteer_id)
        return row

    def __contains__(self, volunteer_id: object) -> bool:
        if isinstance(volunteer_id, bool) or not isinstance(volunteer_id, int | np.integer):
            return False
        return self.get(int(volunteer_id)) is not None

    def __len__(self) -> int:
        return self._size

    def set_many(self, ids: IntArray, rows: IntArray) -> None:
        """Hold each of ``ids`` (distinct) at its row of ``rows``, both shape (b,)."""
        if not self._size and not self._changed:
            built = RowLookup.of(ids, rows)  # a build: one vectorised step
            self._ids, self._rows, self._size = built._ids, built._rows, built._size
            return
        for volunteer_id, row in zip(ids.tolist(), rows.tolist(), strict=True):
            if self.get(volunteer_id) is None:
                self._size += 1
            self._changed[volunteer_id] = row
        self._fold_if_large()

    def pop(self, volunteer_id: int) -> int | None:
        """Forget ``volunteer_id``; its row, or None when it was not held."""
        row = self.get(volunteer_id)
        if row is not None:
            self._size -= 1
            if self._base_row(volunteer_id) is None:
                del self._changed[volunteer_id]
            else:
                self._changed[volunteer_id] = -1
            self._fold_if_large()
        return row

    def _fold_if_large(self) -> None:
        if len(self._changed) > 1024 + self._ids.size // 8:
            self.fold()

    def fold(self) -> None:
        """Merge the changes into the sorted arrays (new arrays; the old ones are left as
        they were, so a mapped file's pages stay shared)."""
        if not self._changed:
            return
        changed_ids = np.fromiter(self._changed, dtype=np.int64, count=len(self._changed))
        changed_rows = np.fromiter(self._changed.values(), dtype=np.int64, count=len(self._changed))
        kept = ~np.isin(self._ids, changed_ids)
        live = changed_rows >= 0
        merged = RowLookup.of(
            np.concatenate([self._ids[kept], changed_ids[live]]),
            np.concatenate([self._rows[kept], changed_rows[live]]),
        )
        self._ids, self._rows, self._changed = merged._ids, merged._rows, {}
