from __future__ import annotations

import pytest

from coreselect.errors import ConfigError
from coreselect.selection import available_methods, get_selector_class, make_selector

METHODS = [
    "facility-location",
    "ifd",
    "kcenter",
    "kmeans-centroid",
    "longest",
    "ltd",
    "neuron-coverage",
    "quality-coverage",
    "quality-fl",
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


def test_unknown_parameter_lists_the_parameters():
    with pytest.raises(ConfigError, match=r"^method 'random' has no parameter 'n_clusters'\. Its parameters: "
                                          r"n_select, random_state$"):
        make_selector("random", n_select=3, n_clusters=2)


def test_select_checks_method_parameters_before_extraction(tmp_path, monkeypatch):
    from coreselect.executor import Executor
    from coreselect.pipeline import SelectJob, run_select

    def no_extraction(*args, **kwargs):
        raise AssertionError("extraction started")

    monkeypatch.setattr(Executor, "extract", no_extraction)
    job = SelectJob(n=10, method="ltd", method_params={"n_clusters": "ten"}, output=str(tmp_path / "core.jsonl"))
    with pytest.raises(ConfigError, match=r"^The 'n_clusters' parameter of LTD must be an int in \[1, 10\]\. "
                                          r"Got 'ten' instead\.$"):
        run_select(job)
    job.method_params = {"n_cluster": 4}
    with pytest.raises(ConfigError, match=r"^method 'ltd' has no parameter 'n_cluster'\. Did you mean 'n_clusters'\?"):
        run_select(job)
    assert not list(tmp_path.iterdir())
