"""bf16 vs fp16 vs fp32 on this machine, side by side: what ``--precision auto`` should pick.

Prints, for each precision, the GFLOP/s of a linear layer of the default model's MLP shape and
the tokens/s of the default selector's extraction forward (layers up to the tapped one, prompt
only), then the ratio to fp32 and what ``auto`` resolves to here. On a CPU without AVX512-BF16 /
AMX, bf16 is emulated (measured 10 vs 53 GFLOP/s on an AVX2-only EPYC); with them it is the
faster one.

    python benchmarks/precision_speed.py                 # default model, 64 demo records
    python benchmarks/precision_speed.py --threads 1 --n 32 --only matmul
"""

from __future__ import annotations

import argparse
import time


def matmul_gflops(dtype: str, *, m: int = 512, k: int = 576, n: int = 1536, seconds: float = 2.0) -> float:
    import torch

    t = getattr(torch, dtype)
    a, w = torch.randn(m, k, dtype=t), torch.randn(n, k, dtype=t)
    torch.nn.functional.linear(a, w)  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.nn.functional.linear(a, w)
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


def extraction_tokens_per_second(precision: str, n: int) -> tuple[float, float]:
    """(tokens/s, seconds) of the default features on the first ``n`` demo records."""
    from coreselect.data import load_dataset
    from coreselect.demo import demo_path
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import shard_function
    from coreselect.models import resolve_model

    examples = load_dataset(demo_path()).examples[:n]
    fn = shard_function(resolve_model(None), FeatureConfig(precision=precision))
    fn(examples[:4])  # warm-up
    t0 = time.perf_counter()
    out = fn(examples)
    seconds = time.perf_counter() - t0
    return float(out["n_tokens"].sum()) / seconds, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--n", type=int, default=64, help="demo records for the extraction forward")
    ap.add_argument("--only", choices=["matmul", "extract"], default=None)
    args = ap.parse_args()

    import torch

    from coreselect.device import cpu_has_bf16, resolve_precision

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16 instructions: {cpu_has_bf16()}; "
          f"--precision auto resolves to {resolve_precision('auto')}")
    if args.only in (None, "matmul"):
        rates = {p: matmul_gflops(d) for p, d in (("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16"))}
        print("linear 512x576 @ 576x1536: " + ", ".join(
            f"{p} {g:.1f} GFLOP/s ({g / rates['fp32']:.2f}x fp32)" for p, g in rates.items()))
    if args.only in (None, "extract"):
        got = {p: extraction_tokens_per_second(p, args.n) for p in ("fp32", "bf16")}
        print(f"default features, {args.n} demo records (prompt only, layers 0-15): " + ", ".join(
            f"{p} {r:,.0f} tokens/s in {s:.1f} s ({r / got['fp32'][0]:.2f}x fp32)" for p, (r, s) in got.items()))


if __name__ == "__main__":
    main()
