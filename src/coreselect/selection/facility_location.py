"""Facility location on a sparse k-nearest-neighbour graph, maximised by lazy greedy.

The objective is ``f(S) = sum_i max_{j in S} sim(i, j)`` with ``sim = max(0, cosine)``: every
example should have a similar pick. Unlike k-center it rewards covering dense regions, so
outliers are not chased. ``sim(i, j)`` is kept only when ``j`` is among the ``n_neighbors``
nearest rows of ``i``, so memory is O(N * n_neighbors), never N x N. The neighbours are exact
(faiss ``IndexFlatIP``, O(N^2 d)) up to 50,000 rows and approximate above (an inverted file
scanned with BLAS, O(N d)); ``graph=`` forces either, see :mod:`coreselect.selection.knn_graph`,
and ``info_`` (the manifest's ``method.info``) records the index and its measured recall. Picking ``j`` gains ``sum_i max(0, sim(i, j) - best_i)``, a sum over the rows that have
``j`` as a neighbour: one column of the graph.

``f`` is monotone submodular, so a gain never grows as picks are added; lazy greedy (Minoux
1978) keeps stale gains as upper bounds in a heap and re-evaluates only the top, picking exactly
what plain greedy picks (a ``1 - 1/e`` approximation). Ties go to a seeded random order.

For very large budgets ``optimizer="stochastic"`` (stochastic greedy, Mirzasoleiman et al.
2015) evaluates ``O(N ln(1/epsilon))`` gains in all instead of lazy greedy's worst case
``O(N k)``. Under ``--engine ray`` the selector runs RandGreeDi (:mod:`coreselect.selection.greedi`).

The default ``n_neighbors=64``: at a 10% budget each pick stands for about ten rows, and 64
neighbours let a gain see density several times further than that. Raise it for budgets far
below 2% of the pool; at ``n_neighbors >= N`` the graph is dense and the objective exact.
"""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.selection._params import check_float
from coreselect.selection.base import Selector, register
from coreselect.selection.knn_graph import GRAPHS, NPROBE, build_knn_graph

if TYPE_CHECKING:
    import scipy.sparse

log = logging.getLogger(__name__)


def knn_similarity_graph(X: np.ndarray, n_neighbors: int) -> scipy.sparse.csr_matrix:
    """Sparse ``max(0, cosine)`` similarity of every row to its ``n_neighbors`` nearest rows (exact).

    Parameters
    ----------
    X : (n, d) float array; rows are L2-normalised here (zero rows stay zero).
    n_neighbors : neighbours per row, itself included (capped at ``n``).

    Returns
    -------
    S : (n, n) CSR matrix, ``S[i, j] = max(0, cos(x_i, x_j))`` for ``j`` among the neighbours
        of ``i``; zeros are not stored. :func:`~coreselect.selection.knn_graph.build_knn_graph`
        builds it approximately too.

    Examples
    --------
    >>> X = np.array([[1, 0], [1, 0.1], [-1, 0]], dtype=np.float32)
    >>> knn_similarity_graph(X, 2).toarray().round(2).tolist()
    [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    return build_knn_graph(X, n_neighbors, graph="exact")[0]


def _column_gains(C: scipy.sparse.csc_matrix, best: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``sum_i max(0, C[i, j] - best[i])`` for each column ``j`` of ``cols``, vectorised."""
    lo = C.indptr[cols]
    ln = C.indptr[cols + 1] - lo
    out = np.zeros(cols.size)
    total = int(ln.sum())
    if total == 0:
        return out
    ends = np.cumsum(ln)
    pos = np.repeat(lo - ends + ln, ln) + np.arange(total)
    v = np.maximum(C.data[pos] - best[C.indices[pos]], 0.0)
    nz = ln > 0
    out[nz] = np.add.reduceat(v, (ends - ln)[nz])
    return out


def facility_location_greedy(
    S: scipy.sparse.spmatrix | np.ndarray, n_select: int, *, random_state: int = 0, bonus: np.ndarray | None = None,
    costs: np.ndarray | None = None, budget: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lazy greedy maximisation of ``f(T) = sum_i max_{j in T} S[i, j] + sum_{j in T} bonus[j]``
    (``S >= 0``, ``bonus >= 0``), optionally under a cost budget.

    Parameters
    ----------
    S : (n, n) non-negative similarity, sparse or dense; ``S[i, j]`` is how well pick ``j``
        represents row ``i``.
    n_select : number of picks, ``1 <= n_select <= n`` (with a budget: at most this many).
    random_state : seed of the tie-breaking order.
    bonus : (n,) non-negative gain of picking each row on top of its coverage (a modular term:
        ``f`` stays monotone submodular), e.g. a quality score; None: none.
    costs, budget : (n,) positive cost of each row and the most the picks may cost in all. Each
        step then picks the row of largest gain per cost among those that still fit (the
        cost-benefit greedy of Leskovec et al. 2007), until ``n_select`` picks or nothing fits.

    Returns
    -------
    indices : (n_picks,) int64, in pick order (``n_picks = n_select`` without a budget).
    gains : (n_picks,) float64, the marginal gain of each pick, bonus included (non-increasing
        without a budget; per cost non-increasing with one).

    Examples
    --------
    >>> S = np.array([[1.0, 0.9, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> idx, gains = facility_location_greedy(S, 2)
    >>> idx.tolist(), gains.round(2).tolist()
    ([1, 2], [1.9, 1.0])
    >>> facility_location_greedy(S, 2, bonus=np.array([0.0, 0.0, 1.0]))[0].tolist()
    [2, 1]
    >>> facility_location_greedy(S, 3, costs=np.array([1.0, 4.0, 1.0]), budget=2.5)[0].tolist()
    [0, 2]
    """
    import scipy.sparse

    C = scipy.sparse.csc_matrix(S, dtype=np.float64)
    C.sort_indices()
    n = C.shape[1]
    indptr, rows_of, vals_of = C.indptr, C.indices, C.data
    best = np.zeros(C.shape[0], dtype=np.float64)  # max similarity of each row to the picks
    extra = np.zeros(n) if bonus is None else np.asarray(bonus, dtype=np.float64)
    cost = np.ones(n) if costs is None else np.asarray(costs, dtype=np.float64)
    left = np.inf if budget is None else float(budget)

    def gain(j: int) -> float:
        r = rows_of[indptr[j] : indptr[j + 1]]
        return float(np.maximum(vals_of[indptr[j] : indptr[j + 1]] - best[r], 0.0).sum()) + extra[j]

    tie = np.random.default_rng(random_state).permutation(n)
    # keys: -(gain / cost); gains only shrink as picks are added and costs are fixed, so a stale
    # key stays an upper bound (lazy greedy stays exact, with or without costs). First gains:
    # column sums (nothing is covered yet), vectorised.
    first = np.zeros(n)
    nz = np.flatnonzero(np.diff(indptr) > 0)
    if nz.size:
        first[nz] = np.add.reduceat(np.maximum(vals_of, 0.0), indptr[nz])
    keys = (-(first + extra) / cost).tolist()
    fits = cost <= left
    heap = list(zip(keys, tie.tolist(), range(n))) if fits.all() else \
        [(keys[j], int(tie[j]), j) for j in np.flatnonzero(fits).tolist()]
    heapq.heapify(heap)
    indices: list[int] = []
    gains: list[float] = []
    evaluations = n
    while len(indices) < n_select and heap:
        while heap:
            _, rank, j = heapq.heappop(heap)
            if cost[j] > left:  # no longer fits, and never will again
                continue
            g = gain(j)
            evaluations += 1
            # fresh key still at least every other upper bound: plain greedy would pick j too
            if not heap or (-g / cost[j], rank) <= heap[0][:2]:
                break
            heapq.heappush(heap, (-g / cost[j], rank, j))
        else:
            break
        indices.append(j)
        gains.append(g)
        left -= cost[j]
        lo, hi = indptr[j], indptr[j + 1]
        r = rows_of[lo:hi]
        best[r] = np.maximum(best[r], vals_of[lo:hi])
    log.debug("facility location: %d gain evaluations for %d picks", evaluations, len(indices))
    return np.array(indices, dtype=np.int64), np.array(gains, dtype=np.float64)


def stochastic_greedy(S: scipy.sparse.spmatrix | np.ndarray, n_select: int, *, epsilon: float = 0.01,
                      random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic greedy ("lazier than lazy greedy", Mirzasoleiman et al. 2015, arXiv 1409.7938)
    maximisation of ``f(T) = sum_i max_{j in T} S[i, j]``.

    Each step evaluates a fresh random sample of ``s = ceil(n / n_select * ln(1 / epsilon))``
    unpicked rows and picks the one of largest gain: ``(1 - 1/e - epsilon)``-approximate in
    expectation with ``O(n ln(1 / epsilon))`` gain evaluations in all, whatever ``n_select``
    (lazy greedy's worst case is ``O(n * n_select)``).

    Returns ``(indices, gains)`` as :func:`facility_location_greedy` (gains need not decrease).

    Examples
    --------
    >>> S = np.array([[1.0, 0.9, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> stochastic_greedy(S, 3)[0].shape
    (3,)
    """
    import scipy.sparse

    C = scipy.sparse.csc_matrix(S, dtype=np.float64)
    n = C.shape[1]
    best = np.zeros(C.shape[0], dtype=np.float64)
    rng = np.random.default_rng(random_state)
    s = max(1, min(n, int(np.ceil(n / n_select * np.log(1.0 / epsilon)))))
    picked = np.zeros(n, dtype=bool)
    indices = np.empty(n_select, dtype=np.int64)
    gains = np.empty(n_select, dtype=np.float64)
    for t in range(n_select):
        left = n - t
        if left <= 2 * s:  # few rows left: sample exactly, without replacement
            free = np.flatnonzero(~picked)
            cand = free if left <= s else rng.choice(free, size=s, replace=False)
        else:  # rejection: draw, drop picked rows and repeats
            cand = rng.integers(0, n, size=s)
            cand = np.unique(cand[~picked[cand]])
        g = _column_gains(C, best, cand)
        i = int(np.argmax(g))
        j = int(cand[i])
        indices[t], gains[t] = j, g[i]
        picked[j] = True
        lo, hi = C.indptr[j], C.indptr[j + 1]
        r = C.indices[lo:hi]
        best[r] = np.maximum(best[r], C.data[lo:hi])
    log.debug("stochastic greedy: %d samples of %d for %d picks", n_select, s, n_select)
    return indices, gains


OPTIMIZERS = ("lazy", "stochastic")


@register("facility-location")
class FacilityLocation(Selector):
    """Facility location (``max(0, cosine)`` on a kNN graph), maximised by lazy greedy.

    Parameters
    ----------
    n_select : number of examples to keep.
    n_neighbors : neighbours per row in the similarity graph (itself included); memory is
        O(N * n_neighbors). ``>= N`` gives the exact dense objective.
    graph : how the neighbours are found: ``"auto"`` (exact up to 50,000 rows, ``"ivf"`` above),
        ``"exact"``, ``"ivf"`` or ``"hnsw"`` (:mod:`coreselect.selection.knn_graph`).
    optimizer : ``"lazy"`` (lazy greedy: exactly the greedy picks) or ``"stochastic"``
        (stochastic greedy: ``O(N ln(1/epsilon))`` gain evaluations whatever the budget).
    epsilon : stochastic greedy's sample-size parameter (smaller: closer to greedy, slower).
    nprobe : lists each row searches in the ``ivf`` graph (recall against time).
    partition_picks : under ``--engine ray`` only: picks each partition keeps, as a multiple of
        its share ``n_select / partitions`` (``>= 1``); None: ``n_select`` each (RandGreeDi).
    random_state : seed of the tie-breaking order, the k-means sample and the random partition.

    Attributes
    ----------
    indices_ : picked row indices, in pick order.
    gains_ : marginal gain of each pick; ``gains_.cumsum()`` is the objective curve.
    info_ : how the graph was built (index, its parameters, measured ``recall@k``) and optimised;
        the selection manifest records it as ``method.info``.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> sel = FacilityLocation(n_select=10, n_neighbors=16).fit(X)
    >>> sel.indices_.shape, bool(np.all(np.diff(sel.gains_) <= 1e-9)), sel.info_["index"]
    ((10,), True, 'exact')
    """

    cost_aware = True
    distributed = True  # RandGreeDi on Ray actors: coreselect.distributed.selectors

    def __init__(self, n_select: int, *, n_neighbors: int = 64, graph: str = "auto", optimizer: str = "lazy",
                 epsilon: float = 0.01, nprobe: int = NPROBE, partition_picks: float | None = None,
                 random_state: int = 0) -> None:
        self.n_select = n_select
        self.n_neighbors = n_neighbors
        self.graph = graph
        self.optimizer = optimizer
        self.epsilon = epsilon
        self.nprobe = nprobe
        self.partition_picks = partition_picks
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        p = self.partition_picks
        return {"n_neighbors": self._int("n_neighbors", 1), "graph": self._choice("graph", GRAPHS),
                "optimizer": self._choice("optimizer", OPTIMIZERS),
                "epsilon": check_float(type(self).__name__, "epsilon", self.epsilon, 0.0, 1.0, low_open=True),
                "nprobe": self._int("nprobe", 1),
                "partition_picks": None if p is None else check_float(type(self).__name__, "partition_picks", p,
                                                                      1.0, 1e9)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, n_neighbors: int, graph: str, optimizer: str,
             epsilon: float, nprobe: int, partition_picks: float | None, random_state: int,
             costs: np.ndarray | None = None, budget: float | None = None) -> np.ndarray:
        if optimizer == "stochastic" and costs is not None:
            from coreselect.errors import ConfigError

            raise ConfigError("facility-location: a token budget needs optimizer='lazy' (cost-benefit greedy)")
        S, self.info_ = build_knn_graph(X, n_neighbors, graph=graph, nprobe=nprobe, random_state=random_state)
        idx, self.gains_ = fit_graph(S, self.n_select, optimizer, epsilon, random_state, costs, budget, self.info_)
        return idx


def fit_graph(S: scipy.sparse.csr_matrix, n_select: int, optimizer: str, epsilon: float, random_state: int,
              costs: np.ndarray | None, budget: float | None, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Run ``optimizer`` on the graph ``S``; adds the optimiser and the objective to ``info``."""
    import time

    t = time.perf_counter()
    if optimizer == "stochastic":
        idx, gains = stochastic_greedy(S, n_select, epsilon=epsilon, random_state=random_state)
        info.update(optimizer="stochastic", epsilon=epsilon)
    else:
        idx, gains = facility_location_greedy(S, n_select, random_state=random_state, costs=costs, budget=budget)
        info["optimizer"] = "lazy"
    info["greedy_seconds"] = round(time.perf_counter() - t, 3)
    info["objective"] = round(float(gains.sum()), 4)
    info["objective_max"] = round(float(S.max(axis=1).sum()), 4)
    log.info("facility-location: %d picks, objective %.4g of %.4g (graph: %s, %d entries)", len(idx),
             info["objective"], info["objective_max"], info["index"], S.nnz)
    return idx, gains
