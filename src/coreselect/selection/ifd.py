"""The Cherry LLM rule on the selector's own IFD scores: drop IFD >= 1, then the highest first.

IFD (Instruction-Following Difficulty, Li et al., arXiv 2308.12032) is the response's loss given
the prompt over its loss alone (:mod:`coreselect.features.scores`). A high IFD below 1 marks a
pair the model finds hard to follow, the pairs Cherry LLM trains on; at 1 or above the prompt
does not help at all, and the pair is usually broken (a mismatched response). CALIBRATION.md
measured on Alpaca: "highest IFD below 1" still keeps 17% swapped pairs at 15% (they sit right
under 1), against 26% for random.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coreselect.selection._params import check_float
from coreselect.selection.base import Selector, register

log = logging.getLogger(__name__)


def ifd_order(ifd: np.ndarray, threshold: float = 1.0) -> tuple[np.ndarray, int]:
    """Rows in Cherry order, and how many are below ``threshold``.

    First the rows with IFD below ``threshold``, highest first; then the rest, lowest IFD first;
    rows without a score (NaN) last. Ties go to the lower row.

    Examples
    --------
    >>> order, n_ok = ifd_order(np.array([0.5, 1.2, 0.9, np.nan, 1.0]))
    >>> order.tolist(), n_ok
    ([2, 0, 4, 1, 3], 2)
    """
    ifd = np.asarray(ifd, dtype=np.float64)
    rows = np.arange(len(ifd))
    scored = np.isfinite(ifd)
    below = scored & (ifd < threshold)
    high = rows[below][np.argsort(-ifd[below], kind="stable")]
    rest = rows[scored & ~below][np.argsort(ifd[scored & ~below], kind="stable")]
    return np.concatenate([high, rest, rows[~scored]]).astype(np.int64), int(below.sum())


@register("ifd")
class IFDSelection(Selector):
    """Cherry LLM: drop IFD >= 1, then the highest IFD first (the selector's own scores).

    Parameters
    ----------
    n_select : number of examples to keep.
    threshold : rows with IFD at or above it are dropped (taken last, lowest first, with a warning,
        when fewer than ``n_select`` rows remain).
    random_state : unused (the order is deterministic); kept for the common interface.

    Attributes
    ----------
    indices_ : picked row indices, in pick order (highest IFD below the threshold first).
    n_below_ : rows with an IFD below the threshold.

    Examples
    --------
    >>> X = np.zeros((4, 1), dtype=np.float32)
    >>> IFDSelection(n_select=2).fit(X, scores={"ifd": np.array([0.5, 1.1, 0.8, 0.7])}).indices_.tolist()
    [2, 3]
    """

    needs_scores = ("ifd",)

    def __init__(self, n_select: int, *, threshold: float = 1.0, random_state: int = 0) -> None:
        self.n_select = n_select
        self.threshold = threshold
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"threshold": check_float(type(self).__name__, "threshold", self.threshold, 0.0, np.inf,
                                         low_open=True)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, scores: dict[str, np.ndarray], threshold: float,
             random_state: int) -> np.ndarray:
        order, self.n_below_ = ifd_order(scores["ifd"], threshold)
        if self.n_below_ < self.n_select:
            log.warning("ifd: only %d of %d rows have IFD below %g; filling %d picks with the lowest IFD at or "
                        "above it", self.n_below_, len(order), threshold, self.n_select - self.n_below_)
        return order[: self.n_select]
