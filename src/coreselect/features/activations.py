"""Model-aware features: gated-MLP neuron activations and hidden states, pooled over tokens.

The MADS idea: run the selector LM over each instruction-response pair and record its neural
activation states. For a gated MLP, ``down_proj(act(gate_proj(x)) * up_proj(x))``, the neuron
activations are the *input* of ``down_proj``; a forward pre-hook on it captures them. Hidden
states are the outputs of decoder layers (the last one after the final norm, as in LTD).

Hooks pool on the fly (no (batch, tokens, neurons) tensor is kept) and the forward pass stops
after the deepest layer asked for, unless the config asks for scores (``--scores ifd``): the same
pass then runs to the final norm and the LM head is applied at the response positions only
(:func:`coreselect.lmhead.labelled_mean_nll`), giving each row's ``loss_cond``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.errors import ConfigError

if TYPE_CHECKING:
    from coreselect.features.config import FeatureConfig

log = logging.getLogger(__name__)


class _Stop(Exception):
    """Raised by the deepest hook: nothing after it is needed."""


def _decoder_layers(model: Any) -> Sequence[Any]:
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise ConfigError(f"{type(model).__name__}: cannot find its decoder layers")


def resolve_layers(config: FeatureConfig, n_layers: int) -> list[int]:
    out = []
    for layer in config.layers:
        li = layer + n_layers if layer < 0 else layer
        if not 0 <= li < n_layers:
            raise ConfigError(f"layer {layer} out of range: the model has {n_layers} layers (0..{n_layers - 1})")
        out.append(li)
    return sorted(set(out))


def taps(config: FeatureConfig) -> list[str]:
    """What is tapped at each layer: the kind's store group (``mlp``: the MLP neurons, ``hidden``:
    the layer outputs; :mod:`coreselect.features.lm`), then hidden states with ``with_hidden``."""
    own = config.kind_spec.group
    return [own] + (["hidden"] if config.with_hidden and own != "hidden" else [])


def group_names(config: FeatureConfig, n_layers: int) -> list[str]:
    """Names of the stored feature groups, e.g. ``["mlp.15"]``."""
    layers = resolve_layers(config, n_layers)
    return [f"{tap}.{li}" for tap in taps(config) for li in layers]


def _pool(x: Any, mask: Any, pooling: str) -> Any:
    """Pool ``x`` (B, T, D) over positions where ``mask`` (B, T) is true; float32 (B, D).

    Works in ``x``'s own dtype (bf16) and accumulates sums in float32: no float32 copy of the
    whole (B, T, D) tensor is made.
    """
    import torch

    m = mask.unsqueeze(-1)
    if pooling == "mean":
        return (x * m).sum(1, dtype=torch.float32) / m.sum(1).clamp(min=1)
    if pooling == "max":
        return x.masked_fill(~m, float("-inf")).amax(1).float().nan_to_num(0.0, neginf=0.0)
    # last: the last position inside the span, whatever the padding side
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask, pos, -1).amax(1).clamp(min=0)
    return x[torch.arange(x.shape[0], device=x.device), last].float()


class ActivationExtractor:
    """Run a causal LM over tokenised batches and return pooled features per group.

    Examples
    --------
    >>> ext = ActivationExtractor(model, tokenizer, FeatureConfig(layers=(15,)))  # doctest: +SKIP
    >>> feats = ext.extract_batch(rendered)  # {"mlp.15": (B, 1536) float32}  # doctest: +SKIP
    """

    def __init__(self, model: Any, tokenizer: Any, config: FeatureConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.layers_ = _decoder_layers(model)
        self.n_layers = len(self.layers_)
        self.groups = group_names(config, self.n_layers)
        self._taps = taps(config)
        self._layer_idx = resolve_layers(config, self.n_layers)

    def extract_batch(self, rendered: Sequence[Any], padding_side: str = "right") -> dict[str, np.ndarray]:
        """Pool features of one batch of :class:`~coreselect.features.render.Rendered`; with
        scores in the config, also each row's ``loss_cond`` (mean NLL of its response tokens)."""
        import torch

        from coreselect.lmhead import labelled_mean_nll

        ids, attn, span, labels = batch_tensors(rendered, self.tokenizer.pad_token_id or 0, self.config.span,
                                                padding_side, self.device)
        positions = (attn.long().cumsum(-1) - 1).clamp(min=0)
        out: dict[str, Any] = {}
        handles = []
        deepest = max(self._layer_idx)
        scoring = bool(self.config.scores)
        want_mlp, want_hidden = "mlp" in self._taps, "hidden" in self._taps

        def mlp_hook(li: int):
            def hook(_mod: Any, args: tuple) -> None:
                out[f"mlp.{li}"] = _pool(args[0], span, self.config.pooling)
                if li == deepest and not want_hidden and not scoring:
                    raise _Stop
            return hook

        def hidden_hook(li: int):
            def hook(_mod: Any, _args: tuple, output: Any) -> None:
                h = output[0] if isinstance(output, tuple) else output
                out[f"hidden.{li}"] = _pool(h, span, self.config.pooling)
                if li == deepest and not scoring:
                    raise _Stop
            return hook

        for li in self._layer_idx:
            layer = self.layers_[li]
            if want_mlp:
                handles.append(layer.mlp.down_proj.register_forward_pre_hook(mlp_hook(li)))
            if want_hidden:
                # The last layer's state is read after the final norm (HF's last_hidden_state).
                target = layer
                if li == self.n_layers - 1 and hasattr(getattr(self.model, "model", None), "norm"):
                    target = self.model.model.norm
                handles.append(target.register_forward_hook(hidden_hook(li)))
        try:
            with torch.inference_mode():
                base = getattr(self.model, "model", self.model)
                res = base(input_ids=ids, attention_mask=attn.long(), position_ids=positions, use_cache=False)
                if scoring:
                    out["loss_cond"] = labelled_mean_nll(self.model, res.last_hidden_state, labels)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        return {g: out[g].cpu().numpy() for g in self.groups + (["loss_cond"] if scoring else [])}

    def response_losses(self, rendered: Sequence[Any], prefix: int = 0) -> np.ndarray:
        """Mean NLL of each row's response tokens, from a plain forward (no hooks): the
        ``loss_alone`` pass. NaN for a row without response tokens.

        ``prefix``: the number of leading tokens every row shares (the chat template's system turn
        and empty user turn), run once and reused as a key-value cache for every batch; it must end
        before the first response token's predecessor (:func:`~coreselect.features.scores.shared_prefix`).
        """
        import copy

        import torch

        from coreselect.lmhead import labelled_mean_nll

        base = getattr(self.model, "model", self.model)
        rows = [type(r)(r.ids[prefix:], 0, r.response_start - prefix, r.truncated) for r in rendered] \
            if prefix else rendered
        with torch.inference_mode():
            ids, attn, _, labels = batch_tensors(rows, self.tokenizer.pad_token_id or 0, "all", "right", self.device)
            attn = attn.long()
            positions = prefix + (attn.cumsum(-1) - 1).clamp(min=0)
            cache: dict[str, Any] = {"use_cache": False}
            if prefix:
                kwarg, cached = self._prefix_cache(tuple(rendered[0].ids[:prefix]))
                past = copy.deepcopy(cached)
                past.batch_repeat_interleave(len(rows))
                attn = torch.cat([torch.ones((len(rows), prefix), dtype=torch.long, device=self.device), attn], dim=1)
                cache = {"use_cache": True, kwarg: past}
            hidden = base(input_ids=ids, attention_mask=attn, position_ids=positions, **cache).last_hidden_state
            return labelled_mean_nll(self.model, hidden, labels).cpu().numpy()

    def _prefix_cache(self, ids: tuple[int, ...]) -> tuple[str, Any]:
        """``(forward argument name, key-value cache)`` of ``ids`` (one row), computed once per
        distinct prefix."""
        import torch

        cached = getattr(self, "_prefix", None)
        if cached is None or cached[0] != ids:
            base = getattr(self.model, "model", self.model)
            row = torch.tensor([ids], dtype=torch.long, device=self.device)
            out = base(input_ids=row, use_cache=True)
            cache = getattr(out, "cache", None)
            self._prefix = (ids, (_cache_kwarg(base), cache if cache is not None else out.past_key_values))
        return self._prefix[1]

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


def _cache_kwarg(module: Any) -> str:
    """The forward's key-value cache argument: ``cache`` (transformers >= 5.2x), else ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def batch_tensors(rendered: Sequence[Any], pad: int, span_name: str, padding_side: str = "right",
                  device: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(ids, attention, span, labels)`` of a padded batch of rendered rows.

    ``span`` marks the positions pooled for ``span_name`` (all, prompt or response; the whole
    sequence when that span is empty after truncation); ``labels`` are the ids at the response
    positions and ``-100`` elsewhere (aligned with ``ids``, as Hugging Face causal LMs take them).

    Examples
    --------
    >>> from coreselect.features.render import Rendered
    >>> ids, attn, span, labels = batch_tensors([Rendered([5, 6, 7], 0, 2, False)], 0, "prompt")
    >>> span.tolist(), labels.tolist()
    ([[True, True, False]], [[-100, -100, 7]])
    """
    import torch

    B = len(rendered)
    T = max(len(r.ids) for r in rendered)
    ids = torch.full((B, T), pad, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    attn = torch.zeros((B, T), dtype=torch.bool)
    span = torch.zeros((B, T), dtype=torch.bool)
    for i, r in enumerate(rendered):
        n = len(r.ids)
        off = T - n if padding_side == "left" else 0
        row = torch.tensor(r.ids, dtype=torch.long)
        ids[i, off : off + n] = row
        attn[i, off : off + n] = True
        start = min(r.response_start, n)
        labels[i, off + start : off + n] = row[start:]
        lo, hi = {"all": (r.content_start, n), "prompt": (r.content_start, r.response_start),
                  "response": (r.response_start, n)}[span_name]
        lo, hi = min(lo, n), min(hi, n)
        if hi <= lo:  # empty span after truncation: fall back to the whole sequence
            lo, hi = 0, n
        span[i, off + lo : off + hi] = True
    if device is not None:
        ids, attn, span, labels = ids.to(device), attn.to(device), span.to(device), labels.to(device)
    return ids, attn, span, labels


def length_batches(
    lengths: Sequence[int], max_tokens: int, max_batch: int = 64, max_waste: float = 0.1
) -> Iterable[list[int]]:
    """Group row positions into batches of similar length (longest first) under a token budget.

    Sorting by length keeps padding low; the budget (``batch size x longest row``) keeps the
    activation memory of each forward pass bounded; a row shorter than ``1 - max_waste`` of its
    batch's longest row starts a new batch, so padding is at most ``max_waste`` of every batch
    (the long tail of a pool then runs in small batches, which costs little on a CPU).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batch: list[int] = []
    for i in order:
        width = lengths[batch[0]] if batch else lengths[i]
        if batch and ((len(batch) + 1) * width > max_tokens or len(batch) >= max_batch
                      or lengths[i] < (1.0 - max_waste) * width):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch
