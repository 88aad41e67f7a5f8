"""The extraction step: dataset + model + options -> a feature store on disk.

Written once, run by any executor (:mod:`coreselect.executor`): :func:`open_store` creates or
resumes the store, :func:`shard_function` builds the per-shard function of a model and options
(one per process or actor: it holds the model), :func:`run_shard` extracts and writes one shard,
and :func:`finish_store` marks the store complete. Where the shards run is the executor's choice;
what a shard's arrays are is the feature kind's (:mod:`coreselect.features.kinds`: the selector
LM's states in :mod:`coreselect.features.lm`, whose ``render_examples``, ``extract_shard``, ...
are re-exported here; text embeddings in :mod:`coreselect.features.text`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.checkpoint import drop_partial, read_partial, write_partial
from coreselect.data import Dataset, Example
from coreselect.features.config import FeatureConfig
from coreselect.features.lm import (  # re-exported: the LM kinds' extraction, long imported from here
    BATCH_TOKENS,
    MAX_BATCH,
    MAX_WASTE,
    default_system_prefix,
    extract_shard,
    prompt_part,
    render_examples,
)
from coreselect.models import ModelSpec
from coreselect.store import FeatureStore, ShardPlan, read_shard
from coreselect.store_manifest import StoreManifest

log = logging.getLogger(__name__)

#: Rows per shard: large enough to batch well (rows are sorted by length across a shard; smaller
#: shards made the demo's extraction 3x slower on a CPU); within a shard, checkpoints keep the
#: finished batches (:mod:`coreselect.checkpoint`).
SHARD_ROWS = 512
def store_key(data_fingerprint: str, model: ModelSpec, config: FeatureConfig) -> str:
    """What identifies a feature store's content: data, model and extraction options."""
    blob = json.dumps({"data": data_fingerprint, "model": model.fingerprint, "config": config.to_json()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


ShardFn = Callable[[Sequence[Example]], dict[str, np.ndarray]]


def shard_function(
    model: ModelSpec, config: FeatureConfig, *, batch_tokens: int = BATCH_TOKENS, trust_remote_code: bool = False,
    loaded: tuple[Any, Any] | None = None, describe: bool = False, on_batch: Callable[[int, int], None] | None = None,
    record_cache: str | Path | None = None,
) -> ShardFn:
    """The function that turns one shard's examples into its arrays, for ``model`` x ``config``.

    Loads the model (or uses ``loaded``, a ``(model, tokenizer)`` pair); every executor builds
    it once per process or actor. With ``describe``, logs what is extracted and how.
    ``on_batch(rows, tokens)``: called after each batch (activations; text embeddings per shard).
    ``record_cache``: the record-cache folder of ``model`` x ``config``
    (:func:`~coreselect.recordcache.open_record_cache`): only the records it lacks are
    extracted, and they are added to it.
    """
    fn = config.kind_spec.shard_function(model, config, batch_tokens=batch_tokens, trust_remote_code=trust_remote_code,
                                         loaded=loaded, describe=describe, on_batch=on_batch)
    if record_cache is None:
        return fn
    from coreselect.recordcache import RecordCache, cached_shard_function

    return cached_shard_function(fn, RecordCache(Path(record_cache)))


def resolve_feature_model(config: FeatureConfig, model: str | None, *, trust_remote_code: bool = False,
                          progress: bool = True) -> ModelSpec:
    """The model that extracts ``config.kind`` features: ``model`` (a hub id, a folder, a GGUF
    file; None: the kind's default) resolved as that kind loads it (its
    :meth:`~coreselect.features.kinds.Kind.resolve_model`); the select pipeline, its dry run and
    ``coreselect extract`` use it.

    >>> resolve_feature_model(FeatureConfig(kind="text"), None).name  # doctest: +SKIP
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    return config.kind_spec.resolve_model(model, trust_remote_code=trust_remote_code, progress=progress)


def run_shard(store: FeatureStore, plan: ShardPlan, examples: Sequence[Example], shard_fn: ShardFn) -> int:
    """Extract and write one shard unless its file exists; return its token count.

    The unit of work of every executor. The file is written to a temporary name and renamed,
    so a retried or duplicated run of the same shard (a Ray task whose actor died after the
    rename) rewrites nothing and adds no row.
    """
    if (store.root / plan.filename).is_file():
        return int(read_shard(store.root, plan, ["n_tokens"])["n_tokens"].sum())
    if "checkpoint" in inspect.signature(shard_fn).parameters:  # the activation path checkpoints its batches
        arrays = shard_fn(examples, resume=read_partial(store, plan),  # type: ignore[call-arg]
                          checkpoint=functools.partial(write_partial, store, plan))
    else:
        arrays = shard_fn(examples)
    store.write_shard(plan, arrays)
    drop_partial(store, plan)
    release_free_memory()
    return int(arrays["n_tokens"].sum())


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only; a no-op elsewhere).

    Batches of varying shapes leave glibc's arenas fragmented, so the resident size creeps up
    shard after shard although nothing is alive; trimming once per shard keeps it flat.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def open_store(ds: Dataset, model: ModelSpec, config: FeatureConfig, out_dir: str | Path,
               shard_rows: int = SHARD_ROWS) -> FeatureStore:
    """Create or resume the feature store of ``ds`` x ``model`` x ``config`` (any executor)."""
    return FeatureStore.create(out_dir, StoreManifest(
        key=store_key(ds.fingerprint, model, config), n_rows=len(ds), shard_rows=shard_rows,
        data={"path": str(ds.path), "fingerprint": ds.fingerprint, "format": ds.format},
        model=model.to_json(), config=config.to_json(),
        # what ran (the key holds the precision only when it is not bf16; the device never)
        precision=config.resolved_precision(),
    ))


def finish_store(store: FeatureStore, ds: Dataset, config: FeatureConfig, seconds: float) -> FeatureStore:
    """Mark a store whose shards are all written complete, with its token and truncation counts."""
    stats = store.load(["n_tokens", "truncated"])
    n_trunc = int(stats["truncated"].sum())
    if n_trunc:
        log.warning("%d of %d examples were truncated to %d tokens", n_trunc, len(ds), config.max_length)

    store.finalize(stats={"tokens": int(stats["n_tokens"].sum()), "truncated": n_trunc,
                          "seconds_last_run": round(seconds, 3)})
    if config.scores:
        unscored = int(np.isnan(store.load(["loss_cond"])["loss_cond"]).sum())
        if unscored:
            log.warning("%d of %d examples have no response tokens within %d tokens: their scores are NaN",
                        unscored, len(ds), config.max_length)
    return store


__all__ = ["BATCH_TOKENS", "MAX_BATCH", "MAX_WASTE", "SHARD_ROWS", "default_system_prefix", "extract_shard",
           "finish_store", "open_store", "prompt_part", "release_free_memory", "render_examples",
           "resolve_feature_model", "run_shard", "shard_function", "store_key"]
