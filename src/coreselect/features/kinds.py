"""Feature kinds: what differs between MLP activations, hidden states and text embeddings, in one
registry (as selection methods are in :mod:`coreselect.selection.base`).

A kind is one module holding an object with the attributes and methods of :class:`Kind`, and
one entry in :func:`_registry`: :mod:`coreselect.features.lm` (``activations``, ``hidden``: the
selector LM's states), :mod:`coreselect.features.text` (``text``: a sentence encoder). Whatever
depends on the kind asks it (:func:`get_kind`, or ``FeatureConfig.kind_spec``), never
``kind == "text"``:

====================  ========================================================================
``group``             its feature groups in the store (``mlp.15``, ``hidden.29``, ``text``)
``default_layers``    the layers tapped when none are given (``FeatureConfig(layers=None)``)
``scores``            whether per-record scores (``--scores ifd``) can be computed (an LM head)
``precision``         the precision it always runs in; None: ``--precision``, resolved on this
                      machine (then also in the store's key and the record cache's folder)
``layered``           whether layers and pooling describe its features (``coreselect cache list``)
``resolve_model``     ``--model`` (None: the kind's default) -> the model to load
``shard_function``    the function turning one shard's examples into its arrays (its store groups,
                      such as ``mlp.15`` or ``text``, and the per-row stats): a
                      :func:`functools.partial` carrying the ``tokenizer`` that counts its tokens
                      and the ``device`` it runs on (``select --dry-run`` reads them)
``token_counts``      every record's tokens as extraction counts them (``select --dry-run``)
====================  ========================================================================

A new kind is one module and an entry here (and its name in
:data:`~coreselect.features.config.FeatureKind`, the option's choices).

Examples
--------
>>> get_kind("text").scores, get_kind("activations").default_layers
(False, (15,))
>>> available_kinds(scores=True)
['activations', 'hidden']
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from coreselect.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from coreselect.data import Example
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec

#: One shard's examples -> its arrays (feature groups, per-row stats, and scores when asked).
ShardFn = Callable[..., "dict[str, np.ndarray]"]


class Kind(Protocol):
    """What a feature kind registers (see the module docstring)."""

    name: str
    #: What its features are, in messages ("text embeddings").
    description: str
    #: Its feature groups in the store: ``<group>.<layer>`` (``mlp.15``), or ``<group>`` (``text``).
    group: str
    default_layers: tuple[int, ...]
    scores: bool
    precision: str | None
    layered: bool

    def resolve_model(self, model: str | None, *, trust_remote_code: bool = False, progress: bool = True
                      ) -> ModelSpec:
        """The model that extracts this kind's features (None: the kind's default)."""

    def shard_function(self, model: ModelSpec, config: FeatureConfig, *, batch_tokens: int,
                       trust_remote_code: bool = False, loaded: tuple[Any, Any] | None = None,
                       describe: bool = False, on_batch: Callable[[int, int], None] | None = None) -> ShardFn:
        """The per-shard function of ``model`` x ``config`` (loads the model, or uses ``loaded``)."""

    def token_counts(self, config: FeatureConfig, examples: Sequence[Example], tokenizer: Any
                     ) -> tuple[np.ndarray, int]:
        """Every record's tokens after truncation, and how many records are cut."""


@functools.cache
def _registry() -> dict[str, Kind]:
    """The built-in kinds by name: a new kind is one module and an entry here."""
    from coreselect.features.lm import ACTIVATIONS, HIDDEN
    from coreselect.features.text import TEXT

    return {kind.name: kind for kind in (ACTIVATIONS, HIDDEN, TEXT)}


def find_kind(name: str) -> Kind | None:
    """The kind called ``name``; None when there is none."""
    return _registry().get(name)


def get_kind(name: str) -> Kind:
    """The kind called ``name``; an unknown name is a one-line error suggesting the closest.

    >>> get_kind("txt")
    Traceback (most recent call last):
    ...
    coreselect.errors.ConfigError: unknown feature kind 'txt'. Did you mean text? Available: activations, hidden, text
    """
    kind = find_kind(name)
    if kind is None:
        close = difflib.get_close_matches(str(name), _registry(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown feature kind {name!r}.{hint} Available: {', '.join(available_kinds())}")
    return kind


def available_kinds(*, scores: bool = False) -> list[str]:
    """The kinds' names (with ``scores``, those that can score records), sorted."""
    return sorted(name for name, kind in _registry().items() if kind.scores or not scores)


__all__ = ["Kind", "ShardFn", "available_kinds", "find_kind", "get_kind"]
