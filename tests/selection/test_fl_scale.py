"""Facility location at scale: approximate graphs, stochastic greedy, partitioned greedy, and
what the manifest records. Objectives are compared on small clustered pools against exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coreselect.metrics import facility_location_objective
from coreselect.selection import make_selector
from coreselect.selection.facility_location import (
    facility_location_greedy,
    knn_similarity_graph,
    stochastic_greedy,
)
from coreselect.selection.greedi import randgreedi
from coreselect.selection.knn_graph import build_knn_graph


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    """2,000 rows in 40 blobs of uneven size, 32-d, centred and unit length."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    lab = rng.choice(40, size=2000, p=np.arange(1, 41) / np.arange(1, 41).sum())
    X = centres[lab] + 0.6 * rng.normal(size=(2000, 32))
    X -= X.mean(0)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("graph", ["ivf", "hnsw"])
def test_a_forced_approximate_graph_picks_nearly_the_exact_objective(blobs, graph):
    exact = make_selector("facility-location", n_select=200, graph="exact").fit(blobs)
    approx = make_selector("facility-location", n_select=200, graph=graph, nprobe=4).fit(blobs)
    ratio = facility_location_objective(blobs, approx.indices_) / facility_location_objective(blobs, exact.indices_)
    assert ratio >= 0.99
    assert approx.info_["index"] == graph and 0.5 < approx.info_["recall@64"] <= 1.0
    assert exact.info_["index"] == "exact" and exact.info_["recall@64"] == 1.0


def test_ivf_probing_every_list_is_exact_and_reads_float16_in_batches(blobs):
    S_exact = knn_similarity_graph(blobs, 16)
    X16 = blobs.astype(np.float16)
    S, info = build_knn_graph(X16, 16, graph="ivf", nlist=8, nprobe=8)
    assert info["recall@16"] == 1.0 and info["nlist"] == 8
    # the same neighbours (float16 rounding moves similarities by ~1e-3)
    assert np.array_equal(np.sort(S.indices.reshape(2000, 16), 1), np.sort(S_exact.indices.reshape(2000, 16), 1)) or \
        abs(S.sum() - S_exact.sum()) < 1e-2 * S_exact.sum()
    # auto is exact below the threshold
    assert build_knn_graph(blobs, 16, graph="auto")[1]["index"] == "exact"


def test_recall_is_measured_against_exact_search(blobs, capfd):
    _, info = build_knn_graph(blobs, 32, graph="ivf", nlist=40, nprobe=1, recall_queries=300)
    assert info["recall_queries"] == 300 and 0.2 < info["recall@32"] < 1.0
    # faiss's k-means is not asked for more than the 32 sample rows per list it gets: it says nothing
    assert "clustering" not in capfd.readouterr().err


def test_a_graph_with_low_recall_is_warned_about_and_a_good_one_is_not(blobs, caplog):
    with caplog.at_level("WARNING", logger="coreselect.selection.knn_graph"):
        _, good = build_knn_graph(blobs, 16, graph="ivf", nlist=8, nprobe=8)
    assert good["recall@16"] == 1.0 and not caplog.records
    with caplog.at_level("WARNING", logger="coreselect.selection.knn_graph"):
        _, poor = build_knn_graph(blobs, 64, graph="ivf", nlist=200, nprobe=1, recall_queries=200)
    assert poor["recall@64"] < 0.5
    (rec,) = caplog.records
    assert f"found {100 * poor['recall@64']:.0f}% of the exact 64 nearest neighbours on 200 sampled rows" in rec.message
    assert "--param nprobe=16" in rec.message


def test_stochastic_greedy_is_within_its_bound_of_lazy_greedy(blobs):
    S = knn_similarity_graph(blobs, 64)
    lazy = facility_location_greedy(S, 200)[1].sum()
    for seed in range(3):
        idx, gains = stochastic_greedy(S, 200, epsilon=0.01, random_state=seed)
        assert len(set(idx.tolist())) == 200
        # (1 - 1/e - eps) is the guarantee in expectation; on this pool it stays within 2%
        assert gains.sum() >= 0.98 * lazy
        np.testing.assert_allclose(gains.sum(), S.toarray().astype(np.float64)[:, idx].max(1).sum(), rtol=1e-9)
    sel = make_selector("facility-location", n_select=50, optimizer="stochastic").fit(blobs)
    assert sel.info_["optimizer"] == "stochastic" and len(set(sel.indices_.tolist())) == 50


def test_randgreedi_stays_close_to_the_single_process_objective(blobs):
    single = make_selector("facility-location", n_select=100).fit(blobs).indices_
    ref = facility_location_objective(blobs, single)
    for parts in (2, 4):
        idx = randgreedi(blobs, 100, n_parts=parts)
        assert len(set(idx.tolist())) == 100
        assert facility_location_objective(blobs, idx) >= 0.97 * ref  # (1 - 1/e) / 2 is the proven floor
    idx = randgreedi(blobs, 100, n_parts=4, partition_picks=2.0)  # 50 local picks per part
    assert facility_location_objective(blobs, idx) >= 0.97 * ref


def test_randgreedi_parts_above_the_exact_threshold_build_approximate_graphs(blobs, monkeypatch):
    import coreselect.selection.knn_graph as knn_graph

    monkeypatch.setattr(knn_graph, "EXACT_MAX_ROWS", 100)  # each part of 500 rows then takes the ivf graph
    ref = facility_location_objective(blobs, make_selector("facility-location", n_select=100, graph="exact")
                                      .fit(blobs).indices_)
    idx = randgreedi(blobs, 100, n_parts=4)  # a part measures no recall: it once divided by zero here
    assert len(set(idx.tolist())) == 100
    assert facility_location_objective(blobs, idx) >= 0.95 * ref


def test_bad_parameters_are_one_line_errors():
    from coreselect.errors import ConfigError

    for params, msg in [({"graph": "annoy"}, "'graph' parameter of FacilityLocation must be one of 'auto'"),
                        ({"optimizer": "fast"}, "'optimizer' parameter"), ({"epsilon": 0}, "'epsilon' parameter"),
                        ({"partition_picks": 0.5}, "'partition_picks' parameter")]:
        with pytest.raises(ConfigError, match=msg):
            make_selector("facility-location", n_select=5, **params).check_params(10)


def test_the_manifest_records_the_index_and_its_recall(tmp_path, blobs):
    from coreselect.cli.main import main

    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"task {i}", "output": str(i)}) + "\n" for i in range(2000)))
    np.save(tmp_path / "x.npy", blobs.astype(np.float16))
    out = tmp_path / "core.jsonl"
    assert main(["-q", "select", str(data), "--ratio", "0.1", "--features-file", str(tmp_path / "x.npy"),
                 "--param", "graph=ivf", "-o", str(out)]) == 0
    m = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    info = m["method"]["info"]
    assert info["index"] == "ivf" and 0.5 < info["recall@64"] <= 1.0 and info["recall_queries"] > 0
    assert info["nprobe"] == 4 and info["optimizer"] == "lazy" and m["method"]["params"]["graph"] == "ivf"
    from coreselect.manifest import SelectionManifest

    assert SelectionManifest.read(out.with_name("core.jsonl.manifest.json")).method.info == info
