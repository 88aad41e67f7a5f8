"""The numbers behind the report, against slow obviously-correct references on tiny inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from coreselect.errors import ConfigError
from coreselect.metrics import covering_radii
from coreselect.report import analysis
from coreselect.selection.kmeans_centroid import faiss_kmeans


def test_covering_radii_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(57, 5)).astype(np.float32)
    order = rng.permutation(57)[:20]
    prefixes = [1, 2, 7, 20]
    radius, mean = covering_radii(X, order, prefixes, block_rows=8, block_picks=3)
    for j, p in enumerate(prefixes):
        d = np.linalg.norm(X[:, None, :] - X[order[:p]][None], axis=2).min(1)
        assert radius[j] == pytest.approx(d.max(), rel=1e-4)
        assert mean[j] == pytest.approx(d.mean(), rel=1e-4)
    assert np.all(np.diff(radius) <= 1e-6)


def test_covering_radii_agrees_with_kcenter_curve():
    from coreselect.selection.kcenter import kcenter_greedy

    X = np.random.default_rng(1).normal(size=(200, 16)).astype(np.float32)
    idx, radii = kcenter_greedy(X, 30, first=0)
    prefixes = analysis.budget_prefixes(30, 6)
    radius, _ = covering_radii(X, idx, prefixes)
    np.testing.assert_allclose(radius, radii[np.asarray(prefixes) - 1], rtol=1e-4)


def test_expected_coverage_matches_enumeration():
    labels = np.array([0, 0, 0, 1, 1, 2, 3])
    counts = np.bincount(labels)
    for k in (1, 2, 3, 7):
        subsets = list(itertools.combinations(range(len(labels)), k))
        brute = sum(len(set(labels[list(s)])) for s in subsets) / len(subsets)
        assert analysis.expected_coverage(counts, k) == pytest.approx(brute)


def test_label_stats_and_detection():
    recs = [{"instruction": "x", "category": c, "task": f"t{i}", "id": i}
            for i, c in enumerate("aaabbc" * 10)]
    assert analysis.detect_label_columns(recs) == ["category", "task"]
    s = analysis.label_stats(recs, "category", np.array([0, 3]))
    assert s.labels == ["a", "b", "c"] and s.pool_counts.tolist() == [30, 20, 10]
    assert s.core_counts.tolist() == [1, 1, 0] and s.n_covered == 2
    # balance: the normalised entropy over the pool's 3 labels (one meaning, as score and the manifest)
    assert s.balance == pytest.approx(np.log(2) / np.log(3))
    assert s.pool_balance == pytest.approx(-(np.log(1 / 2) / 2 + np.log(1 / 3) / 3 + np.log(1 / 6) / 6) / np.log(3))
    many = [{"label": str(i)} for i in range(600)]
    assert analysis.detect_label_columns(many) == []  # too many distinct values
    assert analysis.detect_label_columns([{"label": 1}, {"label": 2}]) == []  # not strings
    assert analysis.label_value({"task": None}, "task") == "(missing)"
    with pytest.raises(ConfigError, match="'nope'"):
        analysis.validate_label_columns(recs, ["nope"])


def test_cluster_count_and_kmeans_are_deterministic():
    assert [analysis.n_clusters_for(n) for n in (3, 100, 240, 2000, 10**6)] == [3, 8, 8, 18, 20]
    X = np.random.default_rng(2).normal(size=(150, 8)).astype(np.float32)
    ca, a = faiss_kmeans(X, 8, niter=25, random_state=0)
    cb, b = faiss_kmeans(X, 8, niter=25, random_state=0)
    assert a.tolist() == b.tolist() and np.allclose(ca, cb)
    assert set(a.tolist()) <= set(range(8)) and ca.shape == (8, 8)


def test_projection_and_text_features():
    X = analysis.text_features(["the cat sat", "a dog ran", "the cat ran", "code in python", "python code"])
    assert X.shape[0] == 5 and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    P = analysis.project_2d(X)
    assert P.shape == (5, 2) and np.isfinite(P).all()
    with pytest.raises(ConfigError):
        analysis.project_2d(X, method="tsne")


def test_budget_prefixes():
    assert analysis.budget_prefixes(1) == [1]
    p = analysis.budget_prefixes(7800)
    assert p[0] == 1 and p[-1] == 7800 and p == sorted(set(p)) and len(p) <= 12
    assert math.isclose(p[1] / p[0], p[2] / p[1], rel_tol=0.5)
