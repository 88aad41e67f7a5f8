"""The score-reading methods (ifd, longest, quality-coverage, quality-fl) against brute force."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from coreselect.selection import FacilityLocation, make_selector
from coreselect.selection._quality import quality


def scores_of(ifd, n_tokens=None):
    ifd = np.asarray(ifd, dtype=float)
    return {"ifd": ifd, "loss_cond": ifd * 2, "loss_alone": np.full(len(ifd), 2.0),
            "response_tokens": np.arange(len(ifd))[::-1] if n_tokens is None else n_tokens}


@pytest.mark.parametrize("seed", range(5))
def test_ifd_is_the_cherry_rule_by_brute_force(seed, caplog):
    rng = np.random.default_rng(seed)
    ifd = np.round(rng.uniform(0.4, 1.4, 50), 2)  # ties on purpose
    ifd[rng.choice(50, 3, replace=False)] = np.nan
    X = np.zeros((50, 1), dtype=np.float32)
    below = sorted((i for i in range(50) if ifd[i] < 1), key=lambda i: (-ifd[i], i))
    above = sorted((i for i in range(50) if ifd[i] >= 1), key=lambda i: (ifd[i], i))
    nan = [i for i in range(50) if np.isnan(ifd[i])]
    ref = below + above + nan
    for k in (1, len(below), len(below) + 5, 50):
        with caplog.at_level(logging.WARNING, logger="coreselect.selection.ifd"):
            caplog.clear()
            sel = make_selector("ifd", n_select=k).fit(X, scores={"ifd": ifd})
        assert sel.indices_.tolist() == ref[:k]
        assert sel.n_below_ == len(below)
        assert ("filling" in caplog.text) == (k > len(below))


def test_longest_takes_the_most_response_tokens_ties_by_row():
    tokens = np.array([5, 9, 9, 1, 30, 9])
    sel = make_selector("longest", n_select=4).fit(np.zeros((6, 2), np.float32), scores={"response_tokens": tokens})
    assert sel.indices_.tolist() == [4, 1, 2, 5]


@pytest.mark.parametrize("score", ["ifd", "loss_cond"])
@pytest.mark.parametrize("keep", [0.3, 0.5, 1.0])
def test_quality_coverage_is_facility_location_on_the_best_share(score, keep, clustered, check_pick):
    X, _ = clustered(n=80, d=8, k=4)
    rng = np.random.default_rng(0)
    s = scores_of(rng.uniform(0.5, 1.3, 80))
    s["loss_cond"] = rng.uniform(1, 3, 80)
    sel = make_selector("quality-coverage", n_select=10, keep=keep, score=score, n_neighbors=80).fit(X, scores=s)
    check_pick(sel.indices_, 10, 80)
    n_keep = int(np.ceil(keep * 80))
    kept = np.sort(np.argsort(s[score], kind="stable")[:n_keep])
    assert sel.kept_.tolist() == kept.tolist()
    ref = FacilityLocation(n_select=10, n_neighbors=80).fit(X[kept]).indices_
    assert sel.indices_.tolist() == kept[ref].tolist()


def test_quality_coverage_keeps_at_least_n_select_and_nan_last(check_pick):
    X = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    ifd = np.linspace(0.5, 1.5, 20)
    ifd[[0, 1]] = np.nan
    sel = make_selector("quality-coverage", n_select=8, keep=0.1).fit(X, scores=scores_of(ifd))
    check_pick(sel.indices_, 8, 20)
    assert sel.kept_.tolist() == list(range(2, 10))  # 8 best by IFD, the NaN rows never


def test_quality_is_one_minus_rank_over_n():
    s = np.array([0.3, 0.1, np.nan, 0.3, 0.9])
    # ranks (1-based, ties averaged) among the 4 scored: 2.5, 1, -, 2.5, 4; n = 5
    np.testing.assert_allclose(quality(s), [1 - 1.5 / 5, 1.0, 0.0, 1 - 1.5 / 5, 1 - 3 / 5])


@pytest.mark.parametrize("weight", [0.0, 0.3, 2.0])
def test_quality_fl_is_the_weighted_objective_by_brute_force(weight, clustered):
    from .test_facility_location import cosine, naive_weighted_greedy

    X, _ = clustered(n=40, d=6, k=4, spread=0.5)
    ifd = np.random.default_rng(2).uniform(0.5, 1.3, 40)
    sel = make_selector("quality-fl", n_select=8, weight=weight, n_neighbors=40, random_state=1)
    sel.fit(X, scores=scores_of(ifd))
    bonus = weight * (40 / 8) * quality(ifd)
    ref = naive_weighted_greedy(cosine(X), 8, np.random.default_rng(1).permutation(40), bonus)
    assert sel.indices_.tolist() == ref
    np.testing.assert_allclose(sel.quality_, quality(ifd))


def test_quality_fl_weight_moves_the_pick_towards_quality(clustered):
    X, _ = clustered(n=200, d=8, k=5, spread=0.5)
    ifd = np.random.default_rng(5).uniform(0.5, 1.3, 200)
    q = quality(ifd)
    means = [q[make_selector("quality-fl", n_select=20, weight=w).fit(X, scores=scores_of(ifd)).indices_].mean()
             for w in (0.0, 0.5, 5.0)]
    assert means[0] < means[1] < means[2]
