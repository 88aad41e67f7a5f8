"""A token budget on a method that is not cost-aware: its picks, in its order, while they fit."""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.selection import make_selector


@pytest.mark.parametrize("name", ["kcenter", "random", "kmeans-centroid"])
def test_the_picks_are_the_method_order_up_to_the_first_that_does_not_fit(name, clustered):
    X, _ = clustered(n=120, d=8, k=6, spread=0.4)
    costs = np.random.default_rng(0).integers(10, 100, 120).astype(float)
    budget = 900.0
    sel = make_selector(name, n_select=120, random_state=2).fit(X, costs=costs, budget=budget)
    # the method fitted for as many picks as it was, taken in order while they fit
    ref = make_selector(name, n_select=sel.n_fitted_, random_state=2).fit(X).indices_
    take = int(np.searchsorted(np.cumsum(costs[ref]), budget, side="right"))
    assert sel.indices_.tolist() == ref[:take].tolist() and take < sel.n_fitted_
    if name in ("kcenter", "random"):  # prefix-consistent: the same as one fit of the whole pool
        full = make_selector(name, n_select=120, random_state=2).fit(X).indices_
        assert sel.indices_.tolist() == full[:take].tolist()
    assert sel.get_params()["n_select"] == 120


def test_the_count_cap_stops_before_the_budget():
    X = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    sel = make_selector("random", n_select=3).fit(X, costs=np.ones(50), budget=40)
    assert sel.indices_.tolist() == make_selector("random", n_select=3).fit(X).indices_.tolist()


def test_coverage_curve_attributes_come_from_the_fit_used(clustered):
    X, _ = clustered(n=60, d=6, k=3)
    sel = make_selector("kcenter", n_select=60).fit(X, costs=np.full(60, 10.0), budget=95)
    assert len(sel.indices_) == 9 and len(sel.radii_) == sel.n_fitted_ >= 9
