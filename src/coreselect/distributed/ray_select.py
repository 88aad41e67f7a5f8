"""Selection over sharded features on Ray actors: k-center greedy, LTD and facility location.

Each actor (:class:`~._shard_actor.ShardFeatures`, one CPU) loads a contiguous group of the
store's shards, normalises them with the pool means gathered from all actors, and keeps them in
memory; the driver never holds the feature matrix.

``kcenter``
    Every step the driver sends the new centre (vector, squared norm, row) to all actors; each
    updates its running minima with the dense kernel's arithmetic and returns its farthest point
    (value, global row, vector); the driver keeps the largest value, the lowest row on equal
    values, exactly as ``argmax`` does in the single-process dense kernel. One round trip per
    pick. ``project_dim`` projects each shard with the same seeded matrix first. *Guarantee*:
    the same picks as ``kcenter_greedy(..., algorithm="dense")`` on the same features, up to
    BLAS rounding of ``x . c`` (a row's dot product may differ in its last bit with the block it
    sits in; a pick can then differ only between two points whose distances agree to ~1e-7
    relative). The features themselves are bitwise those of ``prepare_features``. Whatever
    ``algorithm`` says, the actors run the dense update (``half``/``pruned`` are local kernels).
``ltd``
    k-means, then k-center greedy inside each cluster (:mod:`coreselect.selection.ltd`).
    The k-means step has two modes:

    * ``"exact"`` (the default while it fits, see ``max_driver_bytes``): the actors send the
      driver exactly the rows faiss trains on (all rows, or faiss' own subsample of
      ``256 * n_clusters`` rows drawn by ``faiss.rand_perm`` with the seed) and the driver runs
      the same :func:`~coreselect.selection.kmeans_centroid.faiss_kmeans` call: *centroids
      bitwise identical* to the single-process path.
    * ``"lloyd"``: distributed Lloyd iterations from faiss' own initial rows on the same training
      rows; actors assign rows with faiss and return per-centroid float64 sums and counts; the
      driver updates the centroids (an empty cluster keeps its centroid, where faiss would split a
      large one). *Guarantee*: deterministic for a seed; identical to the same Lloyd run in one
      process up to float64 summation order; close to, not equal to, faiss.

    Labels (faiss search per shard), each cluster's first pick (the member nearest its centroid)
    and the per-cluster k-center greedy (all clusters in lock-step, one round trip per round)
    run on the actors; the picks are interleaved as in ``ltd_selection``. *Guarantee* with
    ``"exact"``: the same picks as the single-process LTD, up to the BLAS rounding above.

``facility-location``
    RandGreeDi (:mod:`coreselect.selection.greedi`): every actor sends each of ``m`` random parts
    of its rows (one part per actor, seeded per shard) to that part's actor through the object
    store; each actor runs facility location on its part (its own kNN graph, ``graph="auto"``:
    approximate above 50,000 rows) for ``n_select`` picks, or ``partition_picks * n_select / m``;
    the driver runs weighted facility location over the union of the local picks. *Guarantee*:
    not the single-process picks; ``(1 - 1/e) / 2`` of the optimum in expectation for RandGreeDi
    proper, measured here within 0.97 of the single-process objective on small clustered data
    (see that module for the caveats). Each actor holds its shards and its part: twice its share.

The selectors call these through ``fit_distributed`` (:meth:`KCenterGreedy._fit_distributed
<coreselect.selection.kcenter.KCenterGreedy>`, likewise LTD), which checks their parameters and
sets their learned attributes; :class:`~coreselect.distributed.executor.RayExecutor` runs any
other method on the driver, on features loaded from the store as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from coreselect.distributed import DistributedError
from coreselect.distributed._shard_actor import actor_class, as_plans
from coreselect.distributed.cluster import connect, group_shards, root_cause, selection_actors
from coreselect.errors import ConfigError
from coreselect.features.transform import Normalize, check_normalize, group_means
from coreselect.store import FeatureStore

log = logging.getLogger(__name__)

KMEANS_MODES = ("auto", "exact", "lloyd")
#: ``kmeans="auto"`` gathers faiss' training rows on the driver while they fit in this many bytes.
MAX_DRIVER_BYTES = 4 << 30
#: faiss' default ``max_points_per_centroid``: above this many rows per centroid it subsamples.
FAISS_MAX_POINTS = 256


class FeatureActors:
    """A pool of :class:`~._shard_actor.ShardFeatures` actors over a store; the driver's handle.

    Examples
    --------
    >>> pool = FeatureActors(store, n_actors=4, normalize="center-l2")  # doctest: +SKIP
    >>> pool.n_rows, pool.dim  # doctest: +SKIP
    (2000, 576)
    """

    def __init__(self, store: FeatureStore, *, n_actors: int | None = None, normalize: Normalize = "center-l2",
                 address: str | None = None) -> None:
        check_normalize(normalize)
        self.ray = connect(address)
        plans = store.plan()
        self.groups = group_shards(plans, selection_actors(self.ray, len(plans), n_actors))
        cls = actor_class(self.ray, len(self.groups))
        root = str(store.root.resolve())
        self.actors = [cls.remote(root, as_plans(g), store.groups) for g in self.groups]
        self.n_rows = store.manifest.n_rows
        try:
            means = None
            if normalize == "center-l2":  # as prepare_features
                means = group_means([s for part in self.call("sums") for s in part], self.n_rows)
            bad = sum(self.call("prepare", means, normalize))
            if bad:
                raise ConfigError(f"features of {bad} rows contain NaN or infinity")
        except BaseException:
            self.close()
            raise
        self.dim = int(sum((store.manifest.dims or {})[k] for k in store.groups))
        log.info("ray: %d rows x %d features on %d actor(s)", self.n_rows, self.dim, len(self.actors))

    def call(self, method: str, *args: Any) -> list[Any]:
        """Call ``method`` on every actor, in row order; Ray errors become one-line errors."""
        try:
            return self.ray.get([getattr(a, method).remote(*args) for a in self.actors])
        except Exception as err:
            raise DistributedError(f"Ray selection failed in {method} ({root_cause(err)})") from None

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gather rows (global indices, in that order) and their squared norms to the driver."""
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        parts = self.call("rows", idx[order], True)  # each actor returns its rows in the order asked
        vecs = np.concatenate([p[0] for p in parts])  # (its width: a projection may be in use)
        out = np.empty_like(vecs)
        sq = np.empty(idx.size, dtype=np.float32)
        out[order] = vecs
        sq[order] = np.concatenate([p[1] for p in parts])
        return out, sq

    @contextmanager
    def projected(self, dim: int | None, seed: int) -> Iterator[None]:
        """Within the block, the actors hold a seeded random projection of their rows to ``dim``
        dimensions (as ``KCenterGreedy(project_dim=...)``; never to as many or more)."""
        if dim is None or dim >= self.dim:
            yield
            return
        self.call("project", dim, seed)
        try:
            yield
        finally:
            self.call("project", None, seed)

    def coverage(self, idx: np.ndarray) -> dict[str, float]:
        """The manifest's coverage scores of the picks ``idx`` (as
        :func:`~coreselect.metrics.coverage_metrics`), computed on the actors."""
        C, csq = self.rows(idx)
        d = np.concatenate(self.call("nearest", self.ray.put(C), csq))
        d[idx] = 0.0
        return {"covering_radius": round(float(d.max()), 6), "mean_nearest_distance": round(float(d.mean()), 6)}

    def close(self) -> None:
        """Kill the actors and wait until they are gone (their CPUs are free again)."""
        for a in self.actors:
            self.ray.kill(a)
        for a in self.actors:
            try:
                self.ray.get(a.ping.remote(), timeout=30)
            except Exception:  # ActorDiedError: the expected answer
                pass
        self.actors = []


def kcenter_ray(pool: FeatureActors, n_select: int, *, first: int | None = None, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy on the actors' rows; returns ``(indices, radii)`` as ``kcenter_greedy``."""
    n = pool.n_rows
    if first is None:
        first = int(np.random.default_rng(random_state).integers(n))
    pool.call("kc_init")
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    vec, sq = pool.rows(np.array([first]))
    c, centre, csq = first, vec[0], sq[0]
    for j in range(n_select):
        indices[j] = c
        cands = pool.call("kc_step", centre, csq, c)
        val, c, centre, sq = max(cands, key=lambda t: (t[0], -t[1]))
        csq = np.float32(sq)
        radii[j] = np.sqrt(max(val, 0.0))
    return indices, radii


def ltd_ray(pool: FeatureActors, n_select: int, *, n_clusters: int, split: str = "proportional", niter: int = 20,
            random_state: int = 0, kmeans: str = "auto", max_driver_bytes: int = MAX_DRIVER_BYTES
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """LTD on the actors' rows; returns ``(indices, labels, quotas, centroids)`` as ``ltd_selection``."""
    from coreselect.selection.ltd import split_budget

    if kmeans not in KMEANS_MODES:
        raise ConfigError(f"kmeans must be one of {', '.join(KMEANS_MODES)}, got {kmeans!r}")
    train = faiss_training_rows(pool.n_rows, n_clusters, random_state)
    n_train = pool.n_rows if train is None else train.size
    if kmeans == "auto":
        kmeans = "exact" if n_train * pool.dim * 4 <= max_driver_bytes else "lloyd"
    log.info("ltd on ray: %s k-means of %d clusters on %d training rows", kmeans, n_clusters, n_train)
    if kmeans == "exact":
        centroids = _kmeans_exact(pool, n_clusters, niter, random_state, train)
    else:
        centroids = _kmeans_lloyd(pool, n_clusters, niter, random_state, train)
    labels = np.concatenate([r[2] for r in pool.call("assign", centroids, np.empty(0, dtype=np.int64))])
    sizes = np.bincount(labels, minlength=n_clusters)
    quotas = split_budget(sizes, n_select, split)
    picks = _cluster_kcenter(pool, centroids, quotas, n_clusters)
    out = np.empty(n_select, dtype=np.int64)
    pos = 0
    ordered = [picks[c] for c in np.argsort(-sizes, kind="stable") if quotas[c] > 0]
    for r in range(int(quotas.max())):  # round-robin by pick rank, largest cluster first
        for p in ordered:
            if r < len(p):
                out[pos] = p[r]
                pos += 1
    return out, labels, quotas, centroids


def facility_location_ray(pool: FeatureActors, n_select: int, *, n_neighbors: int = 64, graph: str = "auto",
                          optimizer: str = "lazy", epsilon: float = 0.01, nprobe: int = 8,
                          partition_picks: float | None = None, random_state: int = 0
                          ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Facility location by RandGreeDi (:mod:`coreselect.selection.greedi`): returns
    ``(indices, gains, info)``. One random part per actor, moved actor to actor through the
    object store (the driver holds only the union of the local picks); stage 1 on the actors,
    stage 2 on the driver. ``optimizer`` applies to stage 2 only (stage 1 is lazy greedy)."""
    from coreselect.selection.greedi import local_budget, merge_picks

    m = len(pool.actors)
    kappa = local_budget(n_select, m, partition_picks)
    refs = pool.call("fl_scatter", m, random_state)
    params = {"n_neighbors": n_neighbors, "graph": graph, "nprobe": nprobe}
    try:
        got = pool.ray.get([a.fl_local.remote([refs[i][p] for i in range(m)], kappa,
                                              {**params, "random_state": random_state + p})
                            for p, a in enumerate(pool.actors)])
    except Exception as err:
        raise DistributedError(f"Ray selection failed in fl_local ({root_cause(err)})") from None
    del refs
    rows = np.concatenate([g[0] for g in got])
    weights = np.concatenate([g[1] for g in got])
    V = np.concatenate([g[2] for g in got])
    if V.shape[0] < n_select:
        raise ConfigError(f"facility-location on Ray: the parts kept {V.shape[0]} picks, fewer than {n_select}; "
                          "raise partition_picks")
    pos, gains, info = merge_picks(V, weights, n_select, **params, optimizer=optimizer, epsilon=epsilon,
                                   random_state=random_state)
    info.update(distributed="randgreedi", parts=m, local_picks=int(kappa), union=int(V.shape[0]))
    log.info("facility location on ray: %d parts x %d local picks -> union of %d -> %d picks", m, kappa, V.shape[0],
             n_select)
    return rows[pos], gains, info


def faiss_training_rows(n: int, n_clusters: int, seed: int) -> np.ndarray | None:
    """The rows faiss k-means trains on, in its order: ``None`` for all rows, else its subsample.

    faiss subsamples ``n_clusters * 256`` rows when the pool is larger, taking the first rows of
    ``rand_perm(n, seed)``; training on exactly those rows gives bitwise the same centroids.
    """
    cap = n_clusters * FAISS_MAX_POINTS
    if n <= cap:
        return None
    import faiss

    perm = np.empty(n, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), n, seed)
    return perm[:cap].astype(np.int64)


def _kmeans_exact(pool: FeatureActors, k: int, niter: int, seed: int, train: np.ndarray | None) -> np.ndarray:
    from coreselect.selection.kmeans_centroid import faiss_kmeans

    X = pool.rows(np.arange(pool.n_rows) if train is None else train)[0]
    return faiss_kmeans(X, k, niter=niter, random_state=seed)[0]


def _kmeans_lloyd(pool: FeatureActors, k: int, niter: int, seed: int, train: np.ndarray | None) -> np.ndarray:
    import faiss

    rows = np.arange(pool.n_rows) if train is None else train
    perm = np.empty(rows.size, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), rows.size, seed + 1)  # faiss' initial centroids
    centroids = pool.rows(rows[perm[:k]])[0]
    train_ref = pool.ray.put(rows if train is not None else None)
    for _ in range(niter):
        parts = pool.call("assign", centroids, train_ref)
        sums = sum(p[0] for p in parts)
        counts = sum(p[1] for p in parts)
        full = counts > 0
        centroids = centroids.copy()
        centroids[full] = (sums[full] / counts[full, None]).astype(np.float32)
    return centroids


def _cluster_kcenter(pool: FeatureActors, centroids: np.ndarray, quotas: np.ndarray, k: int) -> list[list[int]]:
    """k-center greedy inside every cluster with a quota, all clusters one round at a time."""
    picks: list[list[int]] = [[] for _ in range(k)]
    firsts = _reduce(pool.call("nearest_members", centroids), largest=False)
    pool.call("ckc_init", k)
    active = np.flatnonzero(quotas > 0)
    newest = {c: firsts[c] for c in active}
    for r in range(1, int(quotas.max()) + 1):
        for c in active:
            picks[c].append(newest[c][1])
        active = active[quotas[active] > r]
        if not active.size:
            break
        centres = np.stack([newest[c][2] for c in active])
        csq = np.array([newest[c][3] for c in active], dtype=np.float32)
        best = _reduce(pool.call("ckc_step", active, centres, csq, np.array([newest[c][1] for c in active])),
                       largest=True)
        newest = {c: best[c] for c in active}
    return picks


def _reduce(parts: list[tuple[np.ndarray, ...]], largest: bool) -> dict[int, tuple[float, int, np.ndarray, float]]:
    """Per cluster, the best of the actors' candidates: (value, row, vector, |x|^2); lowest row on ties."""
    best: dict[int, tuple[float, int, np.ndarray, float]] = {}
    for cl, vals, rows, vecs, sqs in parts:
        for c, v, r, x, s in zip(cl.tolist(), vals.tolist(), rows.tolist(), vecs, sqs):
            old = best.get(c)
            if old is None or (v > old[0] if largest else v < old[0]) or (v == old[0] and r < old[1]):
                best[c] = (v, r, x, s)
    return best
