"""Coverage metrics: one distance kernel, checked against brute force on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.metrics import coverage_metrics, covering_radii, nearest_distances, nearest_distances_to


def _brute(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    return np.linalg.norm(X[:, None, :].astype(np.float64) - C[None].astype(np.float64), axis=2).min(1)


def test_nearest_distances_to_matches_brute_force_in_any_blocks() -> None:
    rng = np.random.default_rng(0)
    X, C = rng.normal(size=(37, 6)).astype(np.float32), rng.normal(size=(11, 6)).astype(np.float32)
    want = _brute(X, C)
    for rows, cols in ((8192, 8192), (5, 3), (1, 1)):
        np.testing.assert_allclose(nearest_distances_to(X, C, block_rows=rows, block_cols=cols), want, rtol=1e-4)
    sq = np.einsum("ij,ij->i", X, X)
    np.testing.assert_allclose(nearest_distances_to(X, C, x_sq=sq), want, rtol=1e-4)
    with pytest.raises(ValueError, match="need X"):
        nearest_distances_to(X, C[:0])


def test_whole_selection_and_prefix_metrics_agree() -> None:
    X = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    order = np.array([3, 17, 8, 30, 1])
    d = nearest_distances(X, order)
    assert d[order].tolist() == [0.0] * 5
    np.testing.assert_allclose(d, _brute(X, X[order]), rtol=1e-4, atol=1e-5)
    cov = coverage_metrics(X, order)
    radius, mean = covering_radii(X, order, [2, 5], block_picks=2)
    assert radius[-1] == pytest.approx(cov["covering_radius"], abs=1e-5)
    assert mean[-1] == pytest.approx(cov["mean_nearest_distance"], abs=1e-5)
