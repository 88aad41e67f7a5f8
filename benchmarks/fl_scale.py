"""Facility location at scale: exact vs approximate kNN graphs, lazy vs stochastic greedy.

Synthetic clustered 1,536-d features (as ``selection_speed.synthetic``: 2,000 Gaussian blobs of
Zipf-distributed size, L2-normalised), written as a float16 ``.npy`` and read memory-mapped, as
``select --features-file`` reads them. Every configuration runs in its own child process, one
after the other in one run, so its peak memory (``ru_maxrss``) is its own; the table prints each
one's wall and CPU time (graph + greedy; CPU seconds are the steadier figure on a busy machine), peak RSS, recall@64 on a sample of rows against exact search,
and its dense objective (``metrics.facility_location_objective``, on a fixed sample of 20,000
rows above 50,000) as a ratio to the reference configuration of that size (the first one:
``exact`` where affordable, else a stronger ``ivf``).

    python benchmarks/fl_scale.py --sizes 50000 --configs exact,ivf:4,ivf:8,ivf:16,ivf:8:stochastic
    python benchmarks/fl_scale.py --sizes 200000 --configs ivf:32,ivf:8,ivf:8:stochastic

``--store DIR`` runs the configurations on a real feature store instead (its matrix prepared as
``select`` prepares it: ``center-l2``, float32), and ``--label-column COL`` adds the share of the
column's values (e.g. T0 templates) that each pick covers, read from the data the store names::

    python benchmarks/fl_scale.py --store feats/t0_text --label-column template --configs exact,ivf:4,hnsw

A config is ``GRAPH[:NPROBE][:OPTIMIZER][:NLIST]`` (``ivf:1:lazy:64``: 64 lists, one probed; a
small real pool then probes as small a share of its rows as the default does at scale). Note the machine load (``uptime``) beside the output.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def make_features(n: int, path: Path, d: int = 1536, clusters: int = 2000, seed: int = 0,
                  noise: float = 1 / 3) -> Path:
    """Write ``n`` rows as float16 ``.npy`` at ``path``: ``selection_speed.synthetic``'s blobs
    (Zipf-sized, spread ``noise`` x the centres' spread, unit rows), 65,536 rows at a time."""
    rng = np.random.default_rng(seed)
    sizes = rng.zipf(1.5, size=clusters).astype(float)
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    lab = rng.choice(clusters, size=n, p=sizes / sizes.sum())
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, d))
    for s in range(0, n, 65536):
        B = centres[lab[s : s + 65536]] + noise * rng.standard_normal((min(65536, n - s), d), dtype=np.float32)
        B /= np.linalg.norm(B, axis=1, keepdims=True)
        out[s : s + 65536] = B
    out.flush()
    del out
    return path


def real_features(store: Path, work: Path, label_column: str | None) -> tuple[int, Path, Path | None]:
    """A store's matrix as ``select`` prepares it (``center-l2``, float32) in ``work`` as ``.npy``,
    and its label column as a second ``.npy`` (integer codes) when asked."""
    import coreselect

    name = store.name.removesuffix(store.suffix)
    f, labels = work / f"{name}.npy", work / f"{name}.labels.npy" if label_column else None
    if not f.exists() or (labels is not None and not labels.exists()):
        feats = coreselect.load_features(store, label_columns=[label_column] if label_column else [])
        np.save(f, np.ascontiguousarray(feats.X, dtype=np.float32))
        if labels is not None:
            np.save(labels, np.unique(np.asarray(feats.labels[label_column], dtype=str), return_inverse=True)[1])
    return int(np.load(f, mmap_mode="r").shape[0]), f, labels


def child(args: argparse.Namespace) -> None:
    """One configuration on the memory-mapped file; prints one JSON line."""
    from coreselect.metrics import facility_location_objective
    from coreselect.selection.facility_location import fit_graph
    from coreselect.selection.knn_graph import build_knn_graph

    X = np.load(args.file, mmap_mode="r")
    n = X.shape[0]
    parts = args.config.split(":")
    graph, nprobe, opt, nlist = parts + ["8", "lazy", ""][len(parts) - 1:]

    def pick(rows: np.ndarray) -> tuple[np.ndarray, dict]:
        """The configuration's graph and greedy on ``rows``: its picks and the graph's info."""
        S, info = build_knn_graph(rows, 64, graph=graph, nprobe=int(nprobe), nlist=int(nlist) if nlist else None)
        idx, _ = fit_graph(S, int(rows.shape[0] * args.ratio), opt, 0.01, 0, None, None, info)
        return idx, info

    t, cpu = time.perf_counter(), time.process_time()
    idx, info = pick(X)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows = None if n <= 50_000 else np.random.default_rng(7).choice(n, 20_000, replace=False)
    obj = facility_location_objective(X, idx, rows=rows)
    covered = sub_mean = sub_sd = None
    if args.labels:
        lab = np.load(args.labels, allow_pickle=False)
        covered = len(np.unique(lab[np.asarray(idx)])) / len(np.unique(lab))
        if args.resamples:  # the same configuration on random 80% subsamples: how much coverage moves by chance
            rng, shares = np.random.default_rng(0), []
            for _ in range(args.resamples):
                sub = np.sort(rng.choice(n, size=int(0.8 * n), replace=False))
                picked, _ = pick(np.ascontiguousarray(X[sub]))
                shares.append(len(np.unique(lab[sub][np.asarray(picked)])) / len(np.unique(lab)))
            sub_mean, sub_sd = float(np.mean(shares)), float(np.std(shares))
    print(json.dumps({"covered": covered, "covered_80": sub_mean, "covered_80_sd": sub_sd, "n": n, "config": args.config, "wall": wall, "cpu": cpu, "graph": info["seconds"],
                      "greedy": info["greedy_seconds"], "rss_gb": rss, "recall": info["recall@64"],
                      "graph_objective": info["objective"], "dense_objective": obj, "info": info}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50000")
    ap.add_argument("--configs", default="exact,ivf:8,ivf:8:stochastic")
    ap.add_argument("--ratio", type=float, default=0.1)
    ap.add_argument("--workdir", default=None, help="where the .npy files go (default: a temp dir)")
    ap.add_argument("--reuse", action="store_true", help="reuse results saved in --workdir by an earlier run")
    ap.add_argument("--store", help="a feature store (or .npy/.safetensors file) instead of synthetic features")
    ap.add_argument("--label-column", help="with --store: print the share of this column's values each pick covers")
    ap.add_argument("--resamples", type=int, default=0,
                    help="with --label-column: also the share covered as mean ± sd over this many random 80%% "
                         "subsamples (each configuration run on each): how much coverage moves by chance")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--labels", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fl_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {os.getloadavg()}", flush=True)
    print(f"{'n':>9} {'config':<22} {'wall s':>8} {'CPU s':>8} {'graph s':>8} {'greedy s':>8} {'peak GB':>8} {'recall@64':>9} "
          f"{'objective ratio':>15}" + (f" {args.label_column + ' covered':>17}" if args.label_column else "")
          + (f" {'on 80% subsets (mean ± sd)':>26}" if args.label_column and args.resamples else ""), flush=True)
    jobs = [(int(s), work / f"synthetic_{s}.npy", None) for s in args.sizes.split(",")]
    if args.store:
        jobs = [real_features(Path(args.store), work, args.label_column)]
    for n, f, labels in jobs:
        if not f.exists():
            make_features(n, f)
        ref = None
        for cfg in args.configs.split(","):
            saved = work / f"result_{n}_{cfg.replace(':', '-')}.json"
            if args.reuse and saved.exists():  # e.g. an exact reference measured in an earlier run
                r = json.loads(saved.read_text())
                cfg += " (saved)"
            else:
                out = subprocess.run([sys.executable, __file__, "--child", "--file", str(f), "--config", cfg,
                                      "--ratio", str(args.ratio), "--resamples", str(args.resamples)]
                                     + (["--labels", str(labels)] if labels else []),
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    print(f"{n:>9} {cfg:<22} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["load"] = os.getloadavg()
                saved.write_text(json.dumps(r))
            ref = ref or r["dense_objective"]
            print(f"{n:>9} {cfg:<22} {r['wall']:>8.1f} {r.get('cpu', float('nan')):>8.1f} {r['graph']:>8.1f} {r['greedy']:>8.1f} {r['rss_gb']:>8.2f} "
                  f"{r['recall']:>9.3f} {r['dense_objective'] / ref:>15.4f}"
                  + (f" {r['covered']:>17.3f}" if r.get("covered") is not None else "")
                  + (f" {r['covered_80']:>14.3f} ± {r['covered_80_sd']:.3f}" if r.get("covered_80") is not None else ""),
                  flush=True)
    print(f"load after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
