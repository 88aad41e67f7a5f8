"""Log-probabilities of the labelled next tokens, through the LM head at those positions only.

A causal LM's plain forward projects *every* position through the LM head; with Gemma 3's
262,144-token vocabulary that projection and its cross-entropy dominate a small model's pass.
Here the caller runs the backbone (the last hidden state, after the final norm), the rows of the
positions whose next-token label is not ``-100`` are gathered, and only those rows go through the
LM head and cross-entropy, in chunks of rows (checkpointed while training).

Two callers share it: training and evaluation (:mod:`coreselect.finetune.tokenloss`, which adds
TRL's vocabulary-tiled kernel) and the selector's response scores
(:mod:`coreselect.features.scores`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.utils.checkpoint

#: Labelled rows projected through the LM head at once (262K vocab: 512 MiB of fp32 logits).
ROW_CHUNK = 512


def unwrap_causal_lm(model: Any) -> Any:
    """The ``*ForCausalLM`` module under a PEFT wrapper (LoRA layers stay injected in it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def head_params(config: Any) -> tuple[float | None, float]:
    """``(final_logit_softcapping, logit_scale)`` of a config (Gemma 2 softcaps, Cohere scales)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    softcap = getattr(text, "final_logit_softcapping", None)
    scale = getattr(text, "logit_scale", None)
    return softcap, 1.0 if scale is None else float(scale)


def rows_logprobs(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                  softcap: float | None, scale: float) -> torch.Tensor:
    """Log-probability of ``targets`` under ``rows @ weight.T``: logits for these rows only."""
    logits = torch.nn.functional.linear(rows, weight, bias).float()
    if scale != 1.0:
        logits = logits * scale
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return -torch.nn.functional.cross_entropy(logits, targets, reduction="none")


def gather_labelled(lm: Any, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, targets)``: the hidden rows that predict a labelled token, and those tokens.

    ``hidden`` (B, T, D) is the backbone's last hidden state; ``labels`` (B, T) are aligned with
    the input ids (position ``t``'s label is predicted from positions ``< t``; ``-100``: no loss).
    Rows come in row-major order, on the LM head's device.
    """
    targets = labels[:, 1:]
    mask = targets != -100
    device = lm.get_output_embeddings().weight.device
    return hidden[:, :-1][mask].to(device), targets[mask].to(device)


def labelled_logprobs(lm: Any, hidden: torch.Tensor, labels: torch.Tensor, *, row_chunk: int = ROW_CHUNK
                      ) -> torch.Tensor:
    """Log-probability of every labelled next token (1-D, row-major), from the last hidden state.

    ``lm`` is the ``*ForCausalLM`` module (its LM head, softcapping and logit scale are used);
    ``hidden`` and ``labels`` as in :func:`gather_labelled`. At most ``row_chunk`` rows' logits
    exist at once; chunks are checkpointed when gradients flow.

    Examples
    --------
    >>> hidden = lm.model(input_ids=ids).last_hidden_state  # doctest: +SKIP
    >>> nll = -labelled_logprobs(lm, hidden, labels).mean()  # doctest: +SKIP
    """
    rows, targets = gather_labelled(lm, hidden, labels)
    head = lm.get_output_embeddings()
    bias = getattr(head, "bias", None)
    softcap, scale = head_params(lm.config)
    if rows.shape[0] <= row_chunk:
        return rows_logprobs(rows, head.weight, bias, targets, softcap, scale)
    grad = torch.is_grad_enabled() and rows.requires_grad
    parts = []
    for s in range(0, rows.shape[0], row_chunk):
        args = (rows[s:s + row_chunk], head.weight, bias, targets[s:s + row_chunk], softcap, scale)
        if grad:
            parts.append(torch.utils.checkpoint.checkpoint(rows_logprobs, *args, use_reentrant=False))
        else:
            parts.append(rows_logprobs(*args))
    return torch.cat(parts)


def labelled_mean_nll(lm: Any, hidden: torch.Tensor, labels: torch.Tensor, *, row_chunk: int = ROW_CHUNK
                      ) -> torch.Tensor:
    """Per sequence, the mean negative log-likelihood of its labelled tokens: (B,) float32, NaN
    for a sequence without any.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> head = torch.nn.Linear(2, 3, bias=False)
    >>> _ = torch.nn.init.zeros_(head.weight)  # uniform next-token distribution over 3 tokens
    >>> lm = SimpleNamespace(get_output_embeddings=lambda: head, config=SimpleNamespace())
    >>> labels = torch.tensor([[-100, 1, 2], [-100, -100, -100]])
    >>> labelled_mean_nll(lm, torch.ones(2, 3, 2), labels).tolist()  # log 3, and nothing
    [1.0986123085021973, nan]
    """
    lp = labelled_logprobs(lm, hidden, labels, row_chunk=row_chunk)
    counts = (labels[:, 1:] != -100).sum(1)
    row = torch.repeat_interleave(torch.arange(labels.shape[0], device=counts.device), counts).to(lp.device)
    total = torch.zeros(labels.shape[0], dtype=torch.float32, device=lp.device).index_add_(0, row, -lp.float())
    return total / counts.to(lp.device).float()  # 0 / 0 = NaN: no labelled token


__all__ = ["ROW_CHUNK", "gather_labelled", "head_params", "labelled_logprobs", "labelled_mean_nll",
           "rows_logprobs", "unwrap_causal_lm"]
