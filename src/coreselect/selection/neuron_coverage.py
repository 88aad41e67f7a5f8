"""Neuron coverage (MADS read literally): pick examples that activate the most unseen neurons.

Each feature column is a neuron. An example *activates* a neuron when its pooled activation is
high: among its own ``top_k`` largest values (``mode="topk"``), or above the neuron's
``quantile`` over the pool (``mode="threshold"``). Weighted max coverage then picks, greedily,
the example whose activated neurons carry the most weight not yet covered; a neuron's weight is
its rarity ``log(N / count)`` (``weighting="idf"``; a neuron every example activates weighs 0)
or 1 (``"uniform"``). Coverage is submodular, so lazy greedy with stale upper bounds in a heap
picks exactly what plain greedy picks. When nothing uncovered is left to gain, coverage resets
and a new round starts over the remaining examples, so the budget is always filled.

Weights are summed in fixed point (integers in units of ``2**-32``), which makes every gain
exact and independent of summation order: ties are real ties, broken by a seeded random order.

``X`` is the raw pooled activation matrix (:attr:`NeuronCoverage.wants_raw_features`), not
the centred, L2-normalised features other methods get.
"""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING

import numpy as np

from coreselect.selection._params import check_choice, check_float, check_int, check_seed
from coreselect.selection.base import Selector, register

if TYPE_CHECKING:
    import scipy.sparse

log = logging.getLogger(__name__)

MODES = ("topk", "threshold")
WEIGHTINGS = ("idf", "uniform")
#: Fixed-point unit of the weights: gains are exact sums of integers.
_SCALE = float(2**32)
_BLOCK_ROWS = 4096


def activation_states(
    X: np.ndarray, *, mode: str = "topk", top_k: int = 32, quantile: float = 0.9
) -> scipy.sparse.csr_matrix:
    """Boolean incidence matrix: ``A[i, j]`` when example ``i`` activates neuron ``j``.

    Parameters
    ----------
    X : (n, d) float32 activations, trusted.
    mode : ``"topk"``: each row's ``min(top_k, d)`` largest columns (ties: an arbitrary but
        deterministic choice). ``"threshold"``: columns strictly above that column's
        ``quantile`` over all rows.
    top_k : neurons per example in ``"topk"`` mode.
    quantile : per-neuron quantile in ``"threshold"`` mode.

    Returns
    -------
    A : (n, d) CSR matrix of bool, sorted indices.

    Examples
    --------
    >>> X = np.array([[3, 1, 2], [0, 5, 1]], dtype=np.float32)
    >>> activation_states(X, top_k=2).toarray().astype(int).tolist()
    [[1, 0, 1], [0, 1, 1]]
    """
    import scipy.sparse

    n, d = X.shape
    blocks = []
    if mode == "topk":
        k = min(top_k, d)
        for s in range(0, n, _BLOCK_ROWS):
            part = X[s : s + _BLOCK_ROWS]
            cols = np.argpartition(-part, k - 1, axis=1)[:, :k]
            rows = np.repeat(np.arange(part.shape[0]), k)
            data = np.ones(rows.size, dtype=bool)
            blocks.append(
                scipy.sparse.csr_matrix((data, (rows, cols.ravel())), shape=(part.shape[0], d))
            )
    else:
        thresholds = np.empty(d, dtype=np.float64)
        for s in range(0, d, 256):
            thresholds[s : s + 256] = np.quantile(X[:, s : s + 256], quantile, axis=0)
        for s in range(0, n, _BLOCK_ROWS):
            blocks.append(scipy.sparse.csr_matrix(X[s : s + _BLOCK_ROWS] > thresholds))
    A = scipy.sparse.vstack(blocks, format="csr") if blocks else scipy.sparse.csr_matrix((n, d))
    A.sort_indices()
    return A.astype(bool)


def state_weights(A: scipy.sparse.csr_matrix, weighting: str = "idf") -> np.ndarray:
    """Weight of each neuron: ``log(N / count)`` (``"idf"``) or 1 (``"uniform"``); 0 if unused.

    Examples
    --------
    >>> import scipy.sparse
    >>> A = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=bool))
    >>> state_weights(A).round(3).tolist(), state_weights(A, "uniform").tolist()
    ([0.693, 0.0, 0.0], [1.0, 1.0, 0.0])
    """
    counts = np.bincount(A.indices, minlength=A.shape[1])
    if weighting == "uniform":
        return (counts > 0).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.where(counts > 0, np.log(A.shape[0] / np.maximum(counts, 1)), 0.0)


def max_coverage_greedy(
    A: scipy.sparse.spmatrix, weights: np.ndarray, n_select: int, *, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lazy greedy weighted max coverage with rounds (coverage resets when nothing is left).

    Parameters
    ----------
    A : (n, m) sparse incidence, example ``i`` covers state ``j`` when ``A[i, j]`` is non-zero.
    weights : (m,) non-negative state weights.
    n_select : number of picks, ``1 <= n_select <= n``.
    random_state : seed of the tie-breaking order.

    Returns
    -------
    indices : (n_select,) int64, in pick order.
    gains : (n_select,) float64, newly covered weight of each pick.
    rounds : (n_select,) int64, the coverage round of each pick (0 first).

    Examples
    --------
    >>> import scipy.sparse
    >>> A = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]]))
    >>> idx, gains, rounds = max_coverage_greedy(A, np.ones(3), 3)
    >>> gains.tolist(), rounds.tolist()
    ([2.0, 1.0, 2.0], [0, 0, 1])
    """
    import scipy.sparse

    A = scipy.sparse.csr_matrix(A)
    A.sort_indices()
    n = A.shape[0]
    indptr, cols_of = A.indptr, A.indices
    W = np.round(np.asarray(weights, dtype=np.float64) * _SCALE).astype(np.int64)
    incidence = scipy.sparse.csr_matrix(
        (np.ones(cols_of.size, dtype=np.int64), cols_of, indptr), shape=A.shape
    )
    open_ = np.ones(A.shape[1], dtype=np.int64)  # 1 = not yet covered in this round
    tie = np.random.default_rng(random_state).permutation(n)
    picked = np.zeros(n, dtype=bool)

    def gain(i: int) -> int:
        c = cols_of[indptr[i] : indptr[i + 1]]
        return int((W[c] * open_[c]).sum())

    def fresh_heap() -> list[tuple[int, int, int]]:
        all_gains = incidence @ (W * open_)  # exact: integer arithmetic
        heap = [(-int(all_gains[i]), int(tie[i]), i) for i in np.flatnonzero(~picked).tolist()]
        heapq.heapify(heap)
        return heap

    heap = fresh_heap()
    indices = np.empty(n_select, dtype=np.int64)
    gains = np.empty(n_select, dtype=np.int64)
    rounds = np.empty(n_select, dtype=np.int64)
    round_, covered_any, t = 0, False, 0
    while t < n_select:
        while True:
            _, rank, i = heapq.heappop(heap)
            g = gain(i)
            if not heap or (-g, rank) <= heap[0][:2]:
                break
            heapq.heappush(heap, (-g, rank, i))
        if g == 0 and covered_any:  # everything coverable is covered: start a new round
            open_[:] = 1
            round_, covered_any = round_ + 1, False
            heap = fresh_heap()  # i is not picked, so it is back in the heap
            continue
        c = cols_of[indptr[i] : indptr[i + 1]]
        open_[c] = 0
        covered_any = covered_any or c.size > 0
        picked[i] = True
        indices[t], gains[t], rounds[t] = i, g, round_
        t += 1
    return indices, gains / _SCALE, rounds


@register("neuron-coverage")
class NeuronCoverage(Selector):
    """Weighted neuron-coverage greedy over raw pooled activations (MADS).

    Parameters
    ----------
    n_select : number of examples to keep.
    mode : ``"topk"`` (each example activates its ``top_k`` largest neurons) or
        ``"threshold"`` (neurons above their per-neuron ``quantile``).
    top_k : neurons per example in ``"topk"`` mode (capped at the number of features).
    quantile : per-neuron quantile in ``"threshold"`` mode.
    weighting : ``"idf"`` (rare neurons weigh ``log(N / count)``) or ``"uniform"``.
    random_state : seed of the tie-breaking order.

    Attributes
    ----------
    indices_ : picked row indices, in pick order.
    gains_ : newly covered weight of each pick.
    rounds_ : coverage round of each pick (coverage resets when exhausted).
    weights_ : weight of each neuron.

    Examples
    --------
    >>> X = np.random.default_rng(0).random((200, 64)).astype(np.float32)
    >>> sel = NeuronCoverage(n_select=20, top_k=4).fit(X)
    >>> sel.indices_.shape, int(sel.rounds_[0])
    ((20,), 0)
    """

    wants_raw_features = True

    def __init__(
        self,
        n_select: int,
        *,
        mode: str = "topk",
        top_k: int = 32,
        quantile: float = 0.9,
        weighting: str = "idf",
        random_state: int = 0,
    ) -> None:
        self.n_select = n_select
        self.mode = mode
        self.top_k = top_k
        self.quantile = quantile
        self.weighting = weighting
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        owner = type(self).__name__
        mode = check_choice(owner, "mode", self.mode, MODES)
        top_k = check_int(owner, "top_k", self.top_k, 1)
        quantile = check_float(owner, "quantile", self.quantile, 0.0, 1.0)
        weighting = check_choice(owner, "weighting", self.weighting, WEIGHTINGS)
        seed = check_seed(owner, self.random_state)
        A = activation_states(X, mode=mode, top_k=top_k, quantile=quantile)
        self.weights_ = state_weights(A, weighting)
        idx, self.gains_, self.rounds_ = max_coverage_greedy(
            A, self.weights_, self.n_select, random_state=seed
        )
        log.info(
            "neuron-coverage: %d picks over %d rounds; %d of %d neurons ever active",
            self.n_select,
            int(self.rounds_[-1]) + 1,
            int((np.bincount(A.indices, minlength=A.shape[1]) > 0).sum()),
            A.shape[1],
        )
        return idx
