"""The Ray executor: the same extraction and selection steps as the local one, on a Ray cluster.

Extraction runs the pending shards on a Ray Data actor pool (:mod:`.ray_extract`); selection
runs ``kcenter`` and ``ltd`` on actors that hold the store's shards (:mod:`.ray_select`, through
each selector's entry in :mod:`.selectors`) and any other method on the driver, as the local executor
does. Opening, resuming and finalising the store, the progress bar and the in-process selection
are :class:`~coreselect.executor.Executor`'s, shared with :class:`~coreselect.executor.LocalExecutor`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from coreselect.distributed.cluster import check_positive, connect, extraction_layout
from coreselect.distributed.ray_extract import MAX_TASK_RETRIES, ShardExtractor, extract_on_actors
from coreselect.engine import Executor, Selected
from coreselect.features.transform import Normalize
from coreselect.selection.base import available_methods

if TYPE_CHECKING:
    from pathlib import Path

    from coreselect.data import Dataset
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec
    from coreselect.selection.base import Selector
    from coreselect.store import FeatureSource, FeatureStore, ShardPlan

log = logging.getLogger(__name__)


class RayExecutor(Executor):
    """Extraction and selection on a Ray cluster.

    Parameters
    ----------
    address : Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` starts a local one.
    n_actors : extraction: model replicas, default one per GPU or one per node on a CPU-only
        cluster; selection: actors holding the shards, default one per CPU up to 64.
    max_task_retries : tries of a shard whose extraction actor died, before giving up.
    actor_cls : the extraction actors' callable class (a subclass can inject faults in tests).

    Examples
    --------
    >>> executor = RayExecutor(address="auto", n_actors=8)  # doctest: +SKIP
    >>> store = executor.extract(ds, spec, FeatureConfig(), "/nfs/feats")  # doctest: +SKIP
    >>> executor.select(make_selector("ltd", n_select=1000), store).coverage  # doctest: +SKIP
    {'covering_radius': 0.81, 'mean_nearest_distance': 0.52}
    """

    def __init__(self, *, address: str | None = None, n_actors: int | None = None,
                 max_task_retries: int = MAX_TASK_RETRIES, actor_cls: type[ShardExtractor] = ShardExtractor) -> None:
        self.address = address
        self.n_actors = check_positive("--ray-actors", n_actors)
        self.max_task_retries = max_task_retries
        self.actor_cls = actor_cls

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, n_actors={self.n_actors!r})"

    def _run_shards(self, store: FeatureStore, ds: Dataset, pending: list[ShardPlan], *,
                    on_batch: Callable[[int, int], None] | None = None, **task: Any) -> Iterator[tuple[int, int]]:
        # on_batch is not sent to the actors: on Ray the bar moves per finished shard
        ray = connect(self.address)
        layout = extraction_layout(ray, self.n_actors)
        n = min(layout.n_actors, len(pending))
        log.info("extracting %d shards with %s on %d Ray actor(s) (%s each)", len(pending), task["model"].name, n,
                 f"{layout.num_gpus:g} GPU" if layout.num_gpus else f"{layout.num_cpus:g} CPU")
        ctor = {"root": str(store.root.resolve()), "manifest": store.manifest.to_json(), **task,
                "num_threads": 0 if layout.num_gpus else max(1, int(layout.num_cpus))}
        return extract_on_actors(ray, store, ds, pending, layout, n, self.actor_cls, self.max_task_retries, ctor)

    def select(self, selector: Selector, source: FeatureSource, *, normalize: Normalize = "center-l2",
               dedup: float | None = None, budget_tokens: int | None = None) -> Selected:
        """:func:`~coreselect.distributed.selectors.fit_distributed` on actors holding the store's shards (the coverage of the picks is
        scored there too); a method without it, one that wants raw activations or reads scores,
        any selection with ``dedup`` or ``budget_tokens``, and features that are not a store's
        run on the driver as :meth:`Executor.select <coreselect.executor.Executor.select>` (which
        loads the scores)."""
        from coreselect.distributed.ray_select import FeatureActors
        from coreselect.distributed.selectors import fit_distributed
        from coreselect.store import FeatureStore

        store = source if isinstance(source, FeatureStore) else None
        on_driver = {"dedup": dedup is not None, "budget_tokens": budget_tokens is not None,
                     "features not in a store": store is None}
        if store is None or not selector.distributed or selector.wants_raw_features or selector.needs_scores \
                or any(on_driver.values()):
            why = ", ".join(k for k, v in on_driver.items() if v)
            log.info("%s runs on the driver: %s", selector.name,
                     f"{why} run there" if why else f"only {', '.join(available_methods(distributed=True))} "
                                                    "run on Ray actors")
            return super().select(selector, source, normalize=normalize, dedup=dedup, budget_tokens=budget_tokens)
        selector.check_params(store.n_rows)  # before any actor starts
        pool = FeatureActors(store, n_actors=self.n_actors, normalize=normalize, address=self.address)
        try:
            fit_distributed(selector, pool)
            return Selected(None, pool.coverage(selector.indices_) if pool.dim > 1 else None)
        finally:
            pool.close()


def extract_features_ray(ds: Dataset, model: ModelSpec, config: FeatureConfig, out_dir: str | Path, *,
                         address: str | None = None, n_actors: int | None = None,
                         max_task_retries: int = MAX_TASK_RETRIES, actor_cls: type[ShardExtractor] = ShardExtractor,
                         **options: Any) -> FeatureStore:
    """Extract every example's features into ``out_dir`` on a Ray actor pool, resuming:
    :meth:`RayExecutor(...).extract <coreselect.executor.Executor.extract>` (same keyword
    ``options`` as :func:`~coreselect.engine.extract_features`; the other arguments are
    :class:`RayExecutor`'s). Same store, same files, same
    manifest as the local executor.

    Examples
    --------
    >>> store = extract_features_ray(ds, resolve_model(None), FeatureConfig(), "feats/",
    ...                              address="auto")  # doctest: +SKIP
    """
    executor = RayExecutor(address=address, n_actors=n_actors, max_task_retries=max_task_retries,
                           actor_cls=actor_cls)
    return executor.extract(ds, model, config, out_dir, **options)
