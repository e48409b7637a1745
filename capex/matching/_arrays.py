"""Append-friendly array containers behind the index: rows are appended, never edited in place.

``GrowableArray`` is a 1-D array with spare capacity; ``RaggedRows`` is a row-major sparse
matrix (CSR) that grows by whole rows; ``Postings`` is its column-major twin (CSC) with spare
capacity per column, so that new rows can be appended to every column they touch.
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
