"""Scale-out on Ray: the extraction stage as a Ray Data actor pool, selection on sharded features.

Both executors read and write the same files as the single-process path: extraction actors
write the store's shards with :meth:`~coreselect.store.FeatureStore.write_shard` and the driver
finalises the same manifest; selection actors each load a group of the store's shards and keep
them in memory for the whole run. Install with ``pip install 'coreselect[ray]'``.

=====================================  =============================================================
:mod:`.cluster`                        connect to (or start) a Ray cluster; group shards over actors
:mod:`.ray_extract`                    :func:`extract_features_ray`: the extraction stage on Ray Data
:mod:`.ray_select`                     :func:`select_ray`: k-center greedy and LTD on Ray actors
:mod:`._shard_actor`                   the selection actor (features of a group of shards)
=====================================  =============================================================

Examples
--------
>>> from coreselect.distributed import RAY_METHODS
>>> sorted(RAY_METHODS)
['kcenter', 'ltd']
"""

from __future__ import annotations

from coreselect.errors import CoreselectError

#: Selection methods that run on Ray actors; any other method runs on the driver.
RAY_METHODS = frozenset({"kcenter", "ltd"})
ENGINES = ("local", "ray")


class DistributedError(CoreselectError):
    """Ray is missing, the cluster cannot be reached, or a distributed stage failed."""


__all__ = ["ENGINES", "RAY_METHODS", "DistributedError"]
