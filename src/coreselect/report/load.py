"""Gather what a report needs: the manifest, the dataset, the feature store and the features.

The manifest of a ``select`` run names the data file and the feature store; both are read back
and checked against the manifest (same data fingerprint, same number of rows), so the report
always describes the selection that was actually made.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset, load_dataset
from coreselect.errors import CoreselectError, StoreError
from coreselect.features.transform import prepare_features
from coreselect.store import ROW_STATS, FeatureStore

log = logging.getLogger(__name__)


class ReportError(CoreselectError):
    """The report cannot be built (bad manifest, changed data, missing dependency)."""


@dataclass
class ReportInputs:
    """Everything read from disk for one report.

    ``rows`` are the dataset rows (= feature-store rows) of the picks in pick order;
    ``features`` the (n_pool, d) float32 matrix the map, clusters and coverage use;
    ``row_stats`` the store's per-row token counts and ``store_manifest`` its manifest, or
    ``None`` without a store.
    """

    manifest_path: Path
    manifest: dict[str, Any]
    dataset: Dataset
    rows: np.ndarray
    features: np.ndarray
    feature_source: str
    from_store: bool
    row_stats: dict[str, np.ndarray] | None
    store_manifest: dict[str, Any] | None = None


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and minimally validate a selection manifest (``<output>.manifest.json``)."""
    p = Path(path)
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{p}: manifest not found") from None
    except (OSError, ValueError) as err:
        raise ReportError(f"{p}: unreadable manifest ({err})") from None
    if not isinstance(m, dict):
        raise ReportError(f"{p}: not a coreselect manifest (expected a JSON object)")
    missing = [k for k in ("data", "counts", "method") if not isinstance(m.get(k), dict)]
    if missing or not isinstance(m["data"].get("path"), str):
        raise ReportError(f"{p}: not a coreselect selection manifest (missing {', '.join(missing) or 'data.path'})")
    if not isinstance(m.get("rows"), list) and not isinstance(m.get("indices"), list):
        raise ReportError(f"{p}: manifest lists no picks (no rows or indices)")
    return m


def _resolve(path: str, base: Path) -> Path:
    """A path from the manifest: as written (absolute or relative to the current directory),
    else relative to the manifest's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = base / p
    return alt if alt.exists() else p


def load_inputs(manifest_path: str | Path, *, data_path: str | Path | None = None, seed: int = 0) -> ReportInputs:
    """Read the manifest, its dataset and (if still on disk) its feature store."""
    mpath = Path(manifest_path)
    m = load_manifest(mpath)
    base = mpath.parent
    dpath = Path(data_path) if data_path else _resolve(m["data"]["path"], base)
    on_error = "skip" if m["counts"].get("skipped") else "raise"
    ds = load_dataset(dpath, on_error=on_error)
    want = m["data"].get("fingerprint")
    if want and ds.fingerprint != want:
        raise ReportError(f"{dpath}: differs from the data of the selection (fingerprint "
                          f"{ds.fingerprint[:19]} != {want[:19]}); pass --data with the original file")
    n_pool = m["counts"].get("pool", len(ds))
    if n_pool != len(ds):
        raise ReportError(f"{dpath}: {len(ds)} valid records, the manifest says {n_pool}")
    rows = _pick_rows(m, ds, mpath)

    store = _open_store(m, base, ds)
    if store is not None:
        loaded = store.load()
        stats = {k: loaded.pop(k) for k in ROW_STATS if k in loaded}
        norm = m.get("features", {}).get("normalize", "center-l2")
        norm = norm if norm in ("center-l2", "l2", "none") else "center-l2"
        X = prepare_features(loaded, normalize=norm)
        groups = ", ".join(sorted(loaded))
        source = f"{groups} ({X.shape[1]} dims, {norm})"
        del loaded
        return ReportInputs(mpath, m, ds, rows, X, source, True, stats, store.manifest)
    from coreselect.report.analysis import text_features

    X = text_features([ex.prompt + "\n" + ex.response for ex in ds.examples], seed=seed)
    source = f"TF-IDF + SVD of the text ({X.shape[1]} dims; no feature store)"
    return ReportInputs(mpath, m, ds, rows, X, source, False, None)


def _pick_rows(m: dict[str, Any], ds: Dataset, mpath: Path) -> np.ndarray:
    if isinstance(m.get("rows"), list):
        rows = np.asarray(m["rows"], dtype=np.int64)
    else:  # older manifests: map record positions back to rows
        pos = {ex.source_index: ex.index for ex in ds.examples}
        try:
            rows = np.asarray([pos[i] for i in m["indices"]], dtype=np.int64)
        except (KeyError, TypeError):
            raise ReportError(f"{mpath}: indices do not match the data's records") from None
    if rows.ndim != 1 or rows.size == 0:
        raise ReportError(f"{mpath}: no picks listed")
    if rows.min() < 0 or rows.max() >= len(ds):
        raise ReportError(f"{mpath}: pick rows out of range for {len(ds)} records")
    if len(np.unique(rows)) != len(rows):
        raise ReportError(f"{mpath}: the same row is picked twice")
    return rows


def _open_store(m: dict[str, Any], base: Path, ds: Dataset) -> FeatureStore | None:
    spath = m.get("features", {}).get("store")
    if not spath:
        log.info("the manifest names no feature store: using text features and word counts")
        return None
    root = _resolve(spath, base)
    try:
        store = FeatureStore.open(root)
    except StoreError as err:
        log.warning("feature store unavailable (%s): using text features and word counts", err)
        return None
    if store.manifest.get("n_rows") != len(ds) or store.manifest.get("data", {}).get(
            "fingerprint", ds.fingerprint) != ds.fingerprint:
        log.warning("%s: holds features of other data: using text features and word counts", root)
        return None
    return store


__all__ = ["ReportError", "ReportInputs", "load_inputs", "load_manifest"]
