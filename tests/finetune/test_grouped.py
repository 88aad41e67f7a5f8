"""Per-group scores and rank classification against a plain full-logits reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from coreselect.data import load_dataset
from coreselect.finetune.evaluate import example_logprobs, response_loss
from coreselect.finetune.grouped import group_labels, group_scores, rank_classification
from coreselect.finetune.train import encode_examples


def _load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _reference_sum(model, tok, example) -> float:
    """Summed response log-likelihood from the model's own full-logits forward, one example alone."""
    row = encode_examples([example], tok, 512).rows[0]
    ids = torch.tensor([row["input_ids"]])
    with torch.no_grad():
        logits = model(ids).logits.float()
    lp = torch.log_softmax(logits[0, :-1], -1)
    labels = torch.tensor(row["labels"][1:])
    keep = labels != -100
    return float(lp[keep].gather(1, labels[keep][:, None]).sum())


@pytest.fixture()
def mc_file(tmp_path: Path) -> Path:
    recs = []
    for i in range(6):
        choices = ["yes", "no", "maybe so"] if i % 2 == 0 else ["red", "green"]
        recs.append({"instruction": f"Question {i}: pick one.", "input": "", "output": choices[i % len(choices)],
                     "group": "yn" if i % 2 == 0 else "colour", "choices": choices})
    recs.append({"instruction": "No choices here.", "input": "", "output": "free text", "group": "free"})
    p = tmp_path / "mc.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def test_example_logprobs_match_a_plain_forward_in_input_order(tiny_model, mc_file):
    model, tok = _load(tiny_model)
    ds = load_dataset(mc_file)
    r = example_logprobs(model, tok, ds.examples, batch_size=3)
    for e, s in zip(ds.examples, r.sums):
        assert s == pytest.approx(_reference_sum(model, tok, e), abs=1e-3)
    per = response_loss(model, tok, ds, batch_size=3, per_example=True)["per_example"]
    assert per == pytest.approx([-s / c for s, c in zip(r.sums, r.counts)], abs=1e-5)


def test_rank_classification_picks_the_most_likely_choice(tiny_model, mc_file):
    model, tok = _load(tiny_model)
    ds = load_dataset(mc_file)
    out = rank_classification(model, tok, ds, group_labels(ds, "group"), batch_size=4)
    expect = []
    for e in ds.examples[:6]:
        choices = e.record["choices"]
        from dataclasses import replace
        sums = [_reference_sum(model, tok, replace(e, messages=(("user", e.prompt), ("assistant", c))))
                for c in choices]
        expect.append(float(choices[max(range(len(sums)), key=sums.__getitem__)] == e.response))
    assert out["per_example"][:6] == expect and out["per_example"][6] is None
    assert out["n"] == 6 and out["candidates"] == 15
    assert out["accuracy"] == pytest.approx(sum(expect) / 6, abs=1e-6)
    assert set(out["groups"]) == {"yn", "colour"}


def test_group_scores_macro_and_worst():
    r = group_scores([0.5, 1.5, 4.0, None, 2.0], ["a", "a", "b", "b", "c"])
    assert r["groups"] == {"a": 1.0, "b": 4.0, "c": 2.0}
    assert r["macro"] == pytest.approx(7 / 3, abs=1e-6) and r["worst_group"] == "b" and r["worst"] == 4.0
    acc = group_scores([1.0, 0.0, 1.0], ["x", "y", "y"], worst="min")
    assert acc["worst_group"] == "y" and acc["worst"] == 0.5


def test_group_labels_names_the_record_without_the_column(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"instruction": "a", "input": "", "output": "b", "group": "g"}) + "\n"
                 + json.dumps({"instruction": "c", "input": "", "output": "d"}) + "\n")
    from coreselect.errors import ConfigError

    with pytest.raises(ConfigError, match=r"d.jsonl:2: group_by column 'group' missing"):
        group_labels(load_dataset(p), "group")
