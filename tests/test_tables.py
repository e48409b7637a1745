"""Tables as CSV and as Commons open data: the same figures, and nobody singled out."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capex.services.tables import Column, Table, suppressed, to_csv, to_tab

SKILLS = Table(
    "skills",
    "Supply and demand per skill",
    (
        Column("skill", "Skill", "string"),
        Column("mentor", "A mentor's username", "string", personal=True),
        Column("offered", "Mentors offering it", count=True),
        Column("wanted", "Learners wanting it", count=True),
        Column("gap", "Wanting learners less open slots", derived_from=("wanted",)),
        Column("listed", "In the taxonomy", "boolean"),
    ),
    (
        ("lua", "ana", 1, 3, 1, True),
        ("python", "bo", 12, 40, 20, False),
        ("wikidata", "cy", 0, 7, 7, True),
    ),
)


def test_open_data_suppresses_small_counts_and_what_is_computed_from_them():
    document = to_tab(SKILLS, min_cell=5)
    assert document["license"] == "CC0-1.0"
    assert document["description"] == {"en": "Supply and demand per skill"}
    names = [f["name"] for f in document["schema"]["fields"]]
    assert names == ["skill", "offered", "wanted", "gap", "listed"]  # no mentor names
    assert document["schema"]["fields"][1] == {
        "name": "offered",
        "type": "number",
        "title": {"en": "Mentors offering it"},
    }
    assert document["data"] == [
        ["lua", None, None, None, True],  # 1 and 3 are below 5; the gap would give 3 back
        ["python", 12, 40, 20, False],
        ["wikidata", None, 7, 7, True],  # zero is below 5 too
    ]
    json.dumps(document)  # a document, not Python objects


def test_csv_holds_every_figure_for_coordinators():
    rows = list(csv.reader(io.StringIO(to_csv(SKILLS))))
    assert rows[0] == ["skill", "mentor", "offered", "wanted", "gap", "listed"]
    assert rows[1:] == [
        ["lua", "ana", "1", "3", "1", "true"],
        ["python", "bo", "12", "40", "20", "false"],
        ["wikidata", "cy", "0", "7", "7", "true"],
    ]


def test_a_table_refuses_what_open_data_could_not_hold():
    with pytest.raises(ValueError, match="field name"):
        Column("open slots", "Open slots")
    with pytest.raises(ValueError, match="a count is a number"):
        Column("skill", "Skill", "string", count=True)
    with pytest.raises(ValueError, match="unknown"):
        Table("t", "d", (Column("gap", "Gap", derived_from=("wanted",)),))
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        Table("t", "d", (Column("a", "A"),), ((1, 2),))


counts = st.integers(min_value=0, max_value=50)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    columns = (
        Column("label", "Label", "string"),
        Column("who", "Who", "string", personal=True),
        Column("a", "A", count=True),
        Column("b", "B", count=True),
        Column("ratio", "A per B", derived_from=("a", "b")),
        Column("median_hours", "Median hours", derived_from=("a",)),
    )
    rows = draw(
        st.lists(
            st.tuples(
                texts,
                texts,
                counts,
                counts,
                st.floats(allow_nan=False, allow_infinity=False, width=32),
                st.none() | st.floats(min_value=0, max_value=1000, width=32),
            ),
            max_size=8,
        )
    )
    return Table("random", "A random table", columns, tuple(rows))


@settings(max_examples=60, deadline=None)
@given(table=tables(), min_cell=st.integers(min_value=1, max_value=10))
def test_the_suppression_rule_holds_for_any_table(table: Table, min_cell: int):
    shown = suppressed(table, min_cell)
    assert [c.name for c in shown.columns] == ["label", "a", "b", "ratio", "median_hours"]
    for original, row in zip(table.rows, shown.rows, strict=True):
        label, _who, a, b, ratio, median = original
        hidden_a, hidden_b = a < min_cell, b < min_cell
        assert row == (
            label,
            None if hidden_a else a,
            None if hidden_b else b,
            None if hidden_a or hidden_b else ratio,
            None if hidden_a else median,
        )
    document = to_tab(table, min_cell=min_cell)
    assert document["data"] == [list(row) for row in shown.rows]


def as_spreadsheet_text(text: object) -> object:
    return (
        "'" + text
        if isinstance(text, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r")
        else text
    )


def test_csv_text_never_runs_as_a_spreadsheet_formula():
    table = Table(
        "skills",
        "Skills",
        (Column("name", "Name", "string"), Column("gap", "Gap")),
        (('=HYPERLINK("https://evil.example","x")', -3), ("@SUM(A1)", 0), ("Lua", 2)),
    )
    rows = list(csv.reader(io.StringIO(to_csv(table), newline="")))
    assert rows[1:] == [
        ['\'=HYPERLINK("https://evil.example","x")', "-3"],
        ["'@SUM(A1)", "0"],
        ["Lua", "2"],
    ]


@settings(max_examples=60, deadline=None)
@given(table=tables())
def test_csv_reads_back_as_the_table(table: Table):
    rows = list(csv.reader(io.StringIO(to_csv(table), newline="")))
    assert len(rows) == len(table.rows) + 1
    for original, read in zip(table.rows, rows[1:], strict=True):
        assert read[:2] == [as_spreadsheet_text(original[0]), as_spreadsheet_text(original[1])]
        assert [int(read[2]), int(read[3])] == [original[2], original[3]]
        assert float(read[4]) == original[4]
        assert read[5] == ("" if original[5] is None else repr(original[5]))
