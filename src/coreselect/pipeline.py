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

from coreselect._version import __version__
from coreselect.data import Dataset
from coreselect.errors import ConfigError, StoreError
from coreselect.featureset import FeatureFile, user_features
from coreselect.job import SelectJob
from coreselect.manifest import Budget, Counts, DataRef, FeatureRef, MethodRef, SelectionManifest
from coreselect.models import cache_dir
from coreselect.output import atomic_write_bytes, check_output_name, check_writable, subset_bytes
from coreselect.score import label_scores, score_selection
from coreselect.selection import make_selector
from coreselect.sources import load_data
from coreselect.store import FeatureSource, FeatureStore

log = logging.getLogger(__name__)


@dataclass
class SelectResult:
    indices: np.ndarray
    output: Path
    manifest_path: Path
    manifest: SelectionManifest


def resolve_budget(n_pool: int, ratio: float | None, n: int | None, budget_tokens: int | None = None) -> int:
    """``--ratio`` or ``--n`` -> a number of examples in ``[1, n_pool]``; with ``--budget-tokens``
    alone, the whole pool (the token budget then decides how many).

    >>> resolve_budget(200, 0.15, None), resolve_budget(200, None, None, budget_tokens=5000)
    (30, 200)
    """
    if ratio is not None and n is not None:
        raise ConfigError("give only one of --ratio and --n")
    if ratio is None and n is None:
        if budget_tokens is not None:
            return n_pool
        raise ConfigError("give --ratio, --n or --budget-tokens")
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
    """Where a job's store lives when ``--features-dir`` names none: ``<work dir>/<key[:16]>``."""
    root = Path(job.work_dir) if job.work_dir else cache_dir() / "features"
    return root / key[:16]


def check_store(root: Path, ds: Dataset, spec: Any, config: Any, key: str) -> None:
    """A one-line :class:`StoreError` when the store at ``root`` (``--features-dir``) holds features of
    other data, another model or other options, saying which; nothing when it matches or is new."""
    from coreselect.store_manifest import mismatch, peek

    have = peek(root)
    if have is None:
        return  # no store yet (or not one): FeatureStore.create decides
    why = mismatch(have, {"key": key, "data": {"path": str(ds.path), "fingerprint": ds.fingerprint},
                          "model": spec.to_json(), "config": config.to_json()})
    if why:
        what = why.explain().replace("another model", "features of another model", 1)
        raise StoreError(f"{root}: holds {what}; use a store of this data, model and options, or another directory")


def run_select(job: SelectJob) -> SelectResult:
    """Run the whole select job; see :class:`SelectJob` for the options."""
    from coreselect.demo import demo_path
    from coreselect.executor import make_executor
    from coreselect.features.extract import resolve_feature_model, store_key

    timings: dict[str, float] = {}
    t = time.perf_counter()
    ds = load_data(demo_path() if job.data is None else job.data, on_error=job.on_error)  # a path, records, ...
    timings["load_data"] = time.perf_counter() - t
    k = resolve_budget(len(ds), job.ratio, job.n, job.budget_tokens)
    out = Path(job.output) if job.output else Path(_default_name(ds))
    manifest_path = out.with_name(out.name + ".manifest.json")
    check_output_name(out, _default_name(ds).removeprefix("core"))  # core.txt: an error, not JSON Lines
    check_writable(out, job.overwrite, inputs=[ds.path])  # and its folder: before any work
    check_writable(manifest_path, job.overwrite, inputs=[ds.path])
    selector = make_selector(job.method, n_select=k, random_state=job.seed, **job.method_params)
    if job.engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {job.engine!r}")
    label_scores(ds, [], job.label_columns)  # a missing label column fails now, not after extraction

    selector.check_params(len(ds))  # a bad method parameter fails now, not after extraction
    executor = make_executor(job.engine, address=job.ray_address, n_actors=job.ray_actors)
    # the features: the user's own (no model, no store), or a store (it also holds the per-row
    # scores and stats, which dedup and token budgets read), or none for a method that reads none
    source: FeatureSource | None = None
    X_scored = coverage = removed = None  # the features the picks are scored on, or the workers' scores
    t = time.perf_counter()
    if job.features_file is not None or job.features_matrix is not None:
        source = user_features(job, ds)
    elif selector.needs_features or selector.needs_scores or job.dedup is not None or job.budget_tokens is not None:
        spec = resolve_feature_model(job.features, job.model, trust_remote_code=job.trust_remote_code,
                                     progress=job.progress)
        key = store_key(ds.fingerprint, spec, job.features)
        where = Path(job.features_dir) if job.features_dir else features_dir(job, key)
        if job.features_dir:
            check_store(where, ds, spec, job.features, key)
        source = executor.extract(ds, spec, job.features, where, progress=job.progress,
                                  trust_remote_code=job.trust_remote_code, batch_tokens=job.batch_tokens)
        timings["extract"] = time.perf_counter() - t
        t = time.perf_counter()
    if source is not None:  # one select step, whichever the features are
        X_scored, coverage, removed = executor.select(selector, source, normalize=job.normalize, dedup=job.dedup,
                                                      budget_tokens=job.budget_tokens)
        if not isinstance(source, FeatureStore):
            log.info("selected on %s: %d rows x %d dims", source.location, source.n_rows, sum(source.dims.values()))
    else:
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
    manifest = _manifest(job, ds, k, selector, source, idx, scores, removed)
    atomic_write_bytes(out, subset_bytes(ds, order.tolist(), out))
    timings["export"] = time.perf_counter() - t
    manifest.timings = {k2: round(v, 3) for k2, v in timings.items()}
    manifest.write(manifest_path)
    log.debug("selected %d of %d examples with %s -> %s", len(idx), len(ds), job.method, out)  # the CLI says it once
    return SelectResult(idx, out, manifest_path, manifest)


def _default_name(ds: Dataset) -> str:
    from coreselect.output import default_output_name

    return default_output_name(ds)


def _manifest(job: SelectJob, ds: Dataset, k: int, selector: Any, source: FeatureSource | None,
              idx: np.ndarray, scores: dict[str, Any], removed: int | None) -> SelectionManifest:
    rows = idx.tolist()
    features = None
    picked_tokens = None
    store = source if isinstance(source, FeatureStore) else None
    seen_as = "raw" if selector.wants_raw_features else job.normalize  # what the selector saw
    if isinstance(source, FeatureFile):  # the user's own features
        features = source.ref(normalize=seen_as, score_normalize=job.normalize)
    if store is not None:
        picked_tokens = int(store.load(["n_tokens"])["n_tokens"][idx].sum())
        sm = store.manifest
        stats = sm.stats or {}
        features = FeatureRef(sm.config or {}, str(store.root), sm.key, sm.dims or {}, normalize=seen_as,
                              score_normalize=job.normalize,  # the space score_selection measured
                              tokens=stats["tokens"], truncated=stats["truncated"],
                              precision=sm.precision, extracted=store.extracted)
    return SelectionManifest(
        version=__version__,
        data=DataRef(str(ds.path), ds.fingerprint, ds.format, ds.container, columns=ds.columns),
        budget=Budget(job.ratio, job.n, len(rows), tokens=job.budget_tokens, picked_tokens=picked_tokens),
        dedup=None if job.dedup is None else {"threshold": job.dedup, "removed": removed},
        counts=Counts(len(ds), len(rows), len(ds.skipped), ds.duplicates),
        method=MethodRef(job.method, _jsonable(selector.get_params()), _jsonable(getattr(selector, "info_", {}))),
        order="input" if job.keep_order else "selection",
        engine={"name": "ray", "address": job.ray_address, "actors": job.ray_actors} if job.engine == "ray" else None,
        model=store.manifest.model if store is not None else None,
        features=features, skipped=list(ds.skipped),
        indices=[ds.examples[i].source_index for i in rows], lines=[ds.examples[i].line for i in rows], rows=rows,
        # a method fitted for more picks than a token budget kept has a longer curve: cut to the picks
        coverage_curve=([round(float(r), 6) for r in selector.radii_[: len(rows)]] if hasattr(selector, "radii_")
                        else None),
        scores=scores,
    )


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (int, float, str, bool, type(None), list)) else repr(v))
            for k, v in params.items()}


__all__ = ["SelectJob", "SelectResult", "resolve_budget", "run_select"]
