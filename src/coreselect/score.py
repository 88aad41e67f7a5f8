"""Scoring a selection: coverage in feature space and, when asked, label coverage and balance.

Used by ``coreselect select`` (the manifest's ``scores``) and ``coreselect score MANIFEST``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError, StoreError
from coreselect.metrics import coverage_metrics, label_metrics

log = logging.getLogger(__name__)


def label_scores(ds: Dataset, rows: Sequence[int], columns: Sequence[str]) -> dict[str, Any]:
    """Coverage and balance of each label column (labels are read here only, never by selectors)."""
    out = {}
    for col in columns:
        missing = [e.line for e in ds.examples if col not in e.record]
        if missing:
            raise ConfigError(f"{ds.path}:{missing[0]}: label column {col!r} missing "
                              f"({len(missing)} records lack it)")
        labels = [json.dumps(e.record[col], sort_keys=True) if not isinstance(e.record[col], str)
                  else e.record[col] for e in ds.examples]
        if len(rows):
            out[col] = label_metrics(labels, list(rows))
    return out


def score_selection(X: np.ndarray | None, rows: Sequence[int], ds: Dataset,
                    label_columns: Sequence[str] = ()) -> dict[str, Any]:
    """``{"coverage": {...}, "labels": {...}}`` for the picked feature rows ``rows``."""
    scores: dict[str, Any] = {}
    if X is not None and X.shape[1] > 1:
        scores["coverage"] = coverage_metrics(X, rows)
    if label_columns:
        scores["labels"] = label_scores(ds, rows, label_columns)
    return scores


def score_manifest(path: str | Path, label_columns: Sequence[str] = ()) -> dict[str, Any]:
    """Recompute the scores of a selection from its manifest, data and feature store.

    The features are normalised as the manifest says they were scored
    (:meth:`~coreselect.manifest.SelectionManifest.load_features`), so the coverage reproduces it.
    """
    from coreselect.manifest import SelectionManifest

    m = SelectionManifest.read(path)
    ds = load_dataset(m.resolve(m.data.path), on_error="skip" if m.counts.skipped else "raise")
    if m.data.fingerprint and ds.fingerprint != m.data.fingerprint:
        raise StoreError(f"{m.data.path}: the data changed since the selection (fingerprint differs)")
    if m.rows is None:
        raise ConfigError(f"{path}: the manifest lists no feature-store rows (written by an older version)")
    X = m.load_features() if m.features else None
    return score_selection(X, m.rows, ds, label_columns)
