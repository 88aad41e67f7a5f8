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

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coreselect import __version__
from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError
from coreselect.job import SelectJob
from coreselect.manifest import Budget, Counts, DataRef, FeatureRef, MethodRef, SelectionManifest
from coreselect.models import cache_dir, resolve_model
from coreselect.output import atomic_write_bytes, check_writable, subset_bytes
from coreselect.score import label_scores, score_selection
from coreselect.selection import make_selector
from coreselect.store import FeatureStore

log = logging.getLogger(__name__)


@dataclass
class SelectResult:
    indices: np.ndarray
    output: Path
    manifest_path: Path
    manifest: SelectionManifest


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
    from coreselect.executor import make_executor
    from coreselect.features.extract import store_key

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

    selector.check_params(len(ds))  # a bad method parameter fails now, not after extraction
    executor = make_executor(job.engine, address=job.ray_address, n_actors=job.ray_actors)
    store = None
    X_scored = coverage = None  # the features the picks are scored on, or the workers' scores
    if selector.needs_features:
        t = time.perf_counter()
        if job.features.kind == "text":
            from coreselect.features.text import resolve_text_model

            spec = resolve_text_model(job.model)
        else:
            spec = resolve_model(job.model, trust_remote_code=job.trust_remote_code)
        key = store_key(ds.fingerprint, spec, job.features)
        store = executor.extract(ds, spec, job.features, features_dir(job, key), progress=job.progress,
                                 trust_remote_code=job.trust_remote_code)
        timings["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        X_scored, coverage = executor.select(selector, store, normalize=job.normalize)
    else:
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
    manifest = _manifest(job, ds, k, selector, store, idx, scores)
    atomic_write_bytes(out, subset_bytes(ds, order.tolist(), out))
    timings["export"] = time.perf_counter() - t
    manifest.timings = {k2: round(v, 3) for k2, v in timings.items()}
    manifest.write(manifest_path)
    log.info("selected %d of %d examples with %s -> %s", k, len(ds), job.method, out)
    return SelectResult(idx, out, manifest_path, manifest)


def _default_name(ds: Dataset) -> str:
    from coreselect.output import default_output_name

    return default_output_name(ds)


def _manifest(job: SelectJob, ds: Dataset, k: int, selector: Any, store: FeatureStore | None,
              idx: np.ndarray, scores: dict[str, Any]) -> SelectionManifest:
    rows = idx.tolist()
    features = None
    if store is not None:
        sm = store.manifest
        features = FeatureRef(sm["config"], str(store.root), sm["key"], sm["dims"],
                              normalize="raw" if selector.wants_raw_features else job.normalize,
                              score_normalize=job.normalize,  # the space score_selection measured
                              tokens=sm["stats"]["tokens"], truncated=sm["stats"]["truncated"])
    return SelectionManifest(
        version=__version__,
        data=DataRef(str(ds.path), ds.fingerprint, ds.format, ds.container),
        budget=Budget(job.ratio, job.n, k),
        counts=Counts(len(ds), len(rows), len(ds.skipped), ds.duplicates),
        method=MethodRef(job.method, _jsonable(selector.get_params())),
        order="input" if job.keep_order else "selection",
        engine={"name": "ray", "address": job.ray_address, "actors": job.ray_actors} if job.engine == "ray" else None,
        model=store.manifest["model"] if store is not None else None,
        features=features, skipped=list(ds.skipped),
        indices=[ds.examples[i].source_index for i in rows], lines=[ds.examples[i].line for i in rows], rows=rows,
        coverage_curve=[round(float(r), 6) for r in selector.radii_] if hasattr(selector, "radii_") else None,
        scores=scores,
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v))
            for k, v in params.items()}


__all__ = ["SelectJob", "SelectResult", "resolve_budget", "run_select"]
