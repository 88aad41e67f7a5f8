"""The extraction stage as a Ray Data pipeline: pending shards in, shard files out.

Each pending shard of the store (:meth:`~coreselect.store.FeatureStore.pending`) becomes one
row and one block of a Ray dataset (its plan and its examples' messages). ``map_batches`` runs
:class:`ShardExtractor`, a callable class holding one model replica per actor, over one shard at
a time on an actor pool: ``num_gpus=1`` per actor when the cluster has GPUs, CPU actors
otherwise. Each actor builds the same shard function as the single-process path
(:func:`~coreselect.features.extract.shard_function`) and runs each shard with the same
:func:`~coreselect.features.extract.run_shard` (temporary file, then rename), so a retried or
duplicated task rewrites nothing and never adds a row. The driver opens and finalises the store
as every executor does (:meth:`coreselect.executor.Executor.extract`), so resume and every later
stage work unchanged, whichever executor wrote which shard.

Fault tolerance is Ray's: an actor that dies (a crash, an OOM kill, a preempted node) is
restarted (``max_restarts=-1``) and its tasks are retried up to ``max_task_retries`` times; a
shard that keeps killing its actor fails the run after that many tries, leaving every finished
shard in place for a rerun to resume from. (Ray Data 2.64 drops these per-call options; there
its own defaults apply: restarts and unbounded retries.)

The store directory (and the model folder, unless the model is a hub id) must be on storage
that every node of the cluster sees, e.g. NFS; the driver reads the dataset and ships each
shard's messages to the actors through Ray's object store. So should the record cache
(:mod:`coreselect.recordcache`, ``$CORESELECT_RECORD_CACHE``): the driver writes the shards it
holds every record of; an actor extracts only the records of its shard the cache lacks (an actor
that cannot see the cache extracts them all, and the cache gains nothing from it).
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.data import Dataset, Example
from coreselect.distributed import DistributedError
from coreselect.distributed.cluster import ActorLayout, root_cause
from coreselect.features.config import FeatureConfig
from coreselect.features.extract import BATCH_TOKENS, run_shard, shard_function
from coreselect.models import ModelSpec
from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

#: Tries of one shard after its actor died (a crash, an OOM kill, a lost node).
MAX_TASK_RETRIES = 4


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
    manifest : the store's manifest.
    model, config : what to extract (:func:`~coreselect.features.extract.shard_function`).
    batch_tokens : padded tokens per forward pass.
    trust_remote_code : allow model code from the model folder.
    num_threads : torch CPU threads (0: leave torch's default).
    record_cache : the record-cache folder (:mod:`coreselect.recordcache`; shared storage, as the
        store): only the records it lacks are extracted, and added to it. None: no cache.
    """

    def __init__(self, root: str, manifest: dict[str, Any], model: ModelSpec, config: FeatureConfig,
                 batch_tokens: int = BATCH_TOKENS, trust_remote_code: bool = False, num_threads: int = 0,
                 record_cache: str | None = None) -> None:
        import torch
        import transformers

        transformers.utils.logging.set_verbosity_error()  # as the CLI: no per-actor load bars
        transformers.utils.logging.disable_progress_bar()
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        self.store = FeatureStore(Path(root), manifest)
        self._shard_fn = shard_function(model, config, batch_tokens=batch_tokens,
                                        trust_remote_code=trust_remote_code, record_cache=record_cache)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shards, rows, tokens = [], [], []
        for shard, start, end, payload in zip(batch["shard"], batch["start"], batch["end"], batch["messages"]):
            plan = ShardPlan(int(shard), int(start), int(end))
            tokens.append(run_shard(self.store, plan, _examples(plan.start, str(payload)), self._shard_fn))
            shards.append(plan.shard)
            rows.append(plan.end - plan.start)
        return {"shard": np.array(shards), "rows": np.array(rows), "tokens": np.array(tokens)}


def extract_on_actors(ray: Any, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], layout: ActorLayout,
                      n_actors: int, actor_cls: type, max_task_retries: int, ctor: dict[str, Any]
                      ) -> Iterator[tuple[int, int]]:
    """Run ``actor_cls`` over the pending shards on ``n_actors`` actors; yield ``(rows, tokens)``
    of each shard as it is done. A failure is one :class:`DistributedError` saying what is kept."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the executor's own bar counts examples
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
                               compute=ray.data.ActorPoolStrategy(size=n_actors), fn_constructor_kwargs=ctor,
                               **resources)
    try:
        for row in out.iter_rows():
            yield int(row["rows"]), int(row["tokens"])
    except Exception as err:  # RayTaskError, UserCodeException, ActorDiedError ...
        left = len(store.pending())
        raise DistributedError(f"Ray extraction failed ({root_cause(err)}); {len(pending) - left} of "
                               f"{len(pending)} shards were written and are kept; rerun to resume") from None
    missing = store.pending()
    if missing:  # pragma: no cover - Ray reported success, yet a shard file is absent
        raise DistributedError(f"{store.root}: {len(missing)} shards missing after the Ray run; rerun to resume")
