"""Per-example response log-probabilities of a causal LM, batched and length-sorted.

The one forward pass behind held-out response loss (:func:`coreselect.finetune.evaluate.response_loss`)
and rank classification (:func:`coreselect.finetune.grouped.rank_classification`); both import
it from here, so neither needs the other. Importing this module imports no torch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coreselect.data import Example


def example_logprobs(model: Any, tokenizer: Any, examples: Sequence[Example], *, max_length: int = 512,
                     batch_size: int = 8, progress: bool = False, desc: str = "evaluate") -> ExampleLogprobs:
    """Summed log-probability of each example's response tokens (batched, length-sorted).

    The result's ``sums``/``counts`` are aligned with ``examples``; an example whose response
    starts beyond ``max_length`` has ``None`` (it is counted in ``encoded.dropped``).
    """
    import torch

    from coreselect.finetune.tokenloss import response_token_logprobs
    from coreselect.finetune.train import encode_examples

    enc = encode_examples(examples, tokenizer, max_length)
    order = sorted(range(len(enc.rows)), key=lambda i: len(enc.rows[i]["input_ids"]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    sums: list[float | None] = [None] * len(examples)
    counts: list[int | None] = [None] * len(examples)
    seen = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc=desc, unit="ex")
    t0 = time.perf_counter()
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(enc.rows[i]["input_ids"]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for b, i in enumerate(chunk):
                r = enc.rows[i]
                n = len(r["input_ids"])
                ids[b, :n] = torch.tensor(r["input_ids"])
                labels[b, :n] = torch.tensor(r["labels"])
                mask[b, :n] = 1
            lp = response_token_logprobs(model, ids.to(device), labels.to(device), mask.to(device)).float()
            n_tok = (labels[:, 1:] != -100).sum(dim=1).tolist()
            for i, piece, n in zip(chunk, torch.split(lp, n_tok), n_tok):
                sums[enc.kept[i]], counts[enc.kept[i]] = float(piece.sum()), int(n)
            seen += int(mask.sum())
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return ExampleLogprobs(sums, counts, enc, seen, time.perf_counter() - t0)


@dataclass
class ExampleLogprobs:
    """Per-example response log-probabilities and what it took to get them."""

    sums: list[float | None]
    counts: list[int | None]
    encoded: Any  # coreselect.finetune.train.Encoded
    tokens: int  # all positions fed forward (prompt and response, no padding)
    seconds: float

    def losses(self) -> list[float | None]:
        """Mean NLL per response token of each example (``None`` where it was dropped)."""
        return [None if s is None else -s / c for s, c in zip(self.sums, self.counts)]


__all__ = ["ExampleLogprobs", "example_logprobs"]
