"""Quality-weighted facility location: coverage plus λ times the quality of the picks (QDIT).

Maximises ``f(S) = sum_i max_{j in S} sim(i, j) + λ · (n / k) · sum_{j in S} q_j`` with the
facility-location lazy greedy (:func:`~coreselect.selection.facility_location.facility_location_greedy`,
whose ``bonus`` is the quality term): QDIT's combination of diversity and quality (Bukharin et al.,
arXiv 2311.14736) with the selector's own scores. ``q_j = 1 - rank_j / n`` ranks the rows by
``ifd`` (or ``loss_cond``), lowest first (:func:`~coreselect.selection._quality.quality`), so it is
in ``[0, 1]`` whatever the scale of the score. The factor ``n / k`` (pool over picks: the rows each
pick stands for) puts the quality term on the scale of a pick's coverage gain, so ``weight`` = λ
means about the same at any pool size and budget: 0 is plain facility location; at 1 the best row's
bonus is about what an average pick adds to coverage. The quality term is modular and
non-negative, so ``f`` stays monotone submodular and lazy greedy exact.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from coreselect.selection._params import check_float
from coreselect.selection._quality import QUALITY_SCORES, quality
from coreselect.selection.base import Selector, register
from coreselect.selection.facility_location import facility_location_greedy, knn_similarity_graph

log = logging.getLogger(__name__)


@register("quality-fl")
class QualityFacilityLocation(Selector):
    """Facility location plus ``weight`` x the quality of the picks (rank of IFD, lower better).

    Parameters
    ----------
    n_select : number of examples to keep.
    weight : λ, the weight of quality against coverage, >= 0 (0: plain facility location).
    score : ``"ifd"`` (default) or ``"loss_cond"``, lower is better; rows without one get quality 0.
    n_neighbors : neighbours per row in the similarity graph.
    random_state : seed of the tie-breaking order.

    Attributes
    ----------
    indices_ : picked row indices, in pick order.
    quality_ : (n,) the quality of every row, in [0, 1].
    gains_ : marginal gain of each pick (coverage plus its quality bonus).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    >>> ifd = np.linspace(0.5, 1.2, 30)
    >>> s = {"ifd": ifd, "loss_cond": ifd}
    >>> from coreselect.selection import FacilityLocation
    >>> plain = QualityFacilityLocation(n_select=5, weight=0.0).fit(X, scores=s).indices_
    >>> plain.tolist() == FacilityLocation(n_select=5).fit(X).indices_.tolist()
    True
    >>> QualityFacilityLocation(n_select=5, weight=100.0).fit(X, scores=s).indices_.tolist()
    [0, 1, 2, 3, 4]
    """

    needs_scores = QUALITY_SCORES
    cost_aware = True

    def __init__(self, n_select: int, *, weight: float = 1.0, score: str = "ifd", n_neighbors: int = 64,
                 random_state: int = 0) -> None:
        self.n_select = n_select
        self.weight = weight
        self.score = score
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        return {"weight": check_float(type(self).__name__, "weight", self.weight, 0.0, np.inf),
                "score": self._choice("score", QUALITY_SCORES), "n_neighbors": self._int("n_neighbors", 1)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, scores: dict[str, np.ndarray], weight: float, score: str,
             n_neighbors: int, random_state: int, costs: np.ndarray | None = None,
             budget: float | None = None) -> np.ndarray:
        n = X.shape[0]
        self.quality_ = quality(scores[score])
        # the picks expected: n_select, or as many average rows as the budget pays for
        k = self.n_select if budget is None or costs is None else min(self.n_select, budget / costs.mean())
        S = knn_similarity_graph(X, n_neighbors)
        idx, self.gains_ = facility_location_greedy(S, self.n_select, random_state=random_state,
                                                    bonus=weight * (n / max(k, 1.0)) * self.quality_, costs=costs,
                                                    budget=budget)
        log.info("quality-fl: %d picks, weight %g, mean quality %.3f (pool %.3f)", len(idx), weight,
                 float(self.quality_[idx].mean()), float(self.quality_.mean()))
        return idx
