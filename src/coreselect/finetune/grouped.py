"""Scores per label group: per-group loss, macro mean, worst group, rank-classification accuracy.

A multi-task pool is judged per task: a pick that starves the tail templates can still win on
a loss pooled over all tokens, which long records dominate. With ``group_by`` naming a label
column (e.g. ``group`` = ``task/template`` of the task-mixture pool), each group's mean loss is
reported, with the macro mean over groups and the worst group.

Rank classification, as lm-evaluation-harness scores multiple choice: for a record whose
``choices`` column lists the answers its group draws from, every choice is scored as the response
(summed log-likelihood of its tokens), the most likely one is the prediction, and it is right when
it equals the record's own answer exactly.

Examples
--------
>>> r = group_scores([1.0, 3.0, 2.0, None], ["a", "a", "b", "b"])
>>> r["groups"], r["macro"], r["worst_group"]
({'a': 2.0, 'b': 2.0}, 2.0, 'a')
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from coreselect.data import Dataset, Example

log = logging.getLogger(__name__)


def group_labels(data: Dataset, column: str, *, what: str = "group_by column") -> list[str]:
    """The ``column`` label of every example, as text (JSON for other values); a record without it
    is a one-line error naming it (``what`` says which option asked for the column)."""
    from coreselect.featureset import labels_of

    return list(labels_of(data, [column], what=what)[column])


def group_scores(values: Sequence[float | None], labels: Sequence[str], *, worst: str = "max") -> dict[str, Any]:
    """Per-group mean of ``values`` (``None`` skipped), the macro mean and the worst group.

    ``worst="max"`` for losses (higher is worse), ``"min"`` for accuracies.
    """
    acc: dict[str, list[float]] = defaultdict(list)
    for v, g in zip(values, labels):
        if v is not None:
            acc[g].append(float(v))
    groups = {g: round(float(np.mean(v)), 6) for g, v in sorted(acc.items())}
    if not groups:
        return {"groups": {}, "macro": None, "worst": None, "worst_group": None, "n_groups": 0}
    pick = max if worst == "max" else min
    wg = pick(groups, key=lambda g: groups[g])
    return {"groups": groups, "macro": round(float(np.mean(list(groups.values()))), 6), "worst": groups[wg],
            "worst_group": wg, "n_groups": len(groups)}


def _choices(e: Example, column: str) -> list[str] | None:
    c = e.record.get(column)
    if isinstance(c, list) and len(c) >= 2 and all(isinstance(x, str) for x in c):
        return c
    return None


def _with_response(e: Example, text: str) -> Example:
    msgs = list(e.messages)
    last = max(i for i, (role, _) in enumerate(msgs) if role == "assistant")
    msgs[last] = ("assistant", text)
    return replace(e, messages=tuple(msgs))


def rank_classification(model: Any, tokenizer: Any, data: Dataset, labels: Sequence[str] | None = None, *,
                        column: str = "choices", max_length: int = 512, batch_size: int = 8,
                        progress: bool = False) -> dict[str, Any] | None:
    """Accuracy of picking the record's answer among its ``choices`` by likelihood (None: no record has choices).

    Returns ``accuracy`` over scored records, ``n`` scored, and, with ``labels``, per-group
    accuracy with its macro mean and worst group.
    """
    from coreselect.finetune.logprobs import example_logprobs

    cands: list[Example] = []
    spans: list[tuple[int, int, int]] = []  # (example, first candidate, gold position)
    for i, e in enumerate(data.examples):
        choices = _choices(e, column)
        if choices is None or e.response not in choices:
            continue
        spans.append((i, len(cands), choices.index(e.response)))
        cands += [_with_response(e, c) for c in choices]
    if not spans:
        return None
    r = example_logprobs(model, tokenizer, cands, max_length=max_length, batch_size=batch_size, progress=progress,
                         desc="rank-classify")
    correct: list[float | None] = [None] * len(data.examples)
    ends = [s for _, s, _ in spans[1:]] + [len(cands)]
    for (i, first, gold), end in zip(spans, ends):
        scores = r.sums[first:end]
        if any(s is None for s in scores):
            continue  # a choice fell beyond max_length: the record cannot be scored fairly
        correct[i] = float(int(np.argmax(scores)) == gold)
    scored = [c for c in correct if c is not None]
    if not scored:
        return None
    out: dict[str, Any] = {"accuracy": round(float(np.mean(scored)), 6), "n": len(scored),
                           "candidates": len(cands), "seconds": round(r.seconds, 3)}
    if labels is not None:
        g = group_scores(correct, labels, worst="min")
        out.update({"macro": g["macro"], "worst": g["worst"], "worst_group": g["worst_group"],
                    "groups": g["groups"]})
    out["per_example"] = correct
    return out


__all__ = ["group_labels", "group_scores", "rank_classification"]
