"""k-center greedy speed: pruned and dense kernels vs a straightforward NumPy loop, and vs memory bandwidth.

Picks 15% of N points at several feature widths, side by side in one run:

* ``naive``: the loop users write (``np.linalg.norm(X - c, axis=1)`` per pick), timed on its first
  ``--naive-picks`` picks; its cost per pick is constant (it touches every point at every pick),
  so its full time is extrapolated linearly and marked so.
* ``dense``: our blocked matrix-vector kernel (every point, every pick).
* ``pruned``: the triangle-inequality kernel (the CPU default).

GB/s is "bytes a dense pass would read" (N·d·4 per pick) over seconds, against a memory-copy
bandwidth measured in the same run. Data: ``--store DIR`` (a coreselect feature store; rows are
tiled with noise up to N) or synthetic clustered features (``--clusters`` Gaussian blobs of
uneven size, L2-normalised) when no store is given.

    python benchmarks/selection_speed.py                   # 52,000 points, widths 576,1536,4608
    python benchmarks/selection_speed.py --n 20000 --widths 1536
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from coreselect.selection import kcenter_greedy


def synthetic(n: int, d: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.zipf(1.5, size=clusters).astype(float)
    p = sizes / sizes.sum()
    centres = rng.normal(size=(clusters, d)).astype(np.float32) * 3
    lab = rng.choice(clusters, size=n, p=p)
    X = centres[lab] + rng.normal(size=(n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def from_store(path: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    from coreselect.features.transform import prepare_features
    from coreselect.store import FeatureStore

    st = FeatureStore.open(path)
    X = prepare_features(st.load(st.groups))
    rng = np.random.default_rng(seed)
    reps = -(-n // X.shape[0])
    X = np.tile(X, (reps, 1))[:n]
    X += rng.normal(scale=0.05, size=X.shape).astype(np.float32)  # tiles are not exact duplicates
    if X.shape[1] != d:  # width other than the store's: a random projection
        R = rng.normal(size=(X.shape[1], d)).astype(np.float32) / np.sqrt(d)
        X = X @ R
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


def copy_bandwidth(nbytes: int = 512 << 20) -> float:
    a = np.ones(nbytes // 4, dtype=np.float32)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * nbytes / best / 1e9  # read + write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=52_000)
    ap.add_argument("--ratio", type=float, default=0.15)
    ap.add_argument("--widths", default="576,1536,4608")
    ap.add_argument("--clusters", type=int, default=400)
    ap.add_argument("--store", default=None, help="a coreselect feature store to take real features from")
    ap.add_argument("--naive-picks", type=int, default=100)
    ap.add_argument("--skip-dense", action="store_true", help="dense takes minutes at 52K x 4608")
    args = ap.parse_args(argv)
    bw = copy_bandwidth()
    k = round(args.ratio * args.n)
    print(f"memory-copy bandwidth: {bw:.1f} GB/s; N={args.n}, k={k} ({args.ratio:.0%})")
    print("| width | kernel | seconds | dense-equivalent GB/s | share of copy bandwidth | vs naive |")
    print("|---|---|---|---|---|---|")
    for d in (int(w) for w in args.widths.split(",")):
        X = from_store(args.store, args.n, d) if args.store else synthetic(args.n, d, args.clusters)
        bytes_per_pick = X.nbytes
        t = time.perf_counter()
        naive(X, args.naive_picks, 0)
        naive_s = (time.perf_counter() - t) / args.naive_picks * k
        print(f"| {d} | naive (extrapolated from {args.naive_picks} picks) | {naive_s:.1f} | "
              f"{bytes_per_pick * k / naive_s / 1e9:.1f} | {bytes_per_pick * k / naive_s / 1e9 / bw:.0%} | 1.0x |")
        results = {}
        for kernel in (["pruned"] if args.skip_dense else ["dense", "pruned"]):
            t = time.perf_counter()
            idx, _ = kcenter_greedy(X, k, first=0, algorithm=kernel)
            s = time.perf_counter() - t
            results[kernel] = idx
            gbs = bytes_per_pick * k / s / 1e9
            print(f"| {d} | {kernel} | {s:.1f} | {gbs:.1f} | {gbs / bw:.0%} | {naive_s / s:.1f}x |", flush=True)
        if "dense" in results:
            same = np.mean(results["dense"] == results["pruned"])
            print(f"|  | pruned picks identical to dense: {same:.1%} |  |  |  |  |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
