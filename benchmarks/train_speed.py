"""Training tokens/s of the speed levers, measured side by side in one run.

Every variant runs the same LoRA model on the same padded batch of real Alpaca records, in
round-robin order (so background load hits all of them alike); the median of ``--reps`` is kept.

* ``forward``: inference forward with the full logits (what extraction/evaluation costs)
* ``train plain``: the model's own forward with ``labels`` - full logits + cross-entropy at every
  position - and backward (a vanilla transformers Trainer step)
* ``train TRL default``: TRL 1.x SFTTrainer's loss - its fused LM head, which on CPU scores every
  position, plus the entropy and token-accuracy metrics it logs
* ``train selected``: coreselect's loss - LM head and cross-entropy at response positions only
* ``train selected, TRL kernel``: the same positions through TRL's vocabulary-tiled kernel
* ``fp32`` / ``bf16``: float32 weights, or bf16 weights under bf16 autocast
* ``+ activation checkpointing``: layers recompute their activations in the backward pass
  (TRL 1.x's ``SFTConfig`` default; coreselect turns it off)

It also counts the padding that random batches carry against length-grouped ones.

    python benchmarks/train_speed.py                      # gemma3-270m, 4 x up to 256 tokens
    python benchmarks/train_speed.py --model smollm2-135m-instruct --batch-size 8 --reps 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from _common import ALPACA, head_records

from coreselect.data import load_dataset
from coreselect.finetune.tokenloss import response_nll
from coreselect.finetune.train import encode_examples
from coreselect.models import load_model, resolve_model


def _pool(n: int, tmp: Path) -> Path:
    if not ALPACA.is_file():
        from coreselect.demo import demo_path

        return Path(demo_path())
    out = tmp / f"alpaca{n}.jsonl"
    return out if out.is_file() else head_records(ALPACA, n, out)


def _batch(rows: list[dict], pad: int) -> dict[str, torch.Tensor]:
    """Pad as training does: TRL's collator (right padding, labels padded with -100)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(pad_token_id=pad)(
        [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])


def padding_share(lengths: list[int], batch: int, grouped: bool, seed: int = 0) -> float:
    """Share of padded positions in one epoch of batches (random order or length-grouped)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if grouped:  # what transformers' LengthGroupedSampler does: sort inside mega-batches of 50
        mega = batch * 50
        order = [i for s in range(0, len(order), mega)
                 for i in sorted(order[s:s + mega], key=lambda i: -lengths[i])]
    real = padded = 0
    for s in range(0, len(order), batch):
        chunk = [lengths[i] for i in order[s:s + batch]]
        real += sum(chunk)
        padded += max(chunk) * len(chunk)
    return 1 - real / padded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="gemma3-270m")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--pick", default="median", choices=["median", "longest"],
                    help="which records make the batch: median-length ones, or the longest")
    ap.add_argument("--skip", default="", help="comma-separated variants to leave out")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    from peft import LoraConfig, get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    tmp = Path("/tmp/coreselect-bench")
    tmp.mkdir(exist_ok=True)
    spec = resolve_model(args.model)
    ds = load_dataset(_pool(1000, tmp))
    model, tok = load_model(spec, dtype="bfloat16")
    enc = encode_examples(ds.examples, tok, args.max_length)
    lengths = [len(r["input_ids"]) for r in enc.rows]
    # a typical batch: records near the median length, as length-grouped batches have
    by_length = sorted(range(len(lengths)), key=lambda i: lengths[i])
    pick = by_length[len(lengths) // 2:][: args.batch_size] if args.pick == "median" else by_length[-args.batch_size:]
    batch = _batch([enc.rows[i] for i in pick], tok.pad_token_id)
    n_tok = int(batch["attention_mask"].sum())
    n_resp = int((batch["labels"][:, 1:] != -100).sum())
    targets = [t for t in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
               if any(n.endswith(t) for n, _ in model.named_modules())]

    def lora(m):  # the fused head goes on before PEFT, as TRL's SFTTrainer does
        add_fused_lm_head(m, outputs=("log_probs", "entropy", "is_top1"))
        return get_peft_model(m, LoraConfig(r=16, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM"))

    models = {"bf16": lora(model), "fp32": lora(load_model(spec, dtype="float32")[0])}
    if "train selected fp32 + activation checkpointing" not in args.skip:
        ckpt = load_model(spec, dtype="float32")[0]
        ckpt.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        models["fp32 ckpt"] = lora(ckpt)
    for m in models.values():
        m.train()

    def ctx(precision: str) -> contextlib.AbstractContextManager:
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision.startswith("bf16") else contextlib.nullcontext()

    def loss_plain(m):
        return m(**batch, use_cache=False).loss

    def loss_trl(m):
        out = m(**batch, use_cache=False, fused_lm_head=True)
        _ = (out.entropy.detach().sum() / out.label_mask.sum()).item(), out.is_top1.sum().item()
        return -out.log_probs.sum() / out.label_mask.sum()

    def loss_selected(m, impl="rows"):
        return response_nll(m, batch["input_ids"], batch["labels"], batch["attention_mask"], impl=impl)[0]

    def train_step(loss_fn, precision):
        def run() -> None:
            m = models[precision]
            m.zero_grad(set_to_none=True)
            with ctx(precision):
                loss = loss_fn(m)
            loss.backward()
        return run

    def forward(precision):
        def run() -> None:
            with torch.inference_mode(), ctx(precision):
                models[precision](input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  use_cache=False)
        return run

    variants = {
        "forward bf16": forward("bf16"), "forward fp32": forward("fp32"),
        "train plain fp32": train_step(loss_plain, "fp32"),
        "train TRL default fp32": train_step(loss_trl, "fp32"),
        "train selected fp32": train_step(loss_selected, "fp32"),
        "train selected, TRL kernel fp32": train_step(lambda m: loss_selected(m, "trl"), "fp32"),
        "train selected fp32 + activation checkpointing": train_step(loss_selected, "fp32 ckpt"),
        "train plain bf16": train_step(loss_plain, "bf16"),
        "train selected bf16": train_step(loss_selected, "bf16"),
        "train selected, TRL kernel bf16": train_step(lambda m: loss_selected(m, "trl"), "bf16"),
    }
    for name in filter(None, args.skip.split(",")):
        variants.pop(name.strip(), None)
    times: dict[str, list[float]] = {k: [] for k in variants}
    print(f"{args.model}: batch {args.batch_size} x {batch['input_ids'].shape[1]} ({n_tok} real tokens, "
          f"{n_resp} response tokens), vocab {model.config.vocab_size:,}, threads {torch.get_num_threads()}",
          flush=True)
    for rep in range(args.reps + 1):  # rep 0 warms up
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            if rep:
                times[name].append(dt)
            print(f"  rep {rep} {name}: {dt:.2f}s", flush=True)
    tps = {k: n_tok / statistics.median(v) for k, v in times.items()}
    ref = tps.get("train plain fp32")
    fwd = tps.get("forward fp32")
    print("\n| variant | seconds/step | tokens/s | vs train plain fp32 | vs forward fp32 |\n|---|---|---|---|---|")
    for k, v in tps.items():
        r1 = f"{v / ref:.2f}x" if ref else "-"
        r2 = f"{v / fwd:.2f}x" if fwd else "-"
        print(f"| {k} | {statistics.median(times[k]):.2f} | {v:.0f} | {r1} | {r2} |")
    pad_random = padding_share(lengths, args.batch_size * 2, grouped=False)
    pad_grouped = padding_share(lengths, args.batch_size * 2, grouped=True)
    print(f"\npadding in batches of {args.batch_size * 2} over {len(lengths)} records (max {args.max_length} "
          f"tokens): random {pad_random:.1%}, length-grouped {pad_grouped:.1%} -> "
          f"{(1 - pad_grouped) / (1 - pad_random):.2f}x more real tokens per padded position")
    print(f"response tokens: {sum(sum(x != -100 for x in r['labels']) for r in enc.rows) / sum(lengths):.1%} "
          f"of all tokens (the share of positions the selected-positions loss scores)")
    if args.json:
        Path(args.json).write_text(json.dumps({"tokens_per_second": tps, "padding_random": pad_random,
                                               "padding_grouped": pad_grouped, "tokens": n_tok,
                                               "response_tokens": n_resp}, indent=2))


if __name__ == "__main__":
    main()
