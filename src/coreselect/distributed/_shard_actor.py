"""The selection actor: the prepared features of a group of shards, kept in memory for one run.

Every computation is done shard by shard (a shard is a fixed row range of the store), so what a
shard contributes never depends on how shards are grouped over actors; the driver only ever
combines per-actor results in global row order. Shards are read with
:func:`~coreselect.store.read_shard` and prepared with the functions behind
:func:`~coreselect.features.transform.prepare_features` (:func:`~coreselect.features.transform.column_sums`,
:func:`~coreselect.features.transform.normalize_rows`); nearest distances are
:func:`~coreselect.metrics.nearest_distances_to`. The k-center and LTD steps mirror the dense
k-center kernel and :func:`~coreselect.selection.ltd.ltd_selection`; see :mod:`.ray_select` for
what equality that gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from coreselect.features.transform import Normalize, column_sums, normalize_rows
from coreselect.store import ShardPlan, read_shard

#: (value, global row, its feature vector, its squared norm) of an actor's best candidate.
Candidate = tuple[float, int, np.ndarray, float]


def best_by_group(groups: np.ndarray, vals: np.ndarray, rows: np.ndarray, largest: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the position of its largest (or smallest) value, lowest row on ties.

    Examples
    --------
    >>> best_by_group(np.array([0, 0, 1]), np.array([2.0, 2.0, 1.0]), np.array([5, 3, 4]), True)
    (array([0, 1]), array([1, 2]))
    """
    order = np.lexsort((rows, -vals if largest else vals, groups))
    first = np.ones(order.size, dtype=bool)
    first[1:] = groups[order[1:]] != groups[order[:-1]]
    return groups[order[first]], order[first]


class ShardFeatures:
    """Features of a group of shards (Ray actor; also usable in-process, e.g. in tests).

    Parameters
    ----------
    root : store directory.
    plans : ``(shard, start, end)`` of the shards this actor holds, in row order.
    names : feature groups to read.
    """

    def __init__(self, root: str, plans: list[tuple[int, int, int]], names: list[str]) -> None:
        self.plans = [ShardPlan(*p) for p in plans]
        self.names = sorted(names)
        self._raw = [read_shard(Path(root), p, self.names) for p in self.plans]
        self.X: list[np.ndarray] = []
        self.sq: list[np.ndarray] = []

    # -- preparation -----------------------------------------------------------------------
    def sums(self) -> list[dict[str, np.ndarray]]:
        """Each shard's :func:`~coreselect.features.transform.column_sums`."""
        return [column_sums(g) for g in self._raw]

    def prepare(self, means: dict[str, np.ndarray] | None, normalize: Normalize) -> int:
        """Each shard's rows as ``prepare_features`` makes them; return how many are not finite."""
        bad = 0
        for g in self._raw:
            out = normalize_rows(g, means, normalize)
            bad += int((~np.isfinite(out).all(1)).sum())
            self.X.append(out)
            self.sq.append(np.einsum("ij,ij->i", out, out))
        self._raw = []
        return bad

    def project(self, dim: int | None, seed: int) -> None:
        """Select on a random projection (``KCenterGreedy(project_dim=...)``), or undo it (``None``).

        Each shard is projected with the same seeded matrix as
        :func:`~coreselect.selection.kcenter.random_projection` builds for the whole pool.
        """
        from coreselect.selection.kcenter import random_projection

        if dim is None:
            if hasattr(self, "_full"):
                self.X, self.sq = self._full
                del self._full
            return
        self._full = (self.X, self.sq)
        self.X = [random_projection(X, dim, seed) for X in self.X]
        self.sq = [np.einsum("ij,ij->i", X, X) for X in self.X]

    def prepared(self) -> np.ndarray:
        """All rows held here (for tests and small pools)."""
        return np.concatenate(self.X)

    def rows(self, idx: np.ndarray, with_sq: bool = False) -> Any:
        """The rows of these global indices that this actor holds, in the order given.

        With ``with_sq``, also their squared norms, as computed for the kernels.
        """
        idx = np.asarray(idx, dtype=np.int64)
        out = np.empty((idx.size, self.X[0].shape[1]), dtype=np.float32)
        sq = np.empty(idx.size, dtype=np.float32)
        found = np.zeros(idx.size, dtype=bool)
        for p, X, s in zip(self.plans, self.X, self.sq):
            m = (idx >= p.start) & (idx < p.end)
            out[m] = X[idx[m] - p.start]
            sq[m] = s[idx[m] - p.start]
            found |= m
        return (out[found], sq[found]) if with_sq else out[found]

    # -- k-center greedy -------------------------------------------------------------------
    def kc_init(self) -> None:
        self._min = [np.full(X.shape[0], np.inf, dtype=np.float32) for X in self.X]
        self._picked = [np.zeros(X.shape[0], dtype=bool) for X in self.X]

    def kc_step(self, centre: np.ndarray, csq: np.float32, c: int) -> Candidate:
        """Update the running minima against centre ``c``; return the farthest point held here."""
        best: Candidate = (-np.inf, -1, centre, 0.0)
        for p, X, sq, mn, picked in zip(self.plans, self.X, self.sq, self._min, self._picked):
            d = X @ centre  # the dense kernel's update, in the same order of operations
            d *= -2.0
            d += sq
            d += csq
            np.minimum(mn, d, out=mn)
            if p.start <= c < p.end:
                picked[c - p.start] = True
            mn[picked] = -1.0
            i = int(np.argmax(mn))
            if mn[i] > best[0]:  # shards in row order: an equal value keeps the lower row
                best = (float(mn[i]), p.start + i, X[i].copy(), float(sq[i]))
        return best

    # -- LTD: k-means, nearest member, per-cluster k-center ----------------------------------
    def assign(self, centroids: np.ndarray, train: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest centroid of each row (faiss, as ``faiss_kmeans`` labels rows).

        Returns the per-centroid float64 sums and counts of the ``train`` rows (global indices;
        all rows when ``None``), and keeps every row's label for the later steps.
        """
        import faiss

        k, d = centroids.shape
        index = faiss.IndexFlatL2(d)
        index.add(np.ascontiguousarray(centroids, dtype=np.float32))
        sums, counts = np.zeros((k, d), dtype=np.float64), np.zeros(k, dtype=np.int64)
        self.labels = []
        for p, X in zip(self.plans, self.X):
            lab = index.search(X, 1)[1][:, 0].astype(np.int64)
            self.labels.append(lab)
            rows = np.arange(X.shape[0]) if train is None else \
                train[(train >= p.start) & (train < p.end)] - p.start
            if rows.size:
                counts += np.bincount(lab[rows], minlength=k)
                sums += _group_sums(lab[rows], X[rows], k)
        return sums, counts, np.concatenate(self.labels)

    def nearest_members(self, centroids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per cluster, the member nearest its centroid held here: (clusters, d2, rows, vectors, |x|^2)."""
        cl, vals, rows = [], [], []
        for p, X, lab in zip(self.plans, self.X, self.labels):
            diff = X - centroids[lab]
            cl.append(lab)
            vals.append(np.einsum("ij,ij->i", diff, diff))
            rows.append(np.arange(p.start, p.end))
        return self._pick(np.concatenate(cl), np.concatenate(vals), np.concatenate(rows), largest=False)

    def ckc_init(self, n_clusters: int) -> None:
        self.kc_init()
        self._n_clusters = n_clusters

    def ckc_step(self, clusters: np.ndarray, centres: np.ndarray, csq: np.ndarray, picks: np.ndarray
                 ) -> tuple[np.ndarray, ...]:
        """One round of k-center greedy inside every active cluster at once.

        ``centres[j]`` (row ``picks[j]``) is the newest pick of cluster ``clusters[j]``. Members
        of inactive clusters are left alone. Returns, per active cluster, the member held here
        farthest from its picks: (clusters, d2, rows, vectors, |x|^2).
        """
        slot = np.full(self._n_clusters, -1, dtype=np.int64)
        slot[clusters] = np.arange(clusters.size)
        cl, vals, rows = [], [], []
        for p, X, sq, lab, mn, picked in zip(self.plans, self.X, self.sq, self.labels, self._min, self._picked):
            m = np.flatnonzero(slot[lab] >= 0)
            if not m.size:
                continue
            s = slot[lab[m]]
            d = np.einsum("ij,ij->i", X[m], centres[s])  # as _sqdist: -2 x.c + |x|^2 + |c|^2, >= 0
            d *= -2.0
            d += sq[m]
            d += csq[s]
            np.maximum(d, 0.0, out=d)
            mn[m] = np.minimum(mn[m], d)
            mine = picks[(picks >= p.start) & (picks < p.end)] - p.start
            picked[mine] = True
            free = m[~picked[m]]
            cl.append(lab[free])
            vals.append(mn[free])
            rows.append(p.start + free)
        if not cl:
            return (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64),
                    np.empty((0, self.X[0].shape[1]), dtype=np.float32), np.empty(0, dtype=np.float32))
        return self._pick(np.concatenate(cl), np.concatenate(vals), np.concatenate(rows), largest=True)

    def _pick(self, cl: np.ndarray, vals: np.ndarray, rows: np.ndarray, largest: bool) -> tuple[np.ndarray, ...]:
        groups, pos = best_by_group(cl, vals, rows, largest)
        return (groups, vals[pos], rows[pos], *self.rows(rows[pos], with_sq=True))

    # -- facility location: RandGreeDi (:mod:`coreselect.selection.greedi`) ---------------------
    def fl_scatter(self, n_parts: int, seed: int) -> list[Any]:
        """Split the rows held here into ``n_parts`` random parts (each shard seeded by its
        number, so the split does not depend on the grouping); one object reference
        ``(global rows, float32 rows)`` per part, in the object store for the part's actor."""
        import ray

        from coreselect.selection.greedi import partition_of

        parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_parts)]
        for p, X in zip(self.plans, self.X):
            lab = partition_of(X.shape[0], n_parts, seed, p.shard)
            for b in range(n_parts):
                m = np.flatnonzero(lab == b)
                parts[b].append((p.start + m, X[m]))
        return [ray.put((np.concatenate([r for r, _ in b]), np.concatenate([x for _, x in b]))) for b in parts]

    def fl_local(self, refs: list[Any], kappa: int, params: dict[str, Any]) -> tuple[np.ndarray, ...]:
        """Stage 1 on the part gathered from ``refs`` (rows in global order): local picks,
        weights and vectors (:func:`~coreselect.selection.greedi.local_picks`)."""
        import ray

        from coreselect.selection.greedi import local_picks

        got = ray.get(refs)
        rows = np.concatenate([r for r, _ in got])
        order = np.argsort(rows, kind="stable")
        X = np.concatenate([x for _, x in got])[order]
        return local_picks(X, rows[order], kappa, **params)

    def nearest(self, C: np.ndarray, csq: np.ndarray) -> np.ndarray:
        """Distance from each row held here to its nearest row of ``C`` (``nearest_distances_to``)."""
        from coreselect.metrics import nearest_distances_to

        return np.concatenate([nearest_distances_to(X, C, x_sq=sq, c_sq=csq) for X, sq in zip(self.X, self.sq)])

    def ping(self) -> int:
        return sum(X.shape[0] for X in self.X) if self.X else sum(p.end - p.start for p in self.plans)


def _group_sums(labels: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """float64 (k, d) sums of the rows of ``X`` by label."""
    order = np.argsort(labels, kind="stable")
    lab = labels[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    out = np.zeros((k, X.shape[1]), dtype=np.float64)
    out[lab[starts]] = np.add.reduceat(X[order].astype(np.float64), starts, axis=0)
    return out


def as_plans(plans: list[ShardPlan]) -> list[tuple[int, int, int]]:
    return [(p.shard, p.start, p.end) for p in plans]


def actor_class(ray: Any, n_actors: int) -> Any:
    """:class:`ShardFeatures` as a Ray actor class, with no restarts (its state is the run's).

    Each actor asks for one CPU, or an equal share of the CPUs free now when there are fewer
    than actors (at least 1/100), so that every actor can be placed: whole-CPU requests would
    leave the extra actors pending forever. Their numpy work is single-threaded either way.
    """
    free = float(ray.available_resources().get("CPU", 0.0))
    share = max(0.01, min(1.0, int(100 * free / n_actors) / 100))
    return ray.remote(num_cpus=share, max_restarts=0)(ShardFeatures)
