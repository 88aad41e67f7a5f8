"""Wall time of one ``coreselect compare`` preset at ``--jobs 1`` and ``--jobs 2``, side by side.

The same small preset runs twice from nothing (two fresh run folders, nothing cached), each as
the command a user types, in its own process: ``coreselect compare --jobs 1`` (units one after
another, torch on all cores), then ``--jobs 2`` (two spawned unit processes, ``cores // 2``
threads each). Its arms are ``random`` at ``--seeds`` seeds, so no selector runs
and the wall time is the train + evaluate units that ``--jobs`` parallelises. Printed: the wall
time of each run, the units' summed stage time, the speed-up, and how far the held-out losses
of the two runs lie apart (a serial run at the full thread count sums in another order than
one-thread units, so they agree to rounding, not bit for bit; tests/compare/test_run.py checks
exact equality at one thread).

    python benchmarks/compare_jobs.py                           # gemma3-270m, 4 seeds, 400-record pool
    python benchmarks/compare_jobs.py --seeds 2 --pool 200 --trainee smollm2-135m-instruct

Reads the real Alpaca pool beside the repository (../shared/data); the embedded demo dataset
otherwise.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import ALPACA


def preset(tmp: Path, args: argparse.Namespace) -> Path:
    """The small preset: a pool, a disjoint held-out slice, ``random`` at ``args.seeds`` seeds."""
    if ALPACA.is_file():
        source, held = str(ALPACA), 100
    else:
        from coreselect.demo import demo_path

        source, held = str(demo_path()), 40
        args.pool = min(args.pool, 200)
    cfg = {
        "pool": {"path": source, "offset": 0, "limit": args.pool},
        "eval": [{"name": "held", "path": source, "offset": args.pool, "limit": held}],
        "trainee": {"model": args.trainee, "lora": True, "lora_r": 16, "epochs": 1, "lr": 2.0e-4,
                    "max_length": 256, "batch_size": 8},
        "methods": [], "budgets": [args.budget], "seeds": list(range(args.seeds)), "baselines": ["random"],
        "evaluation": {"max_length": 256, "batch_size": 16, "base": False},
    }
    path = tmp / "jobs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def timed(cfg_path: Path, out: Path, jobs: int) -> tuple[float, list[dict]]:
    """Wall seconds of ``coreselect compare --jobs N`` and its results rows."""
    cli = [str(Path(sys.executable).with_name("coreselect")), "compare", str(cfg_path), "-o", str(out), "--jobs", str(jobs),
           "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(cli, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"--jobs {jobs} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    with open(out / "results.csv", newline="") as f:
        rows = [{k: float(v) if k.endswith(("seconds", "tokens")) or k.startswith("loss:") else v
                 for k, v in r.items()} for r in csv.DictReader(f)]
    return wall, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainee", default="gemma3-270m")
    ap.add_argument("--seeds", type=int, default=4, help="random arms (units); even, so --jobs 2 has pairs")
    ap.add_argument("--pool", type=int, default=400)
    ap.add_argument("--budget", type=float, default=0.15)
    args = ap.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="compare_jobs_") as t:
        tmp = Path(t)
        cfg_path = preset(tmp, args)
        from coreselect.models import resolve_model

        for f in Path(resolve_model(args.trainee).path).rglob("*"):  # the page cache: neither run reads cold
            if f.is_file():
                f.read_bytes()
        walls, results, peaks = {}, {}, {}
        for jobs in (1, 2):
            walls[jobs], results[jobs] = timed(cfg_path, tmp / f"jobs{jobs}", jobs)
            peaks[jobs] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB, so far
        print(f"preset: {args.seeds} random arms x {args.budget:.0%} of {args.pool} records, trainee "
              f"{args.trainee}, 1 epoch; {cores} cores\n")
        print("| --jobs | wall s | units' stage s (train + eval) | stage s / wall s | speed-up vs --jobs 1 "
              "| largest process GiB (so far) |")
        print("|---|---|---|---|---|---|")
        for jobs in (1, 2):
            stage = sum(r["train_seconds"] + r["eval_seconds"] for r in results[jobs])
            print(f"| {jobs} | {walls[jobs]:.0f} | {stage:.0f} | {stage / walls[jobs]:.2f} | "
                  f"{walls[1] / walls[jobs]:.2f}x | {peaks[jobs]:.1f} |")
        gap = max(abs(a["loss:held"] - b["loss:held"]) for a, b in zip(results[1], results[2], strict=True))
        tokens = all(a["train_tokens"] == b["train_tokens"] for a, b in zip(results[1], results[2], strict=True))
        print(f"\nsame picks and training tokens: {tokens}; largest held-out loss gap between the runs: {gap:.2e}")


if __name__ == "__main__":
    main()
