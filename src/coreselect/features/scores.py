"""Per-record scores from the selector LM, stored in the feature store beside its features.

``--scores ifd`` (or a method that needs them, :attr:`Selector.needs_scores
<coreselect.selection.base.Selector.needs_scores>`) adds three float32 columns to every shard:

``loss_cond``
    mean negative log-likelihood of the response tokens given the prompt: the activation pass
    itself continues to the final norm and the LM head is applied at the response positions only
    (:meth:`ActivationExtractor.extract_batch <coreselect.features.activations.ActivationExtractor.extract_batch>`).
``loss_alone``
    the same for the response after an *empty* user turn, rendered the same way (chat template,
    or the Alpaca-style prompt for a model without one): a second, shorter pass. It scores as many
    response tokens as ``loss_cond`` did (a response cut by ``max_length`` is cut here too).
``ifd``
    ``loss_cond / loss_alone``, the Instruction-Following Difficulty of Cherry LLM (Li et al.,
    arXiv 2308.12032): how much the prompt helps predict the response. Near 1 or above, the prompt
    does not help: the pair is often broken (CALIBRATION: AUC 0.98 for swapped responses).

A row without response tokens after truncation has NaN in all three.

Examples
--------
>>> scores_for(["ifd", "response_tokens"]), scores_for(["n_tokens"])
(('ifd',), ())
>>> ifd_ratio(np.array([1.0, 2.0, np.nan]), np.array([2.0, 1.0, 1.0])).tolist()
[0.5, 2.0, nan]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from coreselect.data import Example
from coreselect.errors import ConfigError
from coreselect.features.render import Rendered
from coreselect.store import ROW_STATS

if TYPE_CHECKING:
    from coreselect.features.activations import ActivationExtractor

log = logging.getLogger(__name__)

#: The store columns each ``--scores`` name writes.
SCORE_COLUMNS: dict[str, tuple[str, ...]] = {"ifd": ("loss_cond", "loss_alone", "ifd")}

Render = Callable[[Sequence[Example]], list[Rendered]]


def scores_for(columns: Iterable[str]) -> tuple[str, ...]:
    """The ``--scores`` names whose columns include ``columns`` (per-row stats need none).

    An unknown column is a one-line :class:`~coreselect.errors.ConfigError`.
    """
    out: list[str] = []
    for col in columns:
        if col in ROW_STATS:
            continue
        name = next((n for n, cols in SCORE_COLUMNS.items() if col in cols), None)
        if name is None:
            known = ", ".join([*ROW_STATS, *(c for cols in SCORE_COLUMNS.values() for c in cols)])
            raise ConfigError(f"unknown per-row column {col!r}; known: {known}")
        if name not in out:
            out.append(name)
    return tuple(out)


def ifd_ratio(loss_cond: np.ndarray, loss_alone: np.ndarray) -> np.ndarray:
    """``loss_cond / loss_alone`` as float32; NaN where either is NaN or ``loss_alone <= 0``."""
    cond = np.asarray(loss_cond, dtype=np.float64)
    alone = np.asarray(loss_alone, dtype=np.float64)
    ok = np.isfinite(cond) & np.isfinite(alone) & (alone > 0)
    out = np.full(cond.shape, np.nan)
    np.divide(cond, alone, out=out, where=ok)
    return out.astype(np.float32)


def alone_example(example: Example) -> Example:
    """The example's response (its last assistant turn) after an empty user turn."""
    last = max(i for i, (role, _) in enumerate(example.messages) if role == "assistant")
    return Example(example.index, (("user", ""), ("assistant", example.messages[last][1])), example.record,
                   example.line, example.source_index)


def alone_rendered(examples: Sequence[Example], cond: Sequence[Rendered], render: Render) -> list[Rendered]:
    """The ``loss_alone`` rows: each response after an empty user turn (``render``: the same
    rendering as the activation pass, without truncation), cut to the number of response tokens
    that ``cond`` scored."""
    out = []
    for c, a in zip(cond, render([alone_example(ex) for ex in examples])):
        n_response = max(0, len(c.ids) - c.response_start)
        end = a.response_start + n_response
        out.append(Rendered(a.ids[:end], a.content_start, a.response_start, len(a.ids) > end))
    return out


def shared_prefix(rows: Sequence[Rendered], minimum: int = 4) -> int:
    """How many leading tokens every row shares before its first response token's predecessor
    (the ``loss_alone`` rows: the same system turn and empty user turn): the part the scoring pass
    runs once and caches. 0 when that is under ``minimum`` tokens (not worth a cache).

    >>> shared_prefix([Rendered([1, 2, 3, 4, 5, 9], 0, 5, False), Rendered([1, 2, 3, 4, 5, 7, 8], 0, 5, False)])
    4
    >>> shared_prefix([Rendered([1, 2, 3, 4, 5, 9], 0, 5, False), Rendered([1, 2, 6, 4, 5, 7], 0, 5, False)])
    0
    """
    if not rows:
        return 0
    n = min(r.response_start for r in rows) - 1
    first = rows[0].ids
    for r in rows[1:]:
        n = min(n, next((i for i, (a, b) in enumerate(zip(first[:n], r.ids[:n])) if a != b), n))
    return n if n >= minimum else 0


def shard_scores(
    extractor: ActivationExtractor, examples: Sequence[Example], cond: Sequence[Rendered], loss_cond: np.ndarray,
    render: Render, batches: Callable[[list[int]], Iterable[list[int]]],
) -> dict[str, np.ndarray]:
    """The score columns of one shard: ``loss_cond`` (from the activation pass), ``loss_alone``
    (a second pass over :func:`alone_rendered` rows, batched by ``batches`` over their lengths, the
    rows' :func:`shared_prefix` run once and cached) and ``ifd``."""
    alone = alone_rendered(examples, cond, render)
    loss_alone = np.full(len(alone), np.nan, dtype=np.float32)
    todo = [i for i, r in enumerate(alone) if len(r.ids) > r.response_start]
    prefix = shared_prefix([alone[i] for i in todo])
    for batch in batches([len(alone[i].ids) - prefix for i in todo]):
        rows = [todo[b] for b in batch]
        loss_alone[rows] = extractor.response_losses([alone[i] for i in rows], prefix=prefix)
    loss_cond = np.asarray(loss_cond, dtype=np.float32)
    missing = int(np.isnan(loss_cond).sum())
    if missing:
        log.debug("%d of %d rows have no response tokens after truncation: their scores are NaN",
                  missing, len(loss_cond))
    return {"loss_cond": loss_cond, "loss_alone": loss_alone, "ifd": ifd_ratio(loss_cond, loss_alone)}


__all__ = ["SCORE_COLUMNS", "alone_example", "alone_rendered", "ifd_ratio", "scores_for", "shard_scores", "shared_prefix"]
