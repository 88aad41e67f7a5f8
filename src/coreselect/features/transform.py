"""Turn stored feature groups into the matrix a selector sees.

Default (``normalize="center-l2"``): per group, subtract the pool mean and scale each row to unit
length, then concatenate the groups with equal weight (each scaled by ``1/sqrt(n_groups)``) so
the rows stay unit length. Centring matters: pooled activations share a large common
component, and without removing it cosine distances are dominated by it (see docs/methods.md).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from coreselect.errors import ConfigError

Normalize = Literal["center-l2", "l2", "none"]


def prepare_features(
    groups: dict[str, np.ndarray], *, normalize: Normalize = "center-l2", block_rows: int = 16384
) -> np.ndarray:
    """Concatenate feature groups into one float32 (n, d) matrix, normalised per group.

    Examples
    --------
    >>> g = {"mlp.1": np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0]], dtype=np.float16)}
    >>> np.linalg.norm(prepare_features(g), axis=1).round(3).tolist()
    [1.0, 1.0, 1.0]
    """
    if not groups:
        raise ConfigError("no feature groups to select on")
    names = sorted(groups)
    n = groups[names[0]].shape[0]
    dims = [groups[k].shape[1] for k in names]
    out = np.empty((n, sum(dims)), dtype=np.float32)
    weight = 1.0 / np.sqrt(len(names))
    col = 0
    for k, d in zip(names, dims):
        g = groups[k]
        mean = _mean(g, block_rows) if normalize == "center-l2" else None
        for s in range(0, n, block_rows):
            block = out[s : s + block_rows, col : col + d]
            block[...] = g[s : s + block_rows]
            if mean is not None:
                block -= mean
            if normalize != "none":
                norms = np.linalg.norm(block, axis=1, keepdims=True)
                np.maximum(norms, 1e-12, out=norms)
                block *= weight / norms
        col += d
    return out


def raw_features(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate groups as they are (float32), for methods that read raw activations."""
    return np.concatenate([np.asarray(groups[k], dtype=np.float32) for k in sorted(groups)], axis=1)


def _mean(g: np.ndarray, block_rows: int) -> np.ndarray:
    acc = np.zeros(g.shape[1], dtype=np.float64)
    for s in range(0, g.shape[0], block_rows):
        acc += g[s : s + block_rows].astype(np.float64).sum(0)
    return (acc / max(g.shape[0], 1)).astype(np.float32)
