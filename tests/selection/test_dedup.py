"""Near-duplicate removal (``--dedup``) against a brute-force walk, and fitting on the rest."""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.errors import ConfigError
from coreselect.selection import make_selector
from coreselect.selection.dedup import fit_deduplicated, near_duplicates


def brute_force(X, threshold):
    Xn = X.astype(np.float64) / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-300)
    kept = []
    for i in range(len(X)):
        if all(Xn[i] @ Xn[j] < threshold for j in kept):
            kept.append(i)
    return kept


def with_copies(seed, n=60, d=8, copies=20, noise=0.02):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    src = rng.choice(n, copies)
    dup = X[src] + noise * rng.normal(size=(copies, d))
    X = np.concatenate([X, dup])[rng.permutation(n + copies)]
    return X.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.9, 0.98, 1.0])
def test_kept_rows_equal_the_brute_force_walk(seed, threshold):
    X = with_copies(seed)
    assert near_duplicates(X, threshold).tolist() == brute_force(X, threshold)


def test_exact_copies_keep_the_first_and_threshold_one_keeps_distinct_rows():
    X = np.array([[1, 2], [3, 1], [1, 2], [2, 4], [0, 1]], dtype=np.float32)
    assert near_duplicates(X, 1.0).tolist() == [0, 1, 4]  # [2, 4] is [1, 2] scaled: cosine 1
    assert near_duplicates(X, 0.999).tolist() == [0, 1, 4]
    with pytest.raises(ConfigError, match=r"--dedup must be in \(0, 1\]"):
        near_duplicates(X, 0.0)


def test_the_method_runs_on_the_kept_rows_and_picks_map_back(check_pick):
    X = with_copies(1, n=50, copies=30)
    kept = np.array(brute_force(X, 0.95))
    sel = make_selector("facility-location", n_select=10)
    removed = fit_deduplicated(sel, X, X, 0.95)
    assert removed == len(X) - len(kept) > 0
    check_pick(sel.indices_, 10, len(X))
    ref = make_selector("facility-location", n_select=10).fit(X[kept]).indices_
    assert sel.indices_.tolist() == kept[ref].tolist()
    assert sel.kept_rows_.tolist() == kept.tolist()
    scores = {"response_tokens": np.arange(len(X))}
    longest = make_selector("longest", n_select=5)
    fit_deduplicated(longest, X, X, 0.95, scores=scores)
    assert longest.indices_.tolist() == kept[::-1][:5].tolist()
    with pytest.raises(ConfigError, match="fewer than the 79 to select"):
        fit_deduplicated(make_selector("random", n_select=79), X, X, 0.95)


def test_a_token_budget_after_dedup_caps_at_the_rows_left():
    X = with_copies(2, n=30, copies=20)
    costs = np.full(len(X), 10.0)
    sel = make_selector("random", n_select=len(X))
    removed = fit_deduplicated(sel, X, X, 0.95, costs=costs, budget=1e9)
    assert len(sel.indices_) == len(X) - removed  # everything left fits
    assert sel.get_params()["n_select"] == len(X)  # the parameter itself is untouched
