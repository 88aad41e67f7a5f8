"""Executors: where the extraction and selection steps run (the datatrove shape).

The steps are written once, in the modules that own them: extracting one shard
(:func:`~coreselect.features.extract.shard_function`, :func:`~coreselect.features.extract.run_shard`),
preparing features (:mod:`coreselect.features.transform`), fitting a selector
(:meth:`Selector.fit <coreselect.selection.base.Selector.fit>`, ``fit_distributed``). An
executor only decides where they run:

* :class:`LocalExecutor`: this process; the shards one after the other, the selector on the
  whole prepared matrix.
* :class:`~coreselect.distributed.executor.RayExecutor`: the shards on a Ray Data actor pool;
  ``kcenter`` and ``ltd`` on Ray actors that hold the shards, any other method as locally.

Both write the same store (same key, same shard files, same manifest), resume the same way (a
shard whose file exists is done) and give the same picks (docs/scale.md says how equal).

Examples
--------
>>> executor = make_executor("local")
>>> store = executor.extract(ds, resolve_model(None), FeatureConfig(), "feats/")  # doctest: +SKIP
>>> selected = executor.select(make_selector("kcenter", n_select=100), store)  # doctest: +SKIP
>>> type(executor).__name__
'LocalExecutor'
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from coreselect.errors import ConfigError
from coreselect.features.extract import (
    BATCH_TOKENS,
    SHARD_ROWS,
    finish_store,
    open_store,
    run_shard,
    shard_function,
)
from coreselect.features.transform import Normalize, prepare_features, raw_features

if TYPE_CHECKING:
    from coreselect.data import Dataset
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec
    from coreselect.selection.base import Selector
    from coreselect.store import FeatureStore, ShardPlan

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


class Selected(NamedTuple):
    """What :meth:`Executor.select` leaves besides the fitted selector."""

    #: The prepared matrix the picks are scored on; None when it stayed on the workers.
    features: np.ndarray | None
    #: Coverage scores computed by the workers (None when ``features`` are given, or for 1-d features).
    coverage: dict[str, float] | None


class Executor(ABC):
    """Runs the extraction and selection steps; subclasses say where the shards run."""

    def extract(
        self,
        ds: Dataset,
        model: ModelSpec,
        config: FeatureConfig,
        out_dir: str | Path,
        *,
        shard_rows: int = SHARD_ROWS,
        batch_tokens: int = BATCH_TOKENS,
        progress: bool = True,
        trust_remote_code: bool = False,
    ) -> FeatureStore:
        """Extract every example's features into ``out_dir``, resuming what is already there.

        Parameters
        ----------
        shard_rows : rows per shard of a new store (a resumed store keeps its own).
        batch_tokens : padded tokens per forward pass.
        progress : show a progress bar (examples and tokens per second).
        trust_remote_code : allow model code from the model folder.
        """
        store = open_store(ds, model, config, out_dir, shard_rows)
        if store.manifest.get("complete"):
            log.info("%s: features already extracted", out_dir)
            return store
        pending = store.pending()
        t0 = time.perf_counter()
        if pending:
            done = self._run_shards(store, ds, pending, model=model, config=config, batch_tokens=batch_tokens,
                                    trust_remote_code=trust_remote_code)
            _show_progress(done, store.manifest["n_rows"], pending, progress)
        return finish_store(store, ds, config, time.perf_counter() - t0 if pending else 0.0)

    @abstractmethod
    def _run_shards(self, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], **task: Any
                    ) -> Iterator[tuple[int, int]]:
        """Extract and write the ``pending`` shards; yield ``(rows, tokens)`` as each one is done.

        ``task`` holds ``model``, ``config``, ``batch_tokens`` and ``trust_remote_code``, the
        arguments of :func:`~coreselect.features.extract.shard_function`.
        """

    def select(self, selector: Selector, store: FeatureStore, *, normalize: Normalize = "center-l2") -> Selected:
        """Fit ``selector`` on the store's features, normalised as ``normalize`` says (raw for a
        method that wants raw activations); here, in this process.

        Returns the prepared matrix, for scoring the picks.
        """
        groups = store.load(store.groups)
        X = prepare_features(groups, normalize=normalize)
        X_fit = raw_features(groups) if selector.wants_raw_features else X
        del groups
        selector.fit(X_fit)
        return Selected(X, None)


class LocalExecutor(Executor):
    """Everything in this process: the shards one after the other.

    Parameters
    ----------
    loaded : a ``(model, tokenizer)`` pair already in memory, used instead of loading the model.
    """

    def __init__(self, loaded: tuple[Any, Any] | None = None) -> None:
        self.loaded = loaded

    def _run_shards(self, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], **task: Any
                    ) -> Iterator[tuple[int, int]]:
        shard_fn = shard_function(**task, loaded=self.loaded, describe=True)
        log.info("%d shards to go, in this process", len(pending))
        for plan in pending:
            yield plan.end - plan.start, run_shard(store, plan, ds.examples[plan.start : plan.end], shard_fn)

    def __repr__(self) -> str:
        return "LocalExecutor()"


def make_executor(engine: str, *, address: str | None = None, n_actors: int | None = None) -> Executor:
    """The executor of ``--engine``: ``"local"``, or ``"ray"`` (``address``, ``n_actors``: see
    :class:`~coreselect.distributed.executor.RayExecutor`).

    Examples
    --------
    >>> make_executor("local")
    LocalExecutor()
    >>> make_executor("slurm")
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: --engine must be local or ray, got 'slurm'
    """
    if engine == "local":
        return LocalExecutor()
    if engine == "ray":
        from coreselect.distributed.executor import RayExecutor

        return RayExecutor(address=address, n_actors=n_actors)
    raise ConfigError(f"--engine must be {' or '.join(ENGINES)}, got {engine!r}")


def _show_progress(done: Iterable[tuple[int, int]], total: int, pending: list[ShardPlan], progress: bool) -> None:
    """Consume ``(rows, tokens)`` of finished shards, with a bar of examples and tokens per second."""
    from tqdm.auto import tqdm

    tokens, t0 = 0, time.perf_counter()
    initial = total - sum(p.end - p.start for p in pending)
    with tqdm(total=total, initial=initial, unit="ex", desc="extract", disable=not progress,
              dynamic_ncols=True) as bar:
        for rows, n in done:
            tokens += n
            bar.update(rows)
            bar.set_postfix(tok_s=f"{tokens / max(time.perf_counter() - t0, 1e-9):,.0f}")
