"""``coreselect compare``: select -> train -> evaluate for every arm, cached and resumable.

Arms are ``methods x budgets x seeds``, plus the ``random`` baseline at the same budgets and
seeds, ``full`` (the whole pool) once per seed, and ``base`` (the untrained trainee) as a
reference. Every stage of every arm writes its output and then a small JSON marker holding a
*stage key* (a hash of everything the stage depends on) atomically; a rerun skips a stage
whose marker matches and redoes it when an input changed. Layout of the output folder::

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

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from coreselect.compare.config import DataSlice, ExperimentConfig, selector_json
from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError, DataError
from coreselect.output import atomic_write_bytes, check_not_input, check_not_inside, subset_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    """One training run: ``method`` picks ``budget`` of the pool with ``seed``."""

    name: str
    method: str  # a selection method, "full" or "base"
    budget: float | int | None
    seed: int
    params: tuple[tuple[str, Any], ...] = ()


def _budget_label(b: float | int) -> str:
    return f"{b * 100:g}pct" if isinstance(b, float) else f"n{b}"


def plan_arms(cfg: ExperimentConfig) -> list[Arm]:
    """All arms of a config, in run order: subsets first, then ``base``, ``full`` last (the costliest)."""
    arms: list[Arm] = []
    methods = [(m.name, tuple(sorted(m.params.items()))) for m in cfg.methods]
    if "random" in cfg.baselines and all(name != "random" for name, _ in methods):
        methods.append(("random", ()))
    for seed in cfg.seeds:
        for budget in cfg.budgets:
            for name, params in methods:
                label = name + ("-" + "-".join(f"{k}{v}" for k, v in params) if params else "")
                label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
                arms.append(Arm(f"{label}-{_budget_label(budget)}-s{seed}", name, budget, seed, params))
    if cfg.evaluation.base:
        arms.append(Arm("base", "base", None, 0))
    if "full" in cfg.baselines:
        arms += [Arm(f"full-s{seed}", "full", None, seed) for seed in cfg.seeds]
    return arms


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def _done(path: Path, key: str) -> dict[str, Any] | None:
    """The marker at ``path`` when it belongs to ``key``, else None."""
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if marker.get("stage_key") == key else None


def text_hash(ex: Any) -> str:
    """Normalised hash of an example's prompt and response (case and whitespace folded)."""
    norm = " ".join(f"{ex.prompt}\x1f{ex.response}".lower().split())
    return hashlib.sha1(norm.encode()).hexdigest()


def check_disjoint(pool: Dataset, evals: dict[str, Dataset]) -> None:
    """Raise :class:`ConfigError` when a held-out set shares a record (prompt + response) with the pool."""
    seen = {text_hash(ex): ex.source_index for ex in pool.examples}
    for name, ds in evals.items():
        hits = [(ex.source_index, seen[h]) for ex in ds.examples if (h := text_hash(ex)) in seen]
        if hits:
            e, p = hits[0]
            raise ConfigError(f"eval set {name!r} overlaps the pool: {len(hits)} of its {len(ds)} records repeat "
                              f"a pool record (first: eval record {e} = pool record {p}); use disjoint slices")


def materialise(sl: DataSlice, out: Path) -> Dataset:
    """Write records ``[offset, offset+limit)`` of ``sl.path`` to ``out`` (JSONL), reload and return them."""
    src = load_dataset(sl.path)
    rows = [ex.index for ex in src.examples
            if ex.source_index >= sl.offset and (sl.limit is None or ex.source_index < sl.offset + sl.limit)]
    if not rows:
        raise DataError(sl.path, f"slice offset {sl.offset}, limit {sl.limit} holds no records")
    if sl.limit is not None and len(rows) < sl.limit:
        log.warning("%s: slice %s asked for %d records, got %d", sl.path, sl.name, sl.limit, len(rows))
    data = subset_bytes(src, rows, out)
    if not out.is_file() or out.read_bytes() != data:
        atomic_write_bytes(out, data)
    return load_dataset(out)


def _select_stage(cfg: ExperimentConfig, arm: Arm, pool: Dataset, root: Path, progress: bool) -> dict[str, Any]:
    from coreselect.pipeline import run_select

    key = _key("select", pool.fingerprint, arm.method, arm.budget, arm.seed, arm.params,
               selector_json(cfg.selector) if arm.method not in ("random", "full") else None)
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "select.json"
    if (m := _done(marker, key)) is not None and (arm_dir / "train.jsonl").is_file():
        log.info("[%s] select: done (cached)", arm.name)
        return m
    t = time.perf_counter()
    out = arm_dir / "train.jsonl"
    if arm.method == "full":
        atomic_write_bytes(out, (root / "data" / "pool.jsonl").read_bytes())
        indices = list(range(len(pool)))
    else:
        log.info("[%s] select: %s, budget %s, seed %d", arm.name, arm.method, arm.budget, arm.seed)
        job = replace(cfg.selector, data=str(root / "data" / "pool.jsonl"), output=str(out),
                      ratio=arm.budget if isinstance(arm.budget, float) else None,
                      n=arm.budget if isinstance(arm.budget, int) else None, method=arm.method,
                      method_params=dict(arm.params), seed=arm.seed, work_dir=str(root / "features"),
                      overwrite=True, progress=progress)
        indices = run_select(job).manifest.indices
    m = {"stage_key": key, "n_train": len(indices), "indices": indices,
         "seconds": round(time.perf_counter() - t, 3)}
    _write_json(marker, m)
    return m


def _train_stage(cfg: ExperimentConfig, arm: Arm, select_key: str, root: Path, progress: bool) -> dict[str, Any]:
    from coreselect.finetune.train import MANIFEST, resolve_precision, train

    tc = cfg.trainee
    # what "auto" means depends on the machine (and on measurements), so the key holds the result
    tc_json = {**asdict(tc), "progress": None, "lora_targets": list(tc.lora_targets),
               "precision": resolve_precision(tc.precision)}
    key = _key("train", select_key, tc_json, arm.seed)
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "train.json"
    if (m := _done(marker, key)) is not None and (arm_dir / "model" / MANIFEST).is_file():
        log.info("[%s] train: done (cached)", arm.name)
        return m
    log.info("[%s] train: %s on %s", arm.name, tc.model, arm_dir / "train.jsonl")
    config = type(tc)(**{**asdict(tc), "seed": arm.seed, "progress": progress})
    res = train(arm_dir / "train.jsonl", arm_dir / "model", config, overwrite=True)
    t = res.manifest["train"]
    m = {"stage_key": key, "rows": res.manifest["data"]["rows"], "tokens": t["tokens"],
         "response_tokens": t["response_tokens"], "seconds": t["seconds"], "steps": t["steps"],
         "tokens_per_second": t["tokens_per_second"], "final_loss": t["final_loss"]}
    _write_json(marker, m)
    return m


def _eval_stage(cfg: ExperimentConfig, arm: Arm, upstream_key: str, evals: dict[str, Dataset], root: Path,
                progress: bool) -> dict[str, Any]:
    from coreselect.finetune.evaluate import load_for_eval, response_loss, run_lm_eval

    ev = cfg.evaluation
    # the settings of the first version (so its runs stay cached), later ones only when set
    settings: dict[str, Any] = {"max_length": ev.max_length, "batch_size": ev.batch_size, "base": ev.base,
                                "precision": ev.precision}
    if ev.tasks:
        settings.update(tasks=ev.tasks, task_limit=ev.task_limit)
    if ev.num_fewshot is not None:
        settings["num_fewshot"] = ev.num_fewshot
    key = _key("eval", upstream_key, {n: d.fingerprint for n, d in evals.items()}, settings)
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "eval.json"
    if (m := _done(marker, key)) is not None:
        log.info("[%s] evaluate: done (cached)", arm.name)
        return m
    model_ref = cfg.trainee.model if arm.method == "base" else str(arm_dir / "model")
    log.info("[%s] evaluate %s on %s", arm.name, model_ref or "the default model", ", ".join(evals))
    t = time.perf_counter()
    model, tok, _ = load_for_eval(model_ref, precision=ev.precision)
    results = {name: response_loss(model, tok, ds, max_length=ev.max_length, batch_size=ev.batch_size,
                                   progress=progress) for name, ds in evals.items()}
    tasks = {}
    if ev.tasks:
        out = run_lm_eval(model, tok, ev.tasks, batch_size=ev.batch_size, limit=ev.task_limit,
                          num_fewshot=ev.num_fewshot)
        tasks = {task: task_metrics(r) for task, r in out.get("results", {}).items()}
    del model
    m = {"stage_key": key, "results": results, "tasks": tasks, "seconds": round(time.perf_counter() - t, 3)}
    _write_json(marker, m)
    return m


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run (or resume) every arm of ``cfg`` under ``out_dir``; write and return the results rows."""
    from coreselect.compare.report import write_reports

    root = Path(out_dir)
    _check_inputs_outside(cfg, root)
    root.mkdir(parents=True, exist_ok=True)
    pool = materialise(cfg.pool, root / "data" / "pool.jsonl")
    evals = {e.name: materialise(e, root / "data" / f"eval-{re.sub(r'[^A-Za-z0-9_.-]+', '_', e.name)}.jsonl")
             for e in cfg.eval}
    check_disjoint(pool, evals)
    _write_json(root / "config.json", {"source": cfg.source, "pool": asdict(cfg.pool),
                                       "eval": [asdict(e) for e in cfg.eval], "selector": selector_json(cfg.selector),
                                       "trainee": {**asdict(cfg.trainee), "lora_targets": list(cfg.trainee.lora_targets)},
                                       "methods": [asdict(m) for m in cfg.methods], "budgets": cfg.budgets,
                                       "seeds": cfg.seeds, "baselines": cfg.baselines,
                                       "evaluation": asdict(cfg.evaluation)})
    arms = plan_arms(cfg)
    log.info("compare: %d arms (%s), pool %d records, eval %s", len(arms), ", ".join(a.name for a in arms),
             len(pool), ", ".join(f"{n} ({len(d)})" for n, d in evals.items()))
    rows = []
    for i, arm in enumerate(arms, 1):
        log.info("arm %d/%d: %s", i, len(arms), arm.name)
        sel = tr = None
        if arm.method == "base":
            upstream = _key("base", cfg.trainee.model)
        else:
            sel = _select_stage(cfg, arm, pool, root, progress)
            tr = _train_stage(cfg, arm, sel["stage_key"], root, progress)
            upstream = tr["stage_key"]
        ev = _eval_stage(cfg, arm, upstream, evals, root, progress)
        rows.append(_row(arm, sel, tr, ev))
        write_reports(rows, root, [e.name for e in cfg.eval])  # partial results after every arm
    return rows


def _check_inputs_outside(cfg: ExperimentConfig, root: Path) -> None:
    """Refuse an output folder where compare would write over its own config or data."""
    inputs = [cfg.pool.path, *(e.path for e in cfg.eval), *([cfg.source] if cfg.source else [])]
    for sub in ("data", "arms", "features"):
        check_not_inside(root / sub, inputs)
    for name in ("config.json", "results.csv", "results.md", "results.png"):
        check_not_input(root / name, inputs)


def _row(arm: Arm, sel: dict[str, Any] | None, tr: dict[str, Any] | None, ev: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "arm": arm.name, "method": arm.method,
        "budget": "" if arm.budget is None else arm.budget, "seed": "" if arm.method == "base" else arm.seed,
        "n_train": sel["n_train"] if sel else 0, "train_tokens": tr["tokens"] if tr else 0,
        "train_seconds": tr["seconds"] if tr else 0.0, "select_seconds": sel["seconds"] if sel else 0.0,
        "eval_seconds": ev["seconds"],
    }
    for name, r in ev["results"].items():
        row[f"loss:{name}"] = r["loss"]
        row[f"perplexity:{name}"] = r["perplexity"]
    for task, metrics in ev.get("tasks", {}).items():
        for metric, value in metrics.items():
            row[f"{task}:{metric}"] = value
    return row


def task_metrics(result: dict[str, Any]) -> dict[str, float]:
    """lm-eval's per-task result without standard errors, aliases and filter suffixes
    (``acc,none`` -> ``acc``; ``exact_match,strict-match`` -> ``exact_match:strict-match``)."""
    out = {}
    for name, value in result.items():
        if "," not in name or "_stderr" in name or not isinstance(value, (int, float)):
            continue
        metric, filt = name.split(",", 1)
        out[metric if filt == "none" else f"{metric}:{filt}"] = round(float(value), 6)
    return out


__all__ = ["Arm", "check_disjoint", "materialise", "plan_arms", "run_experiment", "text_hash"]
