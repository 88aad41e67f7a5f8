"""Helpers shared by the reliability tests (bad input, resume, determinism)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

BAD = Path(__file__).resolve().parent / "data" / "bad"
#: Options that make the tiny model usable from the CLI: it has 4 layers, not 30.
TINY_ARGS = ["--layers", "-1", "--no-progress"]


def save_tiny_model(path: Path, tokenizer: Any) -> Path:
    """A randomly initialised 4-layer Llama saved as a model folder, with the real tokenizer.

    Loads in well under a second, so the CLI can run end to end in tests without a model hub.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def assert_one_line_error(code: int, err: str, pattern: str) -> str:
    """The CLI failed with exit code 2 and exactly one stderr line ``coreselect: error: <pattern>``."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert code == 2, (code, err)
    assert lines[0].startswith("coreselect: error: "), lines[0]
    assert re.search(pattern, lines[0][len("coreselect: error: "):]), (pattern, lines[0])
    return lines[0]


def read_manifest(out: Path) -> dict[str, Any]:
    return json.loads(out.with_name(out.name + ".manifest.json").read_text())


def store_tensors(root: Path) -> dict[str, bytes]:
    """Every tensor of every shard as raw bytes, keyed ``shard-00000.safetensors/mlp.3``."""
    from safetensors.numpy import load_file

    out = {}
    for p in sorted(root.glob("shard-*.safetensors")):
        for k, a in load_file(str(p)).items():
            out[f"{p.name}/{k}"] = a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()
    return out
