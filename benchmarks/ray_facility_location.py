"""Facility location on Ray (RandGreeDi) against the single-process default, side by side.

The path of the 10M-row plan in docs/scale.md at a size one machine holds: ``--rows`` synthetic
clustered 1,536-d features (``fl_scale.make_features``: Zipf-sized blobs, unit rows, float16)
written as a feature store, then in one run

* ``--engine ray``'s selection: ``FeatureActors`` (the store's shards on ``--actors`` actors of a
  local Ray cluster of ``--cpus`` CPUs) and ``fit_distributed`` of the default facility location:
  each actor's random part gets its own kNN graph (``ivf`` once a part is above the 50,000-row
  exact threshold) and lazy greedy, the driver a weighted greedy over the union;
* the single-process default (``make_selector("facility-location")``) on the same prepared rows.

It prints both wall times (Ray's start-up left out: a cluster serves many runs), the dense
objective of the Ray pick as a ratio to the single-process pick's (on 20,000 sampled rows), the
overlap of the two picks, and the driver's peak RSS.

    python benchmarks/ray_facility_location.py --rows 200000 --actors 2
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from fl_scale import make_features


def write_store(X16: np.ndarray, root: Path, shard_rows: int = 8192):
    """``X16`` as a feature store of one group (``mlp.15``), as extraction writes it."""
    from coreselect.store import FeatureStore

    store = FeatureStore.create(root, {"key": "synthetic", "n_rows": int(X16.shape[0]), "shard_rows": shard_rows})
    for p in store.plan():
        arrays = {"mlp.15": np.asarray(X16[p.start : p.end])}
        arrays.update({s: np.zeros(p.end - p.start, dtype=np.int32)
                       for s in ("n_tokens", "prompt_tokens", "response_tokens", "truncated")})
        store.write_shard(p, arrays)
    store.finalize(stats={"tokens": 0, "truncated": 0})
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--ratio", type=float, default=0.1)
    ap.add_argument("--actors", type=int, default=2)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--workdir", default=None, help="where the .npy and the store go (default: a temp dir)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    import ray

    from coreselect.distributed.ray_select import FeatureActors
    from coreselect.distributed.selectors import fit_distributed
    from coreselect.features.transform import prepare_features
    from coreselect.metrics import facility_location_objective
    from coreselect.selection import make_selector

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ray_fl_"))
    work.mkdir(parents=True, exist_ok=True)
    f = work / f"synthetic_{args.rows}.npy"
    if not f.exists():
        make_features(args.rows, f)
    store = write_store(np.load(f, mmap_mode="r"), work / f"store_{args.rows}_{time.time_ns()}")
    k = int(args.rows * args.ratio)
    print(f"load before: {os.getloadavg()}", flush=True)
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level=logging.WARNING)
    t = time.perf_counter()
    pool = FeatureActors(store, n_actors=args.actors)
    ray_sel = fit_distributed(make_selector("facility-location", n_select=k), pool)
    ray_wall = time.perf_counter() - t
    pool.close()
    ray.shutdown()
    X = prepare_features(store.load(store.groups))
    t = time.perf_counter()
    local = make_selector("facility-location", n_select=k).fit(X)
    local_wall = time.perf_counter() - t
    rows = np.random.default_rng(7).choice(args.rows, min(args.rows, 20_000), replace=False)
    ratio = facility_location_objective(X, ray_sel.indices_, rows=rows) / \
        facility_location_objective(X, local.indices_, rows=rows)
    info = ray_sel.info_
    print(f"{args.rows:,} rows x {X.shape[1]}, {k:,} picks; Ray: {args.actors} actors on {args.cpus} CPUs, "
          f"{info['parts']} parts x {info['local_picks']:,} local picks -> union {info['union']:,}", flush=True)
    print(f"wall s: ray {ray_wall:.1f} (actors' start and shard loading included), single process "
          f"{local_wall:.1f} (graph {local.info_['index']}); ray/single {ray_wall / local_wall:.2f}x", flush=True)
    print(f"objective of the Ray pick / the single-process pick's: {ratio:.4f}; picks in common: "
          f"{len(set(ray_sel.indices_.tolist()) & set(local.indices_.tolist())):,} of {k:,}", flush=True)
    print(f"driver peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB; "
          f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
