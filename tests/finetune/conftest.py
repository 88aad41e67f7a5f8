"""Tiny randomly initialised models for the training tests (no hub, seconds to train)."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 Llama with the default model's tokenizer (chat template included)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from coreselect.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model().path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_alpaca_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny model whose tokenizer has no chat template (Alpaca-style prompts)."""
    import shutil

    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-alpaca")
    for f in tiny_model.iterdir():
        shutil.copy(f, out / f.name)
    tok = AutoTokenizer.from_pretrained(tiny_model)
    tok.chat_template = None
    tok.save_pretrained(out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    return out


def _records(n: int, offset: int = 0) -> list[dict]:
    """Short real-looking Alpaca records (the shared data when present, else synthetic)."""
    src = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca_cleaned.jsonl.gz"
    if src.is_file():
        with gzip.open(src, "rt") as f:
            recs = [json.loads(line) for line in itertools.islice(f, offset, offset + n)]
        for r in recs:  # keep them short: tests train a few steps only
            r["output"] = r["output"][:200]
        return recs
    return [{"instruction": f"Task {i}: name a colour.", "input": "", "output": f"Colour number {i} is blue."}
            for i in range(offset, offset + n)]


@pytest.fixture()
def alpaca_file(tmp_path: Path) -> Path:
    p = tmp_path / "train.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in _records(24)))
    return p


@pytest.fixture()
def records():
    return _records
