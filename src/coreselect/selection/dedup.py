"""Near-duplicate removal before any method (``--dedup THRESHOLD``), and fitting on what is left.

A row is a near-duplicate when its cosine similarity to an *earlier kept* row is at least the
threshold, less a float32 rounding margin of :data:`TOLERANCE` (so 1.0 catches exact copies and
rescaled rows); rows in pool order: the first of a group of copies stays. Similar pairs come from an
exact faiss range search (``IndexFlatIP``, blocked and multi-threaded inside faiss), so memory
grows with the number of similar pairs, not with ``N x N``; then one pass in row order keeps a row
unless an earlier kept row is similar to it.

:func:`fit_deduplicated` runs a selector on the kept rows (features, scores, costs cut alike) and
maps its picks back to pool rows.

Examples
--------
>>> X = np.array([[1, 0], [1, 0.01], [0, 1], [0.01, 1]], dtype=np.float32)
>>> near_duplicates(X, 0.99).tolist()
[0, 2]
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.errors import ConfigError

if TYPE_CHECKING:
    from coreselect.selection.base import Selector

log = logging.getLogger(__name__)

#: Similarities this close below the threshold count as reaching it (float32 dot products of unit
#: rows are off by a few ulp: a row's similarity to itself can be 0.99999994).
TOLERANCE = 1e-6


def similar_pairs(X: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(lims, neighbours)`` in faiss' range-search layout: row ``i``'s rows of cosine similarity
    at least ``threshold`` (itself included) are ``neighbours[lims[i]:lims[i + 1]]``."""
    import faiss

    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Xn = np.ascontiguousarray(X / np.where(norms > 0, norms, 1), dtype=np.float32)
    index = faiss.IndexFlatIP(Xn.shape[1])
    index.add(Xn)
    # faiss keeps similarities strictly above the radius
    lims, sims, nbrs = index.range_search(Xn, threshold - 2 * TOLERANCE)
    keep = sims >= threshold - TOLERANCE
    rows = np.repeat(np.arange(len(Xn)), np.diff(lims.astype(np.int64)))[keep]
    return np.searchsorted(rows, np.arange(len(Xn) + 1)).astype(np.int64), nbrs[keep].astype(np.int64)


def near_duplicates(X: np.ndarray, threshold: float) -> np.ndarray:
    """The rows kept (sorted): each row whose cosine similarity to an earlier kept row is below
    ``threshold`` (zero rows are similar to nothing). Example: see the module docstring."""
    X = np.asarray(X, dtype=np.float32)
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"--dedup must be in (0, 1], got {threshold}")
    lims, nbrs = similar_pairs(X, threshold)
    removed = np.zeros(len(X), dtype=bool)
    for i in range(len(X)):
        if not removed[i]:
            later = nbrs[lims[i] : lims[i + 1]]
            removed[later[later > i]] = True
    return np.flatnonzero(~removed).astype(np.int64)


def fit_deduplicated(selector: Selector, X_dedup: np.ndarray, X_fit: np.ndarray, threshold: float, *,
                     scores: dict[str, np.ndarray] | None = None, costs: np.ndarray | None = None,
                     budget: float | None = None) -> int:
    """Remove near-duplicates (on ``X_dedup``, the prepared features), fit ``selector`` on the
    kept rows of ``X_fit`` (and of ``scores``, ``costs``) and map ``indices_`` back to pool rows.

    Sets ``selector.kept_rows_`` (the kept pool rows; the selector's other per-row attributes,
    such as ``labels_``, refer to them) and returns the number of rows removed.
    """
    kept = near_duplicates(X_dedup, threshold)
    removed = len(X_dedup) - len(kept)
    log.info("dedup: %d of %d rows are near-duplicates (cosine >= %g) of an earlier row; %d left", removed,
             len(X_dedup), threshold, len(kept))
    if selector.n_select > len(kept) and budget is None:
        raise ConfigError(f"{len(kept)} rows are left after removing {removed} near-duplicates (cosine >= "
                          f"{threshold:g}): fewer than the {selector.n_select} to select")
    sub: dict[str, Any] = {"scores": {k: np.asarray(v)[kept] for k, v in (scores or {}).items()}}
    if budget is not None:
        sub.update(costs=np.asarray(costs)[kept], budget=budget)
    if selector.n_select > len(kept):  # a budget's cap of more rows than are left: fit a copy for all left
        fitted = type(selector)(**{**selector.get_params(), "n_select": len(kept)}).fit(X_fit[kept], **sub)
        vars(selector).update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
    else:
        selector.fit(X_fit[kept], **sub)
    selector.indices_ = kept[selector.indices_]
    selector.kept_rows_ = kept
    return removed
