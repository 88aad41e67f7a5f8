"""Fixtures of the selection tests: small clustered pools and the output invariants."""

from __future__ import annotations

import numpy as np
import pytest


def _make_clustered(n: int = 200, d: int = 16, k: int = 5, seed: int = 0, spread: float = 0.1):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    labels = np.arange(n) % k
    X = centres[labels] + spread * rng.normal(size=(n, d))
    X -= X.mean(0)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), labels


def _check_pick(idx: np.ndarray, n_select: int, n: int) -> None:
    assert idx.dtype == np.int64
    assert idx.shape == (n_select,)
    assert len(np.unique(idx)) == n_select
    assert idx.min() >= 0 and idx.max() < n


@pytest.fixture
def clustered():
    """Factory ``clustered(n=200, d=16, k=5, seed=0, spread=0.1) -> (X, true_labels)``: rows
    around ``k`` well-separated centres, centred and L2-normalised as the pipeline does."""
    return _make_clustered


@pytest.fixture
def check_pick():
    """``check_pick(idx, n_select, n)``: int64, the right length, unique, within range."""
    return _check_pick


@pytest.fixture(autouse=True)
def faiss_one_thread():
    """Run faiss on one OpenMP thread: on a busy machine its spin-waiting threads make tiny
    k-means runs ~1000x slower (0.9 s instead of 0.5 ms). Results do not depend on it."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield before
    faiss.omp_set_num_threads(before)
