"""Coverage metrics of a selection: how well the picks cover the pool.

* covering radius: the largest distance from a pool point to its nearest pick (what k-center
  greedy minimises); mean nearest distance: the average of that distance over the pool; both
  for a whole selection (:func:`coverage_metrics`) or after each prefix (:func:`covering_radii`),
  from one distance kernel (:func:`nearest_distances_to`);
* label coverage and balance (when the data carries label columns such as ``task``): the share
  of distinct labels the core contains, and its *balance* (:func:`label_balance`). Labels are
  for measuring only; no selector ever reads them.
* the random expectation of each figure (:func:`random_coverage`, :func:`random_label_metrics`):
  what a uniform random pick of the same size scores, the mean over a few seeds.

"Balance" has one meaning everywhere (``score``, the manifest, the report, the docs): the
normalised Shannon entropy of the core's label shares over the pool's labels,
``-sum(p log p) / log(labels in the pool)``; 1 = every label of the pool equally often, 0 = a
single label; higher is more even. A random pick's balance is about the pool's own
(``pool_balance``), so a coverage method that evens out a skewed pool scores above it.
"""

from __future__ import annotations

import math
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


def coverage_metrics(X: np.ndarray, idx: Sequence[int], *, max_pairs: int | None = None,
                     seed: int = 0) -> dict[str, float]:
    """Covering radius and mean nearest-pick distance of a selection in feature space ``X``.

    With ``max_pairs``, a pool whose rows x picks exceed it is scored on a seeded uniform sample
    of ``max_pairs // picks`` rows (at least 1,000), and ``sampled_rows`` says how many: the mean
    is then an unbiased estimate and the radius the largest distance *in the sample* (a lower
    bound). At 10^6 rows x 10^5 picks x 1,536-d the full pass would take over an hour here.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [4.0]], dtype=np.float32)
    >>> coverage_metrics(X, [0])
    {'covering_radius': 4.0, 'mean_nearest_distance': 1.666667}
    """
    rows = np.asarray(idx, dtype=np.int64)
    n = X.shape[0]
    if max_pairs is None or n * max(rows.size, 1) <= max_pairs:
        d = nearest_distances(X, rows)
        return {"covering_radius": round(float(d.max()), 6), "mean_nearest_distance": round(float(d.mean()), 6)}
    m = min(n, max(1000, max_pairs // max(rows.size, 1)))
    sample = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    d = nearest_distances_to(X[sample], X[rows])
    d[np.isin(sample, rows)] = 0.0
    return {"covering_radius": round(float(d.max()), 6), "mean_nearest_distance": round(float(d.mean()), 6),
            "sampled_rows": int(m)}


def facility_location_objective(X: np.ndarray, idx: Sequence[int], *, rows: np.ndarray | None = None,
                                block_rows: int = 4096) -> float:
    """The dense facility-location objective ``sum_i max_{j in idx} max(0, cos(x_i, x_j))``.

    With ``rows``, the sum over those rows only, scaled by ``n / len(rows)`` (an unbiased
    estimate of the whole sum; two picks compared on the same rows share the sampling error).

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    >>> round(facility_location_objective(X, [0]), 3)
    1.6
    """
    X = np.asarray(X)
    n = X.shape[0]
    r = np.arange(n) if rows is None else np.sort(np.asarray(rows, dtype=np.int64))

    def unit(A: np.ndarray) -> np.ndarray:
        A = np.asarray(A, dtype=np.float32)
        nrm = np.linalg.norm(A, axis=1, keepdims=True)
        return A / np.where(nrm > 0, nrm, 1.0)

    C = unit(X[np.asarray(idx, dtype=np.int64)])
    total = 0.0
    for s in range(0, r.size, block_rows):
        total += float(np.maximum((unit(X[r[s : s + block_rows]]) @ C.T).max(1), 0.0).astype(np.float64).sum())
    return total * n / r.size


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


def label_balance(counts: Sequence[int] | np.ndarray, n_labels: int) -> float:
    """Balance of a label distribution: normalised Shannon entropy over ``n_labels`` labels.

    ``counts``: how often each label occurs (zeros allowed); ``n_labels``: the labels of the
    pool, the normaliser. 1 = all ``n_labels`` equally often, 0 = one label; 1 when the pool has
    one label.

    Examples
    --------
    >>> label_balance([5, 5], 2), label_balance([10, 0], 2), round(label_balance([3, 1], 2), 3)
    (1.0, 0.0, 0.811)
    """
    if n_labels <= 1:
        return 1.0
    p = np.asarray(counts, dtype=np.float64)
    p = p[p > 0] / max(p.sum(), 1e-300)
    return float(max(0.0, -(p * np.log(p)).sum() / np.log(n_labels)))


def label_metrics(labels: Sequence[Any], idx: Sequence[int]) -> dict[str, float]:
    """Coverage and balance of one label column.

    ``coverage``: distinct labels in the core / distinct labels in the pool. ``balance``: see
    :func:`label_balance` (1 = even over the pool's labels); ``pool_balance`` is the same for
    the whole pool, for reference.

    Examples
    --------
    >>> label_metrics(["a", "a", "b", "c"], [0, 2])["coverage"]
    0.666667
    """
    pool = Counter(labels)
    core = Counter(labels[i] for i in idx)
    k = len(pool)
    return {
        "labels_in_pool": k,
        "labels_in_core": len(core),
        "coverage": round(len(core) / k, 6),
        "balance": round(label_balance(list(core.values()), k), 6),
        "pool_balance": round(label_balance(list(pool.values()), k), 6),
    }


#: Seeds of the random expectation: enough for a stable mean, cheap next to the selection.
RANDOM_SEEDS = 5


def _random_picks(n: int, k: int, seeds: int) -> list[np.ndarray]:
    return [np.random.default_rng(s).choice(n, size=k, replace=False) for s in range(seeds)]


def random_coverage(X: np.ndarray, k: int, *, seeds: int = RANDOM_SEEDS) -> dict[str, float]:
    """The covering radius and mean nearest distance a uniform random pick of ``k`` rows of ``X``
    scores, the mean over ``seeds`` seeds (``0 .. seeds-1``).

    Examples
    --------
    >>> X = np.arange(10, dtype=np.float32)[:, None]
    >>> random_coverage(X, 10)
    {'covering_radius': 0.0, 'mean_nearest_distance': 0.0, 'seeds': 5}
    """
    runs = [coverage_metrics(X, idx) for idx in _random_picks(X.shape[0], k, seeds)]
    return {"covering_radius": round(float(np.mean([r["covering_radius"] for r in runs])), 6),
            "mean_nearest_distance": round(float(np.mean([r["mean_nearest_distance"] for r in runs])), 6),
            "seeds": seeds}


def expected_coverage(counts: np.ndarray, k: int) -> float:
    """Expected number of labels hit by a uniform sample of ``k`` of ``sum(counts)`` items (exact).

    >>> round(expected_coverage(np.array([1, 1]), 1), 3)
    1.0
    """
    n = int(counts.sum())
    if k >= n:
        return float((counts > 0).sum())
    # P(label missed) = C(n - c, k) / C(n, k), in log space
    lg = math.lgamma
    base = lg(n - k + 1) - lg(n + 1)
    miss = [math.exp(lg(n - c + 1) - lg(n - c - k + 1) + base) if n - c >= k else 0.0 for c in counts.tolist()]
    return float(len(counts) - sum(miss))


def random_label_metrics(labels: Sequence[Any], k: int, *, seeds: int = RANDOM_SEEDS) -> dict[str, float]:
    """What a uniform random pick of ``k`` records scores on one label column: labels covered
    and coverage (exact expectations), balance (the mean over ``seeds`` seeds).

    Examples
    --------
    >>> random_label_metrics(["a", "b"], 1)
    {'labels_in_core': 1.0, 'coverage': 0.5, 'balance': 0.0, 'seeds': 5}
    """
    pool = Counter(labels)
    n_labels = len(pool)
    hit = expected_coverage(np.array(list(pool.values()), dtype=np.int64), k)
    balances = [label_balance(list(Counter(labels[i] for i in idx).values()), n_labels)
                for idx in _random_picks(len(labels), k, seeds)]
    return {"labels_in_core": round(hit, 3), "coverage": round(hit / n_labels, 6),
            "balance": round(float(np.mean(balances)), 6), "seeds": seeds}
