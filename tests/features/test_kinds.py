"""Feature kinds in one registry (issue 22): what differs between kinds is asked of the kind."""

from __future__ import annotations

import typing

import pytest

from coreselect.errors import ConfigError
from coreselect.features.config import FeatureConfig, FeatureKind
from coreselect.features.kinds import available_kinds, find_kind, get_kind


def test_every_kind_of_the_option_is_registered_and_says_what_differs():
    assert available_kinds() == sorted(typing.get_args(FeatureKind)) == ["activations", "hidden", "text"]
    for name in available_kinds():
        kind = get_kind(name)
        assert kind.name == name and kind.description and kind.group and kind.default_layers
        assert callable(kind.resolve_model) and callable(kind.shard_function) and callable(kind.token_counts)
    assert find_kind("nope") is None
    with pytest.raises(ConfigError, match=r"^unknown feature kind 'hiden'\. Did you mean hidden\?"):
        get_kind("hiden")


def test_what_the_kinds_decide_is_what_it_was():
    from coreselect.features.activations import group_names
    from coreselect.features.config import DEFAULT_LAYERS
    from coreselect.job import resolve_features
    from coreselect.recordcache import model_precision

    assert DEFAULT_LAYERS == {"activations": (15,), "hidden": (-1,), "text": (-1,)}
    assert [FeatureConfig(kind=k).layers for k in ("activations", "hidden", "text")] == [(15,), (-1,), (-1,)]
    text = FeatureConfig(kind="text", precision="fp32")  # its own precision: none in the key, float32 rows
    assert "precision" not in text.to_json() and text.resolved_precision() == "fp32"
    assert model_precision(text) == "float32" and text.with_resolved_precision() is text
    assert FeatureConfig(precision="fp32").to_json()["precision"] == "fp32"
    lm = FeatureConfig(precision="fp32")
    assert lm.with_resolved_precision() is lm and FeatureConfig().with_resolved_precision().precision != "auto"
    with pytest.raises(ConfigError, match=r"^--scores needs a language model \(--features activations or hidden\), "
                                          r"not text embeddings$"):
        FeatureConfig(kind="text", scores=("ifd",))
    with pytest.raises(ConfigError, match=r"^method 'ifd' reads the selector LM's ifd scores: use --features "
                                          r"activations or hidden, not text$"):
        resolve_features(FeatureConfig(kind="text"), "ifd")
    assert group_names(FeatureConfig(layers=(1, 2)), 4) == ["mlp.1", "mlp.2"]
    assert group_names(FeatureConfig(layers=(1,), with_hidden=True), 4) == ["mlp.1", "hidden.1"]
    assert group_names(FeatureConfig(kind="hidden", layers=(-1,), with_hidden=True), 4) == ["hidden.3"]
    with pytest.raises(ConfigError, match=r"^--features must be one of activations, hidden, text, got 'words'$"):
        FeatureConfig(kind="words")  # type: ignore[arg-type]


def test_the_text_kind_counts_tokens_as_its_encoder_does():
    import numpy as np

    from coreselect.data import from_records

    class Tok:  # one token per character, two special tokens
        def __call__(self, texts, add_special_tokens=True):
            return {"input_ids": [[0] * (len(t) + 2) for t in texts]}

    ds = from_records([{"instruction": "Hi", "output": "Yo"}, {"instruction": "x" * 40, "output": "y"}])
    lengths, cut = get_kind("text").token_counts(FeatureConfig(kind="text", max_length=16), ds.examples, Tok())
    assert lengths.tolist() == [8, 16] and cut == 1 and isinstance(lengths, np.ndarray)
