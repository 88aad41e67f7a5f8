"""TRL's SFTTrainer with a response-only loss that never builds full-vocabulary logits.

TRL 1.x patches the model with a fused LM head and logs the mean entropy and token accuracy of
every step. On CPU that head scores *every* position (prompt and padding too) against the whole
vocabulary, and the two metrics need the whole vocabulary as well. :class:`ResponseOnlySFTTrainer`
keeps everything else of SFTTrainer (data handling, optimiser, schedule, logging, saving) and
swaps only ``compute_loss`` for :func:`coreselect.finetune.tokenloss.response_nll`.

This module imports TRL at import time; import it only when training.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from trl import SFTTrainer

from coreselect.finetune.tokenloss import response_nll

log = logging.getLogger(__name__)


class ResponseOnlySFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is the mean NLL of labelled tokens, computed at those tokens only.

    Counts the tokens it trains on (``tokens_seen_`` all positions fed forward,
    ``response_tokens_seen_`` those with a loss) for the training manifest.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens_seen_ = 0
        self.response_tokens_seen_ = 0

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if return_outputs:
            raise NotImplementedError("ResponseOnlySFTTrainer computes no logits (prediction_loss_only)")
        labels = inputs["labels"]
        attention_mask = inputs.get("attention_mask")
        loss, n = response_nll(model, inputs["input_ids"], labels, attention_mask, num_items=num_items_in_batch)
        if self.model.training:
            real = attention_mask.sum() if attention_mask is not None else torch.tensor(labels.numel())
            self.tokens_seen_ += int(real)
            self.response_tokens_seen_ += int(n)
            self._metrics["train"]["num_tokens"] = [self.tokens_seen_]
        return loss

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> tuple[Any, None, None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None


__all__ = ["ResponseOnlySFTTrainer"]
