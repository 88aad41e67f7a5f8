"""Selection on Ray actors holding a store's shards: the same picks as the single-process kernels.

The stores are written directly (random float16 features, two groups, an uneven last shard), so
no model is needed. Each check runs with one and with several actors: a shard's contribution
never depends on which actor holds it.
"""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.distributed import DistributedError
from coreselect.distributed._shard_actor import best_by_group
from coreselect.distributed.cluster import group_shards
from coreselect.errors import ConfigError
from coreselect.features.transform import prepare_features
from coreselect.metrics import coverage_metrics
from coreselect.selection import make_selector
from coreselect.selection.kcenter import kcenter_greedy
from coreselect.selection.kmeans_centroid import faiss_kmeans
from coreselect.store import FeatureStore, plan_shards

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.usefixtures("ray_cluster"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]

N, SHARD_ROWS = 1100, 128  # 9 shards, the last one short


def _store(root, groups: dict[str, np.ndarray], shard_rows: int = SHARD_ROWS) -> FeatureStore:
    n = next(iter(groups.values())).shape[0]
    store = FeatureStore.create(root, {"key": "test", "n_rows": n, "shard_rows": shard_rows})
    for p in store.plan():
        arrays = {k: g[p.start : p.end] for k, g in groups.items()}
        arrays.update({s: np.zeros(p.end - p.start, dtype=np.int32)
                       for s in ("n_tokens", "prompt_tokens", "response_tokens", "truncated")})
        store.write_shard(p, arrays)
    store.finalize(stats={"tokens": 0, "truncated": 0})
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FeatureStore:
    """Clustered features, as pooled activations are: a common offset, a few dense regions."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 40)) * 2
    X = 3.0 + centres[rng.integers(0, 6, N)] + rng.normal(size=(N, 40))
    return _store(tmp_path_factory.mktemp("store") / "feats",
                  {"mlp.3": X[:, :24].astype(np.float16), "hidden.3": X[:, 24:].astype(np.float16)})


@pytest.fixture(scope="module")
def X(store) -> np.ndarray:
    return prepare_features(store.load(store.groups))


@pytest.fixture(scope="module", params=[1, 3], ids=["1-actor", "3-actors"])
def pool(request, store):
    from coreselect.distributed.ray_select import FeatureActors

    p = FeatureActors(store, n_actors=request.param)
    yield p
    p.close()


def test_features_are_bitwise_those_of_prepare_features(pool, store, X):
    assert len(pool.actors) == len(group_shards(store.plan(), len(pool.actors)))
    assert np.array_equal(np.concatenate(pool.call("prepared")), X)
    idx = np.array([1099, 0, 500, 128, 127])
    rows, sq = pool.rows(idx)
    assert np.array_equal(rows, X[idx])
    assert np.array_equal(sq, np.einsum("ij,ij->i", X, X)[idx])


@pytest.mark.parametrize("normalize", ["l2", "none"])
def test_other_normalisations(store, normalize):
    from coreselect.distributed.ray_select import FeatureActors

    p = FeatureActors(store, n_actors=2, normalize=normalize)
    try:
        assert np.array_equal(np.concatenate(p.call("prepared")),
                              prepare_features(store.load(store.groups), normalize=normalize))
    finally:
        p.close()


def test_kcenter_same_picks_as_dense_kernel(pool, X):
    from coreselect.distributed.ray_select import kcenter_ray

    for seed in (0, 7):
        idx, radii = kcenter_ray(pool, 60, random_state=seed)
        ref, ref_radii = kcenter_greedy(X, 60, random_state=seed, algorithm="dense")
        assert idx.tolist() == ref.tolist()
        np.testing.assert_allclose(radii, ref_radii, rtol=1e-6)
    assert pool.coverage(idx) == pytest.approx(coverage_metrics(X, idx), abs=2e-6)


def test_kcenter_ties_go_to_the_lowest_row(tmp_path):
    """Integer features make every distance exact: after the distinct points, all ties are 0."""
    from coreselect.distributed.ray_select import FeatureActors, kcenter_ray

    rng = np.random.default_rng(1)
    base = rng.integers(-4, 5, size=(5, 6))
    g = base[rng.integers(0, 5, 300)].astype(np.float16)
    g[[7, 150, 299]] = 9.0  # three equally far duplicates in three shards
    store = _store(tmp_path / "ties", {"mlp.0": g}, shard_rows=64)
    Xn = prepare_features(store.load(["mlp.0"]), normalize="none")
    ref, _ = kcenter_greedy(Xn, 20, first=3, algorithm="dense")
    p = FeatureActors(store, n_actors=2, normalize="none")
    try:
        assert kcenter_ray(p, 20, first=3)[0].tolist() == ref.tolist()
    finally:
        p.close()


def test_ltd_exact_kmeans_same_as_local_ltd(pool, X):
    from coreselect.distributed.ray_select import ltd_ray

    # 4 clusters: faiss trains on all 1100 rows; 3 clusters: on its own subsample of 768 rows
    for k, split in ((4, "proportional"), (3, "equal")):
        idx, labels, quotas, centroids = ltd_ray(pool, 40, n_clusters=k, split=split, random_state=5,
                                                 kmeans="exact")
        ref = make_selector("ltd", n_select=40, n_clusters=k, split=split, random_state=5).fit(X)
        assert np.array_equal(centroids, ref.cluster_centers_)
        assert np.array_equal(labels, ref.labels_)
        assert np.array_equal(quotas, ref.quotas_)
        assert idx.tolist() == ref.indices_.tolist()


def _lloyd_reference(X: np.ndarray, k: int, niter: int, seed: int) -> np.ndarray:
    """Plain Lloyd from faiss' initial rows on faiss' training rows (float64 sums)."""
    import faiss

    from coreselect.distributed.ray_select import faiss_training_rows

    train = faiss_training_rows(X.shape[0], k, seed)
    T = X if train is None else X[train]
    perm = np.empty(T.shape[0], dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), T.shape[0], seed + 1)
    C = T[perm[:k]].copy()
    for _ in range(niter):
        lab = ((T[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
        for c in range(k):
            if (lab == c).any():
                C[c] = T[lab == c].astype(np.float64).mean(0).astype(np.float32)
    return C


def test_ltd_lloyd_kmeans_matches_its_reference(pool, X):
    from coreselect.distributed.ray_select import ltd_ray

    for k in (4, 3):
        idx, labels, quotas, centroids = ltd_ray(pool, 40, n_clusters=k, niter=10, random_state=2, kmeans="lloyd")
        np.testing.assert_allclose(centroids, _lloyd_reference(X, k, 10, 2), rtol=1e-5, atol=1e-6)
        # close to faiss, which accumulates in float32 and splits empty clusters
        np.testing.assert_allclose(centroids, faiss_kmeans(X, k, niter=10, random_state=2)[0], atol=1e-3)
        assert len(set(idx.tolist())) == 40 and int(quotas.sum()) == 40
        assert np.bincount(labels[idx], minlength=k).tolist() == quotas.tolist()


def test_ray_executor_lets_the_selector_fit_itself(store, X):
    from coreselect.distributed.executor import RayExecutor

    executor = RayExecutor(n_actors=2)
    sel = make_selector("kcenter", n_select=25, random_state=4)
    features, cov, removed = executor.select(sel, store)
    ref = make_selector("kcenter", n_select=25, random_state=4, algorithm="dense").fit(X)
    assert features is None and removed is None
    assert sel.indices_.tolist() == ref.indices_.tolist() and sel.radii_.shape == (25,)
    assert cov == pytest.approx(coverage_metrics(X, ref.indices_), abs=2e-6)
    # project_dim: k-center on the same seeded random projection; coverage on the features
    sel = make_selector("kcenter", n_select=25, random_state=4, project_dim=16)
    _, cov, _ = executor.select(sel, store)
    ref = make_selector("kcenter", n_select=25, random_state=4, project_dim=16, algorithm="dense").fit(X)
    assert sel.indices_.tolist() == ref.indices_.tolist()
    np.testing.assert_allclose(sel.radii_, ref.radii_, rtol=1e-5)
    assert cov == pytest.approx(coverage_metrics(X, ref.indices_), abs=2e-6)
    # a method without a distributed kernel runs on the driver, exactly as locally
    sel = make_selector("similarity-filter", n_select=7)
    features, cov, _ = executor.select(sel, store)
    assert cov is None and np.array_equal(features, X)
    assert sel.indices_.tolist() == make_selector("similarity-filter", n_select=7).fit(X).indices_.tolist()
    # facility location runs on the actors (RandGreeDi): coverage scored there
    sel = make_selector("facility-location", n_select=30)
    features, cov, _ = executor.select(sel, store)
    assert features is None and cov == pytest.approx(coverage_metrics(X, sel.indices_), abs=2e-6)
    assert sel.info_["distributed"] == "randgreedi" and sel.info_["parts"] == 2
    # dedup, or a method reading per-row columns (here the stat response_tokens): on the driver, as locally
    from coreselect.selection.dedup import fit_deduplicated

    sel = make_selector("kcenter", n_select=6, random_state=4)
    features, cov, removed = executor.select(sel, store, dedup=0.5)
    ref = make_selector("kcenter", n_select=6, random_state=4)
    assert removed == fit_deduplicated(ref, X, X, 0.5) > 0 and sel.indices_.tolist() == ref.indices_.tolist()
    sel = make_selector("longest", n_select=4)
    executor.select(sel, store)
    assert sel.indices_.tolist() == [0, 1, 2, 3]  # all responses equally long here: ties by row
    with pytest.raises(ConfigError, match=r"'n_select' parameter of KCenterGreedy must be in \[1, 1100\]"):
        executor.select(make_selector("kcenter", n_select=N + 1), store)
    with pytest.raises(DistributedError, match="--ray-actors"):
        RayExecutor(n_actors=0)


def test_ltd_fits_itself_on_the_actors_as_locally(pool, X):
    from coreselect.distributed.selectors import fit_distributed

    sel = fit_distributed(make_selector("ltd", n_select=40, n_clusters=4, random_state=5), pool)
    ref = make_selector("ltd", n_select=40, n_clusters=4, random_state=5).fit(X)
    for name in ("indices_", "labels_", "quotas_", "cluster_sizes_", "cluster_centers_"):
        assert np.array_equal(getattr(sel, name), getattr(ref, name)), name
    with pytest.raises(ConfigError, match="'n_clusters' parameter of LTD must be an int in"):
        fit_distributed(make_selector("ltd", n_select=5, n_clusters="ten"), pool)
    with pytest.raises(ConfigError, match="'random' does not run on Ray; use one of facility-location, kcenter, ltd"):
        fit_distributed(make_selector("random", n_select=3), pool)


def test_grouping_and_tie_helpers():
    groups = group_shards(plan_shards(1100, 128), 3)
    assert [p.shard for g in groups for p in g] == list(range(9))
    assert all(g for g in groups) and len(groups) == 3
    cl, pos = best_by_group(np.array([2, 0, 2, 0]), np.array([1.0, 3.0, 1.0, 3.0]), np.array([9, 8, 4, 6]),
                            largest=True)
    assert cl.tolist() == [0, 2] and pos.tolist() == [3, 2]


def test_a_corrupted_shard_is_a_one_line_error(tmp_path, store):
    import shutil

    from coreselect.distributed.ray_select import FeatureActors

    root = tmp_path / "feats"
    shutil.copytree(store.root, root)
    (root / "shard-00004.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DistributedError, match=r"StoreError: .*shard-00004.*rerun extract") as err:
        FeatureActors(FeatureStore.open(root), n_actors=2)
    assert "\n" not in str(err.value)


def test_facility_location_randgreedi_stays_close_to_the_single_process_pick(pool, X):
    """RandGreeDi on the actors (one random part each): its dense objective within 0.97 of the
    single-process lazy greedy's on these clustered rows ((1 - 1/e) / 2 ~ 0.316 is RandGreeDi's
    proven floor in expectation; see coreselect.selection.greedi), and a deterministic pick."""
    from coreselect.distributed.selectors import fit_distributed
    from coreselect.metrics import facility_location_objective

    ref = facility_location_objective(X, make_selector("facility-location", n_select=80).fit(X).indices_)
    for params in ({}, {"partition_picks": 2.0}):
        sel = fit_distributed(make_selector("facility-location", n_select=80, **params), pool)
        assert len(set(sel.indices_.tolist())) == 80 and sel.gains_.shape == (80,)
        assert facility_location_objective(X, sel.indices_) >= 0.97 * ref
        m = len(pool.actors)
        assert sel.info_["parts"] == m and sel.info_["local_picks"] == (80 if not params else min(80, -(-160 // m)))
        again = fit_distributed(make_selector("facility-location", n_select=80, **params), pool)
        assert again.indices_.tolist() == sel.indices_.tolist()
