"""``select --dry-run``: what a select job would cost, measured on a small sample, writing nothing.

Every record is tokenised as the selector model will see it (cheap next to the forward pass),
then a seeded sample of :data:`SAMPLE` records is extracted and timed after a short warm-up;
the whole extraction is estimated from the sample's seconds per token. Memory: the peak
resident size while extracting the sample (the model and a batch; on a GPU its peak
allocation), the feature store on disk and the features in memory for selection.

No output, manifest or feature store is written (converting a built-in GGUF model into the
model cache, once, is the only write: tokenising needs the model's tokenizer).

Examples
--------
>>> from coreselect.job import SelectJob
>>> est = estimate(SelectJob(ratio=0.15))  # doctest: +SKIP
>>> print(est.format())  # doctest: +SKIP
dry run (nothing written): 36 of 240 records with facility-location
...
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.job import SelectJob

if TYPE_CHECKING:
    from coreselect.store_manifest import StoreManifest

log = logging.getLogger(__name__)

#: Records extracted for the measurement (a seeded sample), after :data:`WARMUP` records of warm-up.
SAMPLE = 32
WARMUP = 4


@dataclass
class Estimate:
    """The numbers ``select --dry-run`` prints (times in seconds, sizes in bytes)."""

    records: int
    skipped: int
    picks: int
    method: str
    needs_features: bool
    tokens: int = 0
    truncated: int = 0
    max_length: int = 0
    model: str = ""
    store: str = ""
    cached: bool = False
    dims: int = 0
    sample: int = 0
    sample_tokens: int = 0
    sample_seconds: float = 0.0
    device: str = "cpu"
    peak_bytes: int = 0
    #: Records whose features the record cache holds, and the tokens of the others (to extract).
    reused: int = 0
    todo_tokens: int | None = None

    @property
    def extract_seconds(self) -> float:
        """The whole extraction, from the sample's seconds per token (0 when cached)."""
        if self.cached or not self.sample_tokens:
            return 0.0
        return self.sample_seconds / self.sample_tokens * (self.tokens if self.todo_tokens is None else self.todo_tokens)

    @property
    def store_bytes(self) -> int:
        """The feature store on disk: float16 features plus the per-row columns."""
        return self.records * (2 * self.dims + 32)

    @property
    def select_bytes(self) -> int:
        """Features in memory while selecting: the stored float16 and the prepared float32 rows."""
        return self.records * self.dims * 6

    def format(self) -> str:
        from coreselect.cache import human_size

        lines = [f"dry run (nothing written): {self.picks} of {self.records} records with {self.method}"
                 + (f" ({self.skipped} bad records skipped)" if self.skipped else "")]
        if not self.needs_features:
            lines.append(f"on your features ({self.store}): no model runs" if self.store
                         else f"{self.method} reads no features: no model runs")
            return "\n".join(lines)
        mean = self.tokens / max(self.records, 1)
        lines.append(f"tokens: {self.tokens:,} for {self.model} (mean {mean:,.0f} per record; {self.truncated:,} "
                     f"records cut to {self.max_length})")
        if self.cached:
            lines.append("extraction: none (the features are in the store below)")
        where = f"{self.store} (already extracted: nothing to extract)" if self.cached else self.store
        lines.append(f"features: {self.dims:,} dims per record; store {human_size(self.store_bytes)} at {where}")
        if not self.cached:
            rate = self.sample_tokens / max(self.sample_seconds, 1e-9)
            lines.append(f"measured: {self.sample} records ({self.sample_tokens:,} tokens) in {self.sample_seconds:.1f} s "
                         f"on {self.device} ({rate:,.0f} tokens/s)")
            if self.reused:
                todo = self.records - self.reused
                lines.append(f"estimated extraction: {_duration(self.extract_seconds)} for the {todo:,} "
                             f"record{'' if todo == 1 else 's'} not in the record cache ({self.reused:,} are)")
            else:
                lines.append(f"estimated extraction: {_duration(self.extract_seconds)} for all {self.records:,} records")
        peak = "GPU peak" if self.device.startswith("cuda") else "peak resident"
        extracting = "" if self.cached else f"{peak} {human_size(self.peak_bytes)} while extracting (model and a batch); "
        lines.append(f"memory: {extracting}{human_size(self.select_bytes)} of features in memory while selecting")
        return "\n".join(lines)


def _duration(s: float) -> str:
    """``75`` -> ``'about 1 min 15 s'``.

    >>> _duration(8.2), _duration(75), _duration(7300)
    ('about 8 s', 'about 1 min 15 s', 'about 2 h 1 min')
    """
    s = round(s)
    if s < 60:
        return f"about {s} s"
    if s < 3600:
        return f"about {s // 60} min {s % 60} s"
    return f"about {s // 3600} h {s % 3600 // 60} min"


def _peak_rss() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024  # bytes on macOS, KiB on Linux


def estimate(job: SelectJob) -> Estimate:
    """Measure what ``run_select(job)`` would cost, without writing anything (see the module doc)."""
    from coreselect.demo import demo_path
    from coreselect.pipeline import features_dir, resolve_budget
    from coreselect.score import label_scores
    from coreselect.selection import make_selector
    from coreselect.sources import load_data

    ds = load_data(demo_path() if job.data is None else job.data, on_error=job.on_error)
    k = resolve_budget(len(ds), job.ratio, job.n, job.budget_tokens)
    selector = make_selector(job.method, n_select=k, random_state=job.seed, **job.method_params)
    selector.check_params(len(ds))
    label_scores(ds, [], job.label_columns)
    needs = bool(selector.needs_features or selector.needs_scores or job.dedup is not None
                 or job.budget_tokens is not None)
    est = Estimate(len(ds), len(ds.skipped), k, job.method, needs and job.features_file is None)
    if not est.needs_features:
        est.store = job.features_file or ""
        return est
    from coreselect.features.extract import store_key

    spec = _resolve(job)
    key = store_key(ds.fingerprint, spec, job.features)
    store_dir = Path(job.features_dir) if job.features_dir else features_dir(job, key)
    if job.features_dir:
        from coreselect.pipeline import check_store

        check_store(store_dir, ds, spec, job.features, key)  # a store of other options fails as the run would
    est.model, est.max_length, est.store = spec.name, job.features.max_length, str(store_dir)
    done = _complete(store_dir, key)
    if done is not None:  # nothing to extract: the numbers are the store's
        stats = done.stats or {}
        est.cached, est.tokens, est.truncated = True, stats["tokens"], stats["truncated"]
        est.dims = sum((done.dims or {}).values())
        return est
    fn, tokenizer, device = _shard_function(job, spec)
    lengths, truncated = _token_counts(job, ds.examples, tokenizer)
    est.tokens, est.truncated, est.device = int(lengths.sum()), int(truncated), device
    from coreselect.recordcache import open_record_cache, record_hashes

    cache = open_record_cache(spec, job.features, create=False)  # writes nothing
    if cache is not None:
        missing = cache.missing(record_hashes(ds.examples))
        est.reused, est.todo_tokens = len(ds) - len(missing), int(lengths[missing].sum())
    rng = np.random.default_rng(job.seed)
    pick = rng.permutation(len(ds))
    warm, sample = pick[:WARMUP], pick[:SAMPLE]  # the warm-up pays one-time costs (kernel set-up) outside the timing
    fn([ds.examples[i] for i in warm])
    _reset_peak(device)
    t = time.perf_counter()
    arrays = fn([ds.examples[i] for i in sample])
    est.sample_seconds = time.perf_counter() - t
    est.sample, est.sample_tokens = len(sample), int(arrays["n_tokens"].sum())
    est.dims = sum(a.shape[1] for name, a in arrays.items() if a.ndim == 2)
    est.peak_bytes = _peak(device)
    log.debug("dry run: %d sample records in %.2f s", len(sample), est.sample_seconds)
    return est


def _resolve(job: SelectJob) -> Any:
    from coreselect.features.extract import resolve_feature_model

    return resolve_feature_model(job.features, job.model, trust_remote_code=job.trust_remote_code,
                                 progress=job.progress)


def _complete(store_dir: Path, key: str) -> StoreManifest | None:
    """The manifest of a complete store of ``key`` at ``store_dir``, else None."""
    from coreselect.errors import StoreError
    from coreselect.store_manifest import StoreManifest

    try:
        m = StoreManifest.read(store_dir)
    except StoreError:  # none there, or not a store's
        return None
    return m if m.complete and m.key == key and isinstance(m.stats, dict) else None


def _shard_function(job: SelectJob, spec: Any) -> tuple[Any, Any, str]:
    """The extraction function of the job, its tokenizer and the device it runs on."""
    from coreselect.features.extract import shard_function

    fn = shard_function(spec, job.features, trust_remote_code=job.trust_remote_code)
    return fn, fn.tokenizer, fn.device  # type: ignore[attr-defined]


def _token_counts(job: SelectJob, examples: Any, tokenizer: Any) -> tuple[np.ndarray, int]:
    """Every record's tokens as the extractor counts them (after truncation) and how many are cut."""
    return job.features.kind_spec.token_counts(job.features, examples, tokenizer)


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()


def _peak(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    return _peak_rss()


__all__ = ["SAMPLE", "Estimate", "estimate"]
