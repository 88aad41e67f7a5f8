"""The extraction stage as a Ray Data pipeline: pending shards in, shard files out.

Each pending shard of the store (:meth:`~coreselect.store.FeatureStore.pending`) becomes one
row and one block of a Ray dataset (its plan and its examples' messages). ``map_batches`` runs
:class:`ShardExtractor`, a callable class holding one model replica per actor, over one shard at
a time on an actor pool: ``num_gpus=1`` per actor when the cluster has GPUs, CPU actors
otherwise. Each actor writes its finished shard with the same
:meth:`~coreselect.store.FeatureStore.write_shard` as the single-process path (temporary file,
then rename), so a retried or duplicated task rewrites an identical file and never adds a row;
a shard whose file already exists is not extracted again. The driver then finalises the store
with the same manifest as :func:`~coreselect.features.extract.extract_features`, so resume and
every later stage work unchanged, whichever executor wrote which shard.

Fault tolerance is Ray's: an actor that dies (a crash, an OOM kill, a preempted node) is
restarted (``max_restarts=-1``) and its tasks are retried up to ``max_task_retries`` times; a
shard that keeps killing its actor fails the run after that many tries, leaving every finished
shard in place for a rerun to resume from. (Ray Data 2.64 drops these per-call options; there
its own defaults apply: restarts and unbounded retries.)

The store directory (and the model folder, unless the model is a hub id) must be on storage
that every node of the cluster sees, e.g. NFS; the driver reads the dataset and ships each
shard's messages to the actors through Ray's object store.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset, Example
from coreselect.distributed import DistributedError
from coreselect.distributed.cluster import check_positive, connect, extraction_layout
from coreselect.features.activations import FeatureConfig
from coreselect.features.extract import (
    BATCH_TOKENS,
    SHARD_ROWS,
    extract_shard,
    finish_store,
    open_store,
    release_free_memory,
)
from coreselect.models import ModelSpec
from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

#: Tries of one shard after its actor died (a crash, an OOM kill, a lost node).
MAX_TASK_RETRIES = 4


def config_from_json(d: dict[str, Any]) -> FeatureConfig:
    """The inverse of :meth:`FeatureConfig.to_json`."""
    return FeatureConfig(**{**d, "layers": tuple(d["layers"])})


def shard_items(ds: Dataset, pending: list[ShardPlan]) -> list[dict[str, Any]]:
    """One dataset row per shard: its plan and its examples' messages (JSON)."""
    return [{"shard": p.shard, "start": p.start, "end": p.end,
             "messages": json.dumps([[list(m) for m in ex.messages] for ex in ds.examples[p.start:p.end]])}
            for p in pending]


def _examples(start: int, payload: str) -> list[Example]:
    msgs = json.loads(payload)
    return [Example(index=start + i, messages=tuple((r, c) for r, c in m), record={}, line=0)
            for i, m in enumerate(msgs)]


class ShardExtractor:
    """Ray Data callable class: one model replica per actor; extracts and writes whole shards.

    Parameters
    ----------
    root : the store directory (shared by every node).
    manifest : the store's manifest (model, options, shard plan).
    batch_tokens : padded tokens per forward pass.
    trust_remote_code : allow model code from the model folder.
    num_threads : torch CPU threads (0: leave torch's default).
    """

    def __init__(self, root: str, manifest: dict[str, Any], batch_tokens: int = BATCH_TOKENS,
                 trust_remote_code: bool = False, num_threads: int = 0) -> None:
        import torch
        import transformers

        transformers.utils.logging.set_verbosity_error()  # as the CLI: no per-actor load bars
        transformers.utils.logging.disable_progress_bar()
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.store = FeatureStore(Path(root), manifest)
        self.batch_tokens = batch_tokens
        spec, config = ModelSpec(**manifest["model"]), config_from_json(manifest["config"])
        if config.kind == "text":
            from coreselect.features.text import TextEmbedder

            self._shard_fn = TextEmbedder(spec, config.max_length).extract_shard
        else:
            from coreselect.features.activations import ActivationExtractor
            from coreselect.models import load_model

            m, tok = load_model(spec, trust_remote_code=trust_remote_code)
            extractor = ActivationExtractor(m, tok, config)
            self._shard_fn = lambda examples: extract_shard(extractor, examples, batch_tokens=batch_tokens)

    def extract(self, plan: ShardPlan, payload: str) -> int:
        """Extract and write one shard unless its file exists; return its token count."""
        path = self.store.root / plan.filename
        if path.is_file():  # a retried task whose first try got as far as the rename
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                return int(f.get_tensor("n_tokens").sum())
        arrays = self._shard_fn(_examples(plan.start, payload))
        self.store.write_shard(plan, arrays)
        release_free_memory()
        return int(arrays["n_tokens"].sum())

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards, rows, tokens = [], [], []
        for shard, start, end, payload in zip(batch["shard"], batch["start"], batch["end"], batch["messages"]):
            plan = ShardPlan(int(shard), int(start), int(end))
            tokens.append(self.extract(plan, str(payload)))
            shards.append(plan.shard)
            rows.append(plan.end - plan.start)
        return {"shard": np.array(shards), "rows": np.array(rows), "tokens": np.array(tokens)}


def extract_features_ray(
    ds: Dataset,
    model: ModelSpec,
    config: FeatureConfig,
    out_dir: str | Path,
    *,
    shard_rows: int = SHARD_ROWS,
    batch_tokens: int = BATCH_TOKENS,
    progress: bool = True,
    trust_remote_code: bool = False,
    address: str | None = None,
    n_actors: int | None = None,
    max_task_retries: int = MAX_TASK_RETRIES,
    actor_cls: type[ShardExtractor] = ShardExtractor,
) -> FeatureStore:
    """Extract every example's features into ``out_dir`` on a Ray actor pool, resuming.

    Same store, same files, same manifest as :func:`~coreselect.features.extract.extract_features`.

    Parameters
    ----------
    address : Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` starts a local one.
    n_actors : model replicas; default one per GPU, or one per node on a CPU-only cluster.
    max_task_retries : tries of a shard whose actor died before giving up.
    actor_cls : the callable class run by the actors (a subclass can inject faults in tests).

    Examples
    --------
    >>> store = extract_features_ray(ds, resolve_model(), FeatureConfig(), "feats/",
    ...                              address="auto")  # doctest: +SKIP
    """
    check_positive("--ray-actors", n_actors)
    store = open_store(ds, model, config, out_dir, shard_rows)
    if store.manifest.get("complete"):
        log.info("%s: features already extracted", out_dir)
        return store
    pending = store.pending()
    t0 = time.perf_counter()
    if pending:
        ray = connect(address)
        layout = extraction_layout(ray, n_actors)
        n = min(layout.n_actors, len(pending))
        log.info("extracting %d shards with %s on %d Ray actor(s) (%s each)", len(pending), model.name, n,
                 f"{layout.num_gpus:g} GPU" if layout.num_gpus else f"{layout.num_cpus:g} CPU")
        _run(ray, store, ds, pending, layout, n, progress, actor_cls, max_task_retries, {
            "root": str(store.root.resolve()), "manifest": store.manifest, "batch_tokens": batch_tokens,
            "trust_remote_code": trust_remote_code,
            "num_threads": 0 if layout.num_gpus else max(1, int(layout.num_cpus))})
        missing = store.pending()
        if missing:  # pragma: no cover - Ray reported success, yet a shard file is absent
            raise DistributedError(f"{store.root}: {len(missing)} shards missing after the Ray run; "
                                   "rerun to resume")
    return finish_store(store, ds, config, time.perf_counter() - t0 if pending else 0.0)


def _run(ray: Any, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], layout: Any, n: int,
         progress: bool, actor_cls: type, max_task_retries: int, ctor: dict[str, Any]) -> None:
    from tqdm.auto import tqdm

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # our own bar counts examples
    if not log.isEnabledFor(logging.DEBUG):  # Ray Data logs every dataset's plan at INFO
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    items = shard_items(ds, pending)
    resources: dict[str, Any] = {"num_cpus": layout.num_cpus}
    if layout.num_gpus:
        resources["num_gpus"] = layout.num_gpus
    data = ray.data.from_items(items, override_num_blocks=len(items))
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(data.map_batches).parameters.values()):
        # Ray Data < 2.64 takes the actors' fault-tolerance options as "ray_remote_args" (and
        # deprecates them); later versions keep only their defaults: restarts, unbounded retries.
        resources.update(max_restarts=-1, max_task_retries=max_task_retries)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        out = data.map_batches(actor_cls, batch_size=1, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=n), fn_constructor_kwargs=ctor,
                               **resources)
    total = store.manifest["n_rows"]
    done = total - sum(p.end - p.start for p in pending)
    tokens, t0 = 0, time.perf_counter()
    try:
        with tqdm(total=total, initial=done, unit="ex", desc="extract", disable=not progress,
                  dynamic_ncols=True) as bar:
            for row in out.iter_rows():
                tokens += int(row["tokens"])
                bar.update(int(row["rows"]))
                bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - t0, 1e-9):,.0f}")
    except Exception as err:  # RayTaskError, UserCodeException, ActorDiedError ...
        left = len(store.pending())
        raise DistributedError(f"Ray extraction failed ({root_cause(err)}); {len(pending) - left} of "
                               f"{len(pending)} shards were written and are kept; rerun to resume") from None


def root_cause(err: BaseException) -> str:
    """The innermost error behind Ray's wrappers, as ``Type: first line``."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        nxt = getattr(err, "cause", None) or err.__cause__
        if not isinstance(nxt, BaseException):
            break
        err = nxt
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip(": ")
