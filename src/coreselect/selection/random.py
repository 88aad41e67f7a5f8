"""Uniform random selection: the baseline every other method has to beat.

The pick is a prefix of one seeded permutation of the pool, so for a fixed seed and pool the
selection at a smaller budget is a prefix of the selection at a larger one.
"""

from __future__ import annotations

import logging

import numpy as np

from coreselect.selection.base import Selector, register

log = logging.getLogger(__name__)


def random_selection(n_samples: int, n_select: int, *, random_state: int = 0) -> np.ndarray:
    """Draw ``n_select`` of ``n_samples`` row indices uniformly without replacement.

    Parameters
    ----------
    n_samples : pool size.
    n_select : number of rows to draw, ``1 <= n_select <= n_samples``.
    random_state : seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    indices : (n_select,) int64, in draw order.

    Examples
    --------
    >>> idx = random_selection(10, 4, random_state=0)
    >>> idx.shape, len(set(idx.tolist()))
    ((4,), 4)
    """
    rng = np.random.default_rng(random_state)
    return rng.permutation(n_samples)[:n_select].astype(np.int64)


@register("random")
class RandomSelection(Selector):
    """Uniform random sample without replacement (reads no features).

    Parameters
    ----------
    n_select : number of examples to keep.
    random_state : seed of the draw.

    Attributes
    ----------
    indices_ : picked row indices, in draw order.

    Examples
    --------
    >>> X = np.zeros((50, 1), dtype=np.float32)
    >>> RandomSelection(n_select=5, random_state=1).fit(X).indices_.shape
    (5,)
    """

    needs_features = False

    def __init__(self, n_select: int, *, random_state: int = 0) -> None:
        self.n_select = n_select
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, random_state: int) -> np.ndarray:
        log.debug("random: %d of %d (seed %d)", self.n_select, X.shape[0], random_state)
        return random_selection(X.shape[0], self.n_select, random_state=random_state)
