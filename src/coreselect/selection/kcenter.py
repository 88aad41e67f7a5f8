"""k-center greedy (Gonzalez 1985; Sener & Savarese 2018): the coverage core set of MADS.

Each step adds the point farthest from everything picked so far, so the covering radius
(the largest distance from any point to its nearest pick) shrinks as fast as a greedy can;
it is a 2-approximation of the optimal k-center radius.

The kernel keeps one running minimum per point and touches the data once per pick with a
matrix-vector product (``|x|^2 + |c|^2 - 2 x.c``), in row blocks, so memory stays O(N) and no
k x N matrix is ever formed.
"""

from __future__ import annotations

import numpy as np

from coreselect.selection.base import Selector, register

_BLOCK_ROWS = 65_536


def kcenter_greedy(
    X: np.ndarray,
    n_select: int,
    *,
    first: int | None = None,
    random_state: int = 0,
    block_rows: int = _BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_select`` rows of ``X`` by k-center greedy under the Euclidean distance.

    Parameters
    ----------
    X : (n, d) float32 array, trusted (validated by the caller).
    n_select : number of points to pick, ``1 <= n_select <= n``.
    first : index of the first pick; by default one drawn from ``random_state``.
    random_state : seed for the first pick.
    block_rows : rows per block of the distance update.

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
    n = X.shape[0]
    if first is None:
        first = int(np.random.default_rng(random_state).integers(n))
    sq = np.einsum("ij,ij->i", X, X)
    min_d2 = np.full(n, np.inf, dtype=np.float32)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    dots = np.empty(min(block_rows, n), dtype=np.float32)
    picked = np.zeros(n, dtype=bool)
    c = first
    for j in range(n_select):
        indices[j] = c
        picked[c] = True
        centre = X[c]
        for s in range(0, n, block_rows):
            e = min(s + block_rows, n)
            d = dots[: e - s]
            np.dot(X[s:e], centre, out=d)
            # d2 = |x|^2 + |c|^2 - 2 x.c, computed in place
            d *= -2.0
            d += sq[s:e]
            d += sq[c]
            np.minimum(min_d2[s:e], d, out=min_d2[s:e])
        min_d2[picked] = -1.0  # rounding can leave tiny positives at picked points
        c = int(np.argmax(min_d2))
        radii[j] = np.sqrt(max(float(min_d2[c]), 0.0))
    return indices, radii


@register("kcenter")
class KCenterGreedy(Selector):
    """k-center greedy coverage selection.

    Parameters
    ----------
    n_select : number of examples to keep.
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

    def __init__(self, n_select: int, *, random_state: int = 0) -> None:
        self.n_select = n_select
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        idx, self.radii_ = kcenter_greedy(X, self.n_select, random_state=self.random_state)
        return idx
