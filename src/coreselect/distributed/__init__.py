"""Scale-out on Ray: the extraction stage as a Ray Data actor pool, selection on sharded features.

:class:`~coreselect.distributed.executor.RayExecutor` runs the same steps as the local executor
(:mod:`coreselect.executor`) and reads and writes the same files: extraction actors run the
same shard function and write the store's shards with
:meth:`~coreselect.store.FeatureStore.write_shard`, and the driver finalises the same manifest;
selection actors each load a group of the store's shards and keep them in memory for the whole
run. Install with ``pip install 'coreselect[ray]'``.

=====================================  =============================================================
:mod:`.executor`                       :class:`RayExecutor`: where each step runs on Ray
:mod:`.cluster`                        connect to (or start) a Ray cluster; group shards over actors
:mod:`.ray_extract`                    the extraction actors (a Ray Data actor pool)
:mod:`.ray_select`                     the selection actors' pool; k-center greedy and LTD on it
:mod:`._shard_actor`                   the selection actor (features of a group of shards)
=====================================  =============================================================

Which methods run on the actors is each selector's own say (``Selector.distributed``):

>>> from coreselect.selection import available_methods
>>> available_methods(distributed=True)
['facility-location', 'kcenter', 'ltd']
"""

from __future__ import annotations

from coreselect.errors import CoreselectError


class DistributedError(CoreselectError):
    """Ray is missing, the cluster cannot be reached, or a distributed stage failed."""


__all__ = ["DistributedError"]
