"""Gather what a report needs: the manifest, the dataset, the feature store and the features.

The manifest of a ``select`` run names the data file and the feature store; both are read back
and checked against the manifest (same data fingerprint, same number of rows), so the report
always describes the selection that was actually made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError, StoreError
from coreselect.manifest import SelectionManifest
from coreselect.store import ROW_STATS, FeatureStore
from coreselect.store_manifest import StoreManifest

log = logging.getLogger(__name__)


class ReportError(ConfigError):
    """The report cannot be built (bad manifest, changed data, missing dependency)."""


@dataclass
class ReportInputs:
    """Everything read from disk for one report.

    ``rows`` are the dataset rows (= feature-store rows) of the picks in pick order;
    ``features`` the (n_pool, d) float32 matrix the map, clusters and coverage use (the
    manifest's scored features when its store is still there); ``row_stats`` the store's
    per-row token counts and ``store_manifest`` its
    :class:`~coreselect.store_manifest.StoreManifest`, or ``None`` without a store.
    """

    manifest_path: Path
    manifest: SelectionManifest
    dataset: Dataset
    rows: np.ndarray
    features: np.ndarray
    feature_source: str
    from_store: bool
    row_stats: dict[str, np.ndarray] | None
    store_manifest: StoreManifest | None = None


def load_manifest(path: str | Path) -> SelectionManifest:
    """Read a selection manifest (``<output>.manifest.json``); :class:`ReportError` if it is not one."""
    try:
        return SelectionManifest.read(path)
    except ConfigError as err:
        raise ReportError(str(err)) from None


def load_inputs(manifest_path: str | Path, *, data_path: str | Path | None = None, seed: int = 0,
                features_dir: str | Path | None = None) -> ReportInputs:
    """Read the manifest, its dataset and (if still on disk) its feature store, or the store
    ``features_dir`` (any store of the same data: a pick made without features gets a map)."""
    mpath = Path(manifest_path)
    m = load_manifest(mpath)
    dpath = Path(data_path) if data_path else m.resolve(m.data.path)
    ds = load_dataset(dpath, on_error="skip" if m.counts.skipped else "raise", columns=m.data.columns)
    want = m.data.fingerprint
    if want and ds.fingerprint != want:
        raise ReportError(f"{dpath}: differs from the data of the selection (fingerprint "
                          f"{ds.fingerprint[:19]} != {want[:19]}); pass --data with the original file")
    if m.counts.pool != len(ds):
        raise ReportError(f"{dpath}: {len(ds)} valid records, the manifest says {m.counts.pool}")
    rows = _pick_rows(m, ds, mpath)

    if features_dir is not None or (m.features is not None and m.features.config.get("kind") == "file"):
        from coreselect.score import selection_features

        X, store, where = selection_features(m, len(ds), features_dir=features_dir)
        stats = store.load(list(ROW_STATS)) if store is not None else None
        norm = "center-l2" if features_dir is not None else m.features.scored_with  # type: ignore[union-attr]
        source = f"{where} ({X.shape[1]} dims, {norm})"  # type: ignore[union-attr]
        return ReportInputs(mpath, m, ds, rows, X, source, store is not None and features_dir is None, stats,
                            store.manifest if store is not None else None)
    store = _open_store(m, ds)
    if store is not None:
        X = m.load_features(store)
        stats = store.load(list(ROW_STATS))
        source = f"{', '.join(sorted(store.groups))} ({X.shape[1]} dims, {m.features.scored_with})"
        return ReportInputs(mpath, m, ds, rows, X, source, True, stats, store.manifest)
    from coreselect.report.analysis import text_features

    X = text_features([ex.prompt + "\n" + ex.response for ex in ds.examples], seed=seed)
    source = f"TF-IDF + SVD of the text ({X.shape[1]} dims; no feature store)"
    return ReportInputs(mpath, m, ds, rows, X, source, False, None)


def _pick_rows(m: SelectionManifest, ds: Dataset, mpath: Path) -> np.ndarray:
    if m.rows is not None:
        rows = np.asarray(m.rows, dtype=np.int64)
    else:  # older manifests: map record positions back to rows
        pos = {ex.source_index: ex.index for ex in ds.examples}
        try:
            rows = np.asarray([pos[i] for i in m.indices or []], dtype=np.int64)
        except (KeyError, TypeError):
            raise ReportError(f"{mpath}: indices do not match the data's records") from None
    if rows.ndim != 1 or rows.size == 0:
        raise ReportError(f"{mpath}: no picks listed")
    if rows.min() < 0 or rows.max() >= len(ds):
        raise ReportError(f"{mpath}: pick rows out of range for {len(ds)} records")
    if len(np.unique(rows)) != len(rows):
        raise ReportError(f"{mpath}: the same row is picked twice")
    return rows


def _open_store(m: SelectionManifest, ds: Dataset) -> FeatureStore | None:
    if m.features is None:
        log.info("the manifest names no feature store: using text features and word counts")
        return None
    try:
        store = m.open_store(check_key=False)
    except StoreError as err:
        log.warning("feature store unavailable (%s): using text features and word counts", err)
        return None
    if store.manifest.n_rows != len(ds) or (store.manifest.data_fingerprint or ds.fingerprint) != ds.fingerprint:
        log.warning("%s: holds features of other data: using text features and word counts", store.root)
        return None
    return store


__all__ = ["ReportError", "ReportInputs", "load_inputs", "load_manifest"]
