"""Tables of figures, and their two renderings beside JSON: CSV, and open data.

A statistics answer is turned into one or more ``Table``s: typed columns and rows. CSV
holds exactly the figures the JSON holds, for coordinators. Open data is a Wikimedia
Commons tabular data document (the JSON of a ``Data:….tab`` page): ``license: CC0-1.0``, an
English ``description`` and ``schema.fields`` with their types, and it never singles
anyone out:

- a column that names or identifies someone (``personal``) is left out;
- a ``count`` below the minimum cell (``CAPEX_STATS_MIN_CELL``, default 5) is written as
  ``null``: every count below it, zero included, so that an empty cell and a cell of one
  person cannot be told apart;
- a figure computed from counts (a gap, a rate, a median over the requests counted) is
  ``null`` whenever one of those counts is, so that it cannot give a suppressed count back.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

ColumnType = Literal["number", "string", "boolean"]
Cell = int | float | str | bool | None

# Commons requires field names of this shape.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its field name, English title and type, and how open data treats it."""

    name: str
    title: str
    type: ColumnType = "number"
    # A count of people or exchanges: suppressed below the minimum cell in open data.
    count: bool = False
    # The counts this figure is computed from: suppressed whenever one of them is.
    derived_from: tuple[str, ...] = ()
    # A name or an id: never in open data.
    personal: bool = False

    def __post_init__(self) -> None:
        if not _FIELD_NAME.match(self.name):
            raise ValueError(f"column name {self.name!r} is not a tabular data field name")
        if self.count and self.type != "number":
            raise ValueError(f"column {self.name!r}: a count is a number")


@dataclass(frozen=True, slots=True)
class Table:
    """Named rows of typed cells; ``name`` is the file's stem (``skills`` → skills.csv)."""

    name: str
    description: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...] = field(default=())

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name!r}: a column name is used twice")
        for column in self.columns:
            unknown = set(column.derived_from) - set(names)
            if unknown:
                raise ValueError(f"column {column.name!r} is derived from unknown {unknown}")
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name!r}: a row has {len(row)} cells for "
                    f"{len(self.columns)} columns"
                )


def to_csv(table: Table) -> str:
    """The table as CSV (RFC 4180, CRLF line ends), a header of field names first.

    Text that a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@`` first)
    gets a leading ``'``; numbers are written as they are, negative ones included."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.name for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(cell) for cell in row])
    return out.getvalue()


def _csv_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        return repr(cell) if math.isfinite(cell) else ""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        # A spreadsheet would run "=HYPERLINK(...)" in a skill's name as a formula.
        return "'" + cell
    return str(cell)


# What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def suppressed(table: Table, min_cell: int) -> Table:
    """The table as open data may show it: no personal columns, small counts ``None``."""
    if min_cell < 1:
        raise ValueError("the minimum cell is at least 1")
    kept = [index for index, column in enumerate(table.columns) if not column.personal]
    position = {column.name: index for index, column in enumerate(table.columns)}
    rows = []
    for row in table.rows:
        hidden = {
            column.name
            for column, cell in zip(table.columns, row, strict=True)
            if column.count and (cell is None or _below(cell, min_cell))
        }
        cells: list[Cell] = []
        for index in kept:
            column = table.columns[index]
            gone = column.name in hidden or any(
                source in hidden or table.columns[position[source]].personal
                for source in column.derived_from
            )
            cells.append(None if gone else row[index])
        rows.append(tuple(cells))
    return Table(
        table.name,
        table.description,
        tuple(table.columns[index] for index in kept),
        tuple(rows),
    )


def _below(cell: Cell, min_cell: int) -> bool:
    if isinstance(cell, bool) or not isinstance(cell, int | float):
        raise ValueError(f"a count cell holds {cell!r}, not a number")
    return cell < min_cell


def to_tab(table: Table, *, min_cell: int, sources: str = "") -> dict[str, Any]:
    """The table as a Commons tabular data document (``Data:….tab``), suppressed."""
    shown = suppressed(table, min_cell)
    document: dict[str, Any] = {
        "license": "CC0-1.0",
        "description": {"en": table.description},
    }
    if sources:
        document["sources"] = sources
    document["schema"] = {
        "fields": [
            {"name": column.name, "type": column.type, "title": {"en": column.title}}
            for column in shown.columns
        ]
    }
    document["data"] = [list(row) for row in shown.rows]
    return document
