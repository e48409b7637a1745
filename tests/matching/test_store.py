"""A match index written to a file and mapped back answers as the index it was saved from,
keeps answering right after upserts and removals, and never changes the file."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from capex.matching import VolunteerRecord
from capex.matching.store import IndexFileError, load_index, read_meta, save_index
from tests.matching.helpers import TAXONOMY, engine_and_reference, volunteer
from tests.matching.test_equivalence import (
    change_at_random,
    check_queries,
    equivalence_settings,
    make,
    worlds,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@equivalence_settings
@given(world=worlds(), data=st.data())
def test_a_mapped_index_agrees_with_the_reference_before_and_after_changes(
    world: tuple[dict[str, str | None], datetime, dict[str, Any], list[VolunteerRecord]],
    data: st.DataObject,
) -> None:
    taxonomy, week, params, records_ = world
    built, reference = make(taxonomy, week, params, data.draw(st.sampled_from([0.1, 0.5, 1.0])))
    built.build(records_)
    current = {record.id: record for record in records_}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index"
        save_index(built, path, headroom=data.draw(st.sampled_from([0.0, 0.25, 2.0])))
        saved = digest(path)
        index, _ = load_index(path)
        assert len(index) == len(current)
        check_queries(index, reference, list(current.values()), sorted(current)[:4], data)
        # Enough changes to outgrow the smallest spare capacity, and to compact.
        change_at_random(index, current, taxonomy, data, rounds=6, most=20)
        assert len(index) == len(current)
        assert sorted(i for i in range(1, 71) if i in index) == sorted(current)
        if current:
            queriers: list[int | VolunteerRecord] = list(
                data.draw(st.lists(st.sampled_from(sorted(current)), max_size=5, unique=True))
            )
            check_queries(index, reference, list(current.values()), queriers, data)
        # The file is the same bytes: every change stayed in this process's memory.
        assert digest(path) == saved


def test_versions_and_meta_survive_the_file_and_later_upserts(tmp_path: Path) -> None:
    index, _ = engine_and_reference(
        [
            volunteer(1, wants=(("lua", 2),), version=10),
            volunteer(2, offers=(("lua", 3),), version=20),
        ]
    )
    path = tmp_path / "index"
    save_index(index, path, meta={"generation": 7, "watermark": "2026-12-07T10:00:00+00:00"})
    assert read_meta(path) == {"generation": 7, "watermark": "2026-12-07T10:00:00+00:00"}
    loaded, meta = load_index(path)
    assert meta["generation"] == 7
    assert (loaded.version_of(1), loaded.version_of(2), loaded.version_of(3)) == (10, 20, None)
    assert [m.volunteer_id for m in loaded.query(1)] == [2]
    loaded.upsert([volunteer(2, offers=(("lua", 3),), open_slots=0, version=21)])
    assert loaded.version_of(2) == 21
    assert loaded.query(1) == []  # the mentor has no open slot any more
    loaded.upsert([volunteer(3, offers=(("python", 3),), version=5)])
    assert [m.volunteer_id for m in loaded.query(1)] == [3]
    assert loaded.skill_space.skill_ids == tuple(sorted(TAXONOMY))


def test_an_empty_index_saves_and_grows(tmp_path: Path) -> None:
    index, _ = engine_and_reference([])
    save_index(index, tmp_path / "index")
    loaded, _ = load_index(tmp_path / "index")
    assert len(loaded) == 0
    loaded.upsert([volunteer(i, offers=(("lua", 3),)) for i in range(1, 40)])
    loaded.upsert([volunteer(100, wants=(("lua", 1),))])
    assert len(loaded.query(100, limit=100)) == 39


@pytest.mark.parametrize(
    "content",
    [b"", b"hello", b"CAPEXMI1" + b"\0" * 40, b"CAPEXMI1" + b"\0" * 8 + b"CAPEXMI1"],
)
def test_a_file_that_is_no_index_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "index"
    path.write_bytes(content)
    with pytest.raises(IndexFileError):
        load_index(path)
