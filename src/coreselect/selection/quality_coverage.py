"""Quality, then coverage: keep the best share of the pool by a score, then facility location.

The DEITA shape (score, then diversify) with the selector's own scores: the top ``keep`` share
of the pool by ``ifd`` (or ``loss_cond``), lower better, is kept, and facility location
(:mod:`.facility_location`) picks ``n_select`` of the kept rows. Low IFD drops the pairs whose
prompt does not help predict the response (CALIBRATION.md: the lowest IFD keeps no swapped pair)
but favours easy, predictable pairs; ``keep`` sets how hard the filter bites.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from coreselect.errors import ConfigError
from coreselect.selection._quality import QUALITY_SCORES, best_first
from coreselect.selection.base import Selector, register
from coreselect.selection.facility_location import facility_location_greedy, knn_similarity_graph

log = logging.getLogger(__name__)


@register("quality-coverage")
class QualityCoverage(Selector):
    """Keep the best ``keep`` share by a score (IFD, lower better), then facility location.

    Parameters
    ----------
    n_select : number of examples to keep.
    keep : share of the pool kept by the score before facility location, in (0, 1]; at least
        ``n_select`` rows are kept.
    score : ``"ifd"`` (default) or ``"loss_cond"``, lower is better; rows without one come last.
    n_neighbors : neighbours per row in facility location's similarity graph.
    random_state : seed of facility location's tie-breaking order.

    Attributes
    ----------
    indices_ : picked row indices, in pick order.
    kept_ : the rows kept by the score (sorted), the pool facility location saw.
    gains_ : facility location's marginal gain of each pick.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    >>> ifd = np.linspace(0.5, 1.2, 40)
    >>> sel = QualityCoverage(n_select=5, keep=0.25).fit(X, scores={"ifd": ifd, "loss_cond": ifd})
    >>> sel.kept_.tolist() == list(range(10)), bool(np.isin(sel.indices_, sel.kept_).all())
    (True, True)
    """

    needs_scores = QUALITY_SCORES
    cost_aware = True

    def __init__(self, n_select: int, *, keep: float = 0.5, score: str = "ifd", n_neighbors: int = 64,
                 random_state: int = 0) -> None:
        self.n_select = n_select
        self.keep = keep
        self.score = score
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def _check_params(self) -> dict[str, Any]:
        from coreselect.selection._params import check_float

        return {"keep": check_float(type(self).__name__, "keep", self.keep, 0.0, 1.0, low_open=True),
                "score": self._choice("score", QUALITY_SCORES), "n_neighbors": self._int("n_neighbors", 1)}

    def _fit(self, X: np.ndarray, y: np.ndarray | None, *, scores: dict[str, np.ndarray], keep: float, score: str,
             n_neighbors: int, random_state: int, costs: np.ndarray | None = None,
             budget: float | None = None) -> np.ndarray:
        n = X.shape[0]
        n_keep = max(self.n_select, math.ceil(keep * n)) if budget is None else math.ceil(keep * n)
        self.kept_ = np.sort(best_first(scores[score])[:n_keep])
        S = knn_similarity_graph(X[self.kept_], n_neighbors)
        sub_costs = None if costs is None else costs[self.kept_]
        if sub_costs is not None and budget is not None and budget < sub_costs.min():
            raise ConfigError(f"quality-coverage: the budget of {budget:g} tokens is below the cheapest kept "
                              f"record ({sub_costs.min():g} tokens)")
        idx, self.gains_ = facility_location_greedy(S, min(self.n_select, n_keep), random_state=random_state,
                                                    costs=sub_costs, budget=budget)
        log.info("quality-coverage: kept %d of %d rows by %s, %d picks by facility location", n_keep, n, score,
                 len(idx))
        return self.kept_[idx]
