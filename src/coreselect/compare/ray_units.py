"""``coreselect compare --engine ray``: the train + evaluate units as Ray tasks.

Each unit (:mod:`coreselect.compare.units`) is one Ray task. On a cluster with GPUs a task
reserves one GPU (one trainee per GPU, ``num_gpus=1``; more ``--jobs`` than GPUs share them in
equal fractions); without GPUs, ``--jobs N`` units run at once, each reserving
``CPUs // N`` CPUs (at most one node's) and running torch with that many threads; by default
one unit per GPU, or one per node with all of its cores
(:func:`~coreselect.distributed.cluster.extraction_layout`, the layout of the extraction actors).
The cluster is joined as ``select --engine ray`` joins it
(:func:`~coreselect.distributed.cluster.connect`: ``--ray-address``, else ``RAY_ADDRESS``,
else a private local cluster).

Units write their files straight into the run folder, so **on a cluster of several machines the
run folder must be on storage that every node mounts at the same path** (NFS, a cluster file
system); a unit that cannot see it stops with a line saying so. coreselect (and the trainee
model, or access to it) must be installed on every node.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from coreselect.compare.config import ExperimentConfig
from coreselect.compare.stages import Arm
from coreselect.compare.units import Finished, init_worker_logging, train_and_evaluate
from coreselect.distributed import DistributedError
from coreselect.distributed.cluster import connect, extraction_layout, root_cause

log = logging.getLogger(__name__)


def _ray_unit(cfg: ExperimentConfig, arm: Arm, sel: dict[str, Any] | None, evals: dict[str, Any], root: str,
              threads: int, level: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The Ray task of one unit: its share of the node's cores, then train + evaluate."""
    import platform

    import torch

    run_dir = Path(root)
    if not (run_dir / "data" / "pool.jsonl").is_file():
        raise DistributedError(f"{run_dir}/data/pool.jsonl is not visible on node {platform.node()}: on a "
                               "cluster of several machines the run folder must be on storage every node mounts "
                               "at the same path")
    if threads:
        torch.set_num_threads(threads)
    init_worker_logging(level, "%(asctime)s %(message)s")
    return train_and_evaluate(cfg, arm, sel, evals, run_dir, progress=False)


def run_on_ray(cfg: ExperimentConfig, arms: list[Arm], selected: dict[str, dict[str, Any] | None],
               evals: dict[str, Any], root: Path, finished: Finished, *, jobs: int | None = None,
               address: str | None = None) -> None:
    """Train and evaluate ``arms`` as Ray tasks, at most ``jobs`` at once (default: one per GPU, or
    one per node without GPUs), calling ``finished`` on the driver as each unit finishes.

    A unit that fails stops the run after the units in flight finish, with one
    :class:`~coreselect.distributed.DistributedError` line naming the unit (the finished units
    are cached: a rerun resumes). A worker that dies (an OOM kill, a lost node) is retried by Ray.

    Examples
    --------
    >>> run_on_ray(cfg, arms, selected, evals, Path("/nfs/runs/exp"), finished, address="auto")  # doctest: +SKIP
    """
    if not arms:
        return
    ray = connect(address)
    layout = extraction_layout(ray, jobs)
    threads = 0 if layout.num_gpus else max(1, int(layout.num_cpus))  # 0: on a GPU, torch's own default
    log.info("compare: %d units of train + evaluate as Ray tasks, %d at once (%s, %d torch thread(s) each)",
             len(arms), layout.n_actors,
             f"{layout.num_gpus:g} GPU" if layout.num_gpus else f"{layout.num_cpus:g} CPU", threads)
    task = ray.remote(_ray_unit)
    cfg_ref, evals_ref = ray.put(cfg), ray.put(evals)
    level = logging.getLogger("coreselect").getEffectiveLevel()
    queue = list(arms)
    in_flight: dict[Any, Arm] = {}
    failed: tuple[Arm, BaseException] | None = None
    try:
        while in_flight or (queue and failed is None):  # after a failure: no new unit, those in flight finish
            while queue and failed is None and len(in_flight) < layout.n_actors:
                arm = queue.pop(0)
                ref = task.options(num_cpus=layout.num_cpus, num_gpus=layout.num_gpus, name=f"compare:{arm.name}"
                                   ).remote(cfg_ref, arm, selected[arm.name], evals_ref, str(root.absolute()),
                                            threads, level)
                in_flight[ref] = arm
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            arm = in_flight.pop(ready[0])
            try:
                tr, ev = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                failed = failed or (arm, err)  # the first failure is the one reported
                continue
            log.info("arm done: %s", arm.name)
            finished(arm, tr, ev)
    except BaseException:  # Ctrl-C, or finished() failed: stop the tasks still running
        for ref in in_flight:
            ray.cancel(ref)
        raise
    if failed is not None:
        arm, err = failed
        raise DistributedError(f"compare: unit {arm.name} failed on Ray ({root_cause(err)}); the finished units "
                               "are cached: rerun to resume")


__all__ = ["run_on_ray"]
