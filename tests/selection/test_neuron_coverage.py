from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse

from coreselect.selection import NeuronCoverage, max_coverage_greedy
from coreselect.selection.neuron_coverage import activation_states, state_weights


def naive_max_coverage(A, w, k, tie):
    """Textbook greedy max coverage, gains recomputed from scratch, with coverage rounds."""
    A = np.asarray(A, dtype=bool)
    n, m = A.shape
    open_ = np.ones(m, dtype=bool)
    picks, gains, rounds, round_, covered_any = [], [], [], 0, False
    while len(picks) < k:
        g = np.array([-1.0 if i in picks else math.fsum(w[A[i] & open_]) for i in range(n)])
        if g.max() == 0 and covered_any:
            open_[:], covered_any, round_ = True, False, round_ + 1
            continue
        top = np.flatnonzero(g == g.max())
        i = int(top[np.argmin(tie[top])])
        picks.append(i)
        gains.append(g[i])
        rounds.append(round_)
        covered_any = covered_any or A[i].any()
        open_ &= ~A[i]
    return picks, gains, rounds


def random_incidence(seed, n=30, m=25, p=0.15):
    return np.random.default_rng(seed).random((n, m)) < p


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighting", ["uniform", "idf"])
def test_greedy_equals_naive_max_coverage_with_rounds(seed, weighting):
    A = random_incidence(seed)
    w = state_weights(scipy.sparse.csr_matrix(A), weighting)
    # the whole pool: several coverage rounds, and the tail with nothing left to cover
    idx, gains, rounds = max_coverage_greedy(scipy.sparse.csr_matrix(A), w, 30, random_state=seed)
    ref, ref_gains, ref_rounds = naive_max_coverage(A, w, 30, np.random.default_rng(seed).permutation(30))
    assert idx.tolist() == ref
    assert rounds.tolist() == ref_rounds and rounds[-1] > 0
    np.testing.assert_allclose(gains, ref_gains, atol=1e-8)


def test_topk_states_are_each_rows_largest_values():
    X = np.random.default_rng(0).normal(size=(40, 20)).astype(np.float32)
    A = activation_states(X, mode="topk", top_k=5).toarray()
    expected = np.zeros_like(A)
    np.put_along_axis(expected, np.argsort(-X, axis=1)[:, :5], True, axis=1)
    np.testing.assert_array_equal(A, expected)
    assert activation_states(X, mode="topk", top_k=50).nnz == 40 * 20  # capped at d


def test_threshold_states_are_above_each_neurons_quantile():
    X = np.random.default_rng(1).normal(size=(300, 7)).astype(np.float32)
    A = activation_states(X, mode="threshold", quantile=0.8).toarray()
    np.testing.assert_array_equal(A, X > np.quantile(X, 0.8, axis=0))


def test_weights_by_hand():
    A = scipy.sparse.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0]], dtype=bool))
    np.testing.assert_allclose(state_weights(A, "idf"), [0.0, math.log(3), math.log(3), 0.0])
    assert state_weights(A, "uniform").tolist() == [1.0, 1.0, 1.0, 0.0]


def test_rare_neurons_win_under_idf():
    # rows 0 and 2..9 fire 3 common neurons; row 1 fires 2 neurons no one else fires
    A = np.zeros((10, 5), dtype=bool)
    A[:, :3] = True
    A[1] = [False, False, False, True, True]
    A = scipy.sparse.csr_matrix(A)
    idf, _, _ = max_coverage_greedy(A, state_weights(A, "idf"), 1)
    uniform, _, _ = max_coverage_greedy(A, state_weights(A, "uniform"), 1)
    assert idf.tolist() == [1] and uniform.tolist() != [1]


def test_selector_gains_and_rounds(check_pick):
    X = np.random.default_rng(2).random((150, 64)).astype(np.float32)
    sel = NeuronCoverage(n_select=150, top_k=8).fit(X)
    check_pick(sel.indices_, 150, 150)
    assert NeuronCoverage.wants_raw_features is True
    assert np.all(np.diff(sel.rounds_) >= 0) and sel.rounds_[-1] >= 1
    for r in np.unique(sel.rounds_):
        assert np.all(np.diff(sel.gains_[sel.rounds_ == r]) <= 1e-12)
    np.testing.assert_allclose(sel.weights_.sum(), sel.gains_[sel.rounds_ == 0].sum())


def test_ties_follow_the_seed():
    X = np.eye(20, dtype=np.float32)  # every row covers its own neuron: all gains tie
    picks = {
        tuple(NeuronCoverage(n_select=5, top_k=1, random_state=s).fit(X).indices_.tolist()) for s in range(4)
    }
    assert len(picks) == 4
    a = NeuronCoverage(n_select=5, top_k=1, random_state=9).fit(X).indices_
    assert a.tolist() == NeuronCoverage(n_select=5, top_k=1, random_state=9).fit(X).indices_.tolist()


def test_no_active_state_still_fills_the_budget(check_pick):
    X = np.ones((12, 4), dtype=np.float32)  # nothing exceeds its quantile
    sel = NeuronCoverage(n_select=12, mode="threshold").fit(X)
    check_pick(sel.indices_, 12, 12)
    assert sel.gains_.max() == 0
