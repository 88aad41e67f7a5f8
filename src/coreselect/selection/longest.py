"""The longest responses: a baseline that "quality by length" selectors must beat.

Long responses are a strong baseline for instruction tuning (Zhao et al., "Long Is More for
Alignment", arXiv 2402.04833). Length is the ``response_tokens`` stat of the feature store (the
selector's tokens of the response, after truncation).
"""

from __future__ import annotations

import logging

import numpy as np

from coreselect.selection.base import Selector, register

log = logging.getLogger(__name__)


def longest_order(response_tokens: np.ndarray) -> np.ndarray:
    """Rows by response length, longest first; ties go to the lower row.

    >>> longest_order(np.array([3, 9, 3, 12])).tolist()
    [3, 1, 0, 2]
    """
    return np.argsort(-np.asarray(response_tokens, dtype=np.float64), kind="stable").astype(np.int64)


@register("longest")
class Longest(Selector):
    """The examples with the most response tokens (a baseline; reads a stat, not the features).

    Parameters
    ----------
    n_select : number of examples to keep.
    random_state : unused (ties go to the earlier row); kept for the common interface.

    Attributes
    ----------
    indices_ : picked row indices, longest response first.

    Examples
    --------
    >>> X = np.zeros((3, 1), dtype=np.float32)
    >>> Longest(n_select=2).fit(X, scores={"response_tokens": np.array([5, 40, 7])}).indices_.tolist()
    [1, 2]
    """

    needs_scores = ("response_tokens",)

    def __init__(self, n_select: int, *, random_state: int = 0) -> None:
        self.n_select = n_select
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, scores: dict[str, np.ndarray],
             random_state: int) -> np.ndarray:
        return longest_order(scores["response_tokens"])[: self.n_select]
