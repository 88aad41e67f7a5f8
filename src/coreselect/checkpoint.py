"""Checkpoints inside a shard of a feature store: the rows of an unfinished shard done already.

A shard is the store's unit of completion (512 rows): a shard file exists only when all its
rows are. So that Ctrl-C (or a crash) does not throw away the batches of the shard in progress,
:func:`~coreselect.features.extract.extract_shard` hands the finished rows to a checkpoint
every :data:`CHECKPOINT_SECONDS` and when it is interrupted, and a rerun starts the shard from
them. A checkpoint is one safetensors file, ``.shard-00003.partial.tmp`` (written atomically; the
name of a temporary file, so it never counts as a shard, and the store's
:meth:`~coreselect.store.FeatureStore.finalize` removes any left over): the rows done (positions
in the shard) and their arrays. A checkpoint that does not read back whole is ignored.

Examples
--------
>>> import tempfile
>>> from coreselect.store import FeatureStore
>>> st = FeatureStore.create(tempfile.mkdtemp(), {"key": "k", "n_rows": 10, "shard_rows": 4})
>>> plan = st.plan()[1]
>>> write_partial(st, plan, np.array([0, 2]), {"mlp.3": np.ones((2, 3))})
>>> rows, arrays = read_partial(st, plan)
>>> rows.tolist(), arrays["mlp.3"].shape
([0, 2], (2, 3))
>>> drop_partial(st, plan); read_partial(st, plan) is None
True
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from coreselect.output import atomic_write_bytes

if TYPE_CHECKING:
    from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

#: Seconds of work in a shard between checkpoints (and one when the work is interrupted).
CHECKPOINT_SECONDS = 30.0
_ROWS = "__rows__"


def partial_path(store: FeatureStore, plan: ShardPlan) -> Path:
    """``<store>/.shard-00003.partial.tmp``: named from the plan, never from stored data."""
    return store.root / f".shard-{plan.shard:05d}.partial.tmp"


def write_partial(store: FeatureStore, plan: ShardPlan, rows: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    """Record that the shard's ``rows`` (positions in it) are done, with their ``arrays``."""
    from safetensors.numpy import save

    tensors = {_ROWS: np.ascontiguousarray(rows, dtype=np.int64)}
    tensors.update({k: np.ascontiguousarray(a, dtype=np.float32) for k, a in arrays.items()})
    meta = {"start": str(plan.start), "end": str(plan.end)}
    atomic_write_bytes(partial_path(store, plan), save(tensors, metadata=meta))
    log.debug("%s: checkpoint of %d of %d rows", partial_path(store, plan).name, len(rows), plan.end - plan.start)


def read_partial(store: FeatureStore, plan: ShardPlan) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """``(rows done, their arrays)`` of an unfinished shard, or None (none, or not whole)."""
    from safetensors import safe_open

    path = partial_path(store, plan)
    if not path.is_file():
        return None
    n = plan.end - plan.start
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open has no __iter__
        rows = arrays.pop(_ROWS)
        ok = (meta.get("start"), meta.get("end")) == (str(plan.start), str(plan.end)) and rows.ndim == 1
        ok = ok and len(np.unique(rows)) == len(rows) and (rows.size == 0 or (rows.min() >= 0 and rows.max() < n))
        ok = ok and all(a.shape[:1] == rows.shape for a in arrays.values())
    except Exception as err:  # safetensors raises its own error on a damaged file
        log.warning("%s: unreadable checkpoint (%s); the shard starts over", path.name, type(err).__name__)
        return None
    if not ok:
        log.warning("%s: a checkpoint of another shard layout; the shard starts over", path.name)
        return None
    log.info("shard %d: resuming from a checkpoint, %d of %d rows already done", plan.shard, len(rows), n)
    return rows, arrays


def drop_partial(store: FeatureStore, plan: ShardPlan) -> None:
    """Remove the shard's checkpoint (its shard file is written)."""
    partial_path(store, plan).unlink(missing_ok=True)


__all__ = ["CHECKPOINT_SECONDS", "drop_partial", "partial_path", "read_partial", "write_partial"]
