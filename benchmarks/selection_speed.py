"""k-center greedy speed: our kernels vs a straightforward NumPy loop, and vs memory bandwidth.

Every k-center greedy pick reads all N rows once, so the cost is k·N·d reads and the limit is
memory bandwidth. Side by side in one run (picking ``--ratio`` of N at each width), the kernels
take turns over ``--rounds`` rounds of ``--picks`` picks each (best round kept):

* ``naive``: the loop users write (``np.linalg.norm(X - c, axis=1)`` per pick), on
  ``--naive-picks`` picks.
* ``dense``: NumPy float32 blocked ``sgemv`` (the exact reference).
* ``half``: torch, float16 rows, float32 running minima (the CPU default of ``auto``).
* ``pruned``: the triangle-inequality kernel (``--kernels dense,half,pruned`` to include it;
  its cost per pick is not constant, so it always runs the full budget).

Dense kernels cost the same at every pick, so per-pick costs are extrapolated to k picks.
"dense-equivalent GB/s" is N·d·4 bytes (one float32 pass) per pick over seconds per pick,
against memory-copy bandwidth (read + write) measured in the same run. Wall and CPU seconds are
both reported: on a busy machine CPU seconds are the steadier figure; ``--threads 1`` gives
per-core figures (and avoids thread-pool stalls when the cores are oversubscribed).

``--agreement`` runs ``half`` and ``dense`` to the full budget on the real rows of ``--store``
and reports how far their picks agree, and checks that every ``half`` pick was, measured in
float32, within a near-tie of the farthest point. ``--pruned-sweep`` compares the kernels on
clustered synthetic data by dimension; ``--million`` times the paths for 1M points.

    python benchmarks/selection_speed.py --store ~/.cache/coreselect/features/<key> --threads 1
    python benchmarks/selection_speed.py --store DIR --agreement
    python benchmarks/selection_speed.py --pruned-sweep --threads 1
    python benchmarks/selection_speed.py --million --max-picks 300 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from coreselect.selection import kcenter_greedy


def synthetic(n: int, d: int, clusters: int, seed: int = 0, noise: float = 1 / 3) -> np.ndarray:
    """Gaussian blobs of uneven (Zipf) size, L2-normalised; blob spread ``noise`` x centre spread."""
    rng = np.random.default_rng(seed)
    sizes = rng.zipf(1.5, size=clusters).astype(float)
    p = sizes / sizes.sum()
    centres = rng.normal(size=(clusters, d)).astype(np.float32)
    lab = rng.choice(clusters, size=n, p=p)
    X = centres[lab]
    for s in range(0, n, 65536):
        X[s : s + 65536] += noise * rng.standard_normal((min(65536, n - s), d), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def real_rows(store: str) -> np.ndarray:
    """Centred, L2-normalised features of every complete shard of a (possibly unfinished) store."""
    from safetensors.numpy import load_file

    from coreselect.features.transform import prepare_features

    shards = sorted(Path(store).glob("shard-*.safetensors"))
    if not shards:
        raise SystemExit(f"{store}: no shards")
    parts = [load_file(str(s)) for s in shards]
    groups = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if "." in k}
    return prepare_features(groups)


def tiled(X: np.ndarray, n: int, d: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of width ``d`` from real rows: tiled with small noise (copies are not exact
    duplicates: perturbation norm 0.1 on unit rows), randomly projected when ``d`` differs."""
    rng = np.random.default_rng(seed)
    reps = -(-n // X.shape[0])
    X = np.tile(X, (reps, 1))[:n]
    if reps > 1:
        X = X + rng.normal(scale=0.1 / np.sqrt(X.shape[1]), size=X.shape).astype(np.float32)
    if X.shape[1] != d:
        from coreselect.selection.kcenter import random_projection

        X = random_projection(X, d, seed)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X, dtype=np.float32)


def naive(X: np.ndarray, k: int, first: int) -> list[int]:
    picks = [first]
    mind = np.linalg.norm(X - X[first], axis=1)
    for _ in range(k - 1):
        c = int(np.argmax(mind))
        picks.append(c)
        mind = np.minimum(mind, np.linalg.norm(X - X[c], axis=1))
    return picks


def measure(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn()``; CPU is this process's, all threads."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def copy_bandwidth(nbytes: int = 512 << 20, rounds: int = 5) -> dict[str, tuple[float, float]]:
    """Best-of-``rounds`` memory-copy GB/s (read + write) by wall and by CPU time:
    NumPy (one thread) and torch (all threads)."""
    import torch

    a = np.ones(nbytes // 4, dtype=np.float32)
    b = np.empty_like(a)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    cases = {"numpy": lambda: np.copyto(b, a), "torch": lambda: tb.copy_(ta)}
    best = {k: [float("inf"), float("inf")] for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            w, c = measure(fn)
            best[k] = [min(best[k][0], w), min(best[k][1], c)]
    return {k: (2 * nbytes / w / 1e9, 2 * nbytes / c / 1e9) for k, (w, c) in best.items()}


def per_pick(X: np.ndarray, kernels: list[str], picks: int, naive_picks: int, rounds: int
             ) -> dict[str, tuple[float, float]]:
    """Best-of-``rounds`` (wall, CPU) seconds per pick of each kernel, run in turn (rotating)."""
    def run(kernel: str) -> tuple[float, float]:
        if kernel == "naive":
            w, c = measure(lambda: naive(X, naive_picks, 0))
            return w / naive_picks, c / naive_picks
        # includes the kernel's setup (norms; for half, the float16 copy): 2-3 passes over X
        w, c = measure(lambda: kcenter_greedy(X, picks, first=0, algorithm=kernel, device="cpu"))
        return w / picks, c / picks

    best = {k: (float("inf"), float("inf")) for k in kernels}
    for r in range(rounds):
        for k in kernels[r % len(kernels):] + kernels[: r % len(kernels)]:
            w, c = run(k)
            best[k] = (min(best[k][0], w), min(best[k][1], c))
    return best


def speed_table(args: argparse.Namespace, bw: tuple[float, float]) -> None:
    base = real_rows(args.store) if args.store else None
    k = round(args.ratio * args.n)
    src = (f"{base.shape[0]:,} real rows of {args.store} (tiled with noise / projected)" if base is not None
           else f"synthetic: {args.clusters} clustered blobs")
    print(f"N={args.n:,}, k={k:,} ({args.ratio:.0%}); data: {src}; per-pick costs: best of {args.rounds} "
          f"interleaved rounds of {args.picks} picks (naive: {args.naive_picks}), extrapolated to k")
    print("| width | kernel | wall s for k picks | dense-equivalent GB/s | share of copy bandwidth | "
          "CPU s for k picks | GB/s per CPU second | share of copy (CPU) | vs naive: wall, CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    kernels = ["naive"] + args.kernels.split(",")
    for d in (int(w) for w in args.widths.split(",")):
        X = tiled(base, args.n, d) if base is not None else synthetic(args.n, d, args.clusters)
        cost = per_pick(X, kernels, args.picks, args.naive_picks, args.rounds)
        nw, nc = cost["naive"]
        for kernel in kernels:
            w, c = cost[kernel]
            gw, gc = X.nbytes / w / 1e9, X.nbytes / c / 1e9
            print(f"| {d} | {kernel} | {w * k:,.1f} | {gw:.1f} | {gw / bw[0]:.0%} | {c * k:,.1f} | {gc:.1f} | "
                  f"{gc / bw[1]:.0%} | {nw / w:.1f}x, {nc / c:.1f}x |", flush=True)


def agreement(args: argparse.Namespace) -> None:
    X = real_rows(args.store)
    n, d = X.shape
    k = round(args.ratio * n)
    times, res = {}, {}
    for kernel in ("dense", "torch", "half"):  # torch: float32 too, another summation order
        t = time.perf_counter()
        res[kernel] = kcenter_greedy(X, k, first=0, algorithm=kernel, device="cpu")
        times[kernel] = time.perf_counter() - t
    print(f"real rows: N={n:,}, d={d}, k={k:,}: " + ", ".join(f"{kk} {s:.1f} s" for kk, s in times.items())
          + f" (half {times['dense'] / times['half']:.2f}x dense)")
    a, ra = res["dense"]
    for other in ("torch", "half"):
        b, rb = res[other]
        same = a == b
        first_diff = int(np.argmin(same)) if not same.all() else k
        overlap = len(set(a.tolist()) & set(b.tolist())) / k
        print(f"{other} vs dense: identical up to pick {first_diff:,}; same pick at {same.mean():.1%} of positions; "
              f"same set {overlap:.1%}; final radius {rb[-1]:.5f} vs {ra[-1]:.5f} ({rb[-1] / ra[-1] - 1:+.3%}); "
              f"radius curves differ by at most {np.max(np.abs(rb - ra) / ra):.3%}")
    # every pick, measured in float64, against the farthest point at that step
    m = min(k, args.check_picks)
    X64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", X64, X64)
    for kernel in ("dense", "half"):
        b = res[kernel][0]
        mind = np.full(n, np.inf)
        worst = 0.0
        for j in range(m):
            if j:
                far = float(mind.max())
                worst = max(worst, (far - float(mind[b[j]])) / far)
            np.minimum(mind, sq + sq[b[j]] - 2.0 * (X64 @ X64[b[j]]), out=mind)
        print(f"first {m:,} {kernel} picks: each within {worst:.1e} (relative, squared distance, float64) "
              "of the farthest point")


def pruned_sweep(args: argparse.Namespace) -> None:
    from coreselect.selection import _kcenter_kernels as kk

    n = args.sweep_n
    k = round(args.ratio * n)
    print(f"clustered synthetic data ({args.clusters} blobs, Zipf sizes, noise {args.noise} x centre spread), "
          f"N={n:,}, k={k:,}; full runs, CPU seconds (wall in brackets)")
    print("| dim | dense | half | pruned | pruned vs dense (CPU) | share of rows pruned read |\n|---|---|---|---|---|---|")
    for d in (int(w) for w in args.sweep_dims.split(",")):
        X = synthetic(n, d, args.clusters, noise=args.noise)
        s = {}
        for kern in ("dense", "half"):
            if kern == "half" and d < 64:
                continue  # torch's float16 mv is slow on narrow rows (see HALF_MIN_DIM)
            s[kern] = measure(lambda X=X, kern=kern: kcenter_greedy(X, k, first=0, algorithm=kern, device="cpu"))
        stats: dict = {}
        s["pruned"] = measure(lambda X=X, stats=stats: kk.kcenter_pruned(X, k, 0, stats=stats))
        half = f"{s['half'][1]:.1f} ({s['half'][0]:.1f})" if "half" in s else "-"
        print(f"| {d} | {s['dense'][1]:.1f} ({s['dense'][0]:.1f}) | {half} | {s['pruned'][1]:.1f} "
              f"({s['pruned'][0]:.1f}) | {s['dense'][1] / s['pruned'][1]:.2f}x | {stats['rows_read'] / (n * k):.1%} |",
              flush=True)


def million(args: argparse.Namespace) -> None:
    """Paths for 1M points: dense kernels (extrapolated), a random projection, LTD."""
    from coreselect.selection import make_selector
    from coreselect.selection.kcenter import random_projection

    n, d = args.million_n, 256
    k = round(args.ratio * n)
    t = time.perf_counter()
    X = synthetic(n, d, 2000)
    print(f"synthetic {n:,} x {d} (2,000 Zipf-sized blobs; {time.perf_counter() - t:.0f} s to make), k={k:,}; "
          f"kcenter times extrapolated from {args.max_picks} picks (constant cost per pick)")
    print("| path | wall s | CPU s | note |\n|---|---|---|---|")
    for kern in ("half", "dense"):
        w, c = measure(lambda kern=kern: kcenter_greedy(X, args.max_picks, first=0, algorithm=kern, device="cpu"))
        print(f"| kcenter {kern}, d={d} | {w * k / args.max_picks:,.0f} | {c * k / args.max_picks:,.0f} | "
              f"{X.nbytes / (c / args.max_picks) / 1e9:.1f} dense-equivalent GB/s per CPU s |", flush=True)
    for p in (64, 32):
        wp, cp = measure(lambda p=p: random_projection(X, p))
        P = random_projection(X, p)
        w, c = measure(lambda P=P: kcenter_greedy(P, args.max_picks, first=0, algorithm="auto", device="cpu"))
        print(f"| kcenter project_dim={p} (auto: dense) | {wp + w * k / args.max_picks:,.0f} | "
              f"{cp + c * k / args.max_picks:,.0f} | projection {wp:.1f} s |", flush=True)
    for nc in args.ltd_clusters.split(","):
        w, c = measure(lambda nc=nc: make_selector("ltd", n_select=k, n_clusters=int(nc), niter=10).fit(X))
        print(f"| ltd, n_clusters={nc}, niter=10 | {w:,.0f} | {c:,.0f} | full run (k-means + k-center per cluster) |",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=52_000)
    ap.add_argument("--ratio", type=float, default=0.15)
    ap.add_argument("--widths", default="576,1536,4608")
    ap.add_argument("--kernels", default="dense,half")
    ap.add_argument("--clusters", type=int, default=400)
    ap.add_argument("--store", default=None, help="a coreselect feature store (complete or not) to take real rows from")
    ap.add_argument("--naive-picks", type=int, default=20)
    ap.add_argument("--picks", type=int, default=400, help="picks per timed run of the speed table")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the speed table (best of)")
    ap.add_argument("--max-picks", type=int, default=300, help="--million: time this many picks, extrapolate to k")
    ap.add_argument("--agreement", action="store_true")
    ap.add_argument("--check-picks", type=int, default=1000)
    ap.add_argument("--pruned-sweep", action="store_true")
    ap.add_argument("--sweep-n", type=int, default=20_000)
    ap.add_argument("--sweep-dims", default="8,16,32,64,256,1536")
    ap.add_argument("--noise", type=float, default=1 / 3, help="--pruned-sweep: blob spread / centre spread")
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--million-n", type=int, default=1_000_000)
    ap.add_argument("--ltd-clusters", default="1000")
    ap.add_argument("--threads", type=int, default=None,
                    help="BLAS and torch threads (1 gives per-core figures, robust on a busy machine)")
    args = ap.parse_args(argv)
    if args.threads:  # BLAS (NumPy) and torch
        import torch
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; threads: {args.threads or 'default'}")
    if args.agreement:
        agreement(args)
    elif args.pruned_sweep:
        pruned_sweep(args)
    elif args.million:
        million(args)
    else:
        bws = copy_bandwidth()
        bw = (max(v[0] for v in bws.values()), max(v[1] for v in bws.values()))
        print("memory-copy bandwidth (read + write), wall / per CPU second: "
              + "; ".join(f"{k} {w:.1f} / {c:.1f} GB/s" for k, (w, c) in bws.items())
              + f"; shares below are of the best: {bw[0]:.1f} (wall), {bw[1]:.1f} (CPU) GB/s")
        speed_table(args, bw)
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
