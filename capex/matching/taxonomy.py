"""Skill similarity from the taxonomy: ancestor-smoothed sparse vectors and their cosine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.preprocessing import normalize

SIMILARITY_QUANTUM = 2.0**-32
"""Similarities are rounded to a multiple of this, so that pairs the taxonomy cannot tell apart
(two sibling pairs at the same depth, say) tie exactly instead of differing in the last bit."""


class SkillSpace:
    """The skill taxonomy as a similarity between skills.

    Each skill ``s`` at depth ``d(s)`` (roots have depth 0) becomes the sparse vector
    ``v(s) = sum over a in ancestors-or-self(s) of decay ** (d(s) - d(a)) * e(a)``; the
    similarity of two skills is the cosine of their vectors, rounded to a multiple of
    :data:`SIMILARITY_QUANTUM`, and set to exactly 0 below ``min_similarity``. A skill is
    exactly 1 to itself, and skills under different roots share no component, so they are 0.

    Parameters
    ----------
    parents : mapping of str to str or None
        Every skill id and its parent's id (None for a root area).
    decay : float, default 0.5
        Weight of the parent relative to the skill itself, in (0, 1]; the grandparent gets
        ``decay ** 2`` and so on. Smaller values make related skills less similar.
    min_similarity : float, default 0.1
        Similarities below this are 0, in [0, 1]. With the defaults a parent or child is
        about 0.45-0.49, a sibling 0.20-0.24, a grandparent 0.22, an uncle 0.098 (so 0).

    Attributes
    ----------
    skill_ids : tuple of str, shape (n_skills,)
        The skills in ascending id order; a skill's position here is its column everywhere.
    vectors_ : scipy.sparse.csr_array, shape (n_skills, n_skills)
        The ancestor-smoothed vectors, one row per skill, before normalisation.
    similarity_ : scipy.sparse.csr_array, shape (n_skills, n_skills)
        The rounded, thresholded cosine similarities; symmetric, 1.0 on the diagonal.
    """

    def __init__(
        self,
        parents: Mapping[str, str | None],
        *,
        decay: float = 0.5,
        min_similarity: float = 0.1,
    ) -> None:
        self.parents = dict(parents)
        self.decay = decay
        self.min_similarity = min_similarity
        self._validate()
        self.skill_ids: tuple[str, ...] = tuple(sorted(self.parents))
        self._position = {skill: i for i, skill in enumerate(self.skill_ids)}
        self.vectors_ = self._ancestor_vectors()
        self.similarity_ = self._similarity()
        # Per skill: the related columns (ascending) and their similarities, for fast lookups.
        indptr, indices, data = (
            self.similarity_.indptr,
            self.similarity_.indices,
            self.similarity_.data,
        )
        self._related: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]] = [
            (
                indices[indptr[i] : indptr[i + 1]].astype(np.int32),
                data[indptr[i] : indptr[i + 1]].astype(np.float64),
            )
            for i in range(len(self.skill_ids))
        ]
        # Per skill: its parent's column, -1 for a root area.
        parent_ids = [self.parents[skill] for skill in self.skill_ids]
        self._parent_positions = np.array(
            [-1 if parent is None else self._position[parent] for parent in parent_ids],
            dtype=np.int64,
        )

    def _validate(self) -> None:
        if not (0.0 < self.decay <= 1.0):
            raise ValueError(f"decay must be in (0, 1], got {self.decay!r}")
        if not (0.0 <= self.min_similarity <= 1.0):
            raise ValueError(f"min_similarity must be in [0, 1], got {self.min_similarity!r}")
        if not self.parents:
            raise ValueError("parents must name at least one skill")
        for skill, parent in self.parents.items():
            if not isinstance(skill, str) or not skill:
                raise ValueError(f"skill ids must be non-empty strings, got {skill!r}")
            if parent is not None and parent not in self.parents:
                raise ValueError(f"skill {skill!r} has an unknown parent {parent!r}")
        for skill in self.parents:
            self._ancestors(skill)  # raises on a cycle

    def _ancestors(self, skill: str) -> list[str]:
        """``skill`` and its ancestors, nearest first."""
        chain = [skill]
        parent = self.parents[skill]
        while parent is not None:
            if parent in chain:
                raise ValueError(f"the taxonomy has a cycle through {parent!r}")
            chain.append(parent)
            parent = self.parents[parent]
        return chain

    def _ancestor_vectors(self) -> sp.csr_array:
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        for i, skill in enumerate(self.skill_ids):
            for distance, ancestor in enumerate(self._ancestors(skill)):
                rows.append(i)
                cols.append(self._position[ancestor])
                weights.append(self.decay**distance)
        n = len(self.skill_ids)
        return sp.csr_array((weights, (rows, cols)), shape=(n, n), dtype=np.float64)

    def _similarity(self) -> sp.csr_array:
        unit = normalize(self.vectors_, norm="l2", axis=1)
        cosine = sp.csr_array(unit @ unit.T)
        cosine.data = np.rint(cosine.data / SIMILARITY_QUANTUM) * SIMILARITY_QUANTUM
        cosine.setdiag(1.0)
        cosine.data[(cosine.data < self.min_similarity) | (cosine.data <= 0.0)] = 0.0
        cosine.eliminate_zeros()
        cosine.sort_indices()
        return cosine

    def __len__(self) -> int:
        return len(self.skill_ids)

    def __contains__(self, skill: object) -> bool:
        return skill in self._position

    def position(self, skill: str) -> int:
        """The column of ``skill``; raises ValueError for an unknown skill."""
        try:
            return self._position[skill]
        except KeyError:
            raise ValueError(f"unknown skill {skill!r}") from None

    def positions(self, skills: Iterable[str]) -> npt.NDArray[np.int32]:
        """Columns of ``skills``, shape (n,); raises ValueError naming an unknown skill."""
        return np.fromiter((self.position(s) for s in skills), dtype=np.int32)

    def related(self, position: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """Skills with a positive similarity to the skill at ``position``.

        Returns
        -------
        columns : ndarray of int32, shape (k,)
            Their columns, ascending (so ascending skill id).
        similarities : ndarray of float64, shape (k,)
            Their similarities, in (0, 1].
        """
        return self._related[position]

    def neighbours(self, position: int) -> npt.NDArray[np.int64]:
        """The skills next to the skill at ``position`` in the tree: its parent, its siblings
        (the other children of that parent; root areas are nobody's siblings) and its children.

        Returns
        -------
        ndarray of int64, shape (k,)
            Their columns, ascending (so ascending skill id); never ``position`` itself.
        """
        parents = self._parent_positions
        parent = parents[position]
        near = parents == position
        if parent >= 0:
            near |= parents == parent
            near[parent] = True
        near[position] = False
        return np.flatnonzero(near).astype(np.int64)

    def similarity(self, a: str, b: str) -> float:
        """The similarity of skills ``a`` and ``b``, in [0, 1]."""
        return float(self.similarity_[self.position(a), self.position(b)])
