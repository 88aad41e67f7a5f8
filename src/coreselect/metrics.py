"""Coverage metrics of a selection: how well the picks cover the pool.

* covering radius: the largest distance from a pool point to its nearest pick (what k-center
  greedy minimises); mean nearest distance: the average of that distance over the pool;
* label coverage and balance (when the data carries label columns such as ``task``): the share
  of distinct labels the core contains, and the normalised entropy of its label distribution.
  Labels are for measuring only; no selector ever reads them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def nearest_distances(X: np.ndarray, idx: Sequence[int], *, block_rows: int = 8192) -> np.ndarray:
    """Euclidean distance from every row of ``X`` to its nearest row among ``X[idx]``.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0]], dtype=np.float32)
    >>> nearest_distances(X, [0]).tolist()
    [0.0, 1.0, 4.0]
    """
    X = np.asarray(X, dtype=np.float32)
    C = X[np.asarray(idx, dtype=np.int64)]
    csq = np.einsum("ij,ij->i", C, C)
    out = np.empty(X.shape[0], dtype=np.float32)
    for s in range(0, X.shape[0], block_rows):
        B = X[s : s + block_rows]
        d2 = np.einsum("ij,ij->i", B, B)[:, None] + csq[None, :] - 2.0 * (B @ C.T)
        out[s : s + block_rows] = np.sqrt(np.maximum(d2.min(1), 0.0))
    out[np.asarray(idx, dtype=np.int64)] = 0.0
    return out


def coverage_metrics(X: np.ndarray, idx: Sequence[int]) -> dict[str, float]:
    """Covering radius and mean nearest-pick distance of a selection in feature space ``X``."""
    d = nearest_distances(X, idx)
    return {"covering_radius": round(float(d.max()), 6), "mean_nearest_distance": round(float(d.mean()), 6)}


def label_metrics(labels: Sequence[Any], idx: Sequence[int]) -> dict[str, float]:
    """Coverage and balance of one label column.

    ``coverage``: distinct labels in the core / distinct labels in the pool. ``balance``: the
    normalised entropy of the core's label distribution over the pool's labels (1 = even).
    ``pool_balance`` is the same for the whole pool, for reference.

    Examples
    --------
    >>> label_metrics(["a", "a", "b", "c"], [0, 2])["coverage"]
    0.666667
    """
    pool = Counter(labels)
    core = Counter(labels[i] for i in idx)
    k = len(pool)

    def balance(c: Counter) -> float:
        if k <= 1:
            return 1.0
        p = np.array(list(c.values()), dtype=np.float64)
        p /= p.sum()
        return float(-(p * np.log(p)).sum() / np.log(k))

    return {
        "labels_in_pool": k,
        "labels_in_core": len(core),
        "coverage": round(len(core) / k, 6),
        "balance": round(balance(core), 6),
        "pool_balance": round(balance(pool), 6),
    }
