"""k-center greedy kernels. Each keeps one running minimum per point and, per pick, reads every
row once with a matrix-vector product (``|x|^2 + |c|^2 - 2 x.c``): k-center greedy is bound
by memory bandwidth, so what matters is how many bytes a pick reads.

* ``dense``: NumPy float32, blocked ``sgemv``; reads N·d·4 bytes per pick. The exact reference,
  and the fastest for small inputs (no torch per-call overhead).
* ``half``: torch on a float16 copy of the (centred, rescaled) rows with float32 running minima;
  reads N·d·2 bytes per pick, so about twice as fast as ``dense`` on a CPU. Distances carry a
  float16 rounding error of about 1e-3 of the data's squared radius, so two points whose
  distances differ by less than that (a near-tie) may be picked in the other order; see
  docs/performance.md for how often that happens on real features.
* ``torch``: the float32 dense kernel on a torch device (CUDA when present).
* ``pruned``: the triangle-inequality kernel. Each point remembers its nearest centre ``a``;
  ``x`` can only move to a new centre ``c`` if ``d(a, c) < 2 d(x, a)``, so only the points that
  pass that test are read. It wins on low-dimensional clustered data (a few dozen dimensions,
  e.g. after ``project_dim``); on centred, L2-normalised activations of hundreds of dimensions
  nearly every point passes the test (distances concentrate) and it is slower than ``dense``.
"""

from __future__ import annotations

import numpy as np

_SLACK = 1e-5  # relative slack on the pruning test: never skip a point that may need an update
Result = tuple[np.ndarray, np.ndarray]


def kcenter_dense(X: np.ndarray, n_select: int, first: int, block_rows: int = 65_536) -> Result:
    n = X.shape[0]
    sq = np.einsum("ij,ij->i", X, X)
    min_d2 = np.full(n, np.inf, dtype=np.float32)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    dots = np.empty(min(block_rows, n), dtype=np.float32)
    c = first
    for j in range(n_select):
        indices[j] = c
        centre = X[c]
        for s in range(0, n, block_rows):
            e = min(s + block_rows, n)
            d = dots[: e - s]
            np.dot(X[s:e], centre, out=d)
            d *= -2.0
            d += sq[s:e]
            d += sq[c]
            np.minimum(min_d2[s:e], d, out=min_d2[s:e])
        min_d2[c] = -np.inf  # picked (rounding can leave a tiny positive distance there)
        c = int(np.argmax(min_d2))
        radii[j] = np.sqrt(max(float(min_d2[c]), 0.0))
    return indices, radii


def kcenter_torch(X: np.ndarray, n_select: int, first: int, device: str = "cpu",
                  dtype: str = "float32") -> Result:
    """Dense kernel in torch: rows in ``dtype`` (float32 or float16), running minima in float32.

    For float16 the rows are centred and scaled by a power of two to norms <= 1 first (k-center
    picks do not change under translation and scaling), so nothing overflows and the dot
    products are of order 1. On a CPU only the matrix-vector product runs in torch; the O(N)
    updates run in NumPy on the same memory, which keeps torch's thread pool out of the many
    small per-pick operations (on a busy machine its barriers cost more than the work).
    """
    import torch

    Xt, sq, scale = _to_torch(X, device, getattr(torch, dtype))
    if Xt.device.type == "cpu":
        return _loop_cpu(Xt, sq.numpy(), n_select, first, scale)
    return _loop_device(Xt, sq, n_select, first, scale)


def _to_torch(X: np.ndarray, device: str, dtype, block_rows: int = 4096) -> tuple:
    """Copy X to ``device`` in ``dtype`` block by block (no full-size temporary); also the squared
    norms of the rows as stored (so that d(x, x) = 0) and the scale applied."""
    import torch

    n, d = X.shape
    half = dtype != torch.float32 and n > 0
    scale = 1.0
    if half:
        # centre (any shift is exact), and bring entries to [-1, 1] by a power of two so
        # that none overflows float16; powers of two keep every later rescaling exact
        m = np.ones(n, dtype=np.float32) @ X / n
        shift = torch.from_numpy(m)
        scale = _pow2(max(abs(float(X.max())), abs(float(X.min()))) + float(np.abs(m).max()))
    Xt = torch.empty((n, d), dtype=dtype, device=device)
    sq = torch.empty(n, dtype=torch.float32, device=device)
    for s in range(0, n, block_rows):
        blk = torch.from_numpy(np.ascontiguousarray(X[s : s + block_rows]))
        if half:
            blk = ((blk - shift) * scale).to(dtype)
        blk = blk.to(device)
        Xt[s : s + block_rows] = blk
        f = blk.float()
        sq[s : s + block_rows] = (f * f).sum(1)
    if half:  # then norms to <= 1, so that dot products stay of order 1
        post = _pow2(float(sq.max()) ** 0.5)
        if post != 1.0:
            Xt.mul_(post)
            sq.mul_(post * post)
        scale *= post
    return Xt, sq, scale


def _pow2(top: float) -> float:
    """The power of two that brings ``top`` into (0.5, 1]."""
    return 2.0 ** -np.ceil(np.log2(top)) if top > 0 else 1.0


def _loop_cpu(Xt, sq: np.ndarray, n_select: int, first: int, scale: float) -> Result:
    import torch.nn.functional as F

    n = Xt.shape[0]
    d = np.empty(n, dtype=np.float32)
    min_d2 = np.full(n, np.inf, dtype=np.float32)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    c = first
    for j in range(n_select):
        indices[j] = c
        # x.c for every row; F.linear (X as the weight) is ~25% faster than torch.mv in float16
        np.copyto(d, F.linear(Xt[c : c + 1], Xt)[0].numpy())  # float16 -> float32
        d *= -2.0
        d += sq
        d += sq[c]
        np.minimum(min_d2, d, out=min_d2)
        min_d2[c] = -np.inf
        c = int(np.argmax(min_d2))
        radii[j] = np.sqrt(max(float(min_d2[c]), 0.0)) / scale
    return indices, radii


def _loop_device(Xt, sq, n_select: int, first: int, scale: float) -> Result:
    import torch

    n = Xt.shape[0]
    min_d2 = torch.full((n,), float("inf"), dtype=torch.float32, device=Xt.device)
    dot = torch.empty(n, dtype=Xt.dtype, device=Xt.device)
    d = torch.empty(n, dtype=torch.float32, device=Xt.device)
    indices = np.empty(n_select, dtype=np.int64)
    radii = np.empty(n_select, dtype=np.float32)
    c = first
    for j in range(n_select):
        indices[j] = c
        torch.mv(Xt, Xt[c], out=dot)
        torch.add(sq, dot, alpha=-2.0, out=d)  # float32 result
        d += sq[c]
        torch.minimum(min_d2, d, out=min_d2)
        min_d2[c] = float("-inf")
        val, arg = torch.max(min_d2, 0)
        c = int(arg)  # one device sync per pick
        radii[j] = np.sqrt(max(float(val), 0.0)) / scale
    return indices, radii


def kcenter_pruned(X: np.ndarray, n_select: int, first: int, dense_share: float = 0.5,
                   stats: dict | None = None) -> Result:
    """``stats``, if given, receives ``rows_read``: rows whose distance was computed, all picks."""
    n, dim = X.shape
    rows_read = n
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
            rows_read += n if pts.size > dense_share * n else pts.size
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
    if stats is not None:
        stats["rows_read"] = rows_read
    return indices, radii


def _sqdist(X: np.ndarray, sq: np.ndarray, c: np.ndarray, csq: float) -> np.ndarray:
    d = X @ c
    d *= -2.0
    d += sq
    d += csq
    np.maximum(d, 0.0, out=d)
    return d
