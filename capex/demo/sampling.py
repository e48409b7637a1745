"""Vectorised draws the demo tables share: weighted choices per row, skills without repeats."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from capex.demo.parameters import Choice

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def draw(rng: np.random.Generator, choice: Choice, size: int | tuple[int, ...]) -> IntArray:
    """Values of ``choice`` of shape ``size``, by its weights (uniformly when it has none)."""
    drawn: IntArray = rng.choice(choice.values, p=choice.p, size=size)
    return drawn


def choose_per_row(
    rng: np.random.Generator, tables: Sequence[Sequence[float]], which: IntArray
) -> IntArray:
    """One index per row into ``tables[which[row]]``, drawn by that table's weights; (n,)."""
    width = max(len(table) for table in tables)
    cumulative = np.full((len(tables), width), 2.0)
    for index, table in enumerate(tables):
        weights = np.asarray(table, dtype=np.float64)
        cumulative[index, : len(table)] = np.cumsum(weights / weights.sum())
        cumulative[index, len(table) - 1] = 1.0
    draws = rng.random(len(which))
    chosen: IntArray = (draws[:, None] >= cumulative[which]).sum(axis=1).astype(np.int64)
    return chosen


def pick_skills(
    rng: np.random.Generator,
    log_weights: FloatArray,
    counts: IntArray,
    exclude: BoolArray | None = None,
) -> tuple[IntArray, BoolArray]:
    """Distinct skills per volunteer, drawn without replacement in proportion to the weights.

    Gumbel-top-k sampling. ``counts`` has shape (n,); ``exclude`` (n, n_skills) marks skills
    a volunteer may not get. Returns skill indices of shape (n, k), strongest draw first,
    and the mask (n, k) of the entries each volunteer actually has.
    """
    n_skills = len(log_weights)
    k = max(1, min(int(counts.max(initial=1)), n_skills))
    keys = log_weights[None, :] + rng.gumbel(size=(len(counts), n_skills))
    if exclude is not None:
        keys[exclude] = -np.inf
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    top_keys = np.take_along_axis(keys, top, axis=1)
    order = np.argsort(-top_keys, axis=1, kind="stable")
    chosen = np.take_along_axis(top, order, axis=1)
    mask = (np.arange(k)[None, :] < counts[:, None]) & np.isfinite(
        np.take_along_axis(top_keys, order, axis=1)
    )
    return chosen.astype(np.int64), mask
