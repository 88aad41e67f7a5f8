from __future__ import annotations

import numpy as np
import pytest
import torch

from coreselect.data import Example
from coreselect.features.activations import ActivationExtractor, length_batches
from coreselect.features.config import FeatureConfig
from coreselect.features.render import render_batch

EXAMPLES = [
    Example(0, (("user", "Name three primary colours."), ("assistant", "Red, yellow and blue.")), {}, 1),
    Example(1, (("user", "What is 2+2?"), ("assistant", "4")), {}, 2),
    Example(2, (("system", "Be terse."), ("user", "Summarise: the cat sat on the mat all day long."),
                ("assistant", "A cat sat on a mat.")), {}, 3),
]


def reference(model, ids, layer, lo, hi, pooling):
    """Run one unpadded example, capture down_proj's input with a plain hook, pool by hand."""
    seen = {}
    h = model.model.layers[layer].mlp.down_proj.register_forward_pre_hook(
        lambda m, a: seen.__setitem__("x", a[0][0].float()))
    with torch.no_grad():
        model(torch.tensor([ids]))
    h.remove()
    x = seen["x"][lo:hi]
    return {"mean": x.mean(0), "max": x.max(0).values, "last": x[-1]}[pooling].numpy()


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
@pytest.mark.parametrize("span", ["all", "response", "prompt"])
def test_pooled_activations_match_unbatched_reference(tiny_model, tokenizer, pooling, span):
    cfg = FeatureConfig(layers=(1, 3), pooling=pooling, span=span)
    ext = ActivationExtractor(tiny_model, tokenizer, cfg)
    rendered = render_batch(EXAMPLES, tokenizer, 512)
    got = ext.extract_batch(rendered)
    for i, r in enumerate(rendered):
        lo, hi = {"all": (r.content_start, len(r.ids)), "response": (r.response_start, len(r.ids)),
                  "prompt": (r.content_start, r.response_start)}[span]
        for layer in (1, 3):
            ref = reference(tiny_model, r.ids, layer, lo, hi, pooling)
            np.testing.assert_allclose(got[f"mlp.{layer}"][i], ref, rtol=1e-4, atol=1e-5)


def test_left_and_right_padding_give_the_same_features(tiny_model, tokenizer):
    ext = ActivationExtractor(tiny_model, tokenizer, FeatureConfig(layers=(2,), with_hidden=True))
    rendered = render_batch(EXAMPLES, tokenizer, 512)
    right = ext.extract_batch(rendered, padding_side="right")
    left = ext.extract_batch(rendered, padding_side="left")
    for k in right:
        np.testing.assert_allclose(left[k], right[k], rtol=1e-4, atol=1e-5)


def test_hidden_state_of_last_layer_is_hf_last_hidden_state(tiny_model, tokenizer):
    ext = ActivationExtractor(tiny_model, tokenizer, FeatureConfig(kind="hidden", layers=(-1,), pooling="mean",
                                                                   span="all"))
    r = render_batch(EXAMPLES[:1], tokenizer, 512)[0]
    got = ext.extract_batch([r])["hidden.3"][0]
    with torch.no_grad():
        h = tiny_model.model(torch.tensor([r.ids])).last_hidden_state[0, r.content_start:]
    np.testing.assert_allclose(got, h.mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_spans_point_at_the_prompt_and_response(tokenizer):
    r = render_batch(EXAMPLES[:1], tokenizer, 512)[0]
    assert tokenizer.decode(r.ids[r.content_start:r.response_start]).startswith("Name three primary colours.")
    assert tokenizer.decode(r.ids[r.response_start:]).startswith("Red, yellow and blue.")


def test_truncation_is_flagged(tokenizer):
    long = Example(0, (("user", "word " * 400), ("assistant", "ok")), {}, 1)
    r = render_batch([long], tokenizer, 64)[0]
    assert r.truncated and len(r.ids) == 64


def test_length_batches_cover_every_row_once_within_budget():
    lengths = [5, 300, 17, 17, 90, 1, 250, 64] * 5
    batches = list(length_batches(lengths, max_tokens=600, max_batch=8))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= max(600, max(lengths))
        assert len(b) <= 8


def test_bad_layer_is_a_one_line_error(tiny_model, tokenizer):
    from coreselect.errors import ConfigError

    with pytest.raises(ConfigError, match="layer 9 out of range: the model has 4 layers"):
        ActivationExtractor(tiny_model, tokenizer, FeatureConfig(layers=(9,)))


def test_drop_default_system_leaves_out_only_the_template_default(tiny_model, tokenizer):
    from coreselect.features.extract import default_system_prefix, extract_shard

    prefix = default_system_prefix(tokenizer)
    assert tokenizer.decode(prefix).startswith("<|im_start|>system\nYou are a helpful")
    assert tokenizer.decode(prefix).endswith("<|im_end|>\n")
    ext = ActivationExtractor(tiny_model, tokenizer, FeatureConfig(layers=(1,), drop_default_system=True,
                                                                   pooling="mean", span="all"))
    got = extract_shard(ext, EXAMPLES)
    full = render_batch(EXAMPLES, tokenizer, 512)
    n = len(prefix)
    # EXAMPLES[2] has its own system turn: nothing to drop there
    assert got["n_tokens"].tolist() == [len(full[0].ids) - n, len(full[1].ids) - n, len(full[2].ids)]
    r = full[0]
    assert r.ids[:n] == prefix
    ref = reference(tiny_model, r.ids[n:], 1, r.content_start - n, len(r.ids) - n, "mean")
    np.testing.assert_allclose(got["mlp.1"][0], ref, rtol=1e-4, atol=1e-5)
    # the default keeps the store keys of existing feature stores
    assert "drop_default_system" not in FeatureConfig().to_json()
    assert FeatureConfig(drop_default_system=True).to_json()["drop_default_system"] is True


def test_length_batches_bound_padding_waste():
    lengths = list(range(20, 400, 3)) * 4
    batches = list(length_batches(lengths, max_tokens=8192, max_batch=64, max_waste=0.1))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        width = max(lengths[i] for i in b)
        assert sum(width - lengths[i] for i in b) <= 0.1 * width * len(b)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_prompt_span_features_need_no_response_tokens(tiny_model, tokenizer, pooling):
    """--span prompt feeds the prompt only (a causal LM's prompt states ignore what follows): the
    features equal those of a forward over the whole example, on fewer tokens."""
    from coreselect.features.extract import extract_shard

    cfg = FeatureConfig(layers=(1, 3), pooling=pooling, span="prompt", with_hidden=True)
    ext = ActivationExtractor(tiny_model, tokenizer, cfg)
    fed = []
    got = extract_shard(ext, EXAMPLES, on_batch=lambda rows, tokens: fed.append(tokens))
    full = ext.extract_batch(render_batch(EXAMPLES, tokenizer, 512))
    for k in full:
        np.testing.assert_allclose(got[k], full[k], rtol=1e-4, atol=1e-5)
    assert sum(fed) == int(got["n_tokens"].sum() - got["response_tokens"].sum())
