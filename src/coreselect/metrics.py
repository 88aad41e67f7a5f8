"""Coverage metrics of a selection: how well the picks cover the pool.

* covering radius: the largest distance from a pool point to its nearest pick (what k-center
  greedy minimises); mean nearest distance: the average of that distance over the pool; both
  for a whole selection (:func:`coverage_metrics`) or after each prefix (:func:`covering_radii`),
  from one distance kernel (:func:`nearest_distances_to`);
* label coverage and balance (when the data carries label columns such as ``task``): the share
  of distinct labels the core contains, and the normalised entropy of its label distribution.
  Labels are for measuring only; no selector ever reads them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def nearest_distances_to(X: np.ndarray, C: np.ndarray, *, block_rows: int = 8192, block_cols: int = 8192,
                         x_sq: np.ndarray | None = None, c_sq: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distance from each row of ``X`` to its nearest row of ``C``.

    The one implementation of nearest distances: :func:`nearest_distances`,
    :func:`covering_radii`, :func:`coverage_metrics` and the Ray actors all call it. The
    distance matrix is formed ``block_rows x block_cols`` at a time, never whole.

    Parameters
    ----------
    X : (n, d) array; converted to float32.
    C : (m, d) array, ``m >= 1``; converted to float32.
    block_rows, block_cols : rows of ``X`` and of ``C`` per block.
    x_sq, c_sq : the squared row norms of ``X`` and ``C`` when the caller has them already.

    Returns
    -------
    (n,) float32 distances.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], dtype=np.float32)
    >>> nearest_distances_to(X, X[1:2]).tolist()
    [5.0, 0.0, 5.0]
    """
    X = np.asarray(X, dtype=np.float32)
    C = np.asarray(C, dtype=np.float32)
    if C.ndim != 2 or C.shape[0] == 0 or X.ndim != 2 or C.shape[1] != X.shape[1]:
        raise ValueError(f"need X (n, d) and C (m >= 1, d), got {X.shape} and {C.shape}")
    xsq = np.einsum("ij,ij->i", X, X) if x_sq is None else x_sq
    csq = np.einsum("ij,ij->i", C, C) if c_sq is None else c_sq
    out = np.empty(X.shape[0], dtype=np.float32)
    for s in range(0, X.shape[0], block_rows):
        B, bsq = X[s : s + block_rows], xsq[s : s + block_rows]
        best = np.full(B.shape[0], np.inf, dtype=np.float32)
        for c in range(0, C.shape[0], block_cols):
            d2 = bsq[:, None] + csq[None, c : c + block_cols] - 2.0 * (B @ C[c : c + block_cols].T)
            np.minimum(best, d2.min(1), out=best)
        out[s : s + block_rows] = np.sqrt(np.maximum(best, 0.0))
    return out


def nearest_distances(X: np.ndarray, idx: Sequence[int], *, block_rows: int = 8192) -> np.ndarray:
    """Euclidean distance from every row of ``X`` to its nearest row among ``X[idx]`` (0 at ``idx``).

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0]], dtype=np.float32)
    >>> nearest_distances(X, [0]).tolist()
    [0.0, 1.0, 4.0]
    """
    X = np.asarray(X, dtype=np.float32)
    rows = np.asarray(idx, dtype=np.int64)
    out = nearest_distances_to(X, X[rows], block_rows=block_rows)
    out[rows] = 0.0
    return out


def coverage_metrics(X: np.ndarray, idx: Sequence[int]) -> dict[str, float]:
    """Covering radius and mean nearest-pick distance of a selection in feature space ``X``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [4.0]], dtype=np.float32)
    >>> coverage_metrics(X, [0])
    {'covering_radius': 4.0, 'mean_nearest_distance': 1.666667}
    """
    d = nearest_distances(X, idx)
    return {"covering_radius": round(float(d.max()), 6), "mean_nearest_distance": round(float(d.mean()), 6)}


def covering_radii(X: np.ndarray, order: np.ndarray, prefixes: Sequence[int], *,
                   block_rows: int = 8192, block_picks: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Covering radius and mean nearest-pick distance after each prefix of ``order``.

    Keeps one running minimum distance per row and adds the picks ``block_picks`` at a time, so
    no n x k matrix is formed. Returns ``(radius, mean_distance)``, one value per prefix.

    Examples
    --------
    >>> X = np.eye(4, dtype=np.float32)
    >>> covering_radii(X, np.array([0, 1, 2, 3]), [1, 4])[0].round(3).tolist()
    [1.414, 0.0]
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    order = np.asarray(order, dtype=np.int64)
    sq = np.einsum("ij,ij->i", X, X)
    min_d = np.full(X.shape[0], np.inf, dtype=np.float32)
    radius, mean = [], []
    done = 0
    for p in sorted(prefixes):
        for s in range(done, p, block_picks):
            picks = order[s : min(p, s + block_picks)]
            d = nearest_distances_to(X, X[picks], block_rows=block_rows, x_sq=sq, c_sq=sq[picks])
            np.minimum(min_d, d, out=min_d)
        done = max(done, p)
        d = min_d.copy()
        d[order[:p]] = 0.0
        radius.append(float(d.max()))
        mean.append(float(d.mean()))
    return np.asarray(radius), np.asarray(mean)


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
