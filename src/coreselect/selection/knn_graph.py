"""The sparse k-nearest-neighbour similarity graph behind facility location: exact or approximate.

``S[i, j] = max(0, cos(x_i, x_j))`` for ``j`` among the ``k`` nearest rows of ``i`` (itself
included). Four ways to find the neighbours, chosen by ``graph``:

``exact``
    faiss ``IndexFlatIP`` over blocks of ``EXACT_BLOCK_ROWS`` database rows, the running top-k
    merged across blocks: O(N^2 d), recall 1.
``ivf``
    An inverted file searched with BLAS: k-means (faiss, on a sample; on a 128-d PCA of the rows
    from 512 lists on) gives ``nlist = N / 256`` centroids; each row is stored in the list of its
    nearest centroid (lists capped at 1.5x the mean, see ``_capped_lists``) and queries the
    ``nprobe`` lists of its nearest centroids (default 4). Every list is scanned as one matrix
    product of full-width rows (its queries x its members), so the scan runs at ``sgemm`` speed
    (7x faster than faiss' ``IndexIVFFlat``, 2x faster than ``IVF,SQfp16`` at the same lists and
    probes on 50,000 x 1,536 rows, same recall) and every similarity in the graph is exact. Each
    row scans about ``nprobe x 256`` rows: the cost is linear in N.
``hnsw``
    faiss ``IndexHNSWFlat`` (``M=32``, ``efSearch = 2k``); measured slower to build and search
    than ``ivf`` here, kept for comparison and for data where IVF's recall is poor.
``auto``
    ``exact`` up to ``EXACT_MAX_ROWS`` rows, ``ivf`` above; on a machine with a GPU build of faiss
    and a GPU, ``exact`` on the GPU up to ``GPU_EXACT_MAX_ROWS`` rows.

Rows may arrive float16 or memory-mapped: they are read and converted ``batch_rows`` (or one
inverted list) at a time, never as a whole float32 copy (``hnsw`` and the GPU index keep their own
float32 copy inside faiss). The graph's measured recall@k on a sample of query rows against exact
search is returned with it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

log = logging.getLogger(__name__)

GRAPHS = ("auto", "exact", "ivf", "hnsw")
#: ``graph="auto"`` is exact up to this many rows (exact costs O(N^2 d): ~100 s at 50,000 x 1,536
#: on this 2-core machine against ~13 s for ``ivf`` at an objective ratio of 0.999, see
#: docs/performance.md; below it exact is cheap enough and leaves the picks as they were).
EXACT_MAX_ROWS = 50_000
#: ``graph="auto"`` with a faiss GPU build and a GPU: exact on the GPU up to this many rows.
GPU_EXACT_MAX_ROWS = 2_000_000
#: database rows per exact block (float32 copy of one block only).
EXACT_BLOCK_ROWS = 65_536
#: default ``nprobe`` of ``ivf`` (measured: objective ratio 0.999 to exact at 50,000 rows; 8: 0.9994
#: at 1.6x the time).
NPROBE = 4
#: ``ivf``: rows per list on average (``nlist = N / LIST_ROWS``): each row scans about
#: ``nprobe * LIST_ROWS`` candidates whatever N, so the scan is linear in N.
LIST_ROWS = 256
#: ``ivf``: a list holds at most ``LIST_CAP`` x the mean list size (see ``_capped_lists``).
LIST_CAP = 1.5
#: ``ivf``: k-means sample rows per list, and the width of the PCA the coarse step runs in.
TRAIN_PER_LIST = 32
COARSE_DIM = 128
#: ``ivf``: the coarse step runs on the PCA from this many lists (~130,000 rows) on.
COARSE_PCA_LISTS = 512
#: An approximate graph's measured recall under this is warned about: on real T0 features a
#: 10% pick's template coverage was within a point of exact's from recall 0.65 up, 1.2 points
#: below at 0.43 and 2.9 below at 0.24 (docs/performance.md, "On real features").
LOW_RECALL = 0.5
#: query rows of the recall estimate: at most this many, and at most ``RECALL_PAIRS / N``.
RECALL_QUERIES = 1000
RECALL_PAIRS = 2 * 10**8


class Rows:
    """Unit-length float32 rows of ``X`` (any float dtype, possibly memory-mapped), a batch at a
    time; zero rows stay zero. Only the (N,) inverse norms are kept."""

    def __init__(self, X: np.ndarray, batch_rows: int = 16384) -> None:
        self.X = X
        self.n, self.d = X.shape
        inv = np.empty(self.n, dtype=np.float32)
        for s in range(0, self.n, batch_rows):
            b = np.asarray(X[s : s + batch_rows], dtype=np.float32)
            nrm = np.sqrt(np.einsum("ij,ij->i", b, b))
            inv[s : s + batch_rows] = np.where(nrm > 0, 1.0 / np.where(nrm > 0, nrm, 1.0), 0.0)
        self.inv = inv

    def get(self, idx: np.ndarray | slice) -> np.ndarray:
        """The rows ``idx`` (sorted indices are fastest on a memory map), unit length, float32."""
        b = np.asarray(self.X[idx], dtype=np.float32)
        b = b * self.inv[idx][:, None]
        return np.ascontiguousarray(b)


def merge_topk(TS: np.ndarray, TI: np.ndarray, rows: np.ndarray, sims: np.ndarray, ids: np.ndarray) -> None:
    """Merge candidate ``sims``/``ids`` (``(m, c)``) into the running top-k of ``rows`` in place."""
    k = TS.shape[1]
    cs = np.concatenate([TS[rows], sims], axis=1)
    ci = np.concatenate([TI[rows], np.broadcast_to(ids, sims.shape) if ids.ndim == 1 else ids], axis=1)
    p = np.argpartition(-cs, k - 1, axis=1)[:, :k]
    TS[rows] = np.take_along_axis(cs, p, axis=1)
    TI[rows] = np.take_along_axis(ci, p, axis=1)


def _empty(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


def exact_knn(R: Rows, k: int, queries: np.ndarray | None = None, *, batch_rows: int = 8192
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products of ``queries`` (rows of ``R``; all when None) against all rows:
    ``(sims, ids)``, each ``(m, k)``, unsorted within a row."""
    import faiss

    q = np.arange(R.n) if queries is None else np.asarray(queries)
    TS, TI = _empty(q.size, k)
    for b0 in range(0, R.n, EXACT_BLOCK_ROWS):
        b1 = min(R.n, b0 + EXACT_BLOCK_ROWS)
        index = faiss.IndexFlatIP(R.d)
        index.add(R.get(slice(b0, b1)))
        kb = min(k, b1 - b0)
        for s in range(0, q.size, batch_rows):
            sl = slice(s, s + batch_rows)
            qs = q[sl]
            Q = R.get(slice(qs[0], qs[-1] + 1)) if queries is None else R.get(np.sort(qs))[np.argsort(np.argsort(qs))]
            sims, ids = index.search(Q, kb)
            ids = np.where(ids >= 0, ids + b0, -1)
            if b0 == 0 and kb == k:
                TS[sl], TI[sl] = sims, ids
            else:
                merge_topk(TS, TI, np.arange(sl.start, sl.start + qs.size), sims, ids)
    return TS, TI


def ivf_knn(R: Rows, k: int, *, nlist: int | None = None, nprobe: int = NPROBE, random_state: int = 0,
            max_block: int = 4096) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Approximate top-k of every row: the BLAS-scanned inverted file of the module docstring.

    The coarse step (k-means on a sample of ``TRAIN_PER_LIST * nlist`` rows, and each row's
    ``nprobe`` nearest centroids) runs on a ``COARSE_DIM``-d PCA of the rows when they are wider
    than that; the scan of the lists, and so every similarity in the graph, uses the full rows.
    """
    import faiss

    n, d = R.n, R.d
    nlist = max(1, min(nlist or int(round(n / LIST_ROWS)), n // 8 or 1))
    nprobe = min(nprobe, nlist)
    rng = np.random.default_rng(random_state)
    sample = R.get(np.sort(rng.choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False)))
    pca = None
    if d > 2 * COARSE_DIM and nlist >= COARSE_PCA_LISTS:  # the coarse step would cost as much as the scan
        mu = sample.mean(0)
        _, V = np.linalg.eigh(((sample - mu).T @ (sample - mu)).astype(np.float64))
        P = np.ascontiguousarray(V[:, ::-1][:, :COARSE_DIM], dtype=np.float32)

        def pca(B: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray((B - mu) @ P)

        sample = pca(sample)
    km = faiss.Kmeans(sample.shape[1], nlist, niter=10, seed=random_state, max_points_per_centroid=TRAIN_PER_LIST,
                      min_points_per_centroid=1, verbose=False)  # a 32-row sample per list is by design: no warning
    km.train(sample)
    del sample
    coarse = faiss.IndexFlatL2(km.centroids.shape[1])
    coarse.add(km.centroids)
    probes = np.empty((n, nprobe), dtype=np.int32)
    for s in range(0, n, 16384):
        B = R.get(slice(s, s + 16384))
        probes[s : s + 16384] = coarse.search(pca(B) if pca is not None else B, nprobe)[1]
    primary = _capped_lists(probes, nlist, int(LIST_CAP * n / nlist) + 1, rng)
    members = np.argsort(primary, kind="stable")
    mstart = np.searchsorted(primary[members], np.arange(nlist + 1))
    flat = probes.ravel()
    qorder = np.argsort(flat, kind="stable")
    qstart = np.searchsorted(flat[qorder], np.arange(nlist + 1))
    qrows = qorder // nprobe  # queries of each list, ascending
    del probes, flat, qorder
    TS, TI = _empty(n, k)
    for c in range(nlist):
        B = members[mstart[c] : mstart[c + 1]]
        Q = qrows[qstart[c] : qstart[c + 1]]
        if not B.size or not Q.size:
            continue
        XB = R.get(B)
        for s in range(0, Q.size, max_block):
            Qs = Q[s : s + max_block]
            merge_topk(TS, TI, Qs, R.get(Qs) @ XB.T, B)
    sizes = np.diff(mstart)
    return TS, TI, {"nlist": int(nlist), "nprobe": int(nprobe), "coarse_dim": COARSE_DIM if pca else d,
                    "largest_list": int(sizes.max())}


def _capped_lists(probes: np.ndarray, nlist: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """The list each row is stored in: its nearest centroid with room left (at most ``cap`` rows a
    list, rows taken in random order), else its next nearest probed one, else a random list with
    room (the row still searches its own probes; only its chance to be found shrinks).

    In high dimensions a few centroids are nearest to most rows of a dense region (hubness);
    uncapped, one list held 30x the mean at 100,000 synthetic rows and its scan cost (its
    queries x its members) dominated. Capped, every row scans at most ``nprobe * cap`` rows, and a
    displaced row sits in a list its neighbours are likely to probe too.
    """
    n, nprobe = probes.shape
    out = np.full(n, -1, dtype=np.int64)
    room = np.full(nlist, cap, dtype=np.int64)
    for r in range(nprobe):
        u = np.flatnonzero(out < 0)
        if not u.size:
            break
        u = u[rng.permutation(u.size)]
        lists = probes[u, r].astype(np.int64)
        order = np.argsort(lists, kind="stable")
        ls = lists[order]
        first = np.searchsorted(ls, ls, side="left")
        rank = np.arange(ls.size) - first  # position within its list among this round's rows
        ok = rank < room[ls]
        out[u[order[ok]]] = ls[ok]
        np.subtract.at(room, ls[ok], 1)
    left = np.flatnonzero(out < 0)  # every probed list full: any list with room (total room >= n)
    slots = np.repeat(np.arange(nlist), np.maximum(room, 0))
    out[left] = slots[rng.permutation(slots.size)[: left.size]]
    return out


def hnsw_knn(R: Rows, k: int, *, M: int = 32, ef_search: int | None = None, batch_rows: int = 16384
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Approximate top-k of every row with faiss ``IndexHNSWFlat`` (keeps a float32 copy)."""
    import faiss

    index = faiss.IndexHNSWFlat(R.d, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    for s in range(0, R.n, batch_rows):
        index.add(R.get(slice(s, s + batch_rows)))
    index.hnsw.efSearch = ef_search or max(2 * k, 64)
    TS, TI = _empty(R.n, k)
    for s in range(0, R.n, batch_rows):
        TS[s : s + batch_rows], TI[s : s + batch_rows] = index.search(R.get(slice(s, s + batch_rows)), k)
    return TS, TI, {"M": M, "efSearch": int(index.hnsw.efSearch), "efConstruction": 40}


def gpu_count() -> int:
    """GPUs a GPU build of faiss sees (0 for a CPU build)."""
    try:
        import faiss

        return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except Exception:  # pragma: no cover - a broken CUDA setup reads as no GPU
        return 0


def gpu_exact_knn(R: Rows, k: int, *, batch_rows: int = 65536) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Exact top-k on all GPUs (faiss ``IndexFlatIP`` cloned to the GPUs; float32 copy there)."""
    import faiss

    index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(R.d))
    for s in range(0, R.n, batch_rows):
        index.add(R.get(slice(s, s + batch_rows)))
    TS, TI = _empty(R.n, k)
    for s in range(0, R.n, batch_rows):
        TS[s : s + batch_rows], TI[s : s + batch_rows] = index.search(R.get(slice(s, s + batch_rows)), k)
    return TS, TI


def build_knn_graph(X: np.ndarray, n_neighbors: int, *, graph: str = "auto", nprobe: int = NPROBE,
                    nlist: int | None = None, random_state: int = 0, recall_queries: int | None = None
                    ) -> tuple[scipy.sparse.csr_matrix, dict[str, Any]]:
    """The kNN similarity graph of ``X`` and a record of how it was built.

    Parameters
    ----------
    X : (n, d) float array (float16 and memory maps are read in batches); rows are L2-normalised
        here, zero rows stay zero.
    n_neighbors : neighbours per row, itself included (capped at ``n``).
    graph : ``"auto"``, ``"exact"``, ``"ivf"`` or ``"hnsw"`` (module docstring).
    nprobe, nlist : ``ivf``'s lists probed per row and number of lists (None: ``n / LIST_ROWS``).
    random_state : seed of the k-means sample and of the recall sample.
    recall_queries : query rows of the recall estimate of an approximate graph (None: up to
        ``RECALL_QUERIES``, fewer on large pools so that it costs at most ``RECALL_PAIRS`` pairs;
        0: not measured, ``recall@k`` None).

    Returns
    -------
    S : (n, n) CSR, ``S[i, j] = max(0, cos(x_i, x_j))`` for ``j`` among the neighbours of ``i``.
    info : ``{"index": ..., "n_neighbors": k, "recall@k": ..., "recall_queries": ..., "seconds": ...}``
        plus the index's parameters.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float16)
    >>> S, info = build_knn_graph(X, 8, graph="ivf", nlist=8, nprobe=8)
    >>> S.shape, info["index"], info["recall@8"]
    ((500, 500), 'ivf', 1.0)
    """
    import scipy.sparse

    t = time.perf_counter()
    R = Rows(X)
    n = R.n
    k = min(n_neighbors, n)
    gpus = gpu_count()
    kind = graph
    if graph == "auto":
        kind = "exact" if n <= (GPU_EXACT_MAX_ROWS if gpus else EXACT_MAX_ROWS) else "ivf"
    info: dict[str, Any] = {"index": kind, "n_neighbors": k}
    if kind == "exact" and gpus:  # pragma: no cover - needs a GPU build of faiss
        TS, TI = gpu_exact_knn(R, k)
        info["index"] = "exact-gpu"
    elif kind == "exact":
        TS, TI = exact_knn(R, k)
    elif kind == "ivf":
        TS, TI, params = ivf_knn(R, k, nlist=nlist, nprobe=nprobe, random_state=random_state)
        info.update(params)
    elif kind == "hnsw":
        TS, TI, params = hnsw_knn(R, k)
        info.update(params)
    else:
        raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {graph!r}")
    info["seconds"] = round(time.perf_counter() - t, 3)
    m = recall_queries if recall_queries is not None else min(RECALL_QUERIES, max(100, RECALL_PAIRS // n))
    if kind == "exact":
        info[f"recall@{k}"], info["recall_queries"] = 1.0, 0
    elif m > 0:
        info[f"recall@{k}"], info["recall_queries"] = recall_at_k(R, TI, m, random_state), min(m, n)
    else:  # not measured (a RandGreeDi part: its caller measures nothing per part)
        info[f"recall@{k}"], info["recall_queries"] = None, 0
    log.info("kNN graph: %s", info)
    if info[f"recall@{k}"] is not None and info[f"recall@{k}"] < LOW_RECALL:
        log.warning("the %s kNN graph found %.0f%% of the exact %d nearest neighbours on %d sampled rows: on real T0 "
                    "features, template coverage fell 1-3 points at such recall (docs/performance.md); raise nprobe "
                    "(--param nprobe=16) or use --param graph=exact", kind, 100 * info[f"recall@{k}"], k,
                    info["recall_queries"])
    missing = TI < 0
    np.maximum(TS, 0, out=TS)
    TS[missing] = 0.0
    TI[missing] = np.nonzero(missing)[0]  # a harmless zero: removed below
    S = scipy.sparse.csr_matrix((TS.ravel(), TI.ravel().astype(np.int32), np.arange(0, n * k + 1, k)), shape=(n, n))
    del TS, TI
    S.sum_duplicates()
    S.eliminate_zeros()
    return S, info


def recall_at_k(R: Rows, TI: np.ndarray, m: int, seed: int = 0) -> float:
    """Mean share of the true top-k of ``m`` seeded random rows found in ``TI`` (ties at the k-th
    similarity count as found)."""
    k = TI.shape[1]
    q = np.sort(np.random.default_rng(seed + 1).choice(R.n, size=min(m, R.n), replace=False))
    gs, gi = exact_knn(R, k, q)
    Q = R.get(q)
    found = 0
    for j, row in enumerate(q):
        got = TI[row][TI[row] >= 0]
        kth = gs[j].min()
        mine = (R.get(got) @ Q[j]) if got.size else np.empty(0)
        # found: true neighbours returned, plus returned rows tied with the k-th true similarity
        found += min(k, np.intersect1d(gi[j], got).size + int(((mine >= kth) & ~np.isin(got, gi[j])).sum()))
    return round(found / (q.size * k), 4)
