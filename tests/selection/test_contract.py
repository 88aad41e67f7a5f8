"""The contract every registered selection method keeps (scikit-learn's ``check_estimator`` is
the model): each check runs on every method in the registry, so a method is held to it the moment
it is registered. What a method computes is tested in its own file, against a brute-force
reference. A method that reads per-row scores (``needs_scores``) gets synthetic ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.errors import ConfigError
from coreselect.selection import available_methods, get_selector_class, make_selector

METHODS = available_methods()
N = 60

#: Out-of-range values of each method's own parameters, with the start of the error they give.
BAD_VALUES = [
    ("kcenter", {"algorithm": "fast"}, "The 'algorithm' parameter of KCenterGreedy must be one of 'auto', "),
    ("kcenter", {"project_dim": 0}, "The 'project_dim' parameter of KCenterGreedy must be an int >= 1"),
    ("ltd", {"n_clusters": 6}, r"The 'n_clusters' parameter of LTD must be an int in \[1, 5\]"),
    ("ltd", {"split": "even"}, "The 'split' parameter of LTD must be one of 'proportional', 'equal'"),
    ("ltd", {"niter": 0}, "The 'niter' parameter of LTD must be an int >= 1"),
    ("facility-location", {"n_neighbors": 0}, "The 'n_neighbors' parameter of FacilityLocation must be an int >= 1"),
    ("kmeans-centroid", {"niter": 0}, "The 'niter' parameter of KMeansCentroid must be an int >= 1"),
    ("neuron-coverage", {"mode": "top"}, "The 'mode' parameter of NeuronCoverage must be one of 'topk', "),
    ("neuron-coverage", {"top_k": 0}, "The 'top_k' parameter of NeuronCoverage must be an int >= 1"),
    ("neuron-coverage", {"quantile": 1.5}, r"The 'quantile' parameter of NeuronCoverage must be a float in \[0.0, 1.0\]"),
    ("neuron-coverage", {"weighting": "tfidf"}, "The 'weighting' parameter of NeuronCoverage must be one of"),
    ("similarity-filter", {"threshold": 1.5}, r"The 'threshold' parameter of SimilarityFilter must be a float in \["),
    ("ifd", {"threshold": 0}, r"The 'threshold' parameter of IFDSelection must be a float in \(0.0, inf\]"),
    ("quality-coverage", {"keep": 0}, r"The 'keep' parameter of QualityCoverage must be a float in \(0.0, 1.0\]"),
    ("quality-coverage", {"score": "loss"}, "The 'score' parameter of QualityCoverage must be one of 'ifd', "),
    ("quality-fl", {"weight": -1}, r"The 'weight' parameter of QualityFacilityLocation must be a float in \[0.0, inf\]"),
    ("quality-fl", {"n_neighbors": 0}, "The 'n_neighbors' parameter of QualityFacilityLocation must be an int >= 1"),
    *[(m, {"random_state": -1}, r"The 'random_state' parameter of \w+ must be an int in \[0, 2147483647\]")
      for m in METHODS],
]


def synthetic_scores(n: int, seed: int = 2) -> dict[str, np.ndarray]:
    """Every per-row column a method may read, with the shapes and ranges the store gives."""
    rng = np.random.default_rng(seed)
    cond = rng.uniform(0.5, 3.0, n)
    alone = rng.uniform(1.0, 3.0, n)
    return {"loss_cond": cond, "loss_alone": alone, "ifd": cond / alone,
            "response_tokens": rng.integers(1, 200, n), "n_tokens": rng.integers(20, 400, n)}


def fit(sel, X, **kw):
    """``sel.fit(X)``, with synthetic scores for a method that reads them."""
    return sel.fit(X, scores=synthetic_scores(len(X)) if sel.needs_scores and X.ndim == 2 else None, **kw)


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    """A small clustered pool (six blobs), centred and L2-normalised as the pipeline does."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 12))[np.arange(N) % 6] * 3 + 0.5 * rng.normal(size=(N, 12))
    X -= X.mean(0)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("name", METHODS)
def test_fit_returns_itself_with_unique_int64_indices(name, X, check_pick):
    sel = make_selector(name, n_select=12, random_state=3)
    assert sel.name == name and isinstance(sel, get_selector_class(name))
    assert fit(sel, X) is sel
    check_pick(sel.indices_, 12, N)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("k", [1, N])
def test_budget_bounds_are_inclusive(name, k, X, check_pick):
    idx = fit(make_selector(name, n_select=k), X).indices_
    check_pick(idx, k, N)
    if k == N:
        assert sorted(idx.tolist()) == list(range(N))


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("k", [0, -1, N + 1, 2.5, True, "3", None])
def test_budget_outside_the_bounds_is_a_one_line_error(name, k, X):
    owner = get_selector_class(name).__name__
    with pytest.raises(ConfigError, match=rf"^The 'n_select' parameter of {owner} must be [^\n]* Got .* instead\.$"):
        fit(make_selector(name, n_select=k), X)


@pytest.mark.parametrize("name", METHODS)
def test_same_seed_same_picks_whatever_the_global_seed(name, X):
    np.random.seed(0)
    sel = fit(make_selector(name, n_select=15, random_state=7), X)
    np.random.seed(1)
    assert fit(make_selector(name, n_select=15, random_state=7), X.copy()).indices_.tolist() == sel.indices_.tolist()
    # the constructor arguments rebuild an identical selector
    assert fit(make_selector(name, **sel.get_params()), X).indices_.tolist() == sel.indices_.tolist()


@pytest.mark.parametrize("name", METHODS)
def test_every_parameter_is_checked_before_any_work(name, X):
    """``check_params`` needs no features (the pipeline calls it before extraction); ``fit``
    gives the same error."""
    cls = get_selector_class(name)
    for param in cls.param_names()[1:]:  # n_select: see the budget tests
        sel = make_selector(name, n_select=3, **{param: "bogus"})
        pattern = rf"^The '{param}' parameter of {cls.__name__} must be [^\n]*\. Got 'bogus' instead\.$"
        with pytest.raises(ConfigError, match=pattern):
            sel.check_params(N)
        with pytest.raises(ConfigError, match=pattern):
            fit(sel, X)


@pytest.mark.parametrize(("name", "params", "message"), BAD_VALUES,
                         ids=[f"{m}-{next(iter(p))}" for m, p, _ in BAD_VALUES])
def test_out_of_range_values_are_one_line_errors(name, params, message, X):
    with pytest.raises(ConfigError, match=f"^{message}") as err:
        fit(make_selector(name, n_select=5, **params), X)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", METHODS)
def test_a_misspelt_parameter_names_the_closest(name):
    for param in get_selector_class(name).param_names():
        typo = param[:-1]
        with pytest.raises(ConfigError) as err:
            make_selector(name, n_select=3, **{typo: 1})
        msg = str(err.value)
        assert msg.startswith(f"method '{name}' has no parameter '{typo}'. Did you mean '{param}'? ") and "\n" not in msg


@pytest.mark.parametrize("name", METHODS)
def test_bad_features_are_one_line_errors(name, X):
    sel = make_selector(name, n_select=3)
    bad = X.copy()
    bad[4, 2] = np.nan
    for features, message in ((bad, "NaN or infinity"), (X[0], "must be 2-D"), (X.astype(int), "floating point")):
        with pytest.raises(ConfigError, match=message):
            fit(sel, features)


@pytest.mark.parametrize("name", [m for m in METHODS if get_selector_class(m).needs_scores])
def test_missing_scores_are_a_one_line_error_naming_them(name, X):
    sel = make_selector(name, n_select=3)
    with pytest.raises(ConfigError, match=rf"^method '{name}' needs the per-row .*\(.*\)$"):
        sel.fit(X)
    bad = {k: v[:-1] for k, v in synthetic_scores(N).items()}
    with pytest.raises(ConfigError, match=r"must have shape \(60,\)"):
        sel.fit(X, scores=bad)


@pytest.mark.parametrize("name", METHODS)
def test_a_token_budget_is_kept_and_capped_by_n_select(name, X):
    costs = synthetic_scores(N)["n_tokens"].astype(float)
    budget = float(np.sort(costs)[:8].sum())  # room for at most 8 rows
    sel = fit(make_selector(name, n_select=N), X, costs=costs, budget=budget)
    idx = sel.indices_
    assert idx.dtype == np.int64 and len(set(idx.tolist())) == len(idx) >= 1
    assert costs[idx].sum() <= budget
    capped = fit(make_selector(name, n_select=2), X, costs=costs, budget=budget)
    assert 1 <= len(capped.indices_) <= 2 and costs[capped.indices_].sum() <= budget
    with pytest.raises(ConfigError, match="below the cheapest record"):
        fit(make_selector(name, n_select=3), X, costs=costs, budget=costs.min() / 2)
