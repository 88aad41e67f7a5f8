from __future__ import annotations

import numpy as np
import pytest

from coreselect.selection import KCenterGreedy, kcenter_greedy


@pytest.fixture(autouse=True)
def torch_one_thread():
    """Run the torch kernels on one thread: on a busy machine, spin-waiting intra-op threads make
    these small per-pick products ~100x slower (2.4 s instead of 0.03 s for 200 picks of 2000
    rows). The tests do not depend on it: exact picks are checked on inputs without near-ties."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.mark.parametrize("algorithm", ["dense", "pruned", "torch", "half"])
@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed, algorithm):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 5)).astype(np.float32)
    first = int(rng.integers(60))
    ref, ref_r = brute_force_kcenter(X.astype(np.float64), 12, first)
    # device="cpu": the torch kernels (the CUDA path) run here whether or not a GPU is present
    idx, radii = kcenter_greedy(X, 12, first=first, algorithm=algorithm, device="cpu", block_rows=7)
    assert idx.tolist() == ref
    tol = 2e-3 if algorithm == "half" else 1e-4  # float16 rows
    np.testing.assert_allclose(radii, ref_r, rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(3))
def test_half_tracks_dense_on_unit_rows(seed):
    """float16 rows, float32 minima: the picks agree with float32 on most of the sequence and
    every pick is within float16 rounding of the farthest point (a near-tie at worst)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2000, 64)).astype(np.float32) + 3.0  # off-centre: the kernel centres it
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    dense_idx, dense_r = kcenter_greedy(X, 200, first=0, algorithm="dense")
    half_idx, half_r = kcenter_greedy(X, 200, first=0, algorithm="half", device="cpu")
    assert len(set(half_idx.tolist())) == 200
    assert np.mean(half_idx == dense_idx) > 0.5
    # each half pick, measured exactly, is (nearly) the farthest from the picks before it
    X64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X64, X64)
    D = sq[:, None] + sq[None, half_idx] - 2.0 * (X64 @ X64[half_idx].T)  # (2000, 200), no 3-D temporary
    mind = D[:, 0].copy()
    for j in range(1, 200):
        assert mind[half_idx[j]] >= mind.max() - 2e-3
        np.minimum(mind, D[:, j], out=mind)
    np.testing.assert_allclose(half_r, dense_r, rtol=0.02)


def test_auto_picks_a_kernel_by_size_and_device(monkeypatch):
    from coreselect.selection import _kcenter_kernels as kk
    from coreselect.selection import kcenter

    seen = []
    monkeypatch.setattr(kk, "kcenter_dense", lambda *a, **k: seen.append("dense") or (np.arange(2), np.zeros(2)))
    monkeypatch.setattr(kk, "kcenter_torch", lambda X, n, f, device, dtype: seen.append((device, dtype))
                        or (np.arange(2), np.zeros(2)))
    monkeypatch.setattr(kcenter, "_cuda", lambda: False)
    monkeypatch.setattr("coreselect.device._proc_cpuinfo", lambda: "flags: avx2 avx512f avx512_bf16")
    kcenter_greedy(np.zeros((10, 4), dtype=np.float32), 2)  # small: dense
    kcenter_greedy(np.zeros((2, kcenter.HALF_MIN_ENTRIES // 2), dtype=np.float32), 2)  # large, wide: half
    kcenter_greedy(np.zeros((kcenter.HALF_MIN_ENTRIES // 16, 16), dtype=np.float32), 2)  # large, narrow: dense
    monkeypatch.setattr("coreselect.device._proc_cpuinfo", lambda: "flags: avx2 fma f16c")
    kcenter_greedy(np.zeros((2, kcenter.HALF_MIN_ENTRIES // 2), dtype=np.float32), 2)  # no bf16 math: dense
    monkeypatch.setattr(kcenter, "_cuda", lambda: True)
    kcenter_greedy(np.zeros((10, 4), dtype=np.float32), 2)
    assert seen == ["dense", ("cpu", "float16"), "dense", "dense", ("cuda", "float32")]


def test_project_dim_runs_on_a_seeded_projection():
    from coreselect.selection.kcenter import random_projection

    X = np.random.default_rng(0).normal(size=(400, 256)).astype(np.float32)
    P = random_projection(X, 32, random_state=5)
    assert P.shape == (400, 32)
    np.testing.assert_array_equal(P, random_projection(X, 32, random_state=5))
    # squared distances are preserved in expectation
    ratio = ((P[::2] - P[1::2]) ** 2).sum(1) / ((X[::2] - X[1::2]) ** 2).sum(1)  # 200 disjoint pairs
    assert 0.8 < ratio.mean() < 1.2
    sel = KCenterGreedy(n_select=20, project_dim=32, random_state=5).fit(X)
    ref = kcenter_greedy(P, 20, random_state=5, algorithm="dense")[0]
    assert sel.indices_.tolist() == ref.tolist()
    # a projection to as many dimensions or more is skipped
    assert (KCenterGreedy(n_select=20, project_dim=999).fit(X).indices_.tolist()
            == KCenterGreedy(n_select=20).fit(X).indices_.tolist())


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
    for algorithm in ("dense", "pruned", "torch", "half"):
        idx, radii = kcenter_greedy(X, 8, first=0, algorithm=algorithm, device="cpu")
        assert len(set(idx.tolist())) == 8
        assert radii[2:].max() == 0.0


def test_the_seed_draws_the_first_pick():
    X = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    a = KCenterGreedy(n_select=30, random_state=3).fit(X).indices_
    c = KCenterGreedy(n_select=30, random_state=4).fit(X).indices_
    assert a[0] == np.random.default_rng(3).integers(300) and a.tolist() != c.tolist()


def test_radius_never_grows_and_all_picked():
    X = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    sel = KCenterGreedy(n_select=50).fit(X)
    assert sorted(sel.indices_.tolist()) == list(range(50))
    assert np.all(np.diff(sel.radii_) <= 1e-6)
    assert sel.radii_[-1] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("scale", [1e-4, 1.0, 3e4])
def test_half_is_translation_and_scale_safe(scale):
    """Large raw activations would overflow float16 and tiny ones underflow: the kernel
    centres and rescales first, so the picks match the float32 kernel at any scale."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(500, 32)) * scale + 5 * scale).astype(np.float32)
    dense_idx, dense_r = kcenter_greedy(X, 40, first=0, algorithm="dense")
    half_idx, half_r = kcenter_greedy(X, 40, first=0, algorithm="half", device="cpu")
    assert half_idx.tolist() == dense_idx.tolist()
    np.testing.assert_allclose(half_r, dense_r, rtol=2e-3)
