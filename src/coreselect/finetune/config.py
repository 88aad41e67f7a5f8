"""The training and evaluation options: :class:`TrainConfig` and :class:`EvalConfig`.

One definition each: the ``coreselect train``/``evaluate`` flags, the ``trainee:`` and
``evaluation:`` keys of a ``compare`` YAML and the library defaults come from their fields (see
:mod:`coreselect.options`). Defaults that depend on LoRA vs full fine-tuning are resolved here,
once: ``lr`` (2e-4 LoRA, 2e-5 full) and ``lora_alpha`` (twice the rank).

Examples
--------
>>> TrainConfig().lr, TrainConfig(lora=False).lr, TrainConfig(lora_r=8).lora_alpha
(0.0002, 2e-05, 16)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coreselect.options import check, option

Precision = Literal["auto", "bf16", "fp16", "fp32"]

#: Learning rates when none is given: LoRA adapters train at 10x the rate of full fine-tuning.
DEFAULT_LR = {True: 2e-4, False: 2e-5}
_PRECISION_HELP = ("auto: bf16 on a GPU that has it or on a CPU with bf16 instructions (AVX512-BF16, AMX), else "
                   "fp32 (fp16 for inference on an older GPU); fp16 training needs a GPU")
_MODEL_HELP = ("a builtin name (gemma3-270m, smollm2-135m-instruct), a model folder, a .gguf file or a "
               "hub id")


@dataclass
class TrainConfig:
    """Options of ``coreselect train`` and of a ``compare`` YAML's ``trainee:`` section."""

    model: str | None = option(None, default_text="smollm2-135m-instruct", help="base model: " + _MODEL_HELP)
    lora: bool = option(True, flags=("--lora",), off_flag="--full", off_help="full fine-tuning",
                        help="LoRA adapter")
    epochs: float = option(1.0, above=0, help="training epochs")
    lr: float | None = option(None, above=0, default_text="2e-4 with LoRA, 2e-5 full", help="learning rate")
    max_length: int = option(512, minimum=8, help="truncate examples to this many tokens")
    batch_size: int = option(8, minimum=1, help="examples per step")
    grad_accum: int = option(1, minimum=1, help="gradient accumulation steps")
    max_steps: int = option(-1, minimum=1, allowed=(-1,),
                            help="stop after this many optimiser steps (overrides --epochs; -1: run the epochs)")
    seed: int = option(0, help="random seed")
    precision: Precision = option("auto", help=_PRECISION_HELP + " (2x faster steps measured on a CPU)")
    lora_r: int = option(16, minimum=1, help="LoRA rank")
    lora_alpha: int | None = option(None, minimum=1, default_text="2 x --lora-r", help="LoRA scaling alpha")
    lora_dropout: float = option(0.0, minimum=0, maximum=1, help="LoRA dropout")
    lora_targets: tuple[str, ...] = option(
        ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"), metavar="NAMES",
        help="comma-separated module names that get LoRA adapters (those missing from the model are skipped)")
    warmup_ratio: float = option(0.05, minimum=0, maximum=1, help="share of the steps spent warming up")
    group_by_length: bool = option(True, help="batches of rows of similar length (less padding)",
                                   off_help="random batches instead of length-grouped ones (more padding)")
    # Recompute activations in the backward pass instead of keeping them (TRL's default is on):
    # saves memory, costs about one more forward pass per step. Off here; turn on for long rows
    # or large models on a GPU.
    activation_checkpointing: bool = option(
        False, help="recompute activations in the backward pass: less memory, slower steps")
    logging_steps: int = option(5, minimum=1, help="log the loss every this many steps")
    val_share: float = option(
        0.0, minimum=0, maximum=0.5,
        help="share of the training rows held out (seeded) to score every epoch; the best epoch's weights are "
             "kept (train to convergence: set --epochs as a ceiling); 0: train on every row, keep the last epoch")
    early_stopping: int = option(
        0, minimum=0, help="with --val-share: stop after this many epochs without a better held-out loss (0: never)")
    average_tail: float = option(
        0.0, minimum=0, maximum=1,
        help="keep the mean of the trainable weights over this last share of the optimiser steps (tail averaging: "
             "less seed-to-seed noise in the final weights); 0: keep the last step's")
    progress: bool = option(True, yaml=False, help="show a progress bar", off_help="no progress bar")
    trust_remote_code: bool = option(False, help="allow model code from the model folder/hub to run")

    def __post_init__(self) -> None:
        if self.lr is None:
            self.lr = DEFAULT_LR[bool(self.lora)]
        if self.lora_alpha is None:
            self.lora_alpha = 2 * self.lora_r
        self.lora_targets = tuple(self.lora_targets)
        check(self)
        if self.early_stopping and not self.val_share:
            from coreselect.options import OptionError

            raise OptionError("early_stopping", "--early-stopping", "needs --val-share (rows to score epochs on)")
        if self.average_tail and self.val_share:
            from coreselect.options import OptionError

            raise OptionError("average_tail", "--average-tail", "cannot be combined with --val-share (which keeps "
                              "the best epoch's weights, not an average)")

    def check(self) -> None:
        """Raise :class:`~coreselect.options.OptionError` for out-of-range values (also run when made)."""
        check(self)


@dataclass(frozen=True)
class EvalConfig:
    """Options of ``coreselect evaluate`` and of a ``compare`` YAML's ``evaluation:`` section."""

    tasks: tuple[str, ...] = option(
        (), metavar="TASKS", help="comma-separated lm-evaluation-harness tasks (offline: mmlu_local, gsm8k_local)")
    num_fewshot: int | None = option(None, minimum=0, help="few-shot examples per task "
                                     "(default: each task's own; 0 for the local ones)")
    limit: int | None = option(None, above=0, yaml=False, metavar="N",
                               help="evaluate only the first N examples (per set/task)")
    task_limit: int | None = option(None, above=0, cli=False, help="questions per lm-eval task (null: all)")
    max_length: int = option(512, minimum=8, help="truncate examples to this many tokens")
    batch_size: int = option(8, minimum=1, help="examples per forward pass")
    precision: Precision = option("auto", help=_PRECISION_HELP + " (faster inference)")
    base: bool = option(True, cli=False, help="also evaluate the untrained trainee model as a reference row")
    group_by: str | None = option(None, metavar="COLUMN",
                                  help="a label column: report the loss per group, the macro mean over groups and "
                                       "the worst group")
    rank_choices: str | None = option(
        None, metavar="COLUMN",
        help="a column listing each record's answer choices: rank-classification accuracy (every choice scored "
             "as the response, the most likely one must be the record's answer), as lm-eval scores multiple choice")
    progress: bool = option(True, yaml=False, help="show a progress bar", off_help="no progress bar")
    trust_remote_code: bool = option(False, yaml=False, help="allow model code from the model folder/hub to run")

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        check(self)


__all__ = ["DEFAULT_LR", "EvalConfig", "Precision", "TrainConfig"]
