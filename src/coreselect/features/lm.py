"""The language-model kinds: ``activations`` (gated-MLP neurons, MADS) and ``hidden`` (layer
outputs, LTD), extracted by running the selector LM over each rendered conversation.

One module per feature kind (:mod:`coreselect.features.kinds`): this one registers what the two
LM kinds share and where they differ (their default layers), and holds their extraction:
:func:`render_examples` (the chat template, or the Alpaca-style prompt, without the template's
default system turn when asked), :func:`extract_shard` (length-sorted batches through an
:class:`~coreselect.features.activations.ActivationExtractor`, checkpoints, scores) and
:meth:`LanguageModelKind.shard_function` (the model loaded once per process or actor).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.checkpoint import CHECKPOINT_SECONDS
from coreselect.data import Example
from coreselect.features.activations import ActivationExtractor, length_batches
from coreselect.features.render import Rendered, has_chat_template, render_batch
from coreselect.features.scores import shard_scores
from coreselect.models import ModelSpec, load_model, resolve_model

if TYPE_CHECKING:
    from coreselect.features.config import FeatureConfig
    from coreselect.features.kinds import ShardFn

log = logging.getLogger(__name__)

#: Padded tokens per forward pass (batch size x longest row in the batch).
BATCH_TOKENS = 8192
#: Rows per forward pass at most.
MAX_BATCH = 64
#: Largest share of a batch that may be padding (see :func:`length_batches`).
MAX_WASTE = 0.1


@dataclass(frozen=True)
class LanguageModelKind:
    """A feature kind read from the selector LM's states (see :class:`~coreselect.features.kinds.Kind`).

    Its model is a causal LM (a hub id, a folder, a GGUF file); it runs in the ``--precision``
    asked (``auto``: resolved on this machine), and can score each response (``--scores ifd``).
    """

    name: str
    description: str
    group: str
    default_layers: tuple[int, ...]
    scores: bool = True
    precision: str | None = None
    layered: bool = True

    def resolve_model(self, model: str | None, *, trust_remote_code: bool = False, progress: bool = True
                      ) -> ModelSpec:
        return resolve_model(model, trust_remote_code=trust_remote_code, progress=progress)

    def shard_function(self, model: ModelSpec, config: FeatureConfig, *, batch_tokens: int = BATCH_TOKENS,
                       trust_remote_code: bool = False, loaded: tuple[Any, Any] | None = None, describe: bool = False,
                       on_batch: Callable[[int, int], None] | None = None) -> ShardFn:
        """:func:`extract_shard` of an extractor over ``model`` (loaded here, or ``loaded``)."""
        if loaded is None:
            from coreselect.device import describe as describe_device
            from coreselect.device import resolve_device, torch_dtype_name

            device = resolve_device(config.device)
            precision = config.resolved_precision()
            loaded = load_model(model, dtype=torch_dtype_name(precision), device=device,
                                trust_remote_code=trust_remote_code)
            if describe:
                log.info("selector model in %s", describe_device(precision, device))
        m, tok = loaded
        extractor = ActivationExtractor(m, tok, config)
        if describe:
            template = "chat template" if has_chat_template(tok) else "Alpaca-style prompt (no chat template)"
            log.info("extracting %s with %s (%s)", ",".join(extractor.groups), model.name, template)
            if config.drop_default_system:
                n_drop = len(default_system_prefix(tok))
                if n_drop:
                    log.info("leaving out the template's default system turn (%d tokens)", n_drop)
                else:
                    log.warning("drop_default_system: the chat template adds no system turn; nothing dropped")
            if config.scores:
                log.info("scoring responses (%s): the pass continues to the LM head at the response positions, "
                         "plus a response-alone pass", ",".join(config.scores))
        fn = functools.partial(extract_shard, extractor, batch_tokens=batch_tokens, on_batch=on_batch)
        fn.tokenizer, fn.device = tok, str(extractor.device)  # type: ignore[attr-defined]  # what a dry run reads
        return fn

    def token_counts(self, config: FeatureConfig, examples: Sequence[Example], tokenizer: Any
                     ) -> tuple[np.ndarray, int]:
        """Every record's tokens as :func:`extract_shard` renders them, and how many are cut."""
        prefix = default_system_prefix(tokenizer) if config.drop_default_system else []
        rendered = render_examples(examples, tokenizer, config.max_length, prefix)
        return np.array([len(r.ids) for r in rendered]), sum(bool(r.truncated) for r in rendered)


#: The built-in LM kinds (registered in :mod:`coreselect.features.kinds`). The layer tapped when
#: none is given: SmolLM2-135M's layer 15 for MLP activations (MADS), the last layer for hidden
#: states (LTD).
ACTIVATIONS = LanguageModelKind("activations", "MLP activations", "mlp", (15,))
HIDDEN = LanguageModelKind("hidden", "hidden states", "hidden", (-1,))


def default_system_prefix(tokenizer: Any) -> list[int]:
    """Token ids of the system turn a chat template adds to a conversation that has none.

    Two probe conversations are rendered; of the tokens they share before their content, the
    part before the last repeat of the opening token (``<|im_start|>`` for SmolLM2) is the
    default system turn. Empty when the template adds none (or there is no template).

    Examples
    --------
    >>> len(default_system_prefix(smollm2_tokenizer))  # "<|im_start|>system ... <|im_end|>"  # doctest: +SKIP
    21
    """
    if not has_chat_template(tokenizer):
        return []
    probes = [Example(0, (("user", text), ("assistant", "Yes.")), {}, 1) for text in ("Alpha?", "Omega!")]
    a, b = render_batch(probes, tokenizer, 1 << 30)
    shared = 0
    while shared < min(a.content_start, b.content_start) and a.ids[shared] == b.ids[shared]:
        shared += 1
    cut = max((i for i in range(1, shared) if a.ids[i] == a.ids[0]), default=0)
    return list(a.ids[:cut])


def _drop_prefix(r: Rendered, prefix: list[int], max_length: int) -> Rendered:
    n = len(prefix) if r.ids[: len(prefix)] == prefix else 0
    ids = r.ids[n:]
    return Rendered(ids[:max_length], r.content_start - n, r.response_start - n,
                    r.truncated or len(ids) > max_length)


def render_examples(examples: Sequence[Example], tokenizer: Any, max_length: int, prefix: Sequence[int] = ()
                    ) -> list[Rendered]:
    """Render and tokenise examples, leaving out ``prefix`` (the template's default system turn,
    see :func:`default_system_prefix`) where they start with it, truncated to ``max_length``."""
    if not prefix:
        return render_batch(examples, tokenizer, max_length)
    prefix = list(prefix)
    return [_drop_prefix(r, prefix, max_length) for r in render_batch(examples, tokenizer, max_length + len(prefix))]


def extract_shard(
    extractor: ActivationExtractor, examples: Sequence[Example], *, batch_tokens: int = BATCH_TOKENS,
    max_batch: int = MAX_BATCH, max_waste: float = MAX_WASTE, on_batch: Callable[[int, int], None] | None = None,
    resume: tuple[np.ndarray, dict[str, np.ndarray]] | None = None,
    checkpoint: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
    checkpoint_seconds: float = CHECKPOINT_SECONDS,
) -> dict[str, np.ndarray]:
    """Features, per-row stats and (with ``config.scores``) per-row scores of one shard's
    examples, in input order.

    Rows are sorted by length across the shard and batched by :func:`length_batches`;
    ``on_batch(rows, tokens)`` is called after each batch's forward pass (a progress bar).
    ``resume``: ``(rows, arrays)`` done already (a checkpoint); ``checkpoint(rows, arrays)``
    receives the rows done every ``checkpoint_seconds`` and when the work is interrupted.
    """
    cfg = extractor.config
    prefix = default_system_prefix(extractor.tokenizer) if cfg.drop_default_system else []
    rendered = render_examples(examples, extractor.tokenizer, cfg.max_length, prefix)
    # what the forward needs: prompt-span features ignore the response (see prompt_part)
    fed = [prompt_part(r) for r in rendered] if cfg.span == "prompt" and not cfg.scores else rendered
    n = len(rendered)
    out: dict[str, np.ndarray] = {}
    done = np.zeros(n, dtype=bool)

    def batches(lengths: list[int]) -> Iterable[list[int]]:
        return length_batches(lengths, batch_tokens, max_batch, max_waste)

    def keep(rows: Sequence[int], feats: dict[str, np.ndarray]) -> None:
        for name, a in feats.items():
            if name not in out:
                out[name] = np.zeros((n, *a.shape[1:]), dtype=np.float32)
            out[name][rows] = a
        done[rows] = True
        if on_batch is not None:
            on_batch(len(rows), sum(len(fed[i].ids) for i in rows))

    if resume is not None and len(resume[0]):
        keep(resume[0].tolist(), resume[1])
    todo = np.flatnonzero(~done).tolist()
    last = time.perf_counter()
    try:
        for b in batches([len(fed[i].ids) for i in todo]):
            batch = [todo[j] for j in b]
            keep(batch, extractor.extract_batch([fed[i] for i in batch]))
            if checkpoint is not None and time.perf_counter() - last >= checkpoint_seconds and not done.all():
                checkpoint(np.flatnonzero(done), {k: v[done] for k, v in out.items()})
                last = time.perf_counter()
    except BaseException:  # Ctrl-C, a crash: keep the finished batches for the rerun
        if checkpoint is not None and done.any():
            checkpoint(np.flatnonzero(done), {k: v[done] for k, v in out.items()})
        raise
    if cfg.scores:
        out.update(shard_scores(extractor, examples, rendered, out.pop("loss_cond"),
                                lambda exs: render_examples(exs, extractor.tokenizer, 1 << 30, prefix), batches))
    out["n_tokens"] = np.array([len(r.ids) for r in rendered])
    out["prompt_tokens"] = np.array([min(r.response_start, len(r.ids)) - min(r.content_start, len(r.ids))
                                     for r in rendered])
    out["response_tokens"] = np.array([max(0, len(r.ids) - r.response_start) for r in rendered])
    out["truncated"] = np.array([r.truncated for r in rendered], dtype=np.int32)
    return out


def prompt_part(r: Rendered) -> Rendered:
    """``r`` without its response tokens: all that ``--span prompt`` features need, since a causal
    LM's states at the prompt's positions do not depend on later tokens (the forward then costs the
    prompt's tokens only). A row whose prompt span is empty keeps every token (it pools them all).

    >>> prompt_part(Rendered([1, 2, 3, 4, 5], 1, 3, False)).ids
    [1, 2, 3]
    >>> prompt_part(Rendered([1, 2, 3], 2, 2, False)).ids
    [1, 2, 3]
    """
    if r.response_start <= r.content_start or r.response_start >= len(r.ids):
        return r
    return Rendered(r.ids[: r.response_start], r.content_start, r.response_start, r.truncated)


__all__ = ["ACTIVATIONS", "BATCH_TOKENS", "HIDDEN", "MAX_BATCH", "MAX_WASTE", "LanguageModelKind",
           "default_system_prefix", "extract_shard", "prompt_part", "render_examples"]
