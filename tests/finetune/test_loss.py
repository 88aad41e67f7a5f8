"""The response-only loss: mask placement and equality with the plain full-logits loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coreselect.data import load_dataset
from coreselect.finetune.tokenloss import full_logits_nll, response_nll
from coreselect.finetune.train import encode_examples


def _load(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _batch(rows, pad: int):
    """Padded as in training: TRL's collator (right padding, labels padded with -100)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    b = DataCollatorForLanguageModeling(pad_token_id=pad)(
        [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    return b["input_ids"], b["labels"], b["attention_mask"]


@pytest.mark.parametrize("which", ["tiny_model", "tiny_alpaca_model"])
def test_mask_covers_exactly_the_response(which: str, alpaca_file: Path, request: pytest.FixtureRequest) -> None:
    _, tok = _load(request.getfixturevalue(which))
    ds = load_dataset(alpaca_file)
    enc = encode_examples(ds.examples, tok, max_length=4096)
    assert enc.prompt_format == ("chat-template" if which == "tiny_model" else "alpaca")
    assert len(enc.rows) == len(ds) and enc.dropped == 0
    for ex, row in zip(ds.examples, enc.rows):
        labels, ids = row["labels"], row["input_ids"]
        start = next(i for i, x in enumerate(labels) if x != -100)
        assert all(x == -100 for x in labels[:start])  # the prompt is masked ...
        assert labels[start:] == ids[start:]  # ... and every token after it is trained on
        prompt = tok.decode(ids[:start])
        response = tok.decode(ids[start:])
        assert response.strip().startswith(ex.response.strip()[:20])
        assert prompt.endswith("assistant\n" if which == "tiny_model" else "### Response:\n")
        assert response.rstrip().endswith((tok.eos_token, ex.response.strip()[-10:]))


def test_truncation_drops_examples_without_response(tiny_alpaca_model: Path, alpaca_file: Path) -> None:
    _, tok = _load(tiny_alpaca_model)
    enc = encode_examples(load_dataset(alpaca_file).examples, tok, max_length=30)
    assert all(len(r["input_ids"]) <= 30 for r in enc.rows)
    assert enc.dropped + len(enc.rows) == 24 and enc.dropped > 0
    assert all(any(x != -100 for x in r["labels"]) for r in enc.rows)


def test_selected_positions_loss_equals_full_logits_loss(tiny_model: Path, alpaca_file: Path) -> None:
    model, tok = _load(tiny_model)
    rows = encode_examples(load_dataset(alpaca_file).examples[:6], tok, max_length=96).rows
    ids, labels, mask = _batch(rows, tok.pad_token_id)
    loss_sel, n_sel = response_nll(model, ids, labels, mask)
    grad_sel = torch.autograd.grad(loss_sel, [model.model.layers[0].mlp.up_proj.weight])[0]
    loss_ref, n_ref = full_logits_nll(model, ids, labels, mask)
    grad_ref = torch.autograd.grad(loss_ref, [model.model.layers[0].mlp.up_proj.weight])[0]
    assert int(n_sel) == int(n_ref) > 0
    torch.testing.assert_close(loss_sel, loss_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_sel, grad_ref, rtol=1e-4, atol=1e-6)
    # the trainer's normalisation over several micro-batches
    total, _ = response_nll(model, ids, labels, mask, num_items=2 * int(n_sel))
    torch.testing.assert_close(total, loss_ref / 2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl,row_chunk", [("rows", 7), ("trl", 512)])
def test_chunked_and_trl_paths_agree(tiny_model: Path, alpaca_file: Path, impl: str, row_chunk: int,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import coreselect.finetune.tokenloss as tl

    model, tok = _load(tiny_model)
    rows = encode_examples(load_dataset(alpaca_file).examples[:4], tok, max_length=64).rows
    ids, labels, mask = _batch(rows, tok.pad_token_id)
    ref, _ = full_logits_nll(model, ids, labels, mask)
    monkeypatch.setattr(tl, "ROW_CHUNK", row_chunk)  # several checkpointed chunks
    loss, _ = response_nll(model, ids, labels, mask, impl=impl)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-5)
    w = model.model.layers[1].self_attn.q_proj.weight
    g1 = torch.autograd.grad(loss, [w])[0]
    g2 = torch.autograd.grad(full_logits_nll(model, ids, labels, mask)[0], [w])[0]
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)
