"""Scoring a selection: coverage in feature space and, when asked, label coverage and balance,
each beside what a random pick of the same size scores.

Used by ``coreselect select`` (the manifest's ``scores``) and ``coreselect score MANIFEST``, which
scores any pick (``random`` included) on the manifest's own features, or on a store given with
``--features-dir`` (any store of the same data: ``coreselect extract -o DIR``). "Balance" is the
normalised entropy of :func:`coreselect.metrics.label_balance` (1 = even over the pool's labels).

Examples
--------
>>> print(format_scores({"coverage": {"covering_radius": 0.8, "mean_nearest_distance": 0.4},
...                      "random": {"seeds": 5, "coverage": {"covering_radius": 0.9,
...                                                          "mean_nearest_distance": 0.5}}}))
                       pick     random (mean of 5 seeds)
covering radius        0.800    0.900
mean nearest distance  0.400    0.500
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset
from coreselect.featureset import labels_of, load_selection, selection_features
from coreselect.metrics import (
    RANDOM_SEEDS,
    coverage_metrics,
    label_metrics,
    random_coverage,
    random_label_metrics,
)

log = logging.getLogger(__name__)

#: Pools with more rows x picks than this are scored on a sample of rows (``coverage_metrics``):
#: ~10-20 s of distances at 1,536-d on this machine; the 51,924-row Alpaca pool (4 x 10^8 pairs
#: at 15%) stays exact.
SCORE_MAX_PAIRS = 5 * 10**8


def label_scores(ds: Dataset, rows: Sequence[int], columns: Sequence[str]) -> dict[str, Any]:
    """Coverage and balance of each label column (labels are read here only, never by selectors)."""
    labels = labels_of(ds, columns)  # a missing column is one error, even with no rows
    return {col: label_metrics(list(v), list(rows)) for col, v in labels.items()} if len(rows) else {}


def score_selection(X: np.ndarray | None, rows: Sequence[int], ds: Dataset, label_columns: Sequence[str] = (),
                    *, random_seeds: int = 0) -> dict[str, Any]:
    """``{"coverage": {...}, "labels": {...}}`` for the picked feature rows ``rows``; with
    ``random_seeds``, also ``"random"``: the same figures for uniform random picks of the same
    size (the mean over that many seeds)."""
    scores: dict[str, Any] = {}
    k = len(rows)
    if X is not None and X.shape[1] > 1:
        scores["coverage"] = coverage_metrics(X, rows, max_pairs=SCORE_MAX_PAIRS)
    if label_columns:
        scores["labels"] = label_scores(ds, rows, label_columns)
    if random_seeds and k:
        rnd: dict[str, Any] = {"seeds": random_seeds}
        if "coverage" in scores:
            rnd["coverage"] = {key: v for key, v in random_coverage(X, k, seeds=random_seeds).items()  # type: ignore[arg-type]
                               if key != "seeds"}
        if label_columns:
            rnd["labels"] = {col: {key: v for key, v in random_label_metrics(list(lab), k, seeds=random_seeds).items()
                                   if key != "seeds"} for col, lab in labels_of(ds, label_columns).items()}
        scores["random"] = rnd
    return scores


def score_manifest(path: str | Path, label_columns: Sequence[str] = (), *, features_dir: str | Path | None = None,
                   random_seeds: int = RANDOM_SEEDS) -> dict[str, Any]:
    """Score the selection of a manifest on its data and features, beside random picks.

    The features are the manifest's, normalised as it says they were scored (so the coverage
    reproduces its scores), or those of the store ``features_dir`` (any store of the same data,
    centred and L2-normalised): so any pick, ``random`` included, can be scored. Without
    features, only the label columns are scored.
    """
    from coreselect.manifest import SelectionManifest

    m = SelectionManifest.read(path)
    ds, X, _, where = load_selection(m, features_dir=features_dir)
    if X is None and m.features is None:
        log.warning("%s: the selection used no features (method %s); pass --features-dir DIR (a store of the "
                    "same data, e.g. from `coreselect extract DATA -o DIR`) to score its coverage", path,
                    m.method.name)
    scores = score_selection(X, m.rows or [], ds, label_columns, random_seeds=random_seeds)
    if where:
        scores["features"] = where
    return scores


def format_scores(scores: dict[str, Any]) -> str:
    """The scores as a table: each figure of the pick beside the random expectation."""
    rnd = scores.get("random", {})
    rows = [("", "pick", f"random (mean of {rnd.get('seeds', RANDOM_SEEDS)} seeds)" if rnd else "", "")]
    cov, rcov = scores.get("coverage"), rnd.get("coverage", {})
    for key in ("covering_radius", "mean_nearest_distance") if cov else ():
        rows.append((key.replace("_", " "), f"{cov[key]:.3f}", f"{rcov[key]:.3f}" if key in rcov else "", ""))
    for col, s in scores.get("labels", {}).items():
        r = rnd.get("labels", {}).get(col, {})
        rows.append((f"{col}: labels covered", f"{s['labels_in_core']}/{s['labels_in_pool']}",
                     f"{r['labels_in_core']:.1f}" if r else "", ""))
        rows.append((f"{col}: balance", f"{s['balance']:.3f}", f"{r['balance']:.3f}" if r else "",
                     f"pool {s['pool_balance']:.3f} (1 = even over the pool's labels, 0 = one label)"))
    w = max(len(r[0]) for r in rows) + 2
    lines = [f"{a:{w}}{b:9}{c:9}{d}".rstrip() for a, b, c, d in rows]
    if "features" in scores:
        lines.append(f"features: {scores['features']}")
    return "\n".join(lines)


__all__ = ["format_scores", "label_scores", "load_selection", "score_manifest", "score_selection", "selection_features"]
