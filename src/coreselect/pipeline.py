"""The ``select`` job: load data -> extract (cached) -> prepare -> select -> export.

Each stage exchanges files: the feature store on disk is the hand-off between extraction and
selection, so either can be rerun or resumed alone.

Examples
--------
>>> from coreselect.pipeline import SelectJob, run_select
>>> result = run_select(SelectJob(ratio=0.15, output="core.jsonl"))  # doctest: +SKIP
>>> len(result.indices)  # doctest: +SKIP
36
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from coreselect import __version__
from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError
from coreselect.features.activations import FeatureConfig
from coreselect.features.transform import Normalize, prepare_features, raw_features
from coreselect.models import cache_dir, resolve_model
from coreselect.output import atomic_write_bytes, check_writable, subset_bytes
from coreselect.score import label_scores, score_selection
from coreselect.selection import make_selector
from coreselect.store import FeatureStore

log = logging.getLogger(__name__)


@dataclass
class SelectJob:
    """Everything ``coreselect select`` needs; CLI flags map one-to-one onto these fields."""

    data: str | None = None  # None: the embedded demo dataset
    output: str | None = None  # None: core.<ext of the input> in the current directory
    ratio: float | None = None
    n: int | None = None
    model: str | None = None
    features: FeatureConfig = field(default_factory=FeatureConfig)
    normalize: Normalize = "center-l2"
    method: str = "facility-location"  # the best template/task coverage measured (docs/methods.md)
    method_params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    work_dir: str | None = None
    keep_order: bool = False
    overwrite: bool = False
    on_error: Literal["raise", "skip"] = "raise"
    progress: bool = True
    trust_remote_code: bool = False
    label_columns: tuple[str, ...] = ()  # scored in the manifest; never read by a selector
    engine: Literal["local", "ray"] = "local"  # ray: see coreselect.distributed and docs/scale.md
    ray_address: str | None = None  # None: start a local Ray cluster; "auto": join a running one
    ray_actors: int | None = None  # None: one per GPU (extraction), one per CPU (selection)


@dataclass
class SelectResult:
    indices: np.ndarray
    output: Path
    manifest_path: Path
    manifest: dict[str, Any]


def resolve_budget(n_pool: int, ratio: float | None, n: int | None) -> int:
    """``--ratio`` or ``--n`` -> a number of examples in ``[1, n_pool]``."""
    if (ratio is None) == (n is None):
        raise ConfigError("give exactly one of --ratio and --n")
    if ratio is not None:
        if not isinstance(ratio, (int, float)) or math.isnan(ratio) or not 0 < ratio <= 1:
            raise ConfigError(f"--ratio must be in (0, 1], got {ratio}")
        k = max(1, round(ratio * n_pool))
    else:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"--n must be a positive integer, got {n}")
        if n > n_pool:
            raise ConfigError(f"--n {n} is larger than the pool ({n_pool} examples)")
        k = n
    return k


def features_dir(job: SelectJob, key: str) -> Path:
    root = Path(job.work_dir) if job.work_dir else cache_dir() / "features"
    return root / key[:16]


def run_select(job: SelectJob) -> SelectResult:
    """Run the whole select job; see :class:`SelectJob` for the options."""
    from coreselect.demo import demo_path
    from coreselect.features.extract import extract_features, store_key

    timings: dict[str, float] = {}
    t = time.perf_counter()
    ds = load_dataset(job.data or demo_path(), on_error=job.on_error)
    timings["load_data"] = time.perf_counter() - t
    k = resolve_budget(len(ds), job.ratio, job.n)
    out = Path(job.output) if job.output else Path(_default_name(ds))
    manifest_path = out.with_name(out.name + ".manifest.json")
    check_writable(out, job.overwrite, inputs=[ds.path])
    check_writable(manifest_path, job.overwrite, inputs=[ds.path])
    selector = make_selector(job.method, n_select=k, random_state=job.seed, **job.method_params)
    if job.engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {job.engine!r}")
    label_scores(ds, [], job.label_columns)  # a missing label column fails now, not after extraction

    store = None
    if selector.needs_features:
        t = time.perf_counter()
        if job.features.kind == "text":
            from coreselect.features.text import resolve_text_model

            spec = resolve_text_model(job.model)
        else:
            spec = resolve_model(job.model, trust_remote_code=job.trust_remote_code)
        key = store_key(ds.fingerprint, spec, job.features)
        if job.engine == "ray":
            from coreselect.distributed.ray_extract import extract_features_ray

            store = extract_features_ray(ds, spec, job.features, features_dir(job, key), progress=job.progress,
                                         trust_remote_code=job.trust_remote_code, address=job.ray_address,
                                         n_actors=job.ray_actors)
        else:
            store = extract_features(ds, spec, job.features, features_dir(job, key), progress=job.progress,
                                     trust_remote_code=job.trust_remote_code)
        timings["extract"] = time.perf_counter() - t
        t = time.perf_counter()
    coverage = None
    if store is not None and job.engine == "ray" and _runs_on_ray(selector):
        from coreselect.distributed.ray_select import select_ray

        X_scored = None  # the features stay on the actors, which also score the coverage
        _, coverage = select_ray(selector, store, normalize=job.normalize, address=job.ray_address,
                                 n_actors=job.ray_actors)
    elif store is not None:
        groups = store.load(store.groups)
        X_scored = prepare_features(groups, normalize=job.normalize)  # coverage is scored here
        X = raw_features(groups) if selector.wants_raw_features else X_scored
        del groups
        selector.fit(X)
    else:
        X_scored = None
        t = time.perf_counter()
        selector.fit(np.zeros((len(ds), 1), dtype=np.float32))
    timings["select"] = time.perf_counter() - t
    t = time.perf_counter()
    scores = score_selection(X_scored, selector.indices_, ds, job.label_columns)
    if coverage is not None:
        scores = {"coverage": coverage, **scores}
    timings["score"] = time.perf_counter() - t
    idx = selector.indices_
    order = np.sort(idx) if job.keep_order else idx

    t = time.perf_counter()
    manifest = _manifest(job, ds, k, selector, store, idx, timings)
    manifest["scores"] = scores
    atomic_write_bytes(out, subset_bytes(ds, order.tolist(), out))
    timings["export"] = time.perf_counter() - t
    manifest["timings"] = {k2: round(v, 3) for k2, v in timings.items()}
    atomic_write_bytes(manifest_path, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    log.info("selected %d of %d examples with %s -> %s", k, len(ds), job.method, out)
    return SelectResult(idx, out, manifest_path, manifest)


def _runs_on_ray(selector: Any) -> bool:
    from coreselect.distributed import RAY_METHODS

    if selector.name in RAY_METHODS and not selector.wants_raw_features:
        return True
    log.info("%s runs on the driver: only %s run on Ray actors", selector.name, ", ".join(sorted(RAY_METHODS)))
    return False


def _default_name(ds: Dataset) -> str:
    from coreselect.output import default_output_name

    return default_output_name(ds)


def _manifest(job: SelectJob, ds: Dataset, k: int, selector: Any, store: FeatureStore | None,
              idx: np.ndarray, timings: dict[str, float]) -> dict[str, Any]:
    m: dict[str, Any] = {
        "coreselect_version": __version__,
        "data": {"path": str(ds.path), "fingerprint": ds.fingerprint, "format": ds.format,
                 "container": ds.container},
        "budget": {"ratio": job.ratio, "n": job.n, "n_selected": k},
        "counts": {"pool": len(ds), "selected": int(len(idx)), "skipped": len(ds.skipped),
                   "duplicates": ds.duplicates},
        "method": {"name": job.method, "params": _jsonable(selector.get_params())},
        "order": "input" if job.keep_order else "selection",
    }
    if job.engine == "ray":
        m["engine"] = {"name": "ray", "address": job.ray_address, "actors": job.ray_actors}
    if store is not None:
        m["model"] = store.manifest["model"]
        m["features"] = {
            "config": store.manifest["config"], "store": str(store.root), "key": store.manifest["key"],
            "dims": store.manifest["dims"], "normalize": "raw" if selector.wants_raw_features else job.normalize,
            "tokens": store.manifest["stats"]["tokens"], "truncated": store.manifest["stats"]["truncated"],
        }
    if ds.skipped:
        m["skipped"] = ds.skipped
    # 0-based positions of the picked records in the input file, in pick order; "lines" gives
    # their 1-based line (row for Parquet) and "rows" their row in the feature store.
    m["indices"] = [ds.examples[i].source_index for i in idx.tolist()]
    m["lines"] = [ds.examples[i].line for i in idx.tolist()]
    m["rows"] = idx.tolist()
    if hasattr(selector, "radii_"):
        m["coverage_curve"] = [round(float(r), 6) for r in selector.radii_]
    return m


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v))
            for k, v in params.items()}


__all__ = ["SelectJob", "SelectResult", "resolve_budget", "run_select"]
