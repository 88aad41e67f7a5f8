"""Cross-entropy on the labelled (response) positions only, without full-vocabulary logits.

A causal LM's plain forward projects *every* position through the LM head; with Gemma 3's
262,144-token vocabulary that projection and its cross-entropy dominate a small model's training
step. Here the backbone runs once and only the positions whose next-token label is not ``-100``
go through the LM head and cross-entropy, in checkpointed chunks of rows
(:func:`coreselect.lmhead.labelled_logprobs`, shared with the selector's response scores; TRL's
vocabulary-tiled kernel is available as ``impl="trl"``). Training
(:mod:`coreselect.finetune.trainer`) and evaluation (:mod:`coreselect.finetune.evaluate`) share
this one path.
"""

from __future__ import annotations

from typing import Any

import torch

from coreselect.lmhead import gather_labelled, head_params, labelled_logprobs, unwrap_causal_lm

#: Labelled rows projected through the LM head at once (262K vocab: 512 MiB of fp32 logits).
ROW_CHUNK = 512
#: Vocabulary columns per projection tile of the ``impl="trl"`` kernel.
VOCAB_CHUNK = 32768

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
    if impl not in ("rows", "trl"):
        raise ValueError(f"unknown impl {impl!r} (expected 'rows' or 'trl')")
    lm = unwrap_causal_lm(model)
    backbone = getattr(lm, lm.base_model_prefix)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    if impl == "rows":
        return labelled_logprobs(lm, hidden, labels, row_chunk=ROW_CHUNK)
    from trl.kernels import ChunkedLogProbFunction

    rows, targets = gather_labelled(lm, hidden, labels)
    head = lm.get_output_embeddings()
    softcap, scale = head_params(lm.config)
    log_probs, *_ = ChunkedLogProbFunction.apply(rows, head.weight, getattr(head, "bias", None), targets, 1.0,
                                                 VOCAB_CHUNK, softcap, scale, ("log_probs",))
    return log_probs


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
