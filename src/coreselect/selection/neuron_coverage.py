"""Neuron coverage (MADS read literally): pick examples that activate the most unseen neurons.

Each feature column is a neuron. An example *activates* a neuron when its pooled activation is
high: among its own ``top_k`` largest values (``mode="topk"``), or above the neuron's
``quantile`` over the pool (``mode="threshold"``). Weighted max coverage then picks, greedily,
the example whose activated neurons carry the most weight not yet covered; a neuron's weight is
its rarity ``log(N / count)`` (``weighting="idf"``; a neuron every example activates weighs 0)
or 1 (``"uniform"``). When nothing uncovered is left to gain, coverage resets and a new round
starts over the remaining examples, so the budget is always filled.

Gains are updated incrementally rather than lazily: each pick subtracts the weight of the states
it newly covers from the examples sharing them (a sparse column slice), so every gain is always
exact and a pick is one argmax. Lazy greedy's stale bounds help little here: with a few thousand
neurons and dozens per example, one pick lowers most examples' gains.

Weights are summed in fixed point (integers in units of ``2**-32``), which makes every gain
exact and independent of summation order: ties are real ties, broken by a seeded random order.

``X`` is the raw pooled activation matrix (:attr:`NeuronCoverage.wants_raw_features`), not
the centred, L2-normalised features other methods get.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

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
            blocks.append(scipy.sparse.csr_matrix((data, (rows, cols.ravel())), shape=(part.shape[0], d)))
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
    """Greedy weighted max coverage with rounds (coverage resets when nothing is left).

    Gains are kept exact and up to date: a pick subtracts each newly covered state's weight
    from the examples that share it (one sparse column slice), then the next pick is an argmax.

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
    >>> A = scipy.sparse.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]]))
    >>> idx, gains, rounds = max_coverage_greedy(A, np.ones(3), 3)
    >>> idx.tolist(), gains.tolist(), rounds.tolist()
    ([0, 1, 2], [2.0, 1.0, 1.0], [0, 0, 1])
    """
    import scipy.sparse

    A = scipy.sparse.csr_matrix(A)
    n, m = A.shape
    rows_A = scipy.sparse.csr_matrix(  # 0/1 int64 copy: products with W stay exact integers
        (np.ones(A.indices.size, dtype=np.int64), A.indices, A.indptr), shape=(n, m)
    )
    cols_A = rows_A.tocsc()
    W = np.round(np.asarray(weights, dtype=np.float64) * _SCALE).astype(np.int64)
    is_open = np.ones(m, dtype=bool)  # state not yet covered in this round
    tie = np.random.default_rng(random_state).permutation(n)
    picked = np.zeros(n, dtype=bool)

    def all_gains() -> np.ndarray:
        g = rows_A @ (W * is_open)
        g[picked] = -1  # below any real gain: never the maximum
        return g

    gain = all_gains()
    indices = np.empty(n_select, dtype=np.int64)
    gains = np.empty(n_select, dtype=np.int64)
    rounds = np.empty(n_select, dtype=np.int64)
    round_, covered_any, t = 0, False, 0
    while t < n_select:
        best = gain.max()
        if best == 0 and covered_any:  # everything coverable is covered: start a new round
            is_open[:] = True
            round_, covered_any = round_ + 1, False
            gain = all_gains()
            continue
        tied = np.flatnonzero(gain == best)
        i = int(tied[np.argmin(tie[tied])])
        indices[t], gains[t], rounds[t] = i, best, round_
        t += 1
        picked[i] = True
        gain[i] = -1
        states = rows_A.indices[rows_A.indptr[i] : rows_A.indptr[i + 1]]
        covered_any = covered_any or states.size > 0
        new = states[is_open[states]]
        if new.size:
            is_open[new] = False
            # every example sharing a newly covered state loses that state's weight
            gain -= cols_A[:, new] @ W[new]
            gain[picked] = -1
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

    def _check_params(self) -> dict[str, Any]:
        return {"mode": self._choice("mode", MODES), "top_k": self._int("top_k", 1),
                "quantile": self._float("quantile", 0.0, 1.0), "weighting": self._choice("weighting", WEIGHTINGS)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, mode: str, top_k: int, quantile: float,
             weighting: str, random_state: int) -> np.ndarray:
        A = activation_states(X, mode=mode, top_k=top_k, quantile=quantile)
        self.weights_ = state_weights(A, weighting)
        idx, self.gains_, self.rounds_ = max_coverage_greedy(
            A, self.weights_, self.n_select, random_state=random_state
        )
        log.info(
            "neuron-coverage: %d picks over %d rounds; %d of %d neurons ever active",
            self.n_select,
            int(self.rounds_[-1]) + 1,
            int((np.bincount(A.indices, minlength=A.shape[1]) > 0).sum()),
            A.shape[1],
        )
        return idx
