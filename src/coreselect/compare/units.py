"""The units of ``coreselect compare``: train + evaluate one arm, where each unit runs.

After the selections (serial, on the driver: the arms share one feature store), every arm is one
independent *unit*: fine-tune on its pick, then evaluate. A unit reads and writes only its own
``DIR/arms/<arm>/`` and is seeded by its arm alone, so the units may run in any order and in
any process with the same results (at the same torch thread count):

* in this process, one after the other (:func:`run_serial`);
* ``--jobs N``: in N spawned local processes (:func:`run_local`);
* ``--engine ray``: as Ray tasks, one trainee per GPU (:mod:`coreselect.compare.ray_units`).

Every runner reports each unit as it finishes through ``finished(arm, train, eval)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coreselect.compare.config import ExperimentConfig
from coreselect.compare.stages import Arm, NotRun, eval_stage, stage_key, train_stage

log = logging.getLogger(__name__)

#: ``finished(arm, train_result, eval_result)``: called on the driver as each unit finishes.
Finished = Callable[[Arm, dict[str, Any] | None, dict[str, Any]], None]


def train_and_evaluate(cfg: ExperimentConfig, arm: Arm, sel: dict[str, Any] | None, evals: dict[str, Any],
                       root: Path, progress: bool, report_only: bool = False
                       ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """One unit of work: fine-tune on the arm's pick (none for ``base``), then evaluate.

    ``report_only``: run nothing; the cached results, or :class:`NotRun` if a stage is missing."""
    tr = None
    if arm.method == "base":
        upstream = stage_key("base", cfg.trainee.model)
    else:
        tr = train_stage(cfg, arm, sel["stage_key"], root, progress, report_only)
        upstream = tr["stage_key"]
    return tr, eval_stage(cfg, arm, upstream, evals, root, progress, report_only)


def run_serial(cfg: ExperimentConfig, arms: list[Arm], selected: dict[str, dict[str, Any] | None],
               evals: dict[str, Any], root: Path, progress: bool, report_only: bool,
               finished: Finished) -> list[str]:
    """Run ``arms`` here, in order; return the names of those left out (unfinished under ``report_only``)."""
    left_out = []
    for i, arm in enumerate(arms, 1):
        log.info("arm %d/%d: %s", i, len(arms), arm.name)
        try:
            tr, ev = train_and_evaluate(cfg, arm, selected[arm.name], evals, root, progress, report_only)
        except NotRun:
            left_out.append(arm.name)
            continue
        finished(arm, tr, ev)
    return left_out


def report_cached(cfg: ExperimentConfig, arms: list[Arm], selected: dict[str, dict[str, Any] | None],
                  evals: dict[str, Any], root: Path, finished: Finished) -> list[Arm]:
    """Report the units whose stages have all finished (a rerun); return the others, to run."""
    todo = []
    for arm in arms:
        try:
            tr, ev = train_and_evaluate(cfg, arm, selected[arm.name], evals, root, False, report_only=True)
        except NotRun:
            todo.append(arm)
            continue
        finished(arm, tr, ev)
    return todo


def init_worker_logging(level: int, fmt: str) -> None:
    """coreselect's messages in a worker: at the driver's level, on stderr, formatted with ``fmt``
    (once per process: a Ray worker runs many tasks)."""
    lib = logging.getLogger("coreselect")
    if not any(getattr(h, "_coreselect_unit", False) for h in lib.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
        handler._coreselect_unit = True  # type: ignore[attr-defined]
        lib.addHandler(handler)
    lib.setLevel(level)
    lib.propagate = False


def _worker_init(threads: int, level: int) -> None:
    """A ``--jobs`` worker: its share of the cores; coreselect's messages at the parent's level,
    each with the time and the worker's name."""
    import torch

    torch.set_num_threads(threads)
    init_worker_logging(level, "%(asctime)s %(processName)s %(message)s")


def _unit(cfg: ExperimentConfig, arm: Arm, sel: dict[str, Any] | None, evals: dict[str, Any], root: Path
          ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    return train_and_evaluate(cfg, arm, sel, evals, root, progress=False)


def run_local(cfg: ExperimentConfig, arms: list[Arm], selected: dict[str, dict[str, Any] | None],
              evals: dict[str, Any], root: Path, jobs: int, finished: Finished) -> None:
    """Train and evaluate ``arms`` in ``jobs`` worker processes, each with ``cores // jobs`` torch
    threads. Every unit is seeded by its arm alone, so the results are those of a serial run with
    the same thread count; a unit that fails stops the run after the units in flight finish (their
    stages are cached, so a rerun resumes)."""
    import multiprocessing as mp
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // jobs)
    log.info("compare: %d units of train + evaluate on %d processes, %d torch thread(s) each", len(arms),
             jobs, threads)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads, logging.getLogger("coreselect").getEffectiveLevel())) as pool:
        futures = {pool.submit(_unit, cfg, arm, selected[arm.name], evals, root): arm for arm in arms}
        pending = set(futures)
        while pending:
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in ready:
                arm = futures[f]
                if f.exception() is not None:
                    for p in pending:
                        p.cancel()
                    raise f.exception()
                log.info("arm done: %s", arm.name)
                finished(arm, *f.result())


__all__ = ["Finished", "init_worker_logging", "report_cached", "run_local", "run_serial", "train_and_evaluate"]
