"""Turn stored feature groups into the matrix a selector sees.

:func:`feature_matrix` is the one way from features to that matrix: of a feature store, a
features file or a matrix a user brings (any :class:`~coreselect.store.FeatureSource`), for
selection, scoring, ``load_features`` and the report alike. The Ray selection actors prepare
their shards with the functions it runs on (:func:`column_sums`, :func:`group_means`,
:func:`normalize_rows`), and get bitwise the same rows.

Default (``normalize="center-l2"``): per group, subtract the pool mean and scale each row to unit
length, then concatenate the groups with equal weight (each scaled by ``1/sqrt(n_groups)``) so
the rows stay unit length. Centring matters: pooled activations share a large common
component, and without removing it cosine distances are dominated by it (see docs/methods.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

import numpy as np

from coreselect.errors import ConfigError
from coreselect.features.config import Normalize

if TYPE_CHECKING:
    from coreselect.store import FeatureSource

NORMALIZATIONS: tuple[str, ...] = get_args(Normalize)


def feature_matrix(source: FeatureSource, *, normalize: Normalize = "center-l2") -> np.ndarray:
    """The ``(n_rows, d)`` float32 matrix of every feature group of ``source``, normalised as
    ``normalize`` says (:func:`prepare_features`).

    Examples
    --------
    >>> feature_matrix(FeatureStore.open("feats/"), normalize="l2").shape  # doctest: +SKIP
    (240, 576)
    """
    return feature_matrices(source, normalize=normalize)[0]


def feature_matrices(source: FeatureSource, *, normalize: Normalize = "center-l2", raw: bool = False
                     ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`feature_matrix` and the matrix a selector is fitted on, from one read: the same
    array, or with ``raw`` the groups concatenated as they are (:func:`raw_features`, for a
    method that wants raw activations)."""
    groups = source.load(source.groups)
    X = prepare_features(groups, normalize=normalize)
    return X, raw_features(groups) if raw else X


def prepare_features(
    groups: dict[str, np.ndarray], *, normalize: Normalize = "center-l2", block_rows: int = 16384
) -> np.ndarray:
    """Concatenate feature groups into one float32 (n, d) matrix, normalised per group.

    The pool means come from :func:`group_means`, each block of rows is done by
    :func:`normalize_rows`: a Ray actor calls the same two on its shards and gets bitwise the
    same rows.

    Examples
    --------
    >>> g = {"mlp.1": np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 1.0]], dtype=np.float16)}
    >>> np.linalg.norm(prepare_features(g), axis=1).round(3).tolist()
    [1.0, 1.0, 1.0]
    """
    check_normalize(normalize)
    if not groups:
        raise ConfigError("no feature groups to select on")
    names = sorted(groups)
    n = groups[names[0]].shape[0]
    means = group_means([column_sums(groups, block_rows)], n) if normalize == "center-l2" else None
    out = np.empty((n, sum(groups[k].shape[1] for k in names)), dtype=np.float32)
    for s in range(0, n, block_rows):
        normalize_rows({k: groups[k][s : s + block_rows] for k in names}, means, normalize,
                       out=out[s : s + block_rows])
    return out


def check_normalize(normalize: str) -> None:
    """A one-line error unless ``normalize`` is one of :data:`NORMALIZATIONS`."""
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalisation {normalize!r}; use one of {', '.join(NORMALIZATIONS)}")


def column_sums(groups: dict[str, np.ndarray], block_rows: int = 16384) -> dict[str, np.ndarray]:
    """Per group, the float64 sum of each column (exact for float16 data of any realistic size,
    hence the same in any order or grouping of the rows)."""
    out = {}
    for k, g in groups.items():
        acc = np.zeros(g.shape[1], dtype=np.float64)
        for s in range(0, g.shape[0], block_rows):
            acc += g[s : s + block_rows].astype(np.float64).sum(0)
        out[k] = acc
    return out


def group_means(parts: list[dict[str, np.ndarray]], n_rows: int) -> dict[str, np.ndarray]:
    """The float32 pool mean of each group from the :func:`column_sums` of parts of the pool.

    Examples
    --------
    >>> a, b = np.array([[1.0], [2.0]]), np.array([[6.0]])
    >>> group_means([column_sums({"g": a}), column_sums({"g": b})], 3)["g"].tolist()
    [3.0]
    """
    return {k: (sum(p[k] for p in parts) / max(n_rows, 1)).astype(np.float32) for k in parts[0]}


def normalize_rows(groups: dict[str, np.ndarray], means: dict[str, np.ndarray] | None, normalize: Normalize,
                   out: np.ndarray | None = None) -> np.ndarray:
    """The prepared float32 rows of a block of rows (groups in sorted order, each centred with
    ``means`` when given, scaled to length ``1/sqrt(n_groups)`` unless ``normalize="none"``).

    Every row is computed on its own, so a block gives bitwise the rows of the whole pool.
    """
    names = sorted(groups)
    n = groups[names[0]].shape[0]
    if out is None:
        out = np.empty((n, sum(groups[k].shape[1] for k in names)), dtype=np.float32)
    weight = 1.0 / np.sqrt(len(names))
    col = 0
    for k in names:
        d = groups[k].shape[1]
        block = out[:, col : col + d]
        block[...] = groups[k]
        if means is not None:
            block -= means[k]
        if normalize != "none":
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            np.maximum(norms, 1e-12, out=norms)
            block *= weight / norms
        col += d
    return out


def raw_features(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Concatenate groups as they are (float32), for methods that read raw activations."""
    return np.concatenate([np.asarray(groups[k], dtype=np.float32) for k in sorted(groups)], axis=1)
