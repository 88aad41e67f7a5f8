"""``coreselect compare``: select -> train -> evaluate for every arm, cached and resumable.

Arms are ``methods x budgets x seeds``, plus the ``random`` baseline at the same budgets and
seeds, ``balanced:<column>`` (label-balanced random, an oracle) likewise, ``full`` (the whole
pool) once per seed, and ``base`` (the untrained trainee) as a reference. Every arm of a seed
trains with that seed (the same data order and initialisation across arms), so arms are compared
paired (:mod:`coreselect.compare.summary`). The stages and their caching are in
:mod:`coreselect.compare.stages`. Layout of the output folder::

    DIR/build/                                        the built pool (a config with ``build:``)
    DIR/data/pool.jsonl, DIR/data/eval-<name>.jsonl   the slices actually used
    DIR/features/                                     selector features (shared by arms)
    DIR/arms/<arm>/train.jsonl (+ .manifest.json)     the selected training set
    DIR/arms/<arm>/model/                              the fine-tuned adapter (loadable)
    DIR/arms/<arm>/{select,train,eval}.json           stage markers and results
    DIR/results.csv, results.md, results.png

Examples
--------
>>> from coreselect.compare.run import run_experiment
>>> from coreselect.compare.config import load_config
>>> rows = run_experiment(load_config("examples/cpu_small.yaml"), "runs/cpu_small")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from coreselect.compare.config import (
    BUILD_PREFIX,
    DataSlice,
    ExperimentConfig,
    selector_json,
    trainee_json,
)
from coreselect.compare.primary import oracle_label
from coreselect.compare.stages import (
    Arm,
    NotRun,
    check_disjoint,
    materialise,
    select_stage,
    task_metrics,
    text_hash,
    write_json,
)
from coreselect.compare.units import report_cached, run_local, run_serial
from coreselect.errors import ConfigError
from coreselect.output import check_not_input, check_not_inside

log = logging.getLogger(__name__)


def _budget_label(b: float | int) -> str:
    return f"{b * 100:g}pct" if isinstance(b, float) else f"n{b}"


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label)


def plan_arms(cfg: ExperimentConfig) -> list[Arm]:
    """All arms of a config, in run order: subsets first, then ``base``, ``full`` last (the costliest)."""
    arms: list[Arm] = []
    specs = list(cfg.methods)
    names = [m.name for m in specs]
    for seed in cfg.seeds:
        for budget in cfg.budgets:
            for m in specs:
                params = tuple(sorted(m.params.items()))
                label = m.label or (m.name + ("-" + "-".join(f"{k}{v}" for k, v in params) if params else ""))
                arms.append(Arm(f"{_safe(label)}-{_budget_label(budget)}-s{seed}", m.name, budget, seed, params,
                                label=label, spec=m))
            if "random" in cfg.baselines and "random" not in names:
                arms.append(Arm(f"random-{_budget_label(budget)}-s{seed}", "random", budget, seed, label="random"))
            for b in cfg.baselines:
                if ":" in b:  # balanced:<col> (equal records per label), clean:<col> (empty label only)
                    kind, col = b.split(":", 1)
                    arms.append(Arm(f"{kind}-{_safe(col)}-{_budget_label(budget)}-s{seed}", kind, budget,
                                    seed, label=oracle_label(b), oracle_column=col))
    for seed in cfg.seeds:
        for budget in cfg.random_curve:
            if budget not in cfg.budgets:
                arms.append(Arm(f"random-{_budget_label(budget)}-s{seed}", "random", budget, seed, label="random"))
    if cfg.evaluation.base:
        arms.append(Arm("base", "base", None, 0, label="base"))
    if "full" in cfg.baselines:
        arms += [Arm(f"full-s{seed}", "full", None, seed, label="full") for seed in cfg.seeds]
    return arms


def _resolve(sl: DataSlice, build_dir: Path) -> DataSlice:
    if sl.path.startswith(BUILD_PREFIX):
        return replace(sl, path=str(build_dir / f"{sl.path[len(BUILD_PREFIX):]}.jsonl"))
    return sl


def _build(cfg: ExperimentConfig, root: Path) -> Path:
    """Build the pool of the ``build:`` section into ``DIR/build`` (seeded: the same bytes every time)."""
    from coreselect.compare.pools import BUILDERS

    out = root / "build"
    if cfg.build is not None:
        log.info("build: %s from %s", cfg.build.kind, cfg.build.source)
        BUILDERS[cfg.build.kind](cfg.build.source, out, **cfg.build.params)
    return out


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, *, progress: bool = True,
                   report_only: bool = False, jobs: int | None = None, engine: str = "local",
                   ray_address: str | None = None) -> list[dict[str, Any]]:
    """Run (or resume) every arm of ``cfg`` under ``out_dir``; write and return the results rows.

    ``report_only``: run nothing; the results of the arms whose every stage has finished (under
    this config's stage keys), the others left out. The selections run first, serially, on one
    shared feature store; then each arm's train + evaluate is one unit
    (:mod:`coreselect.compare.units`). ``engine="local"``: ``jobs`` units at once in local
    processes (default 1: in this process); ``engine="ray"``: each unit a Ray task on the cluster
    at ``ray_address`` (:mod:`coreselect.compare.ray_units`; ``jobs`` at once, default one per
    GPU, or one per node without GPUs). Results equal a serial run's at the same thread count."""
    from coreselect.compare.report import write_reports
    from coreselect.compare.sources import check_available

    _check_engine(jobs, engine, ray_address, report_only)  # before any work: nothing built, nothing made
    root = Path(out_dir)
    _check_inputs_outside(cfg, root)
    check_available(cfg.sources)  # a missing file or an unreachable id: one line naming its key, nothing made
    if engine == "ray" and not report_only:  # an unreachable cluster is one line now, not after the selections
        from coreselect.distributed.cluster import connect

        connect(ray_address)
    made = root.absolute()
    while not made.parent.exists():  # the first folder this run makes, removed again if it fails to start
        made = made.parent
    created = not made.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        build_dir = _build(cfg, root)
        pool = materialise(_resolve(cfg.pool, build_dir), root / "data" / "pool.jsonl")
        evals = {e.name: materialise(_resolve(e, build_dir), root / "data" / f"eval-{_safe(e.name)}.jsonl")
                 for e in cfg.eval}
        check_disjoint(pool, evals)
    except BaseException:
        if created:  # nothing of a failed first start is left behind (only the built and sliced data were there)
            import shutil

            shutil.rmtree(made, ignore_errors=True)
        raise
    if not report_only:  # the config of record stays the one that ran
        _write_config(cfg, root)
    arms = plan_arms(cfg)
    log.info("compare: %d arms (%s), pool %d records, eval %s", len(arms), ", ".join(a.name for a in arms),
             len(pool), ", ".join(f"{n} ({len(d)})" for n, d in evals.items()))
    # selection first, serially: the arms share one feature store, extracted once
    selected: dict[str, dict[str, Any] | None] = {}
    left_out: list[str] = []
    for arm in arms:
        if arm.method == "base":
            selected[arm.name] = None
            continue
        try:
            selected[arm.name] = select_stage(cfg, arm, pool, root, progress, report_only)
        except NotRun:
            left_out.append(arm.name)
    todo = [a for a in arms if a.name in selected]
    done: dict[str, dict[str, Any]] = {}

    def finished(arm: Arm, tr: dict[str, Any] | None, ev: dict[str, Any]) -> None:
        done[arm.name] = _row(arm, selected[arm.name], tr, ev)
        if not report_only:  # partial results after every arm, in plan order
            write_reports([done[a.name] for a in arms if a.name in done], root, [e.name for e in cfg.eval],
                          cfg.references, cfg.primary, cfg.control)

    if report_only or (engine == "local" and (jobs or 1) == 1):
        left_out += run_serial(cfg, todo, selected, evals, root, progress, report_only, finished)
    else:  # finished units are reported here; the others go to the workers
        todo = report_cached(cfg, todo, selected, evals, root, finished)
        if engine == "ray":
            from coreselect.compare.ray_units import run_on_ray

            run_on_ray(cfg, todo, selected, evals, root, finished, jobs=jobs, address=ray_address)
        elif todo:
            run_local(cfg, todo, selected, evals, root, jobs, finished)
    rows = [done[a.name] for a in arms if a.name in done]
    if report_only:
        if not rows:
            raise ConfigError(f"{root}: no arm of this config has finished yet (run it without --report-only)")
        if left_out:
            log.warning("%d of %d arms not finished, left out of the report: %s", len(left_out), len(arms),
                        ", ".join(left_out))
        write_reports(rows, root, [e.name for e in cfg.eval], cfg.references, cfg.primary, cfg.control)
    return rows


def _check_engine(jobs: int | None, engine: str, ray_address: str | None, report_only: bool = False) -> None:
    """``--jobs``, ``--engine`` and ``--ray-address``, checked before anything is built; with
    ``--engine ray``, Ray is importable (unless ``report_only``: then nothing runs on it)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if engine not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {engine!r}")
    if engine == "ray" and not report_only:
        from coreselect.distributed.cluster import import_ray

        import_ray()
    elif ray_address is not None:
        raise ConfigError("--ray-address needs --engine ray")


def _write_config(cfg: ExperimentConfig, root: Path) -> None:
    write_json(root / "config.json", {
        "source": cfg.source, "build": asdict(cfg.build) if cfg.build else None, "pool": asdict(cfg.pool),
        "eval": [asdict(e) for e in cfg.eval], "selector": selector_json(cfg.selector),
        "trainee": trainee_json(cfg.trainee),
        "methods": [asdict(m) for m in cfg.methods], "budgets": cfg.budgets, "seeds": cfg.seeds,
        "baselines": cfg.baselines, "labels": cfg.labels, "random_curve": cfg.random_curve,
        "references": cfg.references,
        "match_tokens": cfg.match_tokens,
        "primary": asdict(cfg.primary) if cfg.primary else None,
        "control": asdict(cfg.control) if cfg.control else None,
        "evaluation": asdict(cfg.evaluation)})


def _check_inputs_outside(cfg: ExperimentConfig, root: Path) -> None:
    """Refuse an output folder where compare would write over its own config or data."""
    inputs = [p for p in (cfg.pool.path, *(e.path for e in cfg.eval)) if not p.startswith(BUILD_PREFIX)]
    inputs += [cfg.source] if cfg.source else []
    inputs += [cfg.build.source] if cfg.build else []
    for sub in ("data", "arms", "features", "build"):
        check_not_inside(root / sub, inputs)
    for name in ("config.json", "results.csv", "results.md", "results.png"):
        check_not_input(root / name, inputs)


def _row(arm: Arm, sel: dict[str, Any] | None, tr: dict[str, Any] | None, ev: dict[str, Any]) -> dict[str, Any]:
    """One results row; keys starting with ``_`` (per-example values) feed the summary, not the CSV."""
    row: dict[str, Any] = {
        "arm": arm.name, "method": arm.method, "label": arm.label or arm.method,
        "budget": "" if arm.budget is None else arm.budget, "seed": "" if arm.method == "base" else arm.seed,
        "n_train": sel["n_train"] if sel else 0, "train_tokens": tr["tokens"] if tr else 0,
        "train_seconds": tr["seconds"] if tr else 0.0, "select_seconds": sel["seconds"] if sel else 0.0,
        "eval_seconds": ev["seconds"], "train_tokens_per_second": tr["tokens_per_second"] if tr else "",
    }
    for col, r in ((sel or {}).get("precheck") or {}).items():
        row[f"cover:{col}"] = r["coverage"]
        row[f"random_cover:{col}"] = r["random_coverage"]
        if "flagged" in r:
            row[f"flagged:{col}"] = r["flagged"]
            row[f"random_flagged:{col}"] = r["random_flagged"]
    for name, r in ev["results"].items():
        row[f"loss:{name}"] = r["loss"]
        row[f"perplexity:{name}"] = r["perplexity"]
        row[f"eval_tokens_per_second:{name}"] = r.get("tokens_per_second")
        if "macro" in r:
            row[f"macro:{name}"], row[f"worst:{name}"] = r["macro"], r["worst"]
        if "rank" in r:
            row[f"acc:{name}"] = r["rank"]["accuracy"]
            if "macro" in r["rank"]:
                row[f"acc_macro:{name}"] = r["rank"]["macro"]
            row[f"_acc_per_example:{name}"] = r["rank"].get("per_example")
        row[f"_per_example:{name}"] = r.get("per_example")
        row[f"_tokens:{name}"] = r.get("per_example_tokens")
        row[f"_labels:{name}"] = r.get("labels")
    for task, metrics in ev.get("tasks", {}).items():
        for metric, value in metrics.items():
            row[f"{task}:{metric}"] = value
    return row


__all__ = ["Arm", "check_disjoint", "materialise", "plan_arms", "run_experiment", "task_metrics", "text_hash"]
