"""Cluster, then cover (the LTD recipe): k-means, then k-center greedy inside each cluster.

Plain k-center greedy spends its budget on outliers; confining it to k-means clusters, with a
budget per cluster, keeps it covering every region of the pool. Steps:

1. faiss k-means into ``n_clusters`` clusters (:func:`~.kmeans_centroid.faiss_kmeans`).
2. Split the budget over clusters: ``"proportional"`` to cluster size with largest-remainder
   rounding, or ``"equal"``, a cluster smaller than its share giving the leftover to the others.
3. Inside each cluster with a budget, k-center greedy (:func:`~.kcenter.kcenter_greedy`)
   starting from the member nearest the centroid.
4. Interleave: round ``r`` takes the ``r``-th pick of every cluster (largest cluster first), so
   any prefix of the result is itself spread over the clusters.

The default ``n_clusters`` is ``round(n_select / 8)``, about eight picks per cluster: the best
setting of our first calibration (145 picks in 20 clusters, about 7 per cluster, on T0 task
templates) sits there. ``sqrt(n_select)`` would grow too slowly: at 10,000 picks it leaves 100
picks per cluster, where k-center greedy is back to chasing outliers.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coreselect.selection.base import Selector, register
from coreselect.selection.kcenter import kcenter_greedy
from coreselect.selection.kmeans_centroid import faiss_kmeans

log = logging.getLogger(__name__)

#: Picks per cluster aimed at by the default ``n_clusters``.
PICKS_PER_CLUSTER = 8
SPLITS = ("proportional", "equal")


def default_n_clusters(n_select: int) -> int:
    """``n_select / 8`` rounded half up, clamped to ``[1, n_select]`` (about eight per cluster).

    Examples
    --------
    >>> default_n_clusters(145), default_n_clusters(3)
    (18, 1)
    """
    return min(max(int(n_select / PICKS_PER_CLUSTER + 0.5), 1), n_select)


def split_budget(sizes: np.ndarray, budget: int, split: str = "proportional") -> np.ndarray:
    """Share ``budget`` picks among clusters of the given sizes; never more than a cluster holds.

    Parameters
    ----------
    sizes : (k,) int, rows per cluster; ``budget <= sizes.sum()``.
    budget : picks to share.
    split : ``"proportional"``: ``budget * size / total`` rounded by largest remainder (ties to
        the larger cluster, then the lower id). ``"equal"``: the same share for each non-empty
        cluster; a cluster smaller than its share takes all its rows and the rest is shared
        again; a remainder goes one each to the clusters with the most rows left.

    Returns
    -------
    quotas : (k,) int64 summing to ``budget``.

    Examples
    --------
    >>> split_budget(np.array([50, 30, 20]), 7).tolist()
    [4, 2, 1]
    >>> split_budget(np.array([50, 30, 1]), 7, "equal").tolist()
    [3, 3, 1]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if split == "proportional":
        # integer arithmetic: quota = floor(budget * size / total), remainder in units of 1/total
        quotas, remainders = np.divmod(budget * sizes, sizes.sum())
        left = budget - int(quotas.sum())
        order = np.lexsort((np.arange(sizes.size), -sizes, -remainders))
        quotas[order[:left]] += 1  # a remainder > 0 means quota < size, so this never overfills
        return quotas
    quotas = np.zeros_like(sizes)
    left = budget
    while left > 0:
        room = sizes - quotas
        active = np.flatnonzero(room > 0)
        share = left // active.size
        if share == 0:
            most_room = active[np.argsort(-room[active], kind="stable")]
            quotas[most_room[:left]] += 1
            break
        give = np.minimum(room[active], share)
        quotas[active] += give
        left -= int(give.sum())
    return quotas


def ltd_selection(
    X: np.ndarray,
    n_select: int,
    *,
    n_clusters: int,
    split: str = "proportional",
    niter: int = 20,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """k-means into ``n_clusters`` clusters, then k-center greedy inside each (see module doc).

    Parameters
    ----------
    X : (n, d) float32 C-contiguous array, trusted.
    n_select : number of picks, ``1 <= n_select <= n``.
    n_clusters : number of k-means clusters, ``1 <= n_clusters <= n_select``.
    split : ``"proportional"`` or ``"equal"`` (:func:`split_budget`).
    niter : k-means iterations.
    random_state : k-means seed.

    Returns
    -------
    indices : (n_select,) int64, interleaved over clusters (round-robin by pick rank).
    labels : (n,) int64, each row's cluster.
    quotas : (n_clusters,) int64, picks per cluster.
    centroids : (n_clusters, d) float32.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    >>> idx, labels, quotas, _ = ltd_selection(X.astype(np.float32), 4, n_clusters=2)
    >>> quotas.tolist(), labels[idx].tolist()[:2] in ([0, 1], [1, 0])
    ([2, 2], True)
    """
    centroids, labels = faiss_kmeans(X, n_clusters, niter=niter, random_state=random_state)
    sizes = np.bincount(labels, minlength=n_clusters)
    quotas = split_budget(sizes, n_select, split)
    members = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    per_cluster: list[np.ndarray] = []
    for c in np.argsort(-sizes, kind="stable"):  # largest cluster first in each round
        if quotas[c] == 0:
            continue
        rows = members[starts[c] : starts[c + 1]]
        sub = X[rows]
        diff = sub - centroids[c]
        first = int(np.argmin(np.einsum("ij,ij->i", diff, diff)))
        picks, _ = kcenter_greedy(sub, int(quotas[c]), first=first)
        per_cluster.append(rows[picks])
    out = np.empty(n_select, dtype=np.int64)
    pos = 0
    for r in range(int(quotas.max())):
        for picks in per_cluster:
            if r < picks.size:
                out[pos] = picks[r]
                pos += 1
    return out, labels, quotas, centroids


@register("ltd")
class LTD(Selector):
    """Cluster-then-cover: k-means, then k-center greedy inside each cluster.

    Parameters
    ----------
    n_select : number of examples to keep.
    n_clusters : number of k-means clusters, at most ``n_select``; default
        ``round(n_select / 8)`` (:func:`default_n_clusters`, why in the module doc).
    split : how the budget is shared: ``"proportional"`` to cluster size or ``"equal"``.
    niter : k-means (Lloyd) iterations.
    random_state : k-means seed.

    Attributes
    ----------
    indices_ : picked row indices, interleaved over clusters.
    labels_ : cluster id of every row.
    cluster_sizes_ : rows per cluster.
    quotas_ : picks per cluster.
    cluster_centers_ : (n_clusters, d) centroids.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    >>> sel = LTD(n_select=24, n_clusters=4).fit(X)
    >>> sel.indices_.shape, int(sel.quotas_.sum())
    ((24,), 24)
    """

    #: Also runs on Ray actors: :mod:`coreselect.distributed.selectors` holds its distributed fit.
    distributed = True

    def __init__(
        self,
        n_select: int,
        *,
        n_clusters: int | None = None,
        split: str = "proportional",
        niter: int = 20,
        random_state: int = 0,
    ) -> None:
        self.n_select = n_select
        self.n_clusters = n_clusters
        self.split = split
        self.niter = niter
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"n_clusters": (default_n_clusters(self.n_select) if self.n_clusters is None
                               else self._int("n_clusters", 1, self.n_select)),
                "split": self._choice("split", SPLITS), "niter": self._int("niter", 1)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, **params: Any) -> np.ndarray:
        return self._fitted(ltd_selection(X, self.n_select, **params), params)

    def _fitted(self, result: tuple[np.ndarray, ...], params: dict[str, Any]) -> np.ndarray:
        idx, self.labels_, self.quotas_, self.cluster_centers_ = result
        self.cluster_sizes_ = np.bincount(self.labels_, minlength=params["n_clusters"])
        log.info("ltd: %d picks over %d clusters (%s split, %d clusters with picks)", self.n_select,
                 params["n_clusters"], params["split"], int((self.quotas_ > 0).sum()))
        return idx
