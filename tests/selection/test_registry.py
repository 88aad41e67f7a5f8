from __future__ import annotations

import pytest

from coreselect.errors import ConfigError
from coreselect.selection import available_methods, get_selector_class, make_selector

METHODS = [
    "facility-location",
    "kcenter",
    "kmeans-centroid",
    "ltd",
    "neuron-coverage",
    "random",
    "similarity-filter",
]


def test_all_builtin_methods_are_registered():
    assert available_methods() == METHODS


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("kcentre", "kcenter"), ("facility_location", "facility-location")]
)
def test_unknown_name_suggests_close_names(typo, suggestion):
    with pytest.raises(ConfigError, match=f"unknown selection method '{typo}'. Did you mean .*{suggestion}"):
        get_selector_class(typo)


def test_unknown_parameter_is_a_config_error():
    with pytest.raises(ConfigError, match="method 'random'.*'n_clusters'"):
        make_selector("random", n_select=3, n_clusters=2)


@pytest.mark.parametrize("name", METHODS)
def test_every_method_picks_n_select_unique_rows(name, clustered, check_pick):
    X, _ = clustered(n=150, d=40, k=6, seed=1, spread=0.5)
    sel = make_selector(name, n_select=12, random_state=3)
    assert sel.name == name
    idx = sel.fit(X).indices_
    check_pick(idx, 12, 150)
    # the constructor arguments rebuild an identical selector
    again = make_selector(name, **sel.get_params()).fit(X).indices_
    assert again.tolist() == idx.tolist()
