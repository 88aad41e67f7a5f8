"""Single-node Ray overhead: the Ray engine against the single-process path, side by side.

On the first ``--records`` Alpaca records (written to a temporary file; the shared data is never
copied into the repository) with the real default model, in one run:

* extraction: ``extract_features`` (this process, torch on every core) against
  ``extract_features_ray`` with 1 actor (all cores) and 2 actors (half the cores each), each into
  a fresh store; the stores are checked to hold the same features;
* selection: k-center greedy (``--ratio`` of the pool) on the driver (the ``dense`` kernel the
  Ray path reproduces, and ``auto``) against ``kcenter_ray`` with 1 and 2 actors (actor start-up
  and shard loading timed apart).

Ray's start-up (``ray.init``) is timed on its own and left out of the ratios: a cluster is
started once and serves many runs; actor start-up (imports, model load) is in them. Ratios > 1
mean Ray is slower. The machine load is printed with every run, since other jobs may share the
CPUs; ``--rounds`` repeats the runs in rotated order and reports the median ratio.

    nice python benchmarks/ray_overhead.py                  # 2,000 records
    nice python benchmarks/ray_overhead.py --records 500 --rounds 3   # order rotated each round
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import ALPACA, head_records


def load_avg() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    os.environ["CORESELECT_RECORD_CACHE"] = "off"  # every run extracts: timings and resume checks mean that
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--data", type=Path, default=ALPACA)
    p.add_argument("--ratio", type=float, default=0.1, help="k-center budget as a share of the pool")
    p.add_argument("--layers", default="15", help="decoder layers (default 15, the MADS default)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the extraction runs, rotating their order")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args()

    import ray

    from coreselect.data import load_dataset
    from coreselect.distributed.executor import extract_features_ray
    from coreselect.distributed.ray_select import FeatureActors, kcenter_ray
    from coreselect.engine import extract_features
    from coreselect.features.config import FeatureConfig
    from coreselect.features.transform import prepare_features
    from coreselect.models import resolve_model
    from coreselect.selection import kcenter_greedy
    from coreselect.store import FeatureStore

    work = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    try:
        data = head_records(args.data, args.records, work / f"alpaca-{args.records}.jsonl")
        ds = load_dataset(data)
        spec = resolve_model()
        cfg = FeatureConfig(layers=tuple(int(x) for x in args.layers.split(",")))
        k = max(1, round(args.ratio * len(ds)))
        res: dict[str, float] = {}
        print(f"{len(ds)} records, {spec.name}, layers {cfg.layers}; start: {load_avg()}")
        _, res["ray_init"] = timed(ray.init, include_dashboard=False, logging_level="WARNING")
        ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"ray.init                 {res['ray_init']:8.1f} s  (once per cluster; not in the ratios)")
        runs = {"local": lambda out: extract_features(ds, spec, cfg, out, progress=False),
                "ray1": lambda out: extract_features_ray(ds, spec, cfg, out, progress=False, n_actors=1),
                "ray2": lambda out: extract_features_ray(ds, spec, cfg, out, progress=False, n_actors=2)}
        secs: dict[str, list[float]] = {name: [] for name in runs}
        ref = None
        for r in range(args.rounds):
            names = list(runs)[r % 3:] + list(runs)[: r % 3]  # rotate the order: load drifts
            for name in names:
                out = work / f"{name}-{r}"
                load = os.getloadavg()[0]
                st, sec = timed(runs[name], out)
                secs[name].append(sec)
                got = st.load(st.groups)
                ref = ref or got
                diff = max(float(np.abs(ref[g].astype(np.float32) - got[g].astype(np.float32)).max()) for g in ref)
                tokens = st.manifest["stats"]["tokens"]
                print(f"round {r} extract {name:5s} {sec:8.1f} s  {tokens / sec:8.0f} tok/s  "
                      f"(load {load:.1f} at start; max |diff| vs first run {diff:.2g})")
                if name != "local" or r:
                    shutil.rmtree(out, ignore_errors=True)
        for name in ("ray1", "ray2"):
            ratios = [a / b for a, b in zip(secs[name], secs["local"])]
            res[f"extract_{name}_ratio"] = float(np.median(ratios))
            print(f"extract {name} / local: " + ", ".join(f"{x:.2f}" for x in ratios)
                  + f" (median {np.median(ratios):.2f})")
        res.update({f"extract_{k}_s": v for k, v in secs.items()})
        local = FeatureStore.open(work / "local-0")

        X = prepare_features(ref)
        (dense, _), res["kcenter_local_dense"] = timed(kcenter_greedy, X, k, algorithm="dense")
        _, res["kcenter_local_auto"] = timed(kcenter_greedy, X, k)
        print(f"kcenter local, dense     {res['kcenter_local_dense']:8.2f} s  ({k} picks of {len(ds)})")
        print(f"kcenter local, auto      {res['kcenter_local_auto']:8.2f} s")
        for n in (1, 2):
            pool, res[f"kcenter_ray{n}_start"] = timed(FeatureActors, local, n_actors=n)
            (idx, _), res[f"kcenter_ray{n}"] = timed(kcenter_ray, pool, k)
            pool.close()
            same = idx.tolist() == dense.tolist()
            r = res[f"kcenter_ray{n}"] / res["kcenter_local_dense"]
            print(f"kcenter ray, {n} actor(s)  {res[f'kcenter_ray{n}']:8.2f} s  ratio {r:.1f} vs dense, "
                  f"{1e3 * res[f'kcenter_ray{n}'] / k:.1f} ms/pick (+ {res[f'kcenter_ray{n}_start']:.1f} s "
                  f"to start the actors and load the shards; same picks: {same})")
        print(f"end: {load_avg()}")
        res.update(records=len(ds), tokens=local.manifest["stats"]["tokens"], picks=k)
        if args.json:
            args.json.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
