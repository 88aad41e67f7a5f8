"""k-center greedy kernels: dense (every point, every pick), pruned (triangle inequality) and torch.

All three return the same picks (up to floating-point ties) as the textbook algorithm:

* ``dense``: one matrix-vector product over all N rows per pick — O(N·d) bytes read per pick.
* ``pruned``: each point remembers its nearest centre ``a``. When a new centre ``c`` arrives,
  ``x`` can only move to ``c`` if ``d(x, c) < d(x, a)``, and ``d(x, c) >= d(a, c) - d(x, a)``;
  so ``x`` is skipped when ``d(a, c) >= 2 d(x, a)``. The test costs one gather per point and
  one centre-to-centre distance per centre; only the points that pass it are read. The cost per
  pick falls from O(N·d) to O(N + k·d + touched·d).
* ``torch``: the dense kernel on a torch device (used automatically when CUDA is present).
"""

from __future__ import annotations

import numpy as np

_SLACK = 1e-5  # relative slack on the pruning test: never skip a group that may need an update


def _sqdist(X: np.ndarray, sq: np.ndarray, c: np.ndarray, csq: float) -> np.ndarray:
    d = X @ c
    d *= -2.0
    d += sq
    d += csq
    np.maximum(d, 0.0, out=d)
    return d


def kcenter_dense(X: np.ndarray, n_select: int, first: int, block_rows: int = 65_536
                  ) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
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
            d *= -2.0
            d += sq[s:e]
            d += sq[c]
            np.minimum(min_d2[s:e], d, out=min_d2[s:e])
        min_d2[picked] = -1.0  # rounding can leave tiny positives at picked points
        c = int(np.argmax(min_d2))
        radii[j] = np.sqrt(max(float(min_d2[c]), 0.0))
    return indices, radii


def kcenter_pruned(X: np.ndarray, n_select: int, first: int, dense_share: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    n, dim = X.shape
    sq = np.einsum("ij,ij->i", X, X)
    centres = np.empty((n_select, dim), dtype=np.float32)
    csq = np.empty(n_select, dtype=np.float32)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    assign = np.zeros(n, dtype=np.int64)  # nearest centre of each point
    c = first
    d2 = _sqdist(X, sq, X[c], sq[c])  # squared distance to the nearest centre
    for j in range(n_select):
        if j:
            # x can only get closer to c if d(a, c) < 2 d(x, a), a = x's centre;
            # in squares: d2(a, c) < 4 d2(x, a)
            cc2 = _sqdist(centres[:j], csq[:j], X[c], sq[c])
            need = cc2[assign] < 4.0 * d2 * (1 + _SLACK) + _SLACK
            pts = np.flatnonzero(need)
            if pts.size > dense_share * n:  # most points need it: a dense pass is cheaper
                dn = _sqdist(X, sq, X[c], sq[c])
                upd = np.flatnonzero(dn < d2)
                d2[upd] = dn[upd]
            else:
                dn = _sqdist(X[pts], sq[pts], X[c], sq[c])
                upd = pts[dn < d2[pts]]
                d2[upd] = dn[dn < d2[pts]]
            assign[upd] = j
        indices[j] = c
        centres[j] = X[c]
        csq[j] = sq[c]
        d2[c] = 0.0
        assign[c] = j
        d2[indices[: j + 1]] = -1.0  # never pick a centre twice (rounding can leave tiny positives)
        nxt = int(np.argmax(d2))
        radii[j] = np.sqrt(max(float(d2[nxt]), 0.0))
        d2[indices[: j + 1]] = 0.0
        c = nxt
    return indices, radii


def kcenter_torch(X: np.ndarray, n_select: int, first: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    Xt = torch.from_numpy(X).to(device)
    sq = (Xt * Xt).sum(1)
    min_d2 = torch.full((X.shape[0],), float("inf"), device=device)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    c = first
    for j in range(n_select):
        indices[j] = c
        d = sq + sq[c] - 2.0 * (Xt @ Xt[c])
        torch.minimum(min_d2, d, out=min_d2)
        min_d2[torch.from_numpy(indices[: j + 1]).to(device)] = -1.0
        val, arg = torch.max(min_d2, 0)
        c = int(arg)
        radii[j] = float(val.clamp(min=0).sqrt())
    return indices, radii
