"""Response scores (``--scores ifd``): against a plain Hugging Face full-logits forward, stored
beside the features without changing them, and end to end through the CLI on a tiny model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from coreselect.cli.main import main
from coreselect.data import Example, load_dataset
from coreselect.engine import extract_features
from coreselect.features.config import SCORE_NAMES, FeatureConfig
from coreselect.features.extract import default_system_prefix, render_examples, store_key
from coreselect.features.scores import SCORE_COLUMNS, alone_example
from coreselect.models import ModelSpec
from coreselect.store import ROW_SCORES, FeatureStore

RECORDS = [
    {"instruction": "Name three primary colours.", "input": "", "output": "Red, yellow and blue."},
    {"instruction": "What is 2+2?", "input": "", "output": "4"},
    {"instruction": "Summarise the text.", "input": "The cat sat on the mat all day long, watching birds.",
     "output": "A cat sat on a mat and watched birds all day."},
    {"instruction": "Write a haiku about rain.", "input": "", "output": "Soft rain on the roof\nthe garden drinks "
     "slowly\nclouds drift far away " * 3},
    {"instruction": "Translate to French: good morning, how are you today? " * 6, "input": "",
     "output": "Bonjour, comment allez-vous aujourd'hui ?"},
]


def full_logits_loss(model, ids, response_start):
    """Mean NLL of ``ids[response_start:]`` from the model's plain forward (logits everywhere)."""
    if response_start >= len(ids):
        return float("nan")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
    return float(nll[response_start - 1:].mean())


@pytest.mark.parametrize("drop_default_system", [False, True])
@pytest.mark.parametrize("max_length", [512, 70])
def test_scores_equal_a_full_logits_forward(tiny_model, tokenizer, alpaca_file, tmp_path, drop_default_system,
                                            max_length, default_spec, one_torch_thread):
    ds = load_dataset(alpaca_file(RECORDS))
    cfg = FeatureConfig(layers=(1,), scores=("ifd",), max_length=max_length, drop_default_system=drop_default_system)
    store = extract_features(ds, default_spec, cfg, tmp_path / "st", loaded=(tiny_model, tokenizer), progress=False,
                             shard_rows=2, batch_tokens=128)  # several shards, several padded batches
    got = store.load()
    prefix = default_system_prefix(tokenizer) if drop_default_system else []
    cond = render_examples(ds.examples, tokenizer, max_length, prefix)
    alone = render_examples([alone_example(ex) for ex in ds.examples], tokenizer, 1 << 30, prefix)
    for i, (c, a) in enumerate(zip(cond, alone)):
        n_response = max(0, len(c.ids) - c.response_start)
        ref_cond = full_logits_loss(tiny_model, c.ids, c.response_start)
        ref_alone = full_logits_loss(tiny_model, a.ids[: a.response_start + n_response], a.response_start)
        np.testing.assert_allclose(got["loss_cond"][i], ref_cond, rtol=1e-5, equal_nan=True)
        np.testing.assert_allclose(got["loss_alone"][i], ref_alone, rtol=1e-5, equal_nan=True)
        np.testing.assert_allclose(got["ifd"][i], ref_cond / ref_alone, rtol=2e-5, equal_nan=True)
        assert got["response_tokens"][i] == n_response
    if max_length == 70:
        assert np.isnan(got["ifd"]).any() and not np.isnan(got["ifd"]).all()  # the long prompt lost its response
    assert store.manifest["scores"] == list(ROW_SCORES) and store.manifest["dims"] == {"mlp.1": 48}
    assert got["loss_cond"].dtype == np.float32


def test_scores_without_a_chat_template_use_the_alpaca_prompt(tiny_model, tokenizer, alpaca_file, tmp_path,
                                                             default_spec, one_torch_thread):
    import copy

    from coreselect.features.render import ALPACA_PROMPT

    base = copy.deepcopy(tokenizer)
    base.chat_template = None  # a base model, as Gemma 3 270M
    ds = load_dataset(alpaca_file(RECORDS[:3]))
    store = extract_features(ds, default_spec, FeatureConfig(layers=(1,), scores=("ifd",)), tmp_path / "st",
                             loaded=(tiny_model, base), progress=False)
    got = store.load(["loss_cond", "loss_alone"])
    alone = render_examples([alone_example(ex) for ex in ds.examples], base, 1 << 30)
    assert base.decode(alone[0].ids).startswith(ALPACA_PROMPT + "### Instruction:\n\n\n### Response:\n")
    for i, (c, a) in enumerate(zip(render_examples(ds.examples, base, 512), alone)):
        np.testing.assert_allclose(got["loss_cond"][i], full_logits_loss(tiny_model, c.ids, c.response_start),
                                   rtol=1e-5)
        np.testing.assert_allclose(got["loss_alone"][i], full_logits_loss(tiny_model, a.ids, a.response_start),
                                   rtol=1e-5)


@pytest.mark.parametrize("span", ["all", "prompt"])
def test_scores_leave_the_features_unchanged(tiny_model, tokenizer, alpaca_file, tmp_path, default_spec,
                                             one_torch_thread, span):
    ds = load_dataset(alpaca_file(RECORDS))
    kw = {"loaded": (tiny_model, tokenizer), "progress": False}
    cfg = FeatureConfig(layers=(1, 3), with_hidden=True, pooling="mean", span=span)
    plain = extract_features(ds, default_spec, cfg, tmp_path / "a", **kw)
    scored = extract_features(ds, default_spec, replace(cfg, scores=("ifd",)), tmp_path / "b", **kw)
    a, b = plain.load(), scored.load()
    assert set(b) - set(a) == set(ROW_SCORES) and plain.groups == scored.groups
    for k in a:
        if span == "all":  # the same rows, the same batches: bit for bit
            np.testing.assert_array_equal(a[k], b[k])
        else:  # the plain pass feeds the prompts only, the scored one whole rows: equal up to rounding
            np.testing.assert_allclose(a[k], b[k], rtol=2e-3, atol=1e-5)
    assert "scores" not in plain.manifest and plain.columns == ["n_tokens", "prompt_tokens", "response_tokens", "truncated"]


def test_the_store_key_without_scores_is_the_committed_one(monkeypatch):
    """Keys computed by the code before scores existed: existing (bf16) stores stay valid."""
    monkeypatch.setattr("coreselect.device._proc_cpuinfo", lambda: "flags: avx2 avx512_bf16")
    spec = ModelSpec("m", "/x", "sha256:abc")
    assert store_key("data-fp", spec, FeatureConfig(pooling="mean", span="all")) == \
        "0f4bc8575eceeea45aa0400b0f91e63b39d3c61eb1b41fc3e0f784cca67362a6"
    cfg = FeatureConfig(kind="hidden", layers=(3,), drop_default_system=True, pooling="mean", span="all")
    assert store_key("data-fp", spec, cfg) == "a2a0d21c1593e1efe530dad6bac9fe7c13a7468c68e32ef31993ed6799f7ae2c"
    assert "scores" not in FeatureConfig().to_json()
    assert store_key("data-fp", spec, FeatureConfig(scores=("ifd",))) != store_key("data-fp", spec, FeatureConfig())


def test_score_names_and_columns_agree():
    assert tuple(SCORE_COLUMNS) == SCORE_NAMES
    assert sorted(c for cols in SCORE_COLUMNS.values() for c in cols) == sorted(ROW_SCORES)


def test_alone_example_is_the_last_response_after_an_empty_user_turn():
    ex = Example(3, (("system", "Be terse."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye?"),
                     ("assistant", "Bye.")), {"k": 1}, 7, 9)
    a = alone_example(ex)
    assert a.messages == (("user", ""), ("assistant", "Bye.")) and (a.index, a.line, a.source_index) == (3, 7, 9)


def test_bad_scores_options_are_one_line_errors(tmp_path, alpaca_file, tiny_dir, capsys):
    from _reliability import assert_one_line_error

    data = alpaca_file(RECORDS)
    code = main(["extract", str(data), "-o", str(tmp_path / "x"), "--model", str(tiny_dir), "--scores", "ppl"])
    assert_one_line_error(code, capsys.readouterr().err, r"^--scores must name scores among ifd, got 'ppl'$")
    code = main(["select", str(data), "--n", "2", "--method", "ifd", "--features", "text"])
    assert_one_line_error(code, capsys.readouterr().err, r"^method 'ifd' reads the selector LM's ifd scores")


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory, tiny_dir):
    from _reliability import TINY_ARGS

    d = tmp_path_factory.mktemp("cli")
    data = d / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS * 4))
    assert main(["extract", str(data), "-o", str(d / "feats"), "--model", str(tiny_dir), "--scores", "ifd",
                 *TINY_ARGS]) == 0
    return d, data


def test_extract_with_scores_ifd_through_the_cli(cli_store, capsys):
    d, _ = cli_store
    store = FeatureStore.open(d / "feats")
    assert store.manifest["config"]["scores"] == ["ifd"] and store.manifest["scores"] == list(ROW_SCORES)
    s = store.load(["ifd", "loss_cond", "loss_alone"])
    np.testing.assert_allclose(s["ifd"], s["loss_cond"] / s["loss_alone"], rtol=1e-6)
    assert np.isfinite(s["ifd"]).all()


def test_select_turns_scores_on_for_a_method_that_needs_them(cli_store, tiny_dir, capsys):
    from _reliability import TINY_ARGS, read_manifest

    d, data = cli_store
    out = d / "core.jsonl"
    assert main(["select", str(data), "--n", "5", "--method", "ifd", "-o", str(out), "--model", str(tiny_dir),
                 "--work-dir", str(d / "work"), *TINY_ARGS]) == 0
    m = read_manifest(out)
    assert m["features"]["config"]["scores"] == ["ifd"]
    ifd = FeatureStore.open(m["features"]["store"]).load(["ifd"])["ifd"]
    below = [i for i in np.argsort(-ifd, kind="stable") if ifd[i] < 1]
    assert m["rows"] == (below + [i for i in np.argsort(ifd, kind="stable") if ifd[i] >= 1])[:5]
    assert m["budget"]["picked_tokens"] > 0 and "tokens" not in m["budget"]


def tiny_gemma3(vocab_size):
    """A randomly initialised 2-layer Gemma 3 text model: sliding-window and global layers."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=8,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=512)
    return Gemma3ForCausalLM(cfg).eval()


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_the_cached_prefix_changes_no_loss(arch, tiny_model, tokenizer, alpaca_file, one_torch_thread):
    """``loss_alone`` with the shared system turn run once and cached equals the plain forward."""
    from coreselect.features.activations import ActivationExtractor
    from coreselect.features.scores import alone_example, shared_prefix

    model = tiny_model if arch == "llama" else tiny_gemma3(len(tokenizer))
    examples = load_dataset(alpaca_file(RECORDS)).examples
    rows = render_examples([alone_example(ex) for ex in examples], tokenizer, 1 << 30)
    prefix = shared_prefix(rows)
    assert prefix >= 10  # SmolLM2's default system turn and the empty user turn
    ext = ActivationExtractor(model, tokenizer, FeatureConfig(layers=(1,), scores=("ifd",)))
    for batch in (rows, rows[:1], rows[2:]):  # padded rows of several lengths, and one row alone
        np.testing.assert_allclose(ext.response_losses(batch, prefix=prefix), ext.response_losses(batch),
                                   rtol=1e-5)

