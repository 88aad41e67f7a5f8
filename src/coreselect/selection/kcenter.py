"""k-center greedy (Gonzalez 1985; Sener & Savarese 2018): the coverage core set of MADS.

Each step adds the point farthest from everything picked so far, so the covering radius
(the largest distance from any point to its nearest pick) shrinks as fast as a greedy can;
it is a 2-approximation of the optimal k-center radius.

The kernels (:mod:`._kcenter_kernels`) keep one running minimum per point, computed with
matrix-vector products (``|x|^2 + |c|^2 - 2 x.c``), so memory stays O(N) and no k x N matrix is
ever formed. Every pick reads all N rows once, so the cost is k·N·d memory reads and the speed
is set by memory bandwidth: the default CPU kernel reads a float16 copy of the rows (half the
bytes of float32); see docs/performance.md for the measurements behind each choice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from coreselect.selection.base import Selector, register

ALGORITHMS = ("auto", "half", "dense", "torch", "pruned")
#: ``auto`` uses ``half`` on a CPU from this many matrix entries (n·d) ...: below, the data sits
#: in cache, so halving the bytes gains little and torch's per-call overhead would dominate;
HALF_MIN_ENTRIES = 1 << 20
#: ... and from this width: torch's float16 matrix-vector product has a per-row cost that makes
#: it slower than NumPy's float32 one below ~64 columns (docs/performance.md).
HALF_MIN_DIM = 128


def kcenter_greedy(
    X: np.ndarray,
    n_select: int,
    *,
    first: int | None = None,
    random_state: int = 0,
    algorithm: str = "auto",
    device: str | None = None,
    block_rows: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``n_select`` rows of ``X`` by k-center greedy under the Euclidean distance.

    Parameters
    ----------
    X : (n, d) float32 array, trusted (validated by the caller).
    n_select : number of points to pick, ``1 <= n_select <= n``.
    first : index of the first pick; by default one drawn from ``random_state``.
    random_state : seed for the first pick.
    algorithm : which kernel (:mod:`._kcenter_kernels`):

        * ``"half"``: torch, rows in float16 (centred and rescaled), running minima in float32;
          half the memory traffic of float32. Picks equal ``"dense"``'s except after a
          near-tie (distances within float16 rounding, about 1e-3 of the squared radius).
        * ``"dense"``: NumPy float32, every point at every pick; the exact reference.
        * ``"torch"``: float32 on a torch device (``device``; CUDA when present).
        * ``"pruned"``: NumPy float32 with triangle-inequality pruning; only pays off on
          low-dimensional clustered data (tens of dimensions), never on raw activations.
        * ``"auto"`` (default): ``"torch"`` on CUDA when present (or when ``device`` names a
          device other than ``"cpu"``); on a CPU with native bf16 instructions (AVX512-BF16,
          AMX) ``"half"`` when ``n·d >= 2**20`` and ``d >= 128``, else ``"dense"``.
    device : torch device for ``"torch"`` and ``"half"``; default CUDA when present, else CPU.
    block_rows : rows per block of the NumPy dense update.

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
    if device is None:
        device = "cuda" if _cuda() else "cpu"
    if algorithm == "auto":
        if device != "cpu":
            algorithm = "torch"
        else:
            from coreselect.device import cpu_has_bf16

            big = X.size >= HALF_MIN_ENTRIES and X.shape[1] >= HALF_MIN_DIM
            # the float16 copy pays only where the CPU has native low-precision math (the
            # precision policy of coreselect.device): 2.1x dense's speed with AVX512-BF16,
            # 0.9x on an AVX2-only CPU (52K clustered rows, side by side)
            algorithm = "half" if big and cpu_has_bf16() else "dense"
    if algorithm == "half":
        return kk.kcenter_torch(X, n_select, first, device, "float16")
    if algorithm == "dense":
        return kk.kcenter_dense(X, n_select, first, block_rows)
    if algorithm == "torch":
        return kk.kcenter_torch(X, n_select, first, device, "float32")
    if algorithm == "pruned":
        return kk.kcenter_pruned(X, n_select, first)
    raise ValueError(f"unknown k-center algorithm {algorithm!r}")


def random_projection(X: np.ndarray, dim: int, random_state: int = 0, block_rows: int = 65_536) -> np.ndarray:
    """Project rows onto ``dim`` seeded Gaussian directions, scaled by ``1/sqrt(dim)``.

    Squared distances are preserved in expectation (Johnson-Lindenstrauss), with a relative
    spread of about ``sqrt(2/dim)`` per pair, so k-center greedy on the projection picks
    nearly-farthest points of the original at ``dim/d`` of the cost per pick.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(5, 300)).astype(np.float32)
    >>> random_projection(X, 64).shape
    (5, 64)
    """
    R = np.random.default_rng(random_state).standard_normal((X.shape[1], dim), dtype=np.float32)
    R /= np.float32(np.sqrt(dim))
    out = np.empty((X.shape[0], dim), dtype=np.float32)
    for s in range(0, X.shape[0], block_rows):
        np.matmul(X[s : s + block_rows], R, out=out[s : s + block_rows])
    return out


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
    project_dim : if set, run on a seeded Gaussian random projection of the features to this
        many dimensions (:func:`random_projection`, seeded by ``random_state``): the cost per
        pick falls by ``d / project_dim``, at the price of distances distorted by about
        ``sqrt(2 / project_dim)``; ``radii_`` are then measured in the projection.
        Default None: the features as they are.
    random_state : seed of the first pick (and of the projection).

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

    #: Also runs on Ray actors: :mod:`coreselect.distributed.selectors` holds its distributed fit.
    distributed = True

    def __init__(self, n_select: int, *, algorithm: str = "auto", project_dim: int | None = None,
                 random_state: int = 0) -> None:
        self.n_select = n_select
        self.algorithm = algorithm
        self.project_dim = project_dim
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"algorithm": self._choice("algorithm", ALGORITHMS),
                "project_dim": None if self.project_dim is None else self._int("project_dim", 1)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, algorithm: str, project_dim: int | None,
             random_state: int) -> np.ndarray:
        if project_dim is not None and project_dim < X.shape[1]:  # projecting up would only add cost
            X = random_projection(X, project_dim, random_state)
        idx, self.radii_ = kcenter_greedy(X, self.n_select, random_state=random_state, algorithm=algorithm)
        return idx
