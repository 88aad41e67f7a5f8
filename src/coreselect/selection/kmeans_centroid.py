"""k-means centroids: cluster the pool into ``n_select`` groups and keep one example per group.

faiss k-means (Lloyd iterations from ``n_select`` pool rows drawn with ``random_state``) places
``n_select`` centroids; each centroid is represented by its nearest pool example. Two centroids
may share a nearest example: pairs (centroid, example) are matched greedily by distance, so a
centroid that loses its nearest example takes its next-nearest unused one. The picks are
ordered by cluster size, largest first, so a prefix of the result covers the densest regions.

:func:`faiss_kmeans` is also the clustering step of :mod:`coreselect.selection.ltd`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coreselect.selection.base import Selector, register

log = logging.getLogger(__name__)

_FIRST_CANDIDATES = 8


def faiss_kmeans(
    X: np.ndarray, n_clusters: int, *, niter: int = 20, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k-means with faiss; returns the centroids and every row's cluster.

    Parameters
    ----------
    X : (n, d) float32 C-contiguous array, trusted.
    n_clusters : number of clusters, ``1 <= n_clusters <= n``.
    niter : Lloyd iterations.
    random_state : faiss seed (initialisation and subsampling).

    Returns
    -------
    centroids : (n_clusters, d) float32.
    labels : (n,) int64, index of each row's nearest centroid. A cluster may be empty when the
        pool holds duplicate rows.

    Examples
    --------
    >>> X = np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], dtype=np.float32)
    >>> _, labels = faiss_kmeans(X, 2)
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    import faiss

    d = X.shape[1]
    # min_points_per_centroid=1 silences faiss' "please provide at least ..." warning on small
    # pools; k-means with few points per cluster is what small budgets ask for.
    km = faiss.Kmeans(d, n_clusters, niter=niter, seed=random_state, min_points_per_centroid=1, verbose=False)
    km.train(X)
    _, labels = km.index.search(X, 1)
    return np.asarray(km.centroids, dtype=np.float32), labels[:, 0].astype(np.int64)


def nearest_unique(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """One distinct row of ``X`` per centroid, matched greedily by Euclidean distance.

    All (centroid, candidate) pairs among each centroid's nearest rows are visited by increasing
    distance (ties: lower centroid, then lower row index); a pair is taken when neither side is
    taken yet. Centroids left without a row search more candidates among the unused rows.

    Parameters
    ----------
    X : (n, d) float32 array, trusted.
    centroids : (k, d) float32 array with ``k <= n``.

    Returns
    -------
    rows : (k,) int64, ``rows[c]`` is the row matched to centroid ``c``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [10.0]], dtype=np.float32)
    >>> nearest_unique(X, np.array([[0.1], [0.2]], dtype=np.float32)).tolist()
    [0, 1]
    """
    import faiss

    n, d = X.shape
    k = centroids.shape[0]
    index = faiss.IndexFlatL2(d)
    index.add(X)
    owner = np.full(k, -1, dtype=np.int64)
    used = np.zeros(n, dtype=bool)
    todo = np.arange(k)
    m = min(n, _FIRST_CANDIDATES)
    while todo.size:
        dist, cand = index.search(np.ascontiguousarray(centroids[todo]), m)
        rows = np.repeat(todo, m)
        dist, cand = dist.ravel(), cand.ravel()
        ok = cand >= 0
        ok[ok] = ~used[cand[ok]]
        rows, dist, cand = rows[ok], dist[ok], cand[ok]
        order = np.lexsort((cand, rows, dist))
        for c, p in zip(rows[order].tolist(), cand[order].tolist()):
            if owner[c] < 0 and not used[p]:
                owner[c] = p
                used[p] = True
        todo = np.flatnonzero(owner < 0)
        if todo.size and m == n:  # pragma: no cover - impossible while k <= n
            raise AssertionError("nearest_unique: more centroids than rows")
        m = min(n, 2 * m)
    return owner


def kmeans_centroid_selection(
    X: np.ndarray, n_select: int, *, niter: int = 20, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pick the example nearest each of ``n_select`` k-means centroids.

    Parameters
    ----------
    X : (n, d) float32 C-contiguous array, trusted.
    n_select : number of clusters and of picks, ``1 <= n_select <= n``.
    niter : k-means iterations.
    random_state : k-means seed.

    Returns
    -------
    indices : (n_select,) int64, ordered by cluster size (largest first, ties by cluster id).
    pick_clusters : (n_select,) int64, the cluster each pick represents.
    centroids : (n_select, d) float32.
    labels : (n,) int64, each row's cluster.

    Examples
    --------
    >>> X = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [5, 5.1]], dtype=np.float32)
    >>> idx, clusters, _, _ = kmeans_centroid_selection(X, 2)
    >>> sorted(idx.tolist()) in ([0, 3], [0, 4], [1, 3], [1, 4], [2, 3], [2, 4])
    True
    """
    centroids, labels = faiss_kmeans(X, n_select, niter=niter, random_state=random_state)
    rows = nearest_unique(X, centroids)
    sizes = np.bincount(labels, minlength=n_select)
    order = np.argsort(-sizes, kind="stable")
    return rows[order], order.astype(np.int64), centroids, labels


@register("kmeans-centroid")
class KMeansCentroid(Selector):
    """k-means with ``n_select`` clusters; keep the example nearest each centroid.

    Parameters
    ----------
    n_select : number of examples to keep (and of clusters).
    niter : k-means (Lloyd) iterations.
    random_state : k-means seed.

    Attributes
    ----------
    indices_ : picked row indices, largest cluster first.
    pick_clusters_ : cluster id of each pick.
    cluster_centers_ : (n_select, d) centroids, by cluster id.
    cluster_sizes_ : rows per cluster, by cluster id.
    labels_ : cluster id of every row.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> KMeansCentroid(n_select=10, random_state=0).fit(X).indices_.shape
    (10,)
    """

    def __init__(self, n_select: int, *, niter: int = 20, random_state: int = 0) -> None:
        self.n_select = n_select
        self.niter = niter
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"niter": self._int("niter", 1)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, niter: int, random_state: int) -> np.ndarray:
        idx, self.pick_clusters_, self.cluster_centers_, self.labels_ = kmeans_centroid_selection(
            X, self.n_select, niter=niter, random_state=random_state
        )
        self.cluster_sizes_ = np.bincount(self.labels_, minlength=self.n_select)
        log.info(
            "kmeans-centroid: %d clusters of %d rows (largest %d, %d empty)",
            self.n_select,
            X.shape[0],
            int(self.cluster_sizes_.max()),
            int((self.cluster_sizes_ == 0).sum()),
        )
        return idx
