"""Similarity filter (DEITA's "repr filter"): walk by priority, skip near-duplicates of picks.

The pool is walked in order of priority ``y``, highest first (input order when there is none;
the sort is stable). An example is kept when its largest cosine similarity to everything kept
so far is below ``threshold``; the walk stops once ``n_select`` are kept.

If the walk ends short (the pool has fewer than ``n_select`` mutually dissimilar examples), a
second pass fills the budget instead of failing: the rejected examples are ranked by their
largest similarity to the first-pass picks, lowest first (ties in walk order), and the least
redundant ones are taken. The ranking is against the first-pass picks only, not updated as the
fill proceeds, so the fill costs one pass over the pool.

The walk is blocked: each block of candidates is compared to all picks in one matrix product,
and only comparisons inside the block run one by one, so memory is O(block * n_select).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coreselect.selection.base import Selector, register

log = logging.getLogger(__name__)

_BLOCK_ROWS = 1024


def _max_sim(B: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Largest inner product of each row of ``B`` with the rows of ``K`` (-inf if none)."""
    if K.shape[0] == 0:
        return np.full(B.shape[0], -np.inf, dtype=np.float32)
    return (B @ K.T).max(axis=1)


def similarity_filter(
    X: np.ndarray,
    n_select: int,
    *,
    threshold: float = 0.9,
    priority: np.ndarray | None = None,
    block_rows: int = _BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep examples, by priority, whose max cosine similarity to the kept ones is below a bar.

    Parameters
    ----------
    X : (n, d) float32 array, trusted; rows are L2-normalised here (zero rows stay zero).
    n_select : number of picks, ``1 <= n_select <= n``.
    threshold : an example with cosine similarity ``>= threshold`` to a pick is skipped.
    priority : (n,) walk order key, higher first; ``None`` walks in input order.
    block_rows : candidates compared to the picks per matrix product.

    Returns
    -------
    indices : (n_select,) int64: first-pass picks in walk order, then any fill.
    max_similarity : (n_select,) float32, each pick's largest similarity to the walk's picks:
        those before it for a walk pick (``-inf`` for the very first), all of them for fill.
    n_first_pass : number of picks made by the walk (the rest are fill).

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.01], [0, 1], [0.7, 0.7]], dtype=np.float32)
    >>> idx, _, n_walk = similarity_filter(X, 3, threshold=0.9)
    >>> idx.tolist(), n_walk
    ([0, 2, 3], 3)
    >>> similarity_filter(X, 4, threshold=0.9)[0].tolist()
    [0, 2, 3, 1]
    """
    n, d = X.shape
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = np.ascontiguousarray(X / np.where(norms > 0, norms, 1), dtype=np.float32)
    order = np.arange(n) if priority is None else np.argsort(-priority, kind="stable")
    kept = np.empty(n_select, dtype=np.int64)
    sims = np.empty(n_select, dtype=np.float32)
    K = np.empty((n_select, d), dtype=np.float32)
    nk = 0
    for s in range(0, n, block_rows):
        rows = order[s : s + block_rows]
        B = Xn[rows]
        to_kept = _max_sim(B, K[:nk])
        inner = B @ B.T
        accepted: list[int] = []
        for p in range(rows.size):
            m = float(to_kept[p])
            if accepted:
                m = max(m, float(inner[p, accepted].max()))
            if m < threshold:
                accepted.append(p)
                kept[nk], sims[nk] = rows[p], m
                nk += 1
                if nk == n_select:
                    break
        K[nk - len(accepted) : nk] = B[accepted]
        if nk == n_select:
            return kept, sims, nk
    # second pass: least redundant of the rejected examples, against the first-pass picks
    n_walk = nk
    is_kept = np.zeros(n, dtype=bool)
    is_kept[kept[:nk]] = True
    rest = order[~is_kept[order]]
    rest_sim = np.concatenate(
        [_max_sim(Xn[rest[s : s + block_rows]], K[:nk]) for s in range(0, rest.size, block_rows)]
    )
    take = np.argsort(rest_sim, kind="stable")[: n_select - nk]
    kept[nk:] = rest[take]
    sims[nk:] = rest_sim[take]
    log.debug("similarity filter: walk kept %d, filled %d", n_walk, n_select - n_walk)
    return kept, sims, n_walk


@register("similarity-filter")
class SimilarityFilter(Selector):
    """DEITA-style filter: by priority, keep examples not too similar to those already kept.

    Parameters
    ----------
    n_select : number of examples to keep.
    threshold : cosine similarity at or above which an example counts as a near-duplicate.
    random_state : accepted for a uniform interface; the method is deterministic (it walks by
        priority, then input order).

    Attributes
    ----------
    indices_ : picked row indices: the walk's picks, then any fill (see module doc).
    max_similarity_ : each pick's largest similarity to the walk's picks (earlier ones for a
        walk pick, ``-inf`` for the first; all of them for fill).
    n_first_pass_ : how many picks the walk made; fewer than ``n_select`` means fill was used.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    >>> sel = SimilarityFilter(n_select=10).fit(X, y=np.arange(100.0))
    >>> int(sel.indices_[0]), sel.n_first_pass_
    (99, 10)
    """

    def __init__(self, n_select: int, *, threshold: float = 0.9, random_state: int = 0) -> None:
        self.n_select = n_select
        self.threshold = threshold
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"threshold": self._float("threshold", -1.0, 1.0)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, threshold: float, random_state: int) -> np.ndarray:
        idx, self.max_similarity_, self.n_first_pass_ = similarity_filter(
            X, self.n_select, threshold=threshold, priority=y
        )
        if self.n_first_pass_ < self.n_select:
            log.warning(
                "similarity-filter: only %d examples pass threshold %.3g; %d filled by least "
                "similarity to them",
                self.n_first_pass_,
                threshold,
                self.n_select - self.n_first_pass_,
            )
        return idx
