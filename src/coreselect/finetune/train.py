"""Fine-tune a causal LM on an instruction dataset: TRL SFT, LoRA by default, response-only loss.

Examples are rendered exactly as the selector saw them (:mod:`coreselect.features.render`): the
model's chat template when its tokenizer has one, an Alpaca-style prompt otherwise. Prompt tokens
are labelled ``-100``, so the loss covers the response tokens only, and the loss is computed at
those positions only (:mod:`coreselect.finetune.tokenloss`). The output folder loads back with
``transformers``/``peft`` and holds ``coreselect_train.json``: data fingerprint, rows, tokens,
seconds and tokens/s.

Examples
--------
>>> from coreselect.finetune.train import TrainConfig, train
>>> res = train("core.jsonl", "out/adapter", TrainConfig(model="gemma3-270m"))  # doctest: +SKIP
>>> res.manifest["train"]["tokens_per_second"]  # doctest: +SKIP
410.3
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coreselect._version import __version__
from coreselect.data import Dataset, Example, load_dataset
from coreselect.errors import ConfigError, OutputExistsError
from coreselect.finetune.config import TrainConfig
from coreselect.output import atomic_write_bytes, check_not_inside

log = logging.getLogger(__name__)

MANIFEST = "coreselect_train.json"


@dataclass
class Encoded:
    """Tokenised training rows plus what the manifest reports about them."""

    rows: list[dict[str, list[int]]]
    prompt_format: str
    dropped: int  # examples whose response was cut off entirely by max_length
    truncated: int
    kept: list[int] = field(default_factory=list)  # the example each row came from (positions in the input)


def prompt_format(tokenizer: Any) -> str:
    """``"chat-template"`` when the tokenizer has one, else ``"alpaca"``."""
    from coreselect.features.render import has_chat_template

    return "chat-template" if has_chat_template(tokenizer) else "alpaca"


def _special_prefix(tokenizer: Any) -> list[int]:
    """Tokens the tokenizer puts before any text by default (Gemma's ``<bos>``), if any."""
    with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    n = len(with_special) - len(plain)
    return list(with_special[:n]) if n > 0 and with_special[n:] == plain else []


def encode_examples(examples: Sequence[Example], tokenizer: Any, max_length: int) -> Encoded:
    """Render and tokenise examples; labels are the ids on response tokens, ``-100`` elsewhere.

    A default special prefix (``<bos>``) is added when the rendered text lacks it. Examples whose
    response starts beyond ``max_length`` have no loss tokens and are dropped.
    """
    from coreselect.features.render import render_batch

    prefix = _special_prefix(tokenizer)
    rows: list[dict[str, list[int]]] = []
    kept: list[int] = []
    dropped = truncated = 0
    for start in range(0, len(examples), 256):
        for j, r in enumerate(render_batch(examples[start:start + 256], tokenizer, max_length + len(prefix))):
            ids, resp = list(r.ids), r.response_start
            if prefix and ids[: len(prefix)] != prefix:
                ids, resp = prefix + ids, resp + len(prefix)
            cut = len(ids) > max_length or r.truncated
            ids = ids[:max_length]
            if resp >= len(ids):
                dropped += 1
                continue
            truncated += cut
            rows.append({"input_ids": ids, "labels": [-100] * resp + ids[resp:], "length": len(ids)})
            kept.append(start + j)
    return Encoded(rows, prompt_format(tokenizer), dropped, truncated, kept)


def resolve_precision(precision: str, *, training: bool = True) -> str:
    """Resolve ``auto`` by the one policy of :mod:`coreselect.device`: bf16 on a GPU that has it
    and on a CPU with bf16 instructions, else fp32 (fp16 for inference on an older GPU; training
    stays fp32 there, fp16 would need loss scaling).

    Measured on a 2-core AVX512-BF16 CPU with one free core (``benchmarks/train_speed.py``):
    a LoRA step on response positions took 1.42 s in bf16 against 3.45 s in fp32 (2.4x), and
    ``coreselect train`` ran 8 steps in 76 s against 149 s (final loss 1.908 vs 1.903); an
    inference forward is 3.4x faster. On a CPU without bf16 instructions bf16 is ~5x slower.
    """
    from coreselect.device import resolve_precision as resolve

    resolved = resolve(precision)
    return "fp32" if training and precision == "auto" and resolved == "fp16" else resolved


@dataclass
class TrainResult:
    output: Path
    manifest: dict[str, Any]


def train(data: str | os.PathLike[str] | Dataset, output: str | os.PathLike[str], config: TrainConfig,
          *, overwrite: bool = False) -> TrainResult:
    """Fine-tune ``config.model`` on ``data`` and save a loadable folder at ``output``.

    The folder appears atomically: training writes into a temporary sibling that is renamed at
    the end, so an interrupted run leaves no half-written output.
    """
    import torch

    from coreselect.device import torch_dtype_name
    from coreselect.models import load_model, resolve_model

    config.check()
    ds = data if isinstance(data, Dataset) else load_dataset(data)
    out = Path(output)
    check_not_inside(out, [ds.path])  # the output folder is replaced whole: never over the data
    if out.exists():
        if not overwrite:
            raise OutputExistsError(f"{out}: already exists (pass --overwrite to replace it)")
        if not out.is_dir():
            raise OutputExistsError(f"{out}: is a file, expected a folder")
    spec = resolve_model(config.model, trust_remote_code=config.trust_remote_code)
    precision = resolve_precision(config.precision)
    # fp16 trains with fp32 weights under autocast (the trainer's loss scaling needs fp32 gradients)
    dtype = torch_dtype_name("fp32" if precision == "fp16" else precision)
    t0 = time.perf_counter()
    model, tok = load_model(spec, dtype=dtype, trust_remote_code=config.trust_remote_code)
    if not config.lora and precision == "bf16":
        # Full fine-tuning keeps fp32 master weights; bf16 then means autocast only.
        model = model.float()
    enc = encode_examples(ds.examples, tok, config.max_length)
    if not enc.rows:
        raise ConfigError(f"{ds.path}: no example has a response within --max-length {config.max_length}")
    log.info("prompt format: %s (%s)", enc.prompt_format,
             "the tokenizer's chat template" if enc.prompt_format == "chat-template"
             else "no chat template: Alpaca-style prompt")
    if enc.dropped:
        log.warning("dropped %d examples whose response starts beyond --max-length %d",
                    enc.dropped, config.max_length)
    load_seconds = time.perf_counter() - t0

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        trainer, lora_info = _build_trainer(model, tok, enc, config, precision, tmp)
        t = time.perf_counter()
        stats = trainer.train()
        seconds = time.perf_counter() - t
        trainer.model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        for junk in tmp.glob("checkpoint-*"):
            shutil.rmtree(junk, ignore_errors=True)
        manifest = _manifest(ds, spec, config, precision, enc, trainer, stats, seconds, load_seconds, lora_info)
        atomic_write_bytes(tmp / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    t = manifest["train"]
    log.info("trained on %d rows, %d tokens in %.1fs (%.0f tokens/s) -> %s",
             manifest["data"]["rows"], t["tokens"], t["seconds"], t["tokens_per_second"], out)
    return TrainResult(out, manifest)


def split_rows(rows: list[dict[str, Any]], share: float, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, validation)``: a seeded ``share`` of ``rows`` (at least one row each) held out.

    >>> tr, va = split_rows([{"i": i} for i in range(10)], 0.2, seed=0)
    >>> len(tr), len(va), sorted(r["i"] for r in tr + va) == list(range(10))
    (8, 2, True)
    """
    import random

    if not share:
        return rows, []
    if len(rows) < 2:
        raise ConfigError(f"--val-share needs at least 2 training rows, got {len(rows)}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = min(len(rows) - 1, max(1, round(share * len(rows))))
    held = set(order[:n_val])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def _build_trainer(model: Any, tok: Any, enc: Encoded, config: TrainConfig, precision: str,
                   workdir: Path) -> tuple[Any, dict[str, Any] | None]:
    import datasets
    import torch
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig

    from coreselect.finetune.trainer import ResponseOnlySFTTrainer

    lora_info = None
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t for t in config.lora_targets if t in names]
        if not targets:
            raise ConfigError(f"none of the LoRA target modules {list(config.lora_targets)} is in this model")
        peft_config = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                                 target_modules=targets, task_type="CAUSAL_LM")
        lora_info = {"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                     "targets": targets}
    train_rows, val_rows = split_rows(enc.rows, config.val_share, config.seed)
    train_ds = datasets.Dataset.from_list(train_rows)
    val_ds = datasets.Dataset.from_list(val_rows) if val_rows else None
    # with validation rows: score every epoch, keep the best epoch's weights (and stop early if asked)
    best = {"eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True,
            "metric_for_best_model": "eval_loss", "greater_is_better": False, "save_total_limit": 2,
            "per_device_eval_batch_size": config.batch_size} if val_ds is not None else {"save_strategy": "no"}
    use_cpu = not torch.cuda.is_available()
    args = SFTConfig(
        output_dir=str(workdir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        learning_rate=config.lr, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, warmup_steps=config.warmup_ratio,
        lr_scheduler_type="cosine", seed=config.seed, data_seed=config.seed,
        bf16=precision == "bf16", fp16=precision == "fp16", use_cpu=use_cpu, max_length=None, packing=False,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length", logging_steps=config.logging_steps, **best,
        report_to="none", disable_tqdm=not config.progress, dataloader_num_workers=0,
        remove_unused_columns=True, prediction_loss_only=True,
        activation_checkpointing=config.activation_checkpointing,
    )
    callbacks = [EarlyStoppingCallback(config.early_stopping)] if val_ds is not None and config.early_stopping else []
    trainer = ResponseOnlySFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                                     processing_class=tok, peft_config=peft_config, callbacks=callbacks,
                                     average_tail=config.average_tail)
    return trainer, lora_info


def _manifest(ds: Dataset, spec: Any, config: TrainConfig, precision: str, enc: Encoded, trainer: Any,
              stats: Any, seconds: float, load_seconds: float, lora_info: dict[str, Any] | None) -> dict[str, Any]:
    tokens = int(trainer.tokens_seen_)
    history = [h for h in trainer.state.log_history if "loss" in h]
    evals = [{"epoch": round(float(h["epoch"]), 4), "step": h["step"], "loss": round(float(h["eval_loss"]), 6)}
             for h in trainer.state.log_history if "eval_loss" in h]
    cfg = asdict(config)
    cfg["lora_targets"] = list(config.lora_targets)
    return {
        "coreselect_version": __version__,
        "kind": "lora" if config.lora else "full",
        "base_model": spec.to_json(),
        "data": {"path": str(ds.path), "fingerprint": ds.fingerprint, "rows": len(enc.rows),
                 "examples": len(ds), "dropped": enc.dropped, "truncated": enc.truncated,
                 "prompt_format": enc.prompt_format,
                 "dataset_tokens": sum(len(r["input_ids"]) for r in enc.rows),
                 "dataset_response_tokens": sum(sum(x != -100 for x in r["labels"]) for r in enc.rows)},
        "config": cfg,
        "precision": precision,
        "lora": lora_info,
        "train": {"steps": int(trainer.state.global_step), "epochs": round(float(trainer.state.epoch or 0), 4),
                  "tokens": tokens, "response_tokens": int(trainer.response_tokens_seen_),
                  "activation_checkpointing": bool(trainer.args.activation_checkpointing),
                  "averaged_steps": trainer.tail_average_.steps if trainer.tail_average_ is not None else None,
                  "seconds": round(seconds, 3), "load_seconds": round(load_seconds, 3),
                  "tokens_per_second": round(tokens / seconds, 2) if seconds > 0 else None,
                  "final_loss": round(float(stats.training_loss), 6) if stats is not None else None,
                  "loss_history": [{"step": h["step"], "loss": h["loss"]} for h in history],
                  "validation": {"rows": len(trainer.eval_dataset), "history": evals,
                                 "best_step": _best_step(trainer.state.best_model_checkpoint),
                                 "best_loss": trainer.state.best_metric} if evals else None},
    }


def _best_step(checkpoint: str | None) -> int | None:
    """The step of ``.../checkpoint-<step>`` (the epoch whose weights were kept)."""
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else None


def is_trained_folder(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a finished ``coreselect train`` output."""
    return (Path(path) / MANIFEST).is_file()


__all__ = ["MANIFEST", "Encoded", "TrainConfig", "TrainResult", "encode_examples", "is_trained_folder",
           "prompt_format", "resolve_precision", "split_rows", "train"]
