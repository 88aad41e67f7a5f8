from __future__ import annotations

import numpy as np
import pytest

from coreselect.errors import ConfigError
from coreselect.selection import KCenterGreedy, kcenter_greedy, make_selector


def brute_force_kcenter(X, k, first):
    """Textbook k-center greedy with a full distance matrix."""
    D = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    picked = [first]
    for _ in range(k - 1):
        d = D[:, picked].min(1)
        d[picked] = -1
        picked.append(int(np.argmax(d)))
    radius = [D[:, picked[: j + 1]].min(1).max() for j in range(k)]
    return picked, np.array(radius)


@pytest.mark.parametrize("algorithm", ["dense", "pruned", "torch"])
@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed, algorithm):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    first = int(rng.integers(60))
    ref, ref_r = brute_force_kcenter(X.astype(np.float64), 12, first)
    idx, radii = kcenter_greedy(X, 12, first=first, algorithm=algorithm, block_rows=7)
    assert idx.tolist() == ref
    np.testing.assert_allclose(radii, ref_r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_pruned_equals_dense_on_clustered_data(seed):
    """Clustered data is where pruning skips most groups; the picks must not change."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, 16)) * 5
    X = (centres[rng.integers(20, size=3000)] + rng.normal(size=(3000, 16))).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    dense = kcenter_greedy(X, 400, first=0, algorithm="dense")
    pruned = kcenter_greedy(X, 400, first=0, algorithm="pruned")
    assert pruned[0].tolist() == dense[0].tolist()
    np.testing.assert_allclose(pruned[1], dense[1], rtol=1e-3, atol=1e-4)


def test_duplicates_fill_the_budget():
    X = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # 3 distinct points, 4 copies each
    for algorithm in ("dense", "pruned"):
        idx, radii = kcenter_greedy(X, 8, first=0, algorithm=algorithm)
        assert len(set(idx.tolist())) == 8
        assert radii[2:].max() == 0.0


def test_deterministic_for_a_seed_and_differs_across_seeds():
    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    a = KCenterGreedy(n_select=30, random_state=3).fit(X).indices_
    b = KCenterGreedy(n_select=30, random_state=3).fit(X).indices_
    c = KCenterGreedy(n_select=30, random_state=4).fit(X).indices_
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_radius_never_grows_and_all_picked():
    X = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    sel = KCenterGreedy(n_select=50).fit(X)
    assert sorted(sel.indices_.tolist()) == list(range(50))
    assert np.all(np.diff(sel.radii_) <= 1e-6)
    assert sel.radii_[-1] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("k", [0, -1, 101, 2.5, True])
def test_bad_budget(k):
    X = np.zeros((100, 2), dtype=np.float32)
    with pytest.raises(ConfigError, match="n_select"):
        KCenterGreedy(n_select=k).fit(X)


def test_registry_suggests_close_names():
    with pytest.raises(ConfigError, match="Did you mean kcenter"):
        make_selector("kcentre", n_select=3)
