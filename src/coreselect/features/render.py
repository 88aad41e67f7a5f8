"""Render examples into token ids with span masks (prompt / response) for pooling.

Each example is rendered with the model's chat template when it has one (user = instruction +
input, assistant = output), or with an Alpaca-style prompt otherwise. Character offsets of the
first content character and of the response are mapped to tokens through the tokenizer's offset
mapping, so that tokens a template adds before the first turn (a default system prompt, say)
can be left out of the pooled span.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coreselect.data import Example

ALPACA_PROMPT = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"


@dataclass
class Rendered:
    """Token ids of one example with the token index where content and response start."""

    ids: list[int]
    content_start: int
    response_start: int
    truncated: bool


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_text(example: Example, tokenizer: Any) -> tuple[str, int, int]:
    """Return ``(text, content_char_start, response_char_start)`` for one example."""
    msgs = list(example.messages)
    # The response is the last assistant turn; everything before it is the prompt.
    last = max(i for i, (r, _) in enumerate(msgs) if r == "assistant")
    msgs = msgs[: last + 1]
    if has_chat_template(tokenizer):
        chat = [{"role": r, "content": c} for r, c in msgs]
        prompt = tokenizer.apply_chat_template(chat[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(chat, tokenize=False)
        if full.startswith(prompt):
            response_start = len(prompt)
        else:  # a template that rewrites earlier turns: find the response text itself
            response_start = full.rfind(msgs[-1][1])
            response_start = len(prompt) if response_start < 0 else response_start
        first = msgs[0][1]
        content_start = full.find(first) if first else 0
        content_start = max(0, content_start)
        # Keep the role header of the first turn out of it but the text in.
        return full, min(content_start, response_start), response_start
    parts = []
    for r, c in msgs[:-1]:
        head = {"system": "", "user": "### Instruction:\n", "assistant": "### Response:\n"}[r]
        parts.append(f"{head}{c}\n\n")
    prompt = ALPACA_PROMPT + "".join(parts) + "### Response:\n"
    full = prompt + msgs[-1][1]
    eos = getattr(tokenizer, "eos_token", None)
    if eos:
        full += eos
    return full, len(ALPACA_PROMPT), len(prompt)


def render_batch(examples: Sequence[Example], tokenizer: Any, max_length: int) -> list[Rendered]:
    """Tokenise examples (no padding) and locate their spans in tokens."""
    texts, starts = [], []
    for ex in examples:
        t, c, r = render_text(ex, tokenizer)
        texts.append(t)
        starts.append((c, r))
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for ids, offsets, (c, r) in zip(enc["input_ids"], enc["offset_mapping"], starts):
        ends = np.fromiter((e for _, e in offsets), dtype=np.int64, count=len(offsets))
        # first token that ends after the span's first character
        content_tok = int(np.searchsorted(ends, c, side="right"))
        response_tok = int(np.searchsorted(ends, r, side="right"))
        truncated = len(ids) > max_length
        out.append(Rendered(list(ids[:max_length]), content_tok, response_tok, truncated))
    return out
