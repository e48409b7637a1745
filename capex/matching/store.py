"""A match index as one file that every worker process of a host maps, instead of each
building and holding its own copy.

The file holds the index's arrays, each followed by spare capacity, and a JSON footer that
says where each array starts. ``load_index`` maps the file copy-on-write (``MAP_PRIVATE``):
the pages are the operating system's page cache, shared by every process that maps the
file, until a process writes to one (an upsert appends into the spare capacity, a removal
marks a row dead); only the pages written become that process's own. The file itself is
never changed: a new build writes a new file.

Layout::

    [8 bytes magic "CAPEXMI1"] arrays, each at a 64-byte boundary, filled part then spare
    capacity ... [footer: JSON] [8 bytes little-endian footer length] [8 bytes magic]
"""

from __future__ import annotations

import json
import math
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from capex.matching.index import MatchIndex

MAGIC = b"CAPEXMI1"
FORMAT = 1
_ALIGN = 64
# The arrays that are read as they are, never appended to: no spare capacity.
_FIXED = frozenset({"zone_tables", "lookup.ids", "lookup.rows"})


class IndexFileError(ValueError):
    """The file is not a match index this code can read."""


def _capacity(filled: int, headroom: float) -> int:
    return filled + max(16, math.ceil(filled * headroom))


def save_index(
    index: MatchIndex,
    path: str | os.PathLike[str],
    *,
    headroom: float = 0.25,
    meta: dict[str, Any] | None = None,
) -> int:
    """Write ``index`` to ``path`` (through a temporary file beside it, then renamed).

    Parameters
    ----------
    index : MatchIndex
        Compacted first if it holds dead rows.
    path : path-like
        The file to write; replaced atomically if it exists.
    headroom : float, default 0.25
        Spare capacity after each growable array, as a share of its filled length (at least
        16 items): how much a process mapping the file can append before an array outgrows
        the file and is copied into the process's own memory.
    meta : dict, optional
        JSON-ready values kept with the index (``load_index`` gives them back).

    Returns
    -------
    int
        The file's size in bytes.
    """
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, got {headroom!r}")
    described, arrays = index.export_state()
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    entries: dict[str, dict[str, Any]] = {}
    try:
        with temporary.open("wb") as out:
            out.write(MAGIC)
            for name, values in arrays.items():
                values = np.ascontiguousarray(values)
                filled = values.shape[-1] if values.ndim else 0
                capacity = filled if name in _FIXED else _capacity(filled, headroom)
                shape = (*values.shape[:-1], capacity)
                offset = -(-out.tell() // _ALIGN) * _ALIGN
                row_bytes = capacity * values.itemsize
                rows = values.reshape(math.prod(values.shape[:-1]), filled)
                for number, row in enumerate(rows):
                    out.seek(offset + number * row_bytes)
                    out.write(row.tobytes())
                end = offset + rows.shape[0] * row_bytes
                out.seek(end)
                entries[name] = {
                    "offset": offset,
                    "dtype": values.dtype.str,
                    "shape": list(shape),
                    "filled": filled,
                }
            out.truncate(out.tell())
            footer = json.dumps(
                {"format": FORMAT, "index": described, "arrays": entries, "meta": meta or {}},
                separators=(",", ":"),
            ).encode()
            out.write(footer)
            out.write(len(footer).to_bytes(8, "little"))
            out.write(MAGIC)
            size = out.tell()
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return size


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` a file was saved with, without mapping its arrays."""
    with open(path, "rb") as source:
        return dict(_footer(source.fileno())["meta"])


def _footer(fileno: int) -> dict[str, Any]:
    size = os.fstat(fileno).st_size
    if size < 2 * len(MAGIC) + 8:
        raise IndexFileError("too short to be a match index")
    tail = os.pread(fileno, 16, size - 16)
    if tail[8:] != MAGIC or os.pread(fileno, 8, 0) != MAGIC:
        raise IndexFileError("not a match index file")
    length = int.from_bytes(tail[:8], "little")
    if length > size - 32:
        raise IndexFileError("a damaged match index file")
    footer: dict[str, Any] = json.loads(os.pread(fileno, length, size - 16 - length))
    if footer.get("format") != FORMAT:
        raise IndexFileError(f"match index format {footer.get('format')!r}, expected {FORMAT}")
    return footer


def load_index(path: str | os.PathLike[str]) -> tuple[MatchIndex, dict[str, Any]]:
    """Map ``path`` copy-on-write and return the index over it, and the file's ``meta``.

    The mapping stays valid when the file is later removed or replaced by a newer build.
    """
    with open(path, "rb") as source:
        footer = _footer(source.fileno())
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_COPY)
    buffers: dict[str, tuple[npt.NDArray[Any], int]] = {}
    for name, entry in footer["arrays"].items():
        shape = tuple(entry["shape"])
        buffer = np.frombuffer(
            mapped, dtype=np.dtype(entry["dtype"]), count=math.prod(shape), offset=entry["offset"]
        ).reshape(shape)
        buffers[name] = (buffer, int(entry["filled"]))
    return MatchIndex.from_state(footer["index"], buffers), dict(footer["meta"])
