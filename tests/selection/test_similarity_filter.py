from __future__ import annotations

import logging

import numpy as np
import pytest

from coreselect.selection import SimilarityFilter, similarity_filter


def loop_filter(X, k, threshold, y=None):
    """Reference: one example at a time, then the documented fill."""
    X = X.astype(np.float64)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    order = list(range(len(X))) if y is None else sorted(range(len(X)), key=lambda i: -y[i])
    kept = []
    for i in order:
        if len(kept) == k:
            break
        if not kept or max(float(X[i] @ X[j]) for j in kept) < threshold:
            kept.append(i)
    rest = [i for i in order if i not in kept]
    rest_sim = [max(float(X[i] @ X[j]) for j in kept) for i in rest]
    fill = [rest[p] for p in sorted(range(len(rest)), key=lambda p: rest_sim[p])]
    return kept + fill[: k - len(kept)], len(kept)


def near_duplicates(seed, n=120, d=6, groups=15):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, d))
    return (centres[rng.integers(groups, size=n)] + 0.15 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("with_priority", [False, True])
@pytest.mark.parametrize("k", [5, 40])  # 40: more than the walk keeps, so the fill runs
def test_equals_a_simple_loop(seed, with_priority, k, check_pick):
    X = near_duplicates(seed)
    y = np.random.default_rng(seed + 10).normal(size=len(X)) if with_priority else None
    ref, n_walk = loop_filter(X, k, 0.9, y)
    idx, _, got_walk = similarity_filter(X, k, threshold=0.9, priority=y, block_rows=7)
    check_pick(idx, k, len(X))
    assert idx.tolist() == ref and got_walk == n_walk
    assert similarity_filter(X, k, threshold=0.9, priority=y)[0].tolist() == ref  # one block
    if k == 40:
        assert n_walk < 40


def test_priority_order_is_stable_and_highest_first():
    X = np.eye(6, dtype=np.float32)  # nothing similar: the walk order is the result
    y = np.array([1.0, 3.0, 2.0, 3.0, 1.0, 0.0])
    sel = SimilarityFilter(n_select=6).fit(X, y)
    assert sel.indices_.tolist() == [1, 3, 2, 0, 4, 5]
    assert SimilarityFilter(n_select=3).fit(X).indices_.tolist() == [0, 1, 2]


def test_max_similarity_is_below_the_threshold_for_walk_picks():
    X = near_duplicates(1)
    sel = SimilarityFilter(n_select=40, threshold=0.8).fit(X)
    walk = sel.max_similarity_[: sel.n_first_pass_]
    assert walk[0] == -np.inf and np.all(walk < 0.8)
    assert np.all(sel.max_similarity_[sel.n_first_pass_ :] >= 0.8)


def test_all_duplicates_fill_in_walk_order(caplog):
    X = np.ones((8, 3), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="coreselect.selection.similarity_filter"):
        sel = SimilarityFilter(n_select=4).fit(X, y=np.arange(8.0))
    assert sel.n_first_pass_ == 1
    assert sel.indices_.tolist() == [7, 6, 5, 4]
    assert "only 1 examples pass" in caplog.text
