"""The executor contract and the local engine: :class:`Executor`, :class:`LocalExecutor`.

The steps are written once, in the modules that own them: extracting one shard
(:func:`~coreselect.features.extract.shard_function`, :func:`~coreselect.features.extract.run_shard`),
preparing features (:func:`~coreselect.features.transform.feature_matrix`), fitting a selector
(:meth:`Selector.fit <coreselect.selection.base.Selector.fit>`; on Ray,
:func:`coreselect.distributed.selectors.fit_distributed`). An executor only decides where they run.
:class:`Executor` holds what every executor shares (opening, resuming and finishing the store, the
record cache, the progress bar, selection in this process); :class:`LocalExecutor` runs the shards
in this process. The Ray one (:class:`~coreselect.distributed.executor.RayExecutor`) subclasses
:class:`Executor` from the layer above; :func:`coreselect.executor.make_executor` picks one by
``--engine``, so this module needs neither.

Examples
--------
>>> store = extract_features(ds, resolve_model(None), FeatureConfig(), "feats/")  # doctest: +SKIP
>>> LocalExecutor()
LocalExecutor()
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from coreselect.errors import StoreError
from coreselect.features.extract import (
    BATCH_TOKENS,
    SHARD_ROWS,
    finish_store,
    open_store,
    run_shard,
    shard_function,
)
from coreselect.features.transform import Normalize, feature_matrices
from coreselect.store import ROW_SCORES

if TYPE_CHECKING:
    from coreselect.data import Dataset
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec
    from coreselect.selection.base import Selector
    from coreselect.store import FeatureSource, FeatureStore, ShardPlan

log = logging.getLogger(__name__)

class Selected(NamedTuple):
    """What :meth:`Executor.select` leaves besides the fitted selector."""

    #: The prepared matrix the picks are scored on; None when it stayed on the workers.
    features: np.ndarray | None
    #: Coverage scores computed by the workers (None when ``features`` are given, or for 1-d features).
    coverage: dict[str, float] | None
    #: Near-duplicates removed before the method ran (None without ``dedup``).
    removed: int | None = None


class Executor(ABC):
    """Runs the extraction and selection steps; subclasses say where the shards run."""

    def extract(
        self,
        ds: Dataset,
        model: ModelSpec,
        config: FeatureConfig,
        out_dir: str | Path,
        *,
        shard_rows: int | None = None,
        batch_tokens: int = BATCH_TOKENS,
        progress: bool = True,
        trust_remote_code: bool = False,
        record_cache: bool | str | Path = True,
    ) -> FeatureStore:
        """Extract every example's features into ``out_dir``, resuming what is already there.

        Records whose features the record cache holds (:mod:`coreselect.recordcache`: keyed by
        the record's content, the model and the options) are copied from it; only the others
        go through the model, and are added to it. ``store.extracted`` says how many did.

        Parameters
        ----------
        shard_rows : rows per shard of a new store (default 512; a resumed store keeps its own).
            Within a shard, checkpoints keep the finished batches on Ctrl-C.
        batch_tokens : padded tokens per forward pass.
        progress : show a progress bar (examples and tokens per second).
        trust_remote_code : allow model code from the model folder.
        record_cache : True: the record cache (``$CORESELECT_RECORD_CACHE``, default
            ``<cache dir>/records``); a folder: that one; False: none.
        """
        from coreselect.recordcache import fill_from_cache, open_record_cache, record_hashes

        config = config.with_resolved_precision()  # once, here: every worker runs what the store's key says
        store = open_store(ds, model, config, out_dir, shard_rows or SHARD_ROWS)
        cache = open_record_cache(model, config, record_cache)
        hashes = record_hashes(ds.examples) if cache is not None else []
        if store.manifest.complete:
            log.info("%s: features already extracted", out_dir)
            if cache is not None:
                try:  # a store from before the cache existed: its rows become reusable
                    cache.adopt(store, hashes)
                except (OSError, StoreError) as err:
                    log.warning("%s: not added to the record cache (%s)", out_dir, err)
            store.extracted = 0
            return store
        pending = store.pending()
        todo = sum(p.end - p.start for p in pending)
        if cache is not None and pending:
            rows = todo
            pending, todo, cached = fill_from_cache(store, pending, hashes, cache)
            log.info("record cache: %d of the %d records to extract are cached; extracting %d", cached, rows, todo)
        t0 = time.perf_counter()
        if pending:
            with _Progress(store.manifest.n_rows, pending, progress) as bar:
                for rows, tokens in self._run_shards(store, ds, pending, on_batch=bar.batch, model=model,
                                                     config=config, batch_tokens=batch_tokens,
                                                     trust_remote_code=trust_remote_code,
                                                     record_cache=None if cache is None else str(cache.root.resolve())):
                    bar.shard(rows, tokens)
        store = finish_store(store, ds, config, time.perf_counter() - t0 if pending else 0.0)
        store.extracted = todo
        return store

    @abstractmethod
    def _run_shards(self, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], *,
                    on_batch: Callable[[int, int], None] | None = None, **task: Any) -> Iterator[tuple[int, int]]:
        """Extract and write the ``pending`` shards; yield ``(rows, tokens)`` as each one is done.

        ``on_batch(rows, tokens)``, when the executor can, is called after each batch of a shard
        (the progress bar then moves per batch; the shard's own ``(rows, tokens)`` completes it).

        ``task`` holds ``model``, ``config``, ``batch_tokens``, ``trust_remote_code`` and
        ``record_cache``, the arguments of :func:`~coreselect.features.extract.shard_function`.
        """

    def select(self, selector: Selector, source: FeatureSource, *, normalize: Normalize = "center-l2",
               dedup: float | None = None, budget_tokens: int | None = None) -> Selected:
        """Fit ``selector`` on the features of ``source``, normalised as ``normalize`` says (raw
        for a method that wants raw activations); here, in this process. ``source`` is a feature
        store or features a user brings (:class:`~coreselect.featureset.FeatureFile`, read the
        same way): this is the one select step of both.

        The per-row columns the method reads (``selector.needs_scores``: scores such as ``ifd``,
        stats such as ``response_tokens``) are loaded from the source and passed as ``scores``.
        ``dedup``: first remove rows whose cosine similarity to an earlier kept row is at least
        this (on the prepared features; :mod:`coreselect.selection.dedup`). ``budget_tokens``: the
        picks hold at most this many tokens (the store's ``n_tokens``), ``selector.n_select``
        being a cap (see :meth:`Selector.fit <coreselect.selection.base.Selector.fit>`).

        Returns the prepared matrix, for scoring the picks, and the near-duplicates removed.
        """
        from coreselect.selection.dedup import fit_deduplicated

        X, X_fit = feature_matrices(source, normalize=normalize, raw=selector.wants_raw_features)
        wanted = list(selector.needs_scores) + (["n_tokens"] if budget_tokens is not None else [])
        # a column the source lacks: a score is the source's one-line error (a store says to extract
        # it with --scores), a stat (a features file holds none) the method's own
        names = [k for k in wanted if k in source.columns or k in ROW_SCORES]
        columns = source.load(names) if names else {}
        scores = {k: columns[k] for k in selector.needs_scores if k in columns}
        budget = {} if budget_tokens is None else {"costs": columns.get("n_tokens"), "budget": budget_tokens}
        if dedup is not None:
            return Selected(X, None, fit_deduplicated(selector, X, X_fit, dedup, scores=scores, **budget))
        selector.fit(X_fit, scores=scores, **budget)
        return Selected(X, None)


class LocalExecutor(Executor):
    """Everything in this process: the shards one after the other.

    Parameters
    ----------
    loaded : a ``(model, tokenizer)`` pair already in memory, used instead of loading the model.
    """

    def __init__(self, loaded: tuple[Any, Any] | None = None) -> None:
        self.loaded = loaded

    def _run_shards(self, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], *,
                    on_batch: Callable[[int, int], None] | None = None, **task: Any) -> Iterator[tuple[int, int]]:
        shard_fn = shard_function(**task, loaded=self.loaded, describe=True, on_batch=on_batch)
        log.info("%d shard%s to go, in this process", len(pending), "" if len(pending) == 1 else "s")
        for plan in pending:
            yield plan.end - plan.start, run_shard(store, plan, ds.examples[plan.start : plan.end], shard_fn)

    def __repr__(self) -> str:
        return "LocalExecutor()"


def extract_features(ds: Dataset, model: ModelSpec, config: FeatureConfig, out_dir: str | Path, *,
                     loaded: tuple[Any, Any] | None = None, **options: Any) -> FeatureStore:
    """Extract features of every example into ``out_dir`` in this process, resuming what is
    already there: :meth:`LocalExecutor(loaded).extract <Executor.extract>`, whose keyword
    ``options`` (``shard_rows``, ``batch_tokens``, ``progress``, ``trust_remote_code``,
    ``record_cache``) it takes; ``loaded`` is a ``(model, tokenizer)`` pair already in memory.

    Examples
    --------
    >>> store = extract_features(load_dataset("train.jsonl"), resolve_model(None), FeatureConfig(),
    ...                          "feats/", shard_rows=256)  # doctest: +SKIP
    >>> store.manifest.complete  # doctest: +SKIP
    True
    """
    return LocalExecutor(loaded=loaded).extract(ds, model, config, out_dir, **options)


class _Progress:
    """The extraction bar (examples, tokens per second): moved by each batch (``batch``) where
    the executor reports them, and completed by each finished shard (``shard``)."""

    def __init__(self, total: int, pending: list[ShardPlan], progress: bool) -> None:
        from tqdm.auto import tqdm

        initial = total - sum(p.end - p.start for p in pending)
        self.bar = tqdm(total=total, initial=initial, unit="ex", desc="extract", disable=not progress,
                        dynamic_ncols=True)
        self.tokens, self.rows_in_shard, self.tokens_in_shard = 0, 0, 0
        self.t0 = time.perf_counter()

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def _advance(self, rows: int, tokens: int) -> None:
        self.tokens += tokens
        self.bar.update(rows)
        self.bar.set_postfix(tok_s=f"{self.tokens / max(time.perf_counter() - self.t0, 1e-9):,.0f}", refresh=False)

    def batch(self, rows: int, tokens: int) -> None:
        self.rows_in_shard += rows
        self.tokens_in_shard += tokens
        self._advance(rows, tokens)

    def shard(self, rows: int, tokens: int) -> None:
        self._advance(max(rows - self.rows_in_shard, 0), max(tokens - self.tokens_in_shard, 0))
        self.rows_in_shard = self.tokens_in_shard = 0
