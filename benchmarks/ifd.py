"""IFD from the selector: its cost, whether a larger model ranks alike, and what each method keeps
of a noisy pool (issue 15).

Three measurements, each printed as a table (stores are cached in ``--work``, so a rerun only
redoes what is missing; the cost runs always use fresh stores):

* ``cost``: on ``--n`` Alpaca records (rows ``--offset`` on, CALIBRATION's slice), extraction with
  activations only vs with ``--scores ifd``, SmolLM2-135M-Instruct loaded once, side by side in one
  process at the same thread count: wall seconds and their ratio.
* ``agreement``: IFD and ``loss_cond`` of the same records from SmolLM2-135M-Instruct (chat
  template) and from Gemma 3 270M (base, Alpaca-style prompt): Spearman correlations (does the
  small selector rank like the larger trainee? Superfiltering reports 0.68-0.80 for GPT-2 vs 7B).
* ``noisy``: on a pool whose ``corruption`` column marks swapped responses and near-duplicates
  (``coreselect pool``'s noisy pool; the column is only read to score), a ``--ratio`` pick with each
  method: the share of swapped and of near-duplicate records it keeps; IFD's AUC for swapped vs
  clean.

    OMP_NUM_THREADS=1 python benchmarks/ifd.py --threads 1 --pool /tmp/pools/noisy/pool.jsonl
    python benchmarks/ifd.py --only noisy --pool /tmp/pools/noisy/pool.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from _common import ALPACA

#: (label, method, params, extra SelectJob options) of the noisy-pool table.
ARMS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("random", "random", {}, {}),
    ("longest", "longest", {}, {}),
    ("facility-location", "facility-location", {}, {}),
    ("kcenter", "kcenter", {}, {}),
    ("ltd", "ltd", {}, {}),
    ("ifd", "ifd", {}, {}),
    ("quality-coverage (keep 0.5)", "quality-coverage", {}, {}),
    ("quality-fl (weight 0.3)", "quality-fl", {"weight": 0.3}, {}),
    ("quality-fl (weight 1, default)", "quality-fl", {}, {}),
    ("quality-fl (weight 3)", "quality-fl", {"weight": 3.0}, {}),
    ("facility-location --dedup 0.95", "facility-location", {}, {"dedup": 0.95}),
    ("facility-location --dedup 0.9", "facility-location", {}, {"dedup": 0.9}),
    ("quality-fl --dedup 0.9", "quality-fl", {}, {"dedup": 0.9}),
]


def alpaca_slice(offset: int, n: int, dst: Path) -> Path:
    with gzip.open(ALPACA, "rt", encoding="utf-8", newline="\n") as f:
        dst.write_text("".join(itertools.islice(f, offset, offset + n)), encoding="utf-8")
    return dst


def extract_timed(ds: Any, spec: Any, loaded: Any, config: Any, out: Path) -> tuple[Any, float]:
    from coreselect.engine import extract_features

    t = time.perf_counter()
    store = extract_features(ds, spec, config, out, loaded=loaded, progress=False)
    return store, time.perf_counter() - t


def scored_path(name: str, ds: Any, work: Path) -> Path:
    """Where the store of ``ds`` with ``--scores ifd`` from model ``name`` is cached."""
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import store_key
    from coreselect.models import resolve_model

    return work / f"{name}-{store_key(ds.fingerprint, resolve_model(name), FeatureConfig(scores=('ifd',)))[:12]}"


def scores_of(name: str, ds: Any, work: Path) -> tuple[dict[str, np.ndarray], float]:
    """The score columns of ``ds`` from model ``name`` (cached in ``work``), and the seconds taken."""
    from coreselect.features.config import FeatureConfig
    from coreselect.models import load_model, resolve_model
    from coreselect.store import FeatureStore

    spec = resolve_model(name)
    cfg = FeatureConfig(scores=("ifd",))
    out = scored_path(name, ds, work)
    if (out / "manifest.json").is_file() and FeatureStore.open(out, require_complete=False).manifest.get("complete"):
        store = FeatureStore.open(out)
        return store.load(["ifd", "loss_cond", "loss_alone"]), float(store.manifest["stats"]["seconds_last_run"])
    store, seconds = extract_timed(ds, spec, load_model(spec), cfg, out)
    return store.load(["ifd", "loss_cond", "loss_alone"]), seconds


def cost(ds: Any, work: Path) -> dict[str, float]:
    from coreselect.features.config import FeatureConfig
    from coreselect.models import load_model, resolve_model

    spec = resolve_model(None)
    loaded = load_model(spec)
    keep = scored_path(spec.name, ds, work)  # the scored store serves `agreement` when not there yet
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _, plain = extract_timed(ds, spec, loaded, FeatureConfig(), Path(tmp) / "plain")
        store, scored = extract_timed(ds, spec, loaded, FeatureConfig(scores=("ifd",)),
                                      Path(tmp) / "scored" if keep.exists() else keep)
        tokens = int(store.manifest["stats"]["tokens"])
        with mock.patch("coreselect.features.scores.shared_prefix", return_value=0):  # the lever, off
            _, uncached = extract_timed(ds, spec, loaded, FeatureConfig(scores=("ifd",)), Path(tmp) / "uncached")
    print(f"\n## Cost: {len(ds)} records, {tokens} tokens, SmolLM2-135M-Instruct, bf16\n")
    print("| extraction | seconds | records/s |\n|---|---|---|")
    print(f"| activations only (layer 15) | {plain:.1f} | {len(ds) / plain:.2f} |")
    print(f"| activations + --scores ifd | {scored:.1f} | {len(ds) / scored:.2f} |")
    print(f"| the same, shared prompt prefix not cached | {uncached:.1f} | {len(ds) / uncached:.2f} |")
    print(f"\nratio with/without scores: {scored / plain:.2f}x (scoring adds {scored / plain - 1:.2f}x the "
          f"activation pass); without the prefix cache {uncached / plain:.2f}x")
    return {"plain": plain, "scored": scored, "uncached": uncached}


def spearman(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    return float(spearmanr(a[ok], b[ok]).statistic), int(ok.sum())


def agreement(ds: Any, work: Path) -> None:
    small, t_small = scores_of("smollm2-135m-instruct", ds, work)
    large, t_large = scores_of("gemma3-270m", ds, work)
    print(f"\n## Agreement: {len(ds)} Alpaca records, SmolLM2-135M-Instruct vs Gemma 3 270M\n")
    print("| score | Spearman | rows | median SmolLM2 | median Gemma |\n|---|---|---|---|---|")
    for col in ("ifd", "loss_cond", "loss_alone"):
        rho, n = spearman(small[col], large[col])
        print(f"| {col} | {rho:.3f} | {n} | {np.nanmedian(small[col]):.3f} | {np.nanmedian(large[col]):.3f} |")
    both = np.isfinite(small["ifd"]) & np.isfinite(large["ifd"])
    agree = ((small["ifd"] >= 1) == (large["ifd"] >= 1))[both].mean()
    print(f"\nIFD >= 1: SmolLM2 {int((small['ifd'] >= 1).sum())}, Gemma {int((large['ifd'] >= 1).sum())}; the two "
          f"agree on {agree:.1%} of rows. Extraction with scores: SmolLM2 {t_small:.0f} s, Gemma {t_large:.0f} s.")


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half (Mann-Whitney)."""
    from scipy.stats import rankdata

    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    r = rankdata(np.concatenate([pos, neg]))[: len(pos)]
    return float((r.sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def duplicate_sources(records: list[dict[str, Any]], label: np.ndarray) -> dict[int, int]:
    """For each near-duplicate row, the row it was made from: the most similar text among the others."""
    import difflib

    text = [f"{r.get('instruction', '')}\n{r.get('input', '')}\n{r.get('output', '')}" for r in records]
    out = {}
    for i in np.flatnonzero(label == "near-duplicate"):
        m = difflib.SequenceMatcher(None, b=text[i])
        best, best_ratio = -1, -1.0
        for j in range(len(text)):
            if j == i or label[j] == "near-duplicate":
                continue
            m.set_seq1(text[j])
            if m.real_quick_ratio() > best_ratio and m.quick_ratio() > best_ratio and m.ratio() > best_ratio:
                best, best_ratio = j, m.ratio()
        out[int(i)] = best
    return out


def dedup_sweep(X: np.ndarray, label: np.ndarray, sources: dict[int, int]) -> None:
    """How many rows each threshold removes, and how many near-duplicate pairs it breaks."""
    from coreselect.selection.dedup import near_duplicates

    print("\n| --dedup | removed | of them near-duplicate copies or their sources | pairs left whole |"
          "\n|---|---|---|---|")
    pair_rows = set(sources) | set(sources.values())
    for t in (0.8, 0.85, 0.9, 0.95, 0.98):
        kept = set(near_duplicates(X, t).tolist())
        removed = set(range(len(X))) - kept
        whole = sum(i in kept and j in kept for i, j in sources.items())
        print(f"| {t} | {len(removed)} | {len(removed & pair_rows)} | {whole} of {len(sources)} |")


def noisy(pool: Path, ratio: float, work: Path, seed: int) -> None:
    from coreselect.data import load_dataset
    from coreselect.features.config import FeatureConfig
    from coreselect.job import SelectJob
    from coreselect.pipeline import run_select

    ds = load_dataset(pool)
    label = np.array([ex.record.get("corruption", "") for ex in ds.examples])
    features = FeatureConfig(scores=("ifd",))  # one store serves every arm
    print(f"\n## Noisy pool: {pool} ({len(ds)} records: {(label == 'swapped').mean():.1%} swapped, "
          f"{(label == 'near-duplicate').mean():.1%} near-duplicates), {ratio:.0%} picks, SmolLM2 layer 15\n")
    sources = duplicate_sources([ex.record for ex in ds.examples], label)
    print("| method | picks | swapped | near-duplicate | both of a pair | removed by dedup | select s |\n"
          "|---|---|---|---|---|---|---|")
    print(f"| (pool) | {len(ds)} | {(label == 'swapped').mean():.3f} | {(label == 'near-duplicate').mean():.3f} | "
          f"{len(sources)} | | |")
    store_root = None
    for name, method, params, extra in ARMS:
        job = SelectJob(data=str(pool), output=str(work / "noisy-core.jsonl"), ratio=ratio, method=method,
                        method_params=params, seed=seed, features=features, work_dir=str(work / "noisy-features"),
                        overwrite=True, progress=False, label_columns=("corruption",), **extra)
        res = run_select(job)
        rows = np.array(res.manifest.rows)
        store_root = res.manifest.features.store if res.manifest.features else store_root  # random reads none
        removed = "" if res.manifest.dedup is None else res.manifest.dedup["removed"]
        picked = set(rows.tolist())
        both = sum(i in picked and j in picked for i, j in sources.items())
        print(f"| {name} | {len(rows)} | {(label[rows] == 'swapped').mean():.3f} | "
              f"{(label[rows] == 'near-duplicate').mean():.3f} | {both} | {removed} | "
              f"{res.manifest.timings['select']:.1f} |")
    from coreselect.features.transform import prepare_features
    from coreselect.store import FeatureStore

    store = FeatureStore.open(store_root)
    dedup_sweep(prepare_features(store.load(store.groups)), label, sources)
    s = store.load(["ifd", "loss_cond", "loss_alone"])
    swapped, clean = label == "swapped", label == ""
    print("\n| score | AUC swapped vs clean | median clean | median swapped |\n|---|---|---|---|")
    for col in ("ifd", "loss_cond", "loss_alone"):
        print(f"| {col} | {auc(s[col][swapped], s[col][clean]):.3f} | {np.nanmedian(s[col][clean]):.3f} | "
              f"{np.nanmedian(s[col][swapped]):.3f} |")
    print(f"\nIFD >= 1: {int((s['ifd'][swapped] >= 1).sum())} of {int(swapped.sum())} swapped, "
          f"{int((s['ifd'][clean] >= 1).sum())} of {int(clean.sum())} clean.")


def main() -> None:
    os.environ["CORESELECT_RECORD_CACHE"] = "off"  # every run extracts: timings and resume checks mean that
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="cost,agreement,noisy", help="comma-separated: cost, agreement, noisy")
    p.add_argument("--n", type=int, default=1000, help="Alpaca records for cost and agreement")
    p.add_argument("--offset", type=int, default=20000, help="first Alpaca row (CALIBRATION's slice)")
    p.add_argument("--pool", type=Path, default=Path("/tmp/pools/noisy/pool.jsonl"), help="the noisy pool")
    p.add_argument("--ratio", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "coreselect-ifd-bench")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    args.work.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    if only & {"cost", "agreement"}:
        if not ALPACA.is_file():
            raise SystemExit(f"{ALPACA}: not found (cost and agreement need it)")
        from coreselect.data import load_dataset

        ds = load_dataset(alpaca_slice(args.offset, args.n, args.work / f"alpaca-{args.offset}-{args.n}.jsonl"))
        if "cost" in only:
            cost(ds, args.work)
        if "agreement" in only:
            agreement(ds, args.work)
    if "noisy" in only:
        noisy(args.pool, args.ratio, args.work, args.seed)
    print(json.dumps({"done": sorted(only)}))


if __name__ == "__main__":
    main()
