"""Ground-truth coverage benchmark: does a selection cover every task and template?

On real P3/T0 prompts (../shared/data/t0_tasks_dev.jsonl.gz: 18 datasets, 145 templates),
sampled per template, every method x feature set x budget is scored by the share of templates
and tasks its pick contains (labels are for scoring only), the covering radius in its own
feature space, and compared with random's mean over several seeds.

One forward pass of the selector model stores the MLP activations and hidden states of several
layers; text embeddings come from all-MiniLM-L6-v2. Features are cached in --work-dir.

    python benchmarks/coverage.py                     # 20 records per template, ~10-20 min on 2 cores
    python benchmarks/coverage.py --per-template 200  # the whole set (hours on a CPU)
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from coreselect.data import load_dataset
from coreselect.engine import extract_features
from coreselect.features.config import FeatureConfig
from coreselect.features.text import resolve_text_model
from coreselect.features.transform import prepare_features, raw_features
from coreselect.metrics import coverage_metrics, label_metrics
from coreselect.models import resolve_model
from coreselect.selection import available_methods, make_selector

T0 = Path(__file__).resolve().parents[2] / "shared" / "data" / "t0_tasks_dev.jsonl.gz"
LAYERS = (8, 15, 22, 29)
#: name -> stored groups it uses (the LM store) or "text"
FEATURE_SETS = {
    "act-L15": ["mlp.15"],
    "act-L8": ["mlp.8"],
    "act-L22": ["mlp.22"],
    "act-L8+15+22": ["mlp.8", "mlp.15", "mlp.22"],
    "hidden-L15": ["hidden.15"],
    "hidden-last": ["hidden.29"],
    "text": ["text"],
}


def sample(path: Path, per_template: int, seed: int, out: Path) -> None:
    by_t: dict[str, list[str]] = defaultdict(list)
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as f:
        for line in f:
            by_t[json.loads(line)["template"]].append(line)
    rng = random.Random(seed)
    lines = []
    for t in sorted(by_t):
        lines += rng.sample(by_t[t], min(per_template, len(by_t[t])))
    rng.shuffle(lines)
    out.write_text("".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=T0)
    ap.add_argument("--per-template", type=int, default=20)
    ap.add_argument("--budgets", default="0.005,0.01,0.05")
    ap.add_argument("--seeds", type=int, default=5, help="random baseline seeds")
    ap.add_argument("--resamples", type=int, default=5,
                    help="score on this many random 80%% subsamples of the pool (seeded) and report means, "
                         "so single-run luck does not pick the default")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--methods", default=",".join(m for m in available_methods() if m != "random"))
    ap.add_argument("--features", default=",".join(FEATURE_SETS))
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/coreselect-bench-coverage"))
    ap.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.data.is_file():
        print(f"skipped: {args.data} not found")
        return 0
    args.work_dir.mkdir(parents=True, exist_ok=True)
    pool = args.work_dir / f"t0-{args.per_template}pt.jsonl"
    if not pool.exists():
        sample(args.data, args.per_template, 0, pool)
    ds = load_dataset(pool)
    templates = [e.record["template"] for e in ds.examples]
    tasks = [e.record["task"] for e in ds.examples]
    n = len(ds)
    print(f"pool: {n} records, {len(set(templates))} templates, {len(set(tasks))} tasks")

    t = time.perf_counter()
    lm = extract_features(ds, resolve_model(None),
                          FeatureConfig(layers=LAYERS, with_hidden=True, max_length=args.max_length),
                          args.work_dir / f"lm-{args.per_template}pt-{args.max_length}")
    txt = extract_features(ds, resolve_text_model(None), FeatureConfig(kind="text", max_length=args.max_length),
                           args.work_dir / f"text-{args.per_template}pt-{args.max_length}")
    print(f"features ready in {time.perf_counter() - t:.0f}s "
          f"({lm.manifest['stats']['tokens']} tokens through the selector)")
    groups = {**lm.load(lm.groups), **txt.load(txt.groups)}

    budgets = [float(b) for b in args.budgets.split(",")]
    rng = np.random.default_rng(0)
    subsets = [np.sort(rng.choice(n, size=int(0.8 * n), replace=False)) for _ in range(args.resamples)]
    acc: dict[tuple, list] = defaultdict(list)
    for sub_rows in subsets:
        tl = [templates[i] for i in sub_rows]
        kl = [tasks[i] for i in sub_rows]
        m = len(sub_rows)
        for b in budgets:
            k = max(1, round(b * m))
            for s in range(args.seeds):
                idx = make_selector("random", n_select=k, random_state=s).fit(np.zeros((m, 1), np.float32)).indices_
                acc[("random", f"mean of {args.seeds} seeds", b)].append(
                    (k, label_metrics(tl, idx)["coverage"], label_metrics(kl, idx)["coverage"], float("nan"), 0.0))
        for fname in args.features.split(","):
            sub = {g: groups[g][sub_rows] for g in FEATURE_SETS[fname]}
            X = prepare_features(sub)
            R = raw_features(sub)
            for method in args.methods.split(","):
                for b in budgets:
                    k = max(1, round(b * m))
                    sel = make_selector(method, n_select=k, random_state=0)
                    t = time.perf_counter()
                    idx = sel.fit(R if sel.wants_raw_features else X).indices_
                    secs = time.perf_counter() - t
                    acc[(method, fname, b)].append((k, label_metrics(tl, idx)["coverage"],
                                                    label_metrics(kl, idx)["coverage"],
                                                    coverage_metrics(X, idx)["covering_radius"], secs))
            print(f"  {fname:14s} done", file=sys.stderr)
    rows = [(m_, f, b, int(np.mean([v[0] for v in vals])), *np.mean([v[1:] for v in vals], axis=0))
            for (m_, f, b), vals in acc.items()]

    lines = [f"pool: {n} T0 records ({args.per_template} per template), {len(set(templates))} templates, "
             f"{len(set(tasks))} tasks; max length {args.max_length}; means over {args.resamples} random "
             f"80% subsamples of the pool ({int(0.8 * n)} records each)",
             "", "| method | features | budget | n | template coverage | task coverage | covering radius | select s |",
             "|---|---|---|---|---|---|---|---|"]
    for m, f, b, k, tcov, kcov, rad, secs in sorted(rows, key=lambda r: (r[2], -r[4], -r[5])):
        lines.append(f"| {m} | {f} | {b:.1%} | {k} | {tcov:.1%} | {kcov:.1%} | {rad:.3f} | {secs:.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
