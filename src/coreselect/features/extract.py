"""The extraction stage: dataset + model + options -> a feature store on disk.

The stage is a loop over the store's pending shards; :func:`extract_shard` does one shard and
is all another executor (e.g. a Ray actor) needs to run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset, Example
from coreselect.features.activations import ActivationExtractor, FeatureConfig, length_batches
from coreselect.features.render import Rendered, has_chat_template, render_batch
from coreselect.models import ModelSpec, load_model
from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

#: Rows per shard: small enough that a crash loses little, large enough to batch well.
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


def extract_shard(
    extractor: ActivationExtractor, examples: Sequence[Example], *, batch_tokens: int = BATCH_TOKENS,
    max_batch: int = MAX_BATCH, max_waste: float = MAX_WASTE,
) -> dict[str, np.ndarray]:
    """Features and per-row stats of one shard's examples, in input order.

    Rows are sorted by length across the shard and batched by :func:`length_batches`.
    """
    cfg = extractor.config
    if cfg.drop_default_system:
        prefix = default_system_prefix(extractor.tokenizer)
        rendered = render_batch(examples, extractor.tokenizer, cfg.max_length + len(prefix))
        rendered = [_drop_prefix(r, prefix, cfg.max_length) for r in rendered]
    else:
        rendered = render_batch(examples, extractor.tokenizer, cfg.max_length)
    n = len(rendered)
    out: dict[str, np.ndarray] = {}
    for batch in length_batches([len(r.ids) for r in rendered], batch_tokens, max_batch, max_waste):
        feats = extractor.extract_batch([rendered[i] for i in batch])
        for name, a in feats.items():
            if name not in out:
                out[name] = np.zeros((n, a.shape[1]), dtype=np.float32)
            out[name][batch] = a
    out["n_tokens"] = np.array([len(r.ids) for r in rendered])
    out["prompt_tokens"] = np.array([min(r.response_start, len(r.ids)) - min(r.content_start, len(r.ids))
                                     for r in rendered])
    out["response_tokens"] = np.array([max(0, len(r.ids) - r.response_start) for r in rendered])
    out["truncated"] = np.array([r.truncated for r in rendered], dtype=np.int32)
    return out


def extract_features(
    ds: Dataset,
    model: ModelSpec,
    config: FeatureConfig,
    out_dir: str | Path,
    *,
    shard_rows: int = SHARD_ROWS,
    batch_tokens: int = BATCH_TOKENS,
    progress: bool = True,
    trust_remote_code: bool = False,
    loaded: tuple[Any, Any] | None = None,
) -> FeatureStore:
    """Extract features of every example into ``out_dir``, resuming what is already there."""
    store = open_store(ds, model, config, out_dir, shard_rows)
    if store.manifest.get("complete"):
        log.info("%s: features already extracted", out_dir)
        return store
    pending = store.pending()
    if pending:
        t0 = time.perf_counter()
        if config.kind == "text":
            from coreselect.features.text import TextEmbedder

            text = TextEmbedder(model, config.max_length)
            shard_fn = text.extract_shard
            log.info("embedding text with %s, %d shards to go", model.name, len(pending))
        else:
            m, tok = loaded or load_model(model, trust_remote_code=trust_remote_code)
            extractor = ActivationExtractor(m, tok, config)
            template = "chat template" if has_chat_template(tok) else "Alpaca-style prompt (no chat template)"
            log.info("extracting %s with %s (%s), %d shards to go", ",".join(extractor.groups),
                     model.name, template, len(pending))
            if config.drop_default_system:
                n_drop = len(default_system_prefix(tok))
                if n_drop:
                    log.info("leaving out the template's default system turn (%d tokens)", n_drop)
                else:
                    log.warning("drop_default_system: the chat template adds no system turn; nothing dropped")

            def shard_fn(examples: Sequence[Example]) -> dict[str, np.ndarray]:
                return extract_shard(extractor, examples, batch_tokens=batch_tokens)

        _run(store, ds, shard_fn, pending, progress)
        seconds = time.perf_counter() - t0
    else:
        seconds = 0.0
    return finish_store(store, ds, config, seconds)


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
    return FeatureStore.create(out_dir, {
        "key": store_key(ds.fingerprint, model, config), "n_rows": len(ds), "shard_rows": shard_rows,
        "data": {"path": str(ds.path), "fingerprint": ds.fingerprint, "format": ds.format},
        "model": model.to_json(), "config": config.to_json(),
    })


def finish_store(store: FeatureStore, ds: Dataset, config: FeatureConfig, seconds: float) -> FeatureStore:
    """Mark a store whose shards are all written complete, with its token and truncation counts."""
    stats = store.load(["n_tokens", "truncated"])
    n_trunc = int(stats["truncated"].sum())
    if n_trunc:
        log.warning("%d of %d examples were truncated to %d tokens", n_trunc, len(ds), config.max_length)
    store.finalize(stats={"tokens": int(stats["n_tokens"].sum()), "truncated": n_trunc,
                          "seconds_last_run": round(seconds, 3)})
    return store


def _run(store: FeatureStore, ds: Dataset, shard_fn: Callable[[Sequence[Example]], dict[str, np.ndarray]],
         pending: list[ShardPlan], progress: bool) -> None:
    from tqdm.auto import tqdm

    total = store.manifest["n_rows"]
    done_rows = total - sum(p.end - p.start for p in pending)
    tokens, t0 = 0, time.perf_counter()
    with tqdm(total=total, initial=done_rows, unit="ex", desc="extract", disable=not progress,
              dynamic_ncols=True) as bar:
        for plan in pending:
            arrays = shard_fn(ds.examples[plan.start:plan.end])
            store.write_shard(plan, arrays)
            release_free_memory()
            tokens += int(arrays["n_tokens"].sum())
            bar.update(plan.end - plan.start)
            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - t0, 1e-9):,.0f}")
