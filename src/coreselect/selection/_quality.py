"""Quality from the selector's own scores, shared by ``quality-coverage`` and ``quality-fl``.

The scores (:mod:`coreselect.features.scores`) are losses, lower better: ``ifd`` (the response
loss given the prompt over the loss alone) or ``loss_cond`` (given the prompt). Rows without a
score (NaN: no response token within ``max_length``) rank last.
"""

from __future__ import annotations

import numpy as np

#: Scores a quality method can read (lower is better).
QUALITY_SCORES = ("ifd", "loss_cond")


def best_first(score: np.ndarray) -> np.ndarray:
    """Rows from the best (lowest) score to the worst, NaN last; ties go to the lower row.

    >>> best_first(np.array([0.9, np.nan, 0.2, 0.9])).tolist()
    [2, 0, 3, 1]
    """
    s = np.asarray(score, dtype=np.float64)
    return np.argsort(np.where(np.isfinite(s), s, np.inf), kind="stable").astype(np.int64)


def quality(score: np.ndarray) -> np.ndarray:
    """A quality in ``[0, 1]`` per row from a lower-is-better score: ``1 - rank / n`` with rank 0
    for the best row (ties share their mean rank); 0 for a row without a score.

    >>> quality(np.array([0.9, np.nan, 0.2, 0.5])).tolist()
    [0.5, 0.0, 1.0, 0.75]
    """
    from scipy.stats import rankdata

    s = np.asarray(score, dtype=np.float64)
    ok = np.isfinite(s)
    q = np.zeros(len(s))
    q[ok] = 1.0 - (rankdata(s[ok]) - 1.0) / len(s)
    return q
