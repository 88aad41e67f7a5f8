"""The stages of one ``compare`` arm: select, train, evaluate; each cached under a stage key.

Every stage writes its output and then a small JSON marker holding a *stage key* (a hash of
everything the stage depends on) atomically; a rerun skips a stage whose marker matches and redoes
it when an input changed. The pre-check (each pick's label coverage and flagged share, no
training needed) is computed with the select stage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from coreselect.compare.config import DataSlice, ExperimentConfig, MethodSpec, selector_json, trainee_json
from coreselect.data import Dataset, fold_text, load_dataset
from coreselect.errors import ConfigError, DataError
from coreselect.metrics import label_metrics
from coreselect.output import atomic_write_bytes, subset_bytes

log = logging.getLogger(__name__)

#: bumped when what the eval stage stores changes (v2: per-example losses, groups, rank accuracy)
EVAL_VERSION = 2


@dataclass(frozen=True)
class Arm:
    """One training run: ``method`` picks ``budget`` of the pool with ``seed``.

    ``method`` is a selection method, ``"full"``, ``"base"`` or ``"balanced"`` (label-balanced
    random: an oracle that reads the ``oracle_column`` labels); ``label`` names the arm's group in
    the results (the method's label, or its name).
    """

    name: str
    method: str
    budget: float | int | None
    seed: int
    params: tuple[tuple[str, Any], ...] = ()
    label: str = ""
    spec: MethodSpec | None = None
    oracle_column: str = ""


class NotRun(Exception):
    """A stage without a finished result, met under ``report_only`` (nothing is run then)."""


def stage_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def cached(path: Path, key: str) -> dict[str, Any] | None:
    """The marker at ``path`` when it belongs to ``key``, else None."""
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if marker.get("stage_key") == key else None


def text_hash(ex: Any) -> str:
    """Normalised hash of an example's prompt and response (case and whitespace folded)."""
    return hashlib.sha1(fold_text(ex.prompt, ex.response).encode()).hexdigest()


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


def labels_of(ds: Dataset, column: str) -> list[str]:
    """``column`` of every record as text (missing: a one-line error naming the record)."""
    from coreselect.finetune.grouped import group_labels

    return group_labels(ds, column, what="label column")


def balanced_pick(labels: Sequence[str], k: int, seed: int) -> list[int]:
    """``k`` rows spread as evenly as the pool allows over ``labels`` (water-filling), random within each.

    >>> sorted(Counter("aaaaabbc"[i] for i in balanced_pick(list("aaaaabbc"), 4, 0)).items())
    [('a', 2), ('b', 1), ('c', 1)]
    """
    rng = np.random.default_rng(seed)
    by: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by.setdefault(lab, []).append(i)
    order = sorted(by)
    rng.shuffle(order)
    quota = dict.fromkeys(order, 0)
    left = k
    while left > 0:
        open_ = [g for g in order if quota[g] < len(by[g])]
        if not open_:
            break
        share, extra = divmod(left, len(open_))
        for j, g in enumerate(open_):
            add = min(share + (j < extra), len(by[g]) - quota[g])
            quota[g] += add
            left -= add
    picks: list[int] = []
    for g in order:
        picks += rng.choice(by[g], size=quota[g], replace=False).tolist()
    return picks


def clean_pick(labels: Sequence[str], k: int, seed: int) -> list[int]:
    """``k`` random rows among those whose label is empty (an oracle that reads a corruption label).

    >>> sorted(clean_pick(["", "swapped", "", "", "near-duplicate"], 2, 0)) in ([0, 2], [0, 3], [2, 3])
    True
    """
    clean = [i for i, lab in enumerate(labels) if not lab]
    rng = np.random.default_rng(seed)
    return rng.choice(clean, size=min(k, len(clean)), replace=False).tolist()


def token_prefix(order: Sequence[int], tokens: Sequence[int], budget: float) -> list[int]:
    """The longest prefix of the pick ``order`` whose records hold at most ``budget`` tokens.

    >>> token_prefix([3, 0, 1, 2], [10, 20, 30, 40], 75)
    [3, 0, 1]
    """
    out, used = [], 0
    for i in order:
        if used + tokens[i] > budget:
            break
        out.append(int(i))
        used += tokens[i]
    return out


def pool_tokens(cfg: ExperimentConfig, pool: Dataset, root: Path) -> list[int]:
    """Tokens each pool record gives the trainee (prompt and response as it trains on them, cut at
    its ``max_length``; 0 for a record it drops), cached in ``DIR/data/pool-tokens.json``."""
    from coreselect.finetune.train import encode_examples
    from coreselect.models import resolve_model

    tc = cfg.trainee
    key = stage_key("pool-tokens", pool.fingerprint, tc.model, tc.max_length)
    path = root / "data" / "pool-tokens.json"
    if (m := cached(path, key)) is not None:
        return m["tokens"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(tc.model, trust_remote_code=tc.trust_remote_code).path,
                                        trust_remote_code=tc.trust_remote_code)
    enc = encode_examples(pool.examples, tok, tc.max_length)
    tokens = [0] * len(pool)
    for i, row in zip(enc.kept, enc.rows):
        tokens[i] = len(row["input_ids"])
    write_json(path, {"stage_key": key, "tokens": tokens})
    return tokens


def precheck(pool: Dataset, rows: Sequence[int], columns: Sequence[str]) -> dict[str, Any]:
    """Label coverage of a pick (and the flagged share where a label is empty for clean records),
    with what a random pick of the same size gets in expectation."""
    out: dict[str, Any] = {}
    n, k = len(pool), len(rows)
    for col in columns:
        labels = labels_of(pool, col)
        counts = Counter(labels)
        got = Counter(labels[i] for i in rows)
        # P(a label is missed by a random pick of k) = C(n - c, k) / C(n, k)
        miss = [math.exp(_log_comb(n - c, k) - _log_comb(n, k)) if n - c >= k else 0.0 for c in counts.values()]
        r: dict[str, Any] = {"coverage": label_metrics(labels, list(rows))["coverage"],
                             "random_coverage": round(1 - sum(miss) / len(counts), 6)}
        if "" in counts:
            r["flagged"] = round(sum(v for lab, v in got.items() if lab) / max(k, 1), 6)
            r["random_flagged"] = round(sum(v for lab, v in counts.items() if lab) / n, 6)
        out[col] = r
    return out


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def select_stage(cfg: ExperimentConfig, arm: Arm, pool: Dataset, root: Path, progress: bool,
                 report_only: bool = False) -> dict[str, Any]:
    from coreselect.pipeline import run_select

    job = cfg.selector_for(arm.spec) if arm.spec else cfg.selector
    uses_features = arm.method not in ("random", "full", "balanced", "clean")
    matched = cfg.match_tokens and arm.method != "full"
    key = stage_key("select", pool.fingerprint, arm.method, arm.budget, arm.seed, arm.params,
                    selector_json(job) if uses_features else None,
                    *([arm.oracle_column] if arm.oracle_column else []),
                    *([{"match_tokens": stage_key(cfg.trainee.model, cfg.trainee.max_length)}] if matched else []))
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "select.json"
    out = arm_dir / "train.jsonl"
    m = cached(marker, key)
    fresh = m is None or not out.is_file()
    if fresh and report_only:
        raise NotRun(arm.name)
    if fresh:
        t = time.perf_counter()
        k = len(pool) if arm.budget is None else arm.budget if isinstance(arm.budget, int) \
            else max(1, round(arm.budget * len(pool)))
        if matched and arm.method != "balanced":  # the method's own order over the whole pool, cut at
            k = len(pool)                          # random's expected tokens (balanced: its own k, cut)
        if arm.method == "full":
            atomic_write_bytes(out, (root / "data" / "pool.jsonl").read_bytes())
            indices = list(range(len(pool)))
        elif arm.method in ("balanced", "clean"):
            pick = balanced_pick if arm.method == "balanced" else clean_pick
            indices = pick(labels_of(pool, arm.oracle_column), k, arm.seed)
        else:
            log.info("[%s] select: %s, budget %s, seed %d", arm.name, arm.method, arm.budget, arm.seed)
            # token-matched: the method orders the whole pool, cut at the token budget below
            ratio, n = (1.0, None) if matched else (arm.budget, None) if isinstance(arm.budget, float) \
                else (None, arm.budget)
            job = replace(job, data=str(root / "data" / "pool.jsonl"), output=str(out), ratio=ratio, n=n,
                          method=arm.method,
                          method_params=dict(arm.params), seed=arm.seed, work_dir=str(root / "features"),
                          overwrite=True, progress=progress)
            indices = run_select(job).manifest.indices
        extra: dict[str, Any] = {}
        if matched:
            tokens = pool_tokens(cfg, pool, root)
            share = arm.budget if isinstance(arm.budget, float) else arm.budget / len(pool)
            budget = share * sum(tokens)
            indices = token_prefix(indices, tokens, budget)
            extra = {"token_budget": round(budget), "tokens": sum(tokens[i] for i in indices)}
            log.info("[%s] token-matched: %d records, %d of %d tokens", arm.name, len(indices), extra["tokens"],
                     round(budget))
        if arm.method != "full" and (matched or arm.method in ("balanced", "clean")):
            atomic_write_bytes(out, subset_bytes(pool, indices, out))
            # select's manifest lists the whole order: select.json holds the pick that trains
            out.with_name(out.name + ".manifest.json").unlink(missing_ok=True)
        m = {"stage_key": key, "n_train": len(indices), "indices": indices,
             "seconds": round(time.perf_counter() - t, 3), **extra}
    else:
        log.info("[%s] select: done (cached)", arm.name)
    if cfg.labels and m.get("precheck_columns") != cfg.labels:  # labels can be added to a finished run
        m.update(precheck=precheck(pool, m["indices"], cfg.labels), precheck_columns=cfg.labels)
        fresh = True
    if fresh:
        write_json(marker, m)
    return m


def train_stage(cfg: ExperimentConfig, arm: Arm, select_key: str, root: Path, progress: bool,
                report_only: bool = False) -> dict[str, Any]:
    from coreselect.finetune.train import MANIFEST, resolve_precision, train

    tc = cfg.trainee
    # what "auto" means depends on the machine (and on measurements), so the key holds the result
    tc_json = {**trainee_json(tc), "precision": resolve_precision(tc.precision)}
    key = stage_key("train", select_key, tc_json, arm.seed)
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "train.json"
    if (m := cached(marker, key)) is not None and (arm_dir / "model" / MANIFEST).is_file():
        log.info("[%s] train: done (cached)", arm.name)
        return m
    if report_only:
        raise NotRun(arm.name)
    log.info("[%s] train: %s on %s", arm.name, tc.model, arm_dir / "train.jsonl")
    config = replace(tc, seed=arm.seed, progress=progress)
    res = train(arm_dir / "train.jsonl", arm_dir / "model", config, overwrite=True)
    t = res.manifest["train"]
    m = {"stage_key": key, "rows": res.manifest["data"]["rows"], "tokens": t["tokens"],
         "response_tokens": t["response_tokens"], "seconds": t["seconds"], "steps": t["steps"],
         "tokens_per_second": t["tokens_per_second"], "final_loss": t["final_loss"]}
    write_json(marker, m)
    return m


def eval_stage(cfg: ExperimentConfig, arm: Arm, upstream_key: str, evals: dict[str, Dataset], root: Path,
               progress: bool, report_only: bool = False) -> dict[str, Any]:
    from coreselect.finetune.evaluate import load_for_eval, run_lm_eval, score_dataset
    from coreselect.finetune.grouped import group_labels

    ev = replace(cfg.evaluation, progress=progress)
    settings: dict[str, Any] = {"max_length": ev.max_length, "batch_size": ev.batch_size, "base": ev.base,
                                "precision": ev.precision, "version": EVAL_VERSION}
    if ev.tasks:
        settings.update(tasks=ev.tasks, task_limit=ev.task_limit)
    for name in ("num_fewshot", "group_by", "rank_choices"):
        if getattr(ev, name) is not None:
            settings[name] = getattr(ev, name)
    key = stage_key("eval", upstream_key, {n: d.fingerprint for n, d in evals.items()}, settings)
    arm_dir = root / "arms" / arm.name
    marker = arm_dir / "eval.json"
    if (m := cached(marker, key)) is not None:
        log.info("[%s] evaluate: done (cached)", arm.name)
        return m
    if report_only:
        raise NotRun(arm.name)
    model_ref = cfg.trainee.model if arm.method == "base" else str(arm_dir / "model")
    log.info("[%s] evaluate %s on %s", arm.name, model_ref or "the default model", ", ".join(evals))
    t = time.perf_counter()
    model, tok, _ = load_for_eval(model_ref, precision=ev.precision)
    results = {}
    for name, ds in evals.items():
        labels = group_labels(ds, ev.group_by) if ev.group_by else None
        results[name] = score_dataset(model, tok, ds, ev, per_example=True, labels=labels)
        if labels is not None:
            results[name]["labels"] = labels
    tasks = {}
    if ev.tasks:
        out = run_lm_eval(model, tok, ev.tasks, batch_size=ev.batch_size, limit=ev.task_limit,
                          num_fewshot=ev.num_fewshot)
        tasks = {task: task_metrics(r) for task, r in out.get("results", {}).items()}
    del model
    m = {"stage_key": key, "results": results, "tasks": tasks, "seconds": round(time.perf_counter() - t, 3)}
    write_json(marker, m)
    return m


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


__all__ = ["Arm", "NotRun", "balanced_pick", "clean_pick", "pool_tokens", "token_prefix", "check_disjoint", "eval_stage", "materialise", "precheck", "select_stage",
           "stage_key", "task_metrics", "text_hash", "train_stage"]
