"""Cross-entropy on the labelled (response) positions only, without full-vocabulary logits.

A causal LM's plain forward projects *every* position through the LM head; with Gemma 3's
262,144-token vocabulary that projection and its cross-entropy dominate a small model's training
step. Here the backbone runs once, the hidden states of the positions whose next-token label is
not ``-100`` are gathered, and only those rows go through the LM head and cross-entropy, in
checkpointed chunks of rows (TRL's vocabulary-tiled kernel is available as ``impl="trl"``).
Training (:mod:`coreselect.finetune.trainer`) and evaluation (:mod:`coreselect.finetune.evaluate`) share this one path.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.utils.checkpoint

#: Labelled rows projected through the LM head at once (262K vocab: 512 MiB of fp32 logits).
ROW_CHUNK = 512
#: Vocabulary columns per projection tile of the ``impl="trl"`` kernel.
VOCAB_CHUNK = 32768


def unwrap_causal_lm(model: Any) -> Any:
    """The ``*ForCausalLM`` module under a PEFT wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _head_params(config: Any) -> tuple[float | None, float]:
    """``(final_logit_softcapping, logit_scale)`` of a config (Gemma 2 softcaps, Cohere scales)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    softcap = getattr(text, "final_logit_softcapping", None)
    scale = getattr(text, "logit_scale", None)
    return softcap, 1.0 if scale is None else float(scale)


def _rows_logprobs(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                   softcap: float | None, scale: float) -> torch.Tensor:
    """Log-probability of ``targets`` under ``rows @ weight.T``: logits for these rows only."""
    logits = torch.nn.functional.linear(rows, weight, bias).float()
    if scale != 1.0:
        logits = logits * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def response_token_logprobs(
    model: Any, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None,
    *, impl: str = "rows",
) -> torch.Tensor:
    """Log-probability of every labelled next token, as a 1-D tensor in row-major order.

    ``labels`` are aligned with ``input_ids`` (as in Hugging Face causal LMs): position ``t``'s
    label is predicted from positions ``< t``, and ``-100`` marks positions without loss.

    ``impl="rows"`` (default) projects the labelled rows through the LM head in chunks of
    :data:`ROW_CHUNK` rows with the ordinary matmul and cross-entropy kernels; chunks are
    checkpointed during training, so at most one chunk's logits are alive. ``impl="trl"`` uses
    TRL's vocabulary-tiled :class:`trl.kernels.ChunkedLogProbFunction` instead (never more than
    one tile of logits, but on CPU its fp32 backward and per-tile element-wise work make it
    slower; see ``benchmarks/train_speed.py``).

    Examples
    --------
    >>> lp = response_token_logprobs(model, batch["input_ids"], batch["labels"])  # doctest: +SKIP
    >>> loss = -lp.mean()  # doctest: +SKIP
    """
    lm = unwrap_causal_lm(model)
    backbone = getattr(lm, lm.base_model_prefix)
    out = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    hidden = out.last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    mask = targets != -100
    head = lm.get_output_embeddings()
    rows = hidden[mask].to(head.weight.device)
    targets = targets[mask].to(head.weight.device)
    bias = getattr(head, "bias", None)
    softcap, scale = _head_params(lm.config)
    if impl == "trl":
        from trl.kernels import ChunkedLogProbFunction

        log_probs, *_ = ChunkedLogProbFunction.apply(rows, head.weight, bias, targets, 1.0, VOCAB_CHUNK,
                                                     softcap, scale, ("log_probs",))
        return log_probs
    if impl != "rows":
        raise ValueError(f"unknown impl {impl!r} (expected 'rows' or 'trl')")
    if rows.shape[0] <= ROW_CHUNK:
        return _rows_logprobs(rows, head.weight, bias, targets, softcap, scale)
    grad = torch.is_grad_enabled() and rows.requires_grad
    parts = []
    for s in range(0, rows.shape[0], ROW_CHUNK):
        args = (rows[s:s + ROW_CHUNK], head.weight, bias, targets[s:s + ROW_CHUNK], softcap, scale)
        if grad:
            parts.append(torch.utils.checkpoint.checkpoint(_rows_logprobs, *args, use_reentrant=False))
        else:
            parts.append(_rows_logprobs(*args))
    return torch.cat(parts)


def response_nll(
    model: Any, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None,
    num_items: int | torch.Tensor | None = None, impl: str = "rows",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, n_tokens)``: summed negative log-likelihood of labelled tokens / ``num_items``.

    ``num_items`` defaults to the number of labelled tokens in this batch (a plain mean); the
    trainer passes the count over all gradient-accumulation micro-batches instead.
    """
    lp = response_token_logprobs(model, input_ids, labels, attention_mask, impl=impl)
    n = torch.tensor(lp.numel(), device=lp.device)
    denom = n if num_items is None else torch.as_tensor(num_items, device=lp.device)
    # ``sum`` of an empty tensor is a differentiable zero, so an all-masked batch is harmless.
    return -lp.sum() / denom.clamp(min=1), n


def full_logits_nll(
    model: Any, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the same mean loss from the model's plain forward (full logits everywhere)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                            ignore_index=-100, reduction="sum")
    n = (targets != -100).sum()
    return nll / n.clamp(min=1), n


__all__ = ["full_logits_nll", "response_nll", "response_token_logprobs", "unwrap_causal_lm"]
