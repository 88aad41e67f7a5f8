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
import math
from typing import Any

import torch
from transformers import TrainerCallback
from trl import SFTTrainer

from coreselect.finetune.tokenloss import response_nll

log = logging.getLogger(__name__)


class ResponseOnlySFTTrainer(SFTTrainer):
    """SFTTrainer whose loss is the mean NLL of labelled tokens, computed at those tokens only.

    Counts the tokens it trains on (``tokens_seen_`` all positions fed forward,
    ``response_tokens_seen_`` those with a loss) for the training manifest.
    """

    def __init__(self, *args: Any, average_tail: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens_seen_ = 0
        self.response_tokens_seen_ = 0
        self.tail_average_ = TailAverage(average_tail) if average_tail else None
        if self.tail_average_ is not None:
            self.add_callback(self.tail_average_)

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


class TailAverage(TrainerCallback):
    """The uniform mean of the trainable weights over the last ``share`` of the optimiser steps,
    written into the model when training ends (tail averaging, the idea of Polyak averaging and
    SWA: the mean of the weights the last steps visited is less noisy than the last step's).

    The steps after ``floor(max_steps * (1 - share))`` are averaged, the last one always. The
    mean is kept in fp32; ``steps`` is how many were averaged.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.steps = 0
        self._mean: list[torch.Tensor] | None = None

    def first_averaged(self, max_steps: int) -> int:
        """The first optimiser step (1-based) whose weights enter the mean."""
        return min(max_steps, math.floor(max_steps * (1.0 - self.share)) + 1)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step < self.first_averaged(state.max_steps):
            return
        params = [p for p in model.parameters() if p.requires_grad]
        with torch.no_grad():
            if self._mean is None:
                self._mean = [p.detach().float().clone() for p in params]
            else:
                for m, p in zip(self._mean, params):
                    m.add_(p.detach().float() - m, alpha=1.0 / (self.steps + 1))
        self.steps += 1

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self._mean is None:
            return
        with torch.no_grad():
            for m, p in zip(self._mean, [p for p in model.parameters() if p.requires_grad]):
                p.copy_(m.to(p.dtype))
        log.info("kept the mean of the trainable weights over the last %d of %d steps", self.steps, state.max_steps)


__all__ = ["ResponseOnlySFTTrainer", "TailAverage"]
