"""The extraction step: dataset + model + options -> a feature store on disk.

Written once, run by any executor (:mod:`coreselect.executor`): :func:`open_store` creates or
resumes the store, :func:`shard_function` builds the per-shard function of a model and options
(one per process or actor: it holds the model), :func:`run_shard` extracts and writes one shard,
and :func:`finish_store` marks the store complete. Where the shards run is the executor's choice.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.checkpoint import CHECKPOINT_SECONDS, drop_partial, read_partial, write_partial
from coreselect.data import Dataset, Example
from coreselect.features.activations import ActivationExtractor, length_batches
from coreselect.features.config import FeatureConfig
from coreselect.features.render import Rendered, has_chat_template, render_batch
from coreselect.features.scores import shard_scores
from coreselect.models import ModelSpec, load_model, resolve_model
from coreselect.store import FeatureStore, ShardPlan, read_shard
from coreselect.store_manifest import StoreManifest

log = logging.getLogger(__name__)

#: Rows per shard: large enough to batch well (rows are sorted by length across a shard; smaller
#: shards made the demo's extraction 3x slower on a CPU); within a shard, checkpoints keep the
#: finished batches (:mod:`coreselect.checkpoint`).
SHARD_ROWS = 512
#: Padded tokens per forward pass (batch size x longest row in the batch).
BATCH_TOKENS = 8192
#: Rows per forward pass at most.
MAX_BATCH = 64
#: Largest share of a batch that may be padding (see :func:`length_batches`).
MAX_WASTE = 0.1


def store_key(data_fingerprint: str, model: ModelSpec, config: FeatureConfig) -> str:
    """What identifies a feature store's content: data, model and extraction options."""
    blob = json.dumps({"data": data_fingerprint, "model": model.fingerprint, "config": config.to_json()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def default_system_prefix(tokenizer: Any) -> list[int]:
    """Token ids of the system turn a chat template adds to a conversation that has none.

    Two probe conversations are rendered; of the tokens they share before their content, the
    part before the last repeat of the opening token (``<|im_start|>`` for SmolLM2) is the
    default system turn. Empty when the template adds none (or there is no template).

    Examples
    --------
    >>> len(default_system_prefix(smollm2_tokenizer))  # "<|im_start|>system ... <|im_end|>"  # doctest: +SKIP
    21
    """
    if not has_chat_template(tokenizer):
        return []
    probes = [Example(0, (("user", text), ("assistant", "Yes.")), {}, 1) for text in ("Alpha?", "Omega!")]
    a, b = render_batch(probes, tokenizer, 1 << 30)
    shared = 0
    while shared < min(a.content_start, b.content_start) and a.ids[shared] == b.ids[shared]:
        shared += 1
    cut = max((i for i in range(1, shared) if a.ids[i] == a.ids[0]), default=0)
    return list(a.ids[:cut])


def _drop_prefix(r: Rendered, prefix: list[int], max_length: int) -> Rendered:
    n = len(prefix) if r.ids[: len(prefix)] == prefix else 0
    ids = r.ids[n:]
    return Rendered(ids[:max_length], r.content_start - n, r.response_start - n,
                    r.truncated or len(ids) > max_length)


def render_examples(examples: Sequence[Example], tokenizer: Any, max_length: int, prefix: Sequence[int] = ()
                    ) -> list[Rendered]:
    """Render and tokenise examples, leaving out ``prefix`` (the template's default system turn,
    see :func:`default_system_prefix`) where they start with it, truncated to ``max_length``."""
    if not prefix:
        return render_batch(examples, tokenizer, max_length)
    prefix = list(prefix)
    return [_drop_prefix(r, prefix, max_length) for r in render_batch(examples, tokenizer, max_length + len(prefix))]


def extract_shard(
    extractor: ActivationExtractor, examples: Sequence[Example], *, batch_tokens: int = BATCH_TOKENS,
    max_batch: int = MAX_BATCH, max_waste: float = MAX_WASTE, on_batch: Callable[[int, int], None] | None = None,
    resume: tuple[np.ndarray, dict[str, np.ndarray]] | None = None,
    checkpoint: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> dict[str, np.ndarray]:
    """Features, per-row stats and (with ``config.scores``) per-row scores of one shard's
    examples, in input order.

    Rows are sorted by length across the shard and batched by :func:`length_batches`;
    ``on_batch(rows, tokens)`` is called after each batch's forward pass (a progress bar).
    ``resume``: ``(rows, arrays)`` done already (a checkpoint); ``checkpoint(rows, arrays)``
    receives the rows done every ``checkpoint_seconds`` and when the work is interrupted.
    """
    cfg = extractor.config
    prefix = default_system_prefix(extractor.tokenizer) if cfg.drop_default_system else []
    rendered = render_examples(examples, extractor.tokenizer, cfg.max_length, prefix)
    # what the forward needs: prompt-span features ignore the response (see prompt_part)
    fed = [prompt_part(r) for r in rendered] if cfg.span == "prompt" and not cfg.scores else rendered
    n = len(rendered)
    out: dict[str, np.ndarray] = {}
    done = np.zeros(n, dtype=bool)

    def batches(lengths: list[int]) -> Iterable[list[int]]:
        return length_batches(lengths, batch_tokens, max_batch, max_waste)

    def keep(rows: Sequence[int], feats: dict[str, np.ndarray]) -> None:
        for name, a in feats.items():
            if name not in out:
                out[name] = np.zeros((n, *a.shape[1:]), dtype=np.float32)
            out[name][rows] = a
        done[rows] = True
        if on_batch is not None:
            on_batch(len(rows), sum(len(fed[i].ids) for i in rows))

    if resume is not None and len(resume[0]):
        keep(resume[0].tolist(), resume[1])
    todo = np.flatnonzero(~done).tolist()
    last = time.perf_counter()
    try:
        for b in batches([len(fed[i].ids) for i in todo]):
            batch = [todo[j] for j in b]
            keep(batch, extractor.extract_batch([fed[i] for i in batch]))
            if checkpoint is not None and time.perf_counter() - last >= checkpoint_seconds and not done.all():
                checkpoint(np.flatnonzero(done), {k: v[done] for k, v in out.items()})
                last = time.perf_counter()
    except BaseException:  # Ctrl-C, a crash: keep the finished batches for the rerun
        if checkpoint is not None and done.any():
            checkpoint(np.flatnonzero(done), {k: v[done] for k, v in out.items()})
        raise
    if cfg.scores:
        out.update(shard_scores(extractor, examples, rendered, out.pop("loss_cond"),
                                lambda exs: render_examples(exs, extractor.tokenizer, 1 << 30, prefix), batches))
    out["n_tokens"] = np.array([len(r.ids) for r in rendered])
    out["prompt_tokens"] = np.array([min(r.response_start, len(r.ids)) - min(r.content_start, len(r.ids))
                                     for r in rendered])
    out["response_tokens"] = np.array([max(0, len(r.ids) - r.response_start) for r in rendered])
    out["truncated"] = np.array([r.truncated for r in rendered], dtype=np.int32)
    return out


def prompt_part(r: Rendered) -> Rendered:
    """``r`` without its response tokens: all that ``--span prompt`` features need, since a causal
    LM's states at the prompt's positions do not depend on later tokens (the forward then costs the
    prompt's tokens only). A row whose prompt span is empty keeps every token (it pools them all).

    >>> prompt_part(Rendered([1, 2, 3, 4, 5], 1, 3, False)).ids
    [1, 2, 3]
    >>> prompt_part(Rendered([1, 2, 3], 2, 2, False)).ids
    [1, 2, 3]
    """
    if r.response_start <= r.content_start or r.response_start >= len(r.ids):
        return r
    return Rendered(r.ids[: r.response_start], r.content_start, r.response_start, r.truncated)


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
    fn = _shard_function(model, config, batch_tokens=batch_tokens, trust_remote_code=trust_remote_code,
                         loaded=loaded, describe=describe, on_batch=on_batch)
    if record_cache is None:
        return fn
    from coreselect.recordcache import RecordCache, cached_shard_function

    return cached_shard_function(fn, RecordCache(Path(record_cache)))


def resolve_feature_model(config: FeatureConfig, model: str | None, *, trust_remote_code: bool = False,
                          progress: bool = True) -> ModelSpec:
    """The model that extracts ``config.kind`` features: ``model`` (a hub id, a folder, a GGUF
    file; None: the kind's default) resolved as that kind loads it. The one place that maps a
    feature kind to its model (the select pipeline, its dry run and ``coreselect extract`` use it).

    >>> resolve_feature_model(FeatureConfig(kind="text"), None).name  # doctest: +SKIP
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    if config.kind == "text":
        from coreselect.features.text import resolve_text_model

        return resolve_text_model(model)
    return resolve_model(model, trust_remote_code=trust_remote_code, progress=progress)


def _shard_function(model: ModelSpec, config: FeatureConfig, *, batch_tokens: int, trust_remote_code: bool,
                    loaded: tuple[Any, Any] | None, describe: bool, on_batch: Callable[[int, int], None] | None
                    ) -> ShardFn:
    if config.kind == "text":
        from coreselect.features.text import TextEmbedder

        if describe:
            log.info("embedding text with %s", model.name)
        return TextEmbedder(model, config.max_length).extract_shard
    if loaded is None:
        from coreselect.device import describe as describe_device
        from coreselect.device import resolve_device, torch_dtype_name

        device = resolve_device(config.device)
        precision = config.resolved_precision()
        loaded = load_model(model, dtype=torch_dtype_name(precision), device=device,
                            trust_remote_code=trust_remote_code)
        if describe:
            log.info("selector model in %s", describe_device(precision, device))
    m, tok = loaded
    extractor = ActivationExtractor(m, tok, config)
    if describe:
        template = "chat template" if has_chat_template(tok) else "Alpaca-style prompt (no chat template)"
        log.info("extracting %s with %s (%s)", ",".join(extractor.groups), model.name, template)
        if config.drop_default_system:
            n_drop = len(default_system_prefix(tok))
            if n_drop:
                log.info("leaving out the template's default system turn (%d tokens)", n_drop)
            else:
                log.warning("drop_default_system: the chat template adds no system turn; nothing dropped")
        if config.scores:
            log.info("scoring responses (%s): the pass continues to the LM head at the response positions, "
                     "plus a response-alone pass", ",".join(config.scores))
    return functools.partial(extract_shard, extractor, batch_tokens=batch_tokens, on_batch=on_batch)


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
