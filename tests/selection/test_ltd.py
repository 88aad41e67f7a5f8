from __future__ import annotations

import numpy as np
import pytest

from coreselect.selection import LTD, kcenter_greedy, ltd_selection
from coreselect.selection.ltd import default_n_clusters, split_budget


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([50, 30, 20], 7, [4, 2, 1]),  # exact 3.5, 2.1, 1.4: the one left over goes to 0.5
        ([10, 10, 10], 4, [2, 1, 1]),  # equal remainders: lower id first
        ([12, 30, 18], 6, [1, 3, 2]),  # exact 1.2, 3.0, 1.8: remainder to the 0.8
        ([20, 20, 10], 3, [1, 1, 1]),  # exact 1.2, 1.2, 0.6: remainder to the 0.6
        ([3, 2, 5], 10, [3, 2, 5]),  # the whole pool
        ([0, 10, 5], 3, [0, 2, 1]),  # an empty cluster gets nothing
    ],
)
def test_proportional_split_by_hand(sizes, budget, expected):
    assert split_budget(np.array(sizes), budget, "proportional").tolist() == expected


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([50, 30, 1], 7, [3, 3, 1]),  # the small cluster's leftover share goes to the others
        ([2, 2, 100], 9, [2, 2, 5]),
        ([10, 10, 10], 4, [2, 1, 1]),  # remainder to the most room left, then lower id
        ([0, 10, 5], 3, [0, 2, 1]),  # 1 each, then the one left to the cluster with more room
        ([3, 2, 5], 10, [3, 2, 5]),
    ],
)
def test_equal_split_by_hand(sizes, budget, expected):
    assert split_budget(np.array(sizes), budget, "equal").tolist() == expected


@pytest.mark.parametrize("split", ["proportional", "equal"])
def test_split_properties(split):
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(0, 40, size=rng.integers(1, 12))
        if sizes.sum() == 0:
            continue
        budget = int(rng.integers(1, sizes.sum() + 1))
        q = split_budget(sizes, budget, split)
        assert q.sum() == budget and np.all(q >= 0) and np.all(q <= sizes)
        if split == "proportional":
            assert np.all(np.abs(q - budget * sizes / sizes.sum()) < 1)
        else:  # clusters not exhausted differ by at most one pick, and hold the most
            open_ = q < sizes
            if open_.any():
                assert q[open_].max() - q[open_].min() <= 1
                assert q[~open_].max(initial=0) <= q[open_].min() + 1


def test_default_n_clusters():
    assert [default_n_clusters(k) for k in (1, 3, 4, 12, 145, 1000)] == [1, 1, 1, 2, 18, 125]


@pytest.mark.parametrize("split", ["proportional", "equal"])
def test_matches_kcenter_inside_each_cluster(split, clustered, check_pick):
    X, _ = clustered(n=240, d=10, k=4, seed=5, spread=0.5)
    sel = LTD(n_select=30, n_clusters=4, split=split, random_state=1).fit(X)
    check_pick(sel.indices_, 30, 240)
    np.testing.assert_array_equal(sel.cluster_sizes_, np.bincount(sel.labels_, minlength=4))
    np.testing.assert_array_equal(sel.quotas_, split_budget(sel.cluster_sizes_, 30, split))
    picked_labels = sel.labels_[sel.indices_]
    np.testing.assert_array_equal(np.bincount(picked_labels, minlength=4), sel.quotas_)
    for c in range(4):
        members = np.flatnonzero(sel.labels_ == c)
        first = int(((X[members] - sel.cluster_centers_[c]) ** 2).sum(1).argmin())
        ref, _ = kcenter_greedy(X[members], int(sel.quotas_[c]), first=first)
        assert sel.indices_[picked_labels == c].tolist() == members[ref].tolist()


def test_round_robin_order_largest_cluster_first():
    rng = np.random.default_rng(0)
    sizes = [60, 30, 10]
    X = np.concatenate([rng.normal(10 * c, 0.1, size=(s, 3)) for c, s in enumerate(sizes)]).astype(np.float32)
    idx, labels, quotas, _ = ltd_selection(X, 10, n_clusters=3)
    assert sorted(quotas.tolist()) == [1, 3, 6]
    size_rank = {c: r for r, c in enumerate(np.argsort(-np.bincount(labels)))}
    ranks = [size_rank[c] for c in labels[idx].tolist()]
    # rounds: (0, 1, 2), (0, 1), (0, 1), (0,), (0,), (0,)
    assert ranks == [0, 1, 2, 0, 1, 0, 1, 0, 0, 0]


def test_more_clusters_than_some_budgets_get(check_pick):
    X = np.random.default_rng(1).normal(size=(100, 5)).astype(np.float32)
    sel = LTD(n_select=6, n_clusters=6, random_state=2).fit(X)
    check_pick(sel.indices_, 6, 100)
    assert sel.quotas_.sum() == 6
