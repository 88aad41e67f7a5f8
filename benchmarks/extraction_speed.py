"""Extraction speed: coreselect vs the forward-pass limit and vs a one-example-at-a-time loop.

On the first ``--n`` records of Alpaca-cleaned (skipped when the file is absent), side by side
in one process and interleaved over ``--rounds`` rounds (the median of each is reported):

* ``coreselect``: :func:`~coreselect.features.extract.extract_features` with the default
  config into a fresh store (render, tokenise, batch, forward, pool, write shards).
* ``bare forward``: the same model on the same token ids in the same batches, stopped at the
  same depth by the same kind of hook, with no rendering, pooling or writing: the limit.
* ``one at a time``: what DEITA / LESS users run: per example, ``apply_chat_template`` then a
  full-depth ``model(ids, output_hidden_states=True)`` with a hook pooling the same MLP input;
  timed on every ``--stride``-th record (rates are per real token, so comparable).

``--levers`` measures each speed lever against the default, interleaved; ``--rss 1000,2000``
runs ``extract_features`` on growing pools, one subprocess per size, and reports peak RSS.

    python benchmarks/extraction_speed.py                   # 256 records, 3 rounds
    python benchmarks/extraction_speed.py --levers --n 192
    python benchmarks/extraction_speed.py --prompt-span --n 300   # --span prompt: prompt-only forward
    python benchmarks/extraction_speed.py --rss 1000,2000,4000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import ALPACA, head_records


class _Stop(Exception):
    pass


def bare_inputs(extractor, examples, shard_rows: int, **batching) -> tuple[list, int, int]:
    """Token-id batches exactly as extraction forms them: (ids, mask, positions) per batch."""
    import torch

    from coreselect.features.activations import length_batches
    from coreselect.features.extract import BATCH_TOKENS, MAX_BATCH, MAX_WASTE
    from coreselect.features.render import render_batch

    batching = {"max_tokens": BATCH_TOKENS, "max_batch": MAX_BATCH, "max_waste": MAX_WASTE, **batching}
    pad = extractor.tokenizer.pad_token_id or 0
    out, real, padded = [], 0, 0
    for s in range(0, len(examples), shard_rows):
        rendered = render_batch(examples[s : s + shard_rows], extractor.tokenizer, extractor.config.max_length)
        for b in length_batches([len(r.ids) for r in rendered], **batching):
            T = max(len(rendered[i].ids) for i in b)
            ids = torch.full((len(b), T), pad, dtype=torch.long)
            mask = torch.zeros((len(b), T), dtype=torch.long)
            for row, i in enumerate(b):
                n = len(rendered[i].ids)
                ids[row, :n] = torch.tensor(rendered[i].ids)
                mask[row, :n] = 1
                real += n
            padded += len(b) * T
            out.append((ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)))
    return out, real, padded


def bare_forward(model, batches, depth: int, grad_mode: str = "inference") -> None:
    import torch

    def stop(_m, _a):
        raise _Stop

    h = model.model.layers[depth].mlp.down_proj.register_forward_pre_hook(stop)
    ctx = torch.inference_mode if grad_mode == "inference" else torch.no_grad
    try:
        with ctx():
            for ids, mask, pos in batches:
                try:
                    model.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
                except _Stop:
                    pass
    finally:
        h.remove()


def one_at_a_time(model, tok, examples, layer: int) -> int:
    """The per-example loop of DEITA/LESS-style scripts; returns the tokens it ran."""
    import torch

    seen = {}
    h = model.model.layers[layer].mlp.down_proj.register_forward_pre_hook(
        lambda _m, a: seen.__setitem__("x", a[0][0].float().mean(0)))
    tokens = 0
    try:
        for ex in examples:
            chat = [{"role": r, "content": c} for r, c in ex.messages]
            ids = tok.apply_chat_template(chat, return_tensors="pt", return_dict=True)["input_ids"][:, :512]
            with torch.no_grad():
                model(ids, output_hidden_states=True)
            _ = seen["x"].numpy()
            tokens += ids.shape[1]
    finally:
        h.remove()
    return tokens


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


#: CPU seconds (all threads of this process) of the last :func:`interleave`, by case.
CPU: dict[str, float] = {}


def interleave(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each case, the cases run in turn (rotating the order) ``rounds``
    times; the median CPU seconds land in :data:`CPU` (less sensitive to a busy machine)."""
    names = list(cases)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names):] + names[: r % len(names)]:
            c = time.process_time()
            wall[k].append(timed(cases[k]))
            cpu[k].append(time.process_time() - c)
    CPU.clear()
    CPU.update({k: statistics.median(v) for k, v in cpu.items()})
    return {k: statistics.median(v) for k, v in wall.items()}


def load(dtype: str = "bfloat16"):
    from coreselect.models import load_model, resolve_model

    spec = resolve_model(None)
    return spec, *load_model(spec, dtype=dtype)


def main_table(args, data: Path) -> None:
    from coreselect.data import load_dataset
    from coreselect.engine import extract_features
    from coreselect.features.activations import ActivationExtractor
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import SHARD_ROWS

    spec, model, tok = load()
    cfg = FeatureConfig()
    ds = load_dataset(data)
    ext = ActivationExtractor(model, tok, cfg)
    depth = max(ext._layer_idx)
    batches, real, padded = bare_inputs(ext, ds.examples, SHARD_ROWS)
    few = ds.examples[:: args.stride]
    work = Path(tempfile.mkdtemp(prefix="extraction-speed-"))
    runs = iter(range(10**6))
    per_example_tokens = {}

    def cs():
        extract_features(ds, spec, cfg, work / f"run{next(runs)}", progress=False, loaded=(model, tok))

    def loop():
        per_example_tokens["n"] = one_at_a_time(model, tok, few, cfg.layers[0])

    secs = interleave({"coreselect": cs, "bare forward": lambda: bare_forward(model, batches, depth),
                       "one at a time": loop}, args.rounds)
    pe_rate = per_example_tokens["n"] / secs["one at a time"]
    print(f"{len(ds)} records, {real:,} tokens ({real / len(ds):.0f}/record); batches: {len(batches)}, "
          f"padding {(padded - real) / padded:.1%} of {padded:,} batch tokens; layer {cfg.layers[0]} "
          f"(forward stops at layer {depth}); torch threads {__import__('torch').get_num_threads()}")
    pe_cpu = per_example_tokens["n"] / CPU["one at a time"]
    print(f"| method | wall s (median of {args.rounds}) | tokens/s | CPU s | tokens per CPU s "
          "| coreselect speed-up: wall, CPU |")
    print("|---|---|---|---|---|---|")
    rate = {k: real / s for k, s in secs.items()}
    crate = {k: real / s for k, s in CPU.items()}
    for k, label in (("coreselect", "coreselect extract_features"), ("bare forward", "bare batched forward (the limit)")):
        print(f"| {label} | {secs[k]:.1f} | {rate[k]:,.0f} | {CPU[k]:.1f} | {crate[k]:,.0f} | "
              f"{rate['coreselect'] / rate[k]:.2f}x, {crate['coreselect'] / crate[k]:.2f}x |")
    print(f"| one example at a time, full depth ({len(few)} records, {per_example_tokens['n']:,} tokens) | "
          f"{secs['one at a time']:.1f} | {pe_rate:,.0f} | {CPU['one at a time']:.1f} | {pe_cpu:,.0f} | "
          f"{rate['coreselect'] / pe_rate:.1f}x, {crate['coreselect'] / pe_cpu:.1f}x |")
    shutil.rmtree(work, ignore_errors=True)


def levers(args, data: Path) -> None:
    """Each lever against the default, interleaved in one process."""
    import torch

    from coreselect.data import load_dataset
    from coreselect.features.activations import ActivationExtractor, _pool
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import SHARD_ROWS, extract_shard

    spec, model, tok = load()
    ds = load_dataset(data)
    ex = ds.examples
    cfg = FeatureConfig()
    ext = ActivationExtractor(model, tok, cfg)
    depth = max(ext._layer_idx)
    def run(extractor, **kw):
        def f():
            n = 0
            for s in range(0, len(ex), SHARD_ROWS):
                n += int(extract_shard(extractor, ex[s : s + SHARD_ROWS], **kw)["n_tokens"].sum())
            f.tokens = n
        return f

    def report(title: str, cases: dict[str, Callable[[], object]], base: str, real: int | None = None) -> None:
        secs = interleave(cases, args.rounds)
        print(f"\n{title}\n| variant | wall s (median of {args.rounds}) | tokens/s | CPU s "
              f"| speed vs {base}: wall, CPU |\n|---|---|---|---|---|")
        for k, s in secs.items():
            n = real if real is not None else cases[k].tokens
            print(f"| {k} | {s:.1f} | {n / s:,.0f} | {CPU[k]:.1f} | {secs[base] / s:.2f}x, "
                  f"{CPU[base] / CPU[k]:.2f}x |", flush=True)

    # 1. dtype: bf16 vs float32 weights (same extraction path)
    _, m32, _ = load("float32")
    report("dtype (extract_shard)", {"bfloat16 (default)": run(ext),
                                     "float32": run(ActivationExtractor(m32, tok, cfg))}, "bfloat16 (default)")
    del m32
    # 2. threads
    n0 = torch.get_num_threads()

    def with_threads(k, f):
        def g():
            torch.set_num_threads(k)
            try:
                f()
            finally:
                torch.set_num_threads(n0)
            g.tokens = f.tokens
        return g
    other = 1 if n0 > 1 else 2
    report("torch threads (extract_shard)", {f"{n0} (this process)": run(ext), f"{other}": with_threads(other, run(ext))},
           f"{n0} (this process)")
    # 3. batching: token budget, max batch, padding cap
    report("batching (extract_shard)", {
        "8192 tokens, 64 rows, waste<=10% (default)": run(ext),
        "8192 tokens, 64 rows, no waste cap (before)": run(ext, max_waste=1.0),
        "4096 tokens, 32 rows, waste<=10%": run(ext, batch_tokens=4096, max_batch=32),
        "16384 tokens, 128 rows, waste<=10%": run(ext, batch_tokens=16384, max_batch=128),
        "8192 tokens, 64 rows, waste<=5%": run(ext, max_waste=0.05),
    }, "8192 tokens, 64 rows, waste<=10% (default)")
    for w in (1.0, 0.1, 0.05):
        _, real, padded = bare_inputs(ext, ex, SHARD_ROWS, max_waste=w)
        _, _, padded_all = bare_inputs(ext, ex, len(ex), max_waste=w)
        print(f"padding, max_waste={w}: {(padded - real) / padded:.1%} sorting per {SHARD_ROWS}-row shard, "
              f"{(padded_all - real) / padded_all:.1%} sorting all {len(ex)} rows")
    # 4. inference_mode vs no_grad on the bare forward
    batches, real, _ = bare_inputs(ext, ex, SHARD_ROWS)
    report("grad mode (bare forward)", {"inference_mode (default)": lambda: bare_forward(model, batches, depth),
                                        "no_grad": lambda: bare_forward(model, batches, depth, "no_grad")},
           "inference_mode (default)", real)
    # 5. pooling: in bf16 with float32 sums vs a float32 copy, on the largest activation of a batch
    B, T = 64, 128
    x = torch.randn(B, T, 1536).bfloat16()
    mask = torch.rand(B, T) < 0.9

    def old_pool():
        xf = x.float()
        m = mask.unsqueeze(-1)
        return (xf * m).sum(1) / m.sum(1).clamp(min=1)
    reps = 20
    secs = interleave({"float32 copy (before)": lambda: [old_pool() for _ in range(reps)],
                       "bf16, float32 sums (default)": lambda: [_pool(x, mask, "mean") for _ in range(reps)]},
                      args.rounds)
    fwd = timed(lambda: bare_forward(model, [(torch.randint(100, 40000, (B, T)), torch.ones(B, T, dtype=torch.long),
                                               torch.arange(T).expand(B, T))], depth))
    print(f"\nmean pooling of a ({B}, {T}, 1536) bf16 activation: "
          + ", ".join(f"{k} {s / reps * 1e3:.1f} ms" for k, s in secs.items())
          + f"; the forward pass of that batch to layer {depth}: {fwd * 1e3:.0f} ms")
    # 6. the default system prompt (changes the features: an option, not the default)
    drop = ActivationExtractor(model, tok, FeatureConfig(drop_default_system=True))
    report("default system prompt (extract_shard; an option: it changes the features)",
           {"kept (default)": run(ext), "drop_default_system=True": run(drop)}, "kept (default)")


def prompt_span(args, data: Path) -> None:
    """``--span prompt`` feeds the prompt only: against the whole example, and against the default."""
    from unittest import mock

    from coreselect.data import load_dataset
    from coreselect.features.activations import ActivationExtractor
    from coreselect.features.config import FeatureConfig
    from coreselect.features.extract import SHARD_ROWS, extract_shard

    _, model, tok = load()
    ex = load_dataset(data).examples

    def run(cfg: FeatureConfig, whole: bool = False) -> Callable[[], None]:
        ext = ActivationExtractor(model, tok, cfg)

        def f() -> None:
            fed: list[int] = []
            with mock.patch("coreselect.features.lm.prompt_part", side_effect=lambda r: r) if whole \
                    else contextlib.nullcontext():
                for s in range(0, len(ex), SHARD_ROWS):
                    extract_shard(ext, ex[s : s + SHARD_ROWS], on_batch=lambda rows, tokens: fed.append(tokens))
            f.tokens = sum(fed)
        return f

    last = FeatureConfig(pooling="last", span="prompt")
    cases = {"mean over all (the default before 2026-11-29)": run(FeatureConfig(pooling="mean", span="all")),
             "last prompt token, whole example fed": run(last, whole=True),
             "last prompt token, prompt only fed": run(last)}
    secs = interleave(cases, args.rounds)
    base = "last prompt token, whole example fed"
    print(f"\n--span prompt, {len(ex)} records\n| variant | wall s (median of {args.rounds}) | tokens fed "
          f"| speed vs {base} |\n|---|---|---|---|")
    for k, sec in secs.items():
        print(f"| {k} | {sec:.1f} | {cases[k].tokens:,} | {secs[base] / sec:.2f}x |", flush=True)


def rss_child(n: int, data: Path) -> None:
    import psutil

    from coreselect.data import load_dataset
    from coreselect.engine import extract_features
    from coreselect.features.config import FeatureConfig

    spec, model, tok = load()
    after_load = psutil.Process().memory_info().rss
    with tempfile.TemporaryDirectory() as tmp:
        part = head_records(data, n, Path(tmp) / "part.jsonl")
        ds = load_dataset(part)
        t = time.perf_counter()
        store = extract_features(ds, spec, FeatureConfig(), Path(tmp) / "store", progress=False, loaded=(model, tok))
        s = time.perf_counter() - t
        tokens = store.manifest["stats"]["tokens"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"n": n, "tokens": tokens, "seconds": s, "peak_rss": peak, "rss_after_load": after_load}))


def rss_table(sizes: list[int], data: Path) -> None:
    print("| records | tokens | seconds | tokens/s | peak RSS | RSS after model load |\n|---|---|---|---|---|---|")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(n), "--data", str(data)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['n']:,} | {r['tokens']:,} | {r['seconds']:.0f} | {r['tokens'] / r['seconds']:,.0f} | "
              f"{r['peak_rss'] / 2**20:,.0f} MiB | {r['rss_after_load'] / 2**20:,.0f} MiB |", flush=True)


def main(argv: list[str] | None = None) -> int:
    os.environ["CORESELECT_RECORD_CACHE"] = "off"  # every run extracts: timings and resume checks mean that
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ALPACA)
    ap.add_argument("--n", type=int, default=256, help="records (the first N of the file)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stride", type=int, default=4, help="one-at-a-time loop runs every STRIDE-th record")
    ap.add_argument("--levers", action="store_true", help="measure each speed lever against the default")
    ap.add_argument("--prompt-span", action="store_true", help="--span prompt: prompt-only forward vs whole example")
    ap.add_argument("--rss", default=None, help="comma-separated pool sizes: peak RSS per size")
    ap.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found")
        return 0
    if args.rss_child:
        rss_child(args.rss_child, args.data)
        return 0
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.rss:
        rss_table([int(s) for s in args.rss.split(",")], args.data)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        part = head_records(args.data, args.n, Path(tmp) / "part.jsonl")
        (levers if args.levers else prompt_span if args.prompt_span else main_table)(args, part)
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
