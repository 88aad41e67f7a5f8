from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from coreselect.selection import FacilityLocation, facility_location_greedy
from coreselect.selection.facility_location import knn_similarity_graph


def naive_greedy(S, k, tie):
    """Textbook greedy on a dense similarity: evaluate every candidate at every step."""
    S = np.asarray(S, dtype=np.float64)
    best = np.zeros(S.shape[0])
    picks, gains = [], []
    for _ in range(k):
        g = np.maximum(S - best[:, None], 0).sum(0)
        g[picks] = -1
        top = np.flatnonzero(g == g.max())
        j = int(top[np.argmin(tie[top])])
        picks.append(j)
        gains.append(g[j])
        best = np.maximum(best, S[:, j])
    return picks, np.array(gains)


def cosine(X):
    Xn = X.astype(np.float64) / np.linalg.norm(X, axis=1, keepdims=True)
    return np.maximum(Xn @ Xn.T, 0)


@pytest.mark.parametrize("seed", range(5))
def test_lazy_greedy_equals_naive_greedy_on_a_dense_matrix(seed):
    rng = np.random.default_rng(seed)
    S = rng.random((40, 40)) ** 3
    tie = np.random.default_rng(seed).permutation(40)
    idx, gains = facility_location_greedy(S, 15, random_state=seed)
    ref, ref_gains = naive_greedy(S, 15, tie)
    assert idx.tolist() == ref
    np.testing.assert_allclose(gains, ref_gains, rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_selector_with_all_neighbours_equals_dense_greedy(seed, check_pick):
    X = np.random.default_rng(seed).normal(size=(50, 6)).astype(np.float32)
    sel = FacilityLocation(n_select=12, n_neighbors=50, random_state=seed).fit(X)
    check_pick(sel.indices_, 12, 50)
    ref, ref_gains = naive_greedy(cosine(X), 12, np.random.default_rng(seed).permutation(50))
    assert sel.indices_.tolist() == ref
    np.testing.assert_allclose(sel.gains_, ref_gains, rtol=1e-5)


def test_sparse_graph_is_exact_knn_and_greedy_follows_it():
    X = np.random.default_rng(1).normal(size=(60, 5)).astype(np.float32)
    S = knn_similarity_graph(X, 6)
    assert isinstance(S, scipy.sparse.csr_matrix) and S.shape == (60, 60)
    assert np.all(np.diff(S.indptr) <= 6)
    C = cosine(X)
    D = S.toarray()
    for i in range(60):
        nbrs = np.argsort(-C[i], kind="stable")[:6]
        expected = np.zeros(60)
        expected[nbrs] = C[i, nbrs]
        np.testing.assert_allclose(D[i], expected, atol=1e-5)
    idx, _ = facility_location_greedy(S, 10, random_state=0)
    ref, _ = naive_greedy(D, 10, np.random.default_rng(0).permutation(60))
    assert idx.tolist() == ref


def test_gains_are_non_increasing_and_sum_to_the_objective(clustered):
    X, _ = clustered(n=200, d=16, k=5, spread=1.0)
    sel = FacilityLocation(n_select=30, n_neighbors=16).fit(X)
    assert np.all(np.diff(sel.gains_) <= 1e-9)
    D = knn_similarity_graph(X, 16).toarray().astype(np.float64)
    objective = D[:, sel.indices_].max(1).sum()
    np.testing.assert_allclose(sel.gains_.sum(), objective, rtol=1e-9)


def test_one_pick_per_cluster_first(clustered):
    X, labels = clustered(n=200, d=16, k=5, spread=0.3)
    sel = FacilityLocation(n_select=5, n_neighbors=64).fit(X)
    assert sorted(labels[sel.indices_].tolist()) == [0, 1, 2, 3, 4]


def test_memory_is_linear_in_neighbours():
    X = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    assert knn_similarity_graph(X, 10).nnz <= 3000 * 10


def test_fills_budget_past_saturation(check_pick):
    X = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # gains hit 0 after 3 picks
    sel = FacilityLocation(n_select=12, n_neighbors=4).fit(X)
    check_pick(sel.indices_, 12, 12)
    assert sel.gains_[3:].max() == 0


def naive_weighted_greedy(S, k, tie, bonus, costs=None, budget=np.inf):
    """Textbook (cost-benefit) greedy with a modular bonus: the best (gain + bonus) / cost among
    the rows that still fit, every candidate evaluated at every step."""
    S = np.asarray(S, dtype=np.float64)
    costs = np.ones(S.shape[1]) if costs is None else costs
    best, picks, left = np.zeros(S.shape[0]), [], budget
    while len(picks) < k:
        g = (np.maximum(S - best[:, None], 0).sum(0) + bonus) / costs
        g[picks] = -np.inf
        g[costs > left] = -np.inf
        if not np.isfinite(g.max()):
            break
        top = np.flatnonzero(g == g.max())
        j = int(top[np.argmin(tie[top])])
        picks.append(j)
        left -= costs[j]
        best = np.maximum(best, S[:, j])
    return picks


@pytest.mark.parametrize("seed", range(4))
def test_bonus_and_cost_benefit_greedy_equal_the_naive_greedy(seed):
    rng = np.random.default_rng(seed)
    S = rng.random((40, 40)) ** 3
    bonus = rng.random(40) * 2
    costs = rng.integers(1, 20, 40).astype(float)
    tie = np.random.default_rng(seed).permutation(40)
    idx, gains = facility_location_greedy(S, 12, random_state=seed, bonus=bonus)
    assert idx.tolist() == naive_weighted_greedy(S, 12, tie, bonus)
    assert np.all(np.diff(gains) <= 1e-12)
    budget = 60.0
    idx, _ = facility_location_greedy(S, 40, random_state=seed, bonus=bonus, costs=costs, budget=budget)
    assert idx.tolist() == naive_weighted_greedy(S, 40, tie, bonus, costs, budget)
    assert costs[idx].sum() <= budget
    # nothing left that fits: the greedy stopped because the budget ran out, not early
    assert np.all(np.delete(costs, idx) > budget - costs[idx].sum())


def test_selector_under_a_token_budget_picks_by_gain_per_token(check_pick):
    X = np.random.default_rng(3).normal(size=(50, 6)).astype(np.float32)
    costs = np.random.default_rng(4).integers(5, 50, 50).astype(float)
    sel = FacilityLocation(n_select=50, n_neighbors=50).fit(X, costs=costs, budget=200)
    ref = naive_weighted_greedy(cosine(X), 50, np.random.default_rng(0).permutation(50), np.zeros(50), costs, 200)
    assert sel.indices_.tolist() == ref and costs[sel.indices_].sum() <= 200
    assert sel.n_fitted_ == 50
