from __future__ import annotations

import numpy as np
import pytest

from coreselect.selection import KMeansCentroid
from coreselect.selection.kmeans_centroid import faiss_kmeans, nearest_unique


def sq_dists(A, B):
    A, B = A.astype(np.float64), B.astype(np.float64)
    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)


def greedy_matching(X, C):
    """Reference: all (centroid, row) pairs by increasing distance; take a pair when both free."""
    D = sq_dists(C, X)
    pairs = sorted((D[c, p], c, p) for c in range(len(C)) for p in range(len(X)))
    owner, used = {}, set()
    for _, c, p in pairs:
        if c not in owner and p not in used:
            owner[c] = p
            used.add(p)
    return [owner[c] for c in range(len(C))]


def test_picks_are_exact_nearest_points_of_the_centroids(clustered, check_pick):
    X, _ = clustered(n=300, d=12, k=6, seed=1)
    sel = KMeansCentroid(n_select=6, random_state=0).fit(X)
    check_pick(sel.indices_, 6, 300)
    nearest = sq_dists(sel.cluster_centers_, X).argmin(1)
    assert sel.indices_.tolist() == nearest[sel.pick_clusters_].tolist()
    # the centroids are faiss' own, recomputed from the same seed
    centroids, labels = faiss_kmeans(X, 6, niter=20, random_state=0)
    np.testing.assert_array_equal(centroids, sel.cluster_centers_)
    np.testing.assert_array_equal(labels, sel.labels_)


def test_labels_are_nearest_centroid_and_order_is_by_cluster_size(clustered):
    X, _ = clustered(n=400, d=8, k=3, seed=2, spread=1.0)
    sel = KMeansCentroid(n_select=15, random_state=4).fit(X)
    assert sel.labels_.tolist() == sq_dists(X, sel.cluster_centers_).argmin(1).tolist()
    np.testing.assert_array_equal(sel.cluster_sizes_, np.bincount(sel.labels_, minlength=15))
    sizes = sel.cluster_sizes_[sel.pick_clusters_]
    assert np.all(np.diff(sizes) <= 0)
    assert sorted(sel.pick_clusters_.tolist()) == list(range(15))


def test_shared_nearest_point_goes_to_the_closer_centroid():
    X = np.array([[0.0], [1.0], [2.0], [10.0]], dtype=np.float32)
    C = np.array([[0.1], [0.2], [0.3]], dtype=np.float32)
    # c0 takes row 0 (0.1 away); c2 is closer to row 1 (0.7) than c1 (0.8); c1 gets row 2
    assert nearest_unique(X, C).tolist() == [0, 2, 1]


@pytest.mark.parametrize("seed", range(4))
def test_matching_equals_brute_force_greedy_matching(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 3)).astype(np.float32)
    C = (0.3 * rng.normal(size=(6, 3))).astype(np.float32)  # crowded: many shared nearest rows
    assert nearest_unique(X, C).tolist() == greedy_matching(X, C)


def test_as_many_centroids_as_rows_is_a_permutation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    C = (0.1 * rng.normal(size=(40, 2))).astype(np.float32)  # needs several candidate rounds
    assert sorted(nearest_unique(X, C).tolist()) == list(range(40))


def test_duplicate_rows_still_give_unique_picks(check_pick):
    X = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0)  # 4 distinct rows, 10 copies each
    check_pick(KMeansCentroid(n_select=9).fit(X).indices_, 9, 40)


def test_same_picks_whatever_the_thread_count(clustered, faiss_one_thread):
    import faiss

    X, _ = clustered(n=500, d=16, k=8, seed=3, spread=1.0)
    a = KMeansCentroid(n_select=20, random_state=7).fit(X).indices_
    faiss.omp_set_num_threads(max(faiss_one_thread, 2))  # the default, multi-threaded
    c = KMeansCentroid(n_select=20, random_state=7).fit(X).indices_
    assert a.tolist() == c.tolist()
