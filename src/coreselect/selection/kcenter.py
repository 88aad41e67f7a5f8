"""k-center greedy (Gonzalez 1985; Sener & Savarese 2018): the coverage core set of MADS.

Each step adds the point farthest from everything picked so far, so the covering radius
(the largest distance from any point to its nearest pick) shrinks as fast as a greedy can;
it is a 2-approximation of the optimal k-center radius.

The kernels (:mod:`._kcenter_kernels`) keep one running minimum per point, computed with
matrix-vector products (``|x|^2 + |c|^2 - 2 x.c``), so memory stays O(N) and no k x N matrix is
ever formed; the default CPU kernel skips, by the triangle inequality, every group of points
that the new centre provably cannot get closer to.
"""

from __future__ import annotations

import numpy as np

from coreselect.selection.base import Selector, register

ALGORITHMS = ("auto", "pruned", "dense", "torch")


def kcenter_greedy(
    X: np.ndarray,
    n_select: int,
    *,
    first: int | None = None,
    random_state: int = 0,
    algorithm: str = "auto",
    block_rows: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_select`` rows of ``X`` by k-center greedy under the Euclidean distance.

    Parameters
    ----------
    X : (n, d) float32 array, trusted (validated by the caller).
    n_select : number of points to pick, ``1 <= n_select <= n``.
    first : index of the first pick; by default one drawn from ``random_state``.
    random_state : seed for the first pick.
    algorithm : ``"pruned"`` (triangle-inequality pruning, the CPU default), ``"dense"`` (every
        point at every pick), ``"torch"`` (dense on CUDA) or ``"auto"`` (torch when CUDA is
        present, pruned otherwise). All give the same picks up to floating-point ties.
    block_rows : rows per block of the dense update.

    Returns
    -------
    indices : (n_select,) int64, in pick order.
    radii : (n_select,) float32; ``radii[j]`` is the covering radius after ``j + 1`` picks.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    >>> kcenter_greedy(X, 3, first=0)[0].tolist()
    [0, 2, 3]
    """
    from coreselect.selection import _kcenter_kernels as kk

    n = X.shape[0]
    if first is None:
        first = int(np.random.default_rng(random_state).integers(n))
    if algorithm == "auto":
        algorithm = "torch" if _cuda() else "pruned"
    if algorithm == "pruned":
        return kk.kcenter_pruned(X, n_select, first)
    if algorithm == "dense":
        return kk.kcenter_dense(X, n_select, first, block_rows)
    if algorithm == "torch":
        return kk.kcenter_torch(X, n_select, first, "cuda" if _cuda() else "cpu")
    raise ValueError(f"unknown k-center algorithm {algorithm!r}")


def _cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


@register("kcenter")
class KCenterGreedy(Selector):
    """k-center greedy coverage selection.

    Parameters
    ----------
    n_select : number of examples to keep.
    algorithm : kernel, see :func:`kcenter_greedy` (default ``"auto"``).
    random_state : seed of the first pick.

    Attributes
    ----------
    indices_ : picked row indices, in pick order.
    radii_ : covering radius after each pick (the coverage curve).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    >>> KCenterGreedy(n_select=10, random_state=0).fit(X).indices_.shape
    (10,)
    """

    def __init__(self, n_select: int, *, algorithm: str = "auto", random_state: int = 0) -> None:
        self.n_select = n_select
        self.algorithm = algorithm
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        from coreselect.selection._params import check_choice, check_seed

        check_choice(type(self).__name__, "algorithm", self.algorithm, ALGORITHMS)
        check_seed(type(self).__name__, self.random_state)
        idx, self.radii_ = kcenter_greedy(X, self.n_select, random_state=self.random_state,
                                          algorithm=self.algorithm)
        return idx
