"""Shared fixtures: the real default model's tokenizer, a tiny random Llama, shared data paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: Under ``--doctest-modules`` pytest also imports every ``conftest.py`` as a test module named
#: ``conftest``; the folders' conftests share that name, so one loaded just before (tests/compare
#: sorts before this file) makes that import an "import file mismatch". They hold no doctests.
collect_ignore_glob = ["conftest.py", "*/conftest.py"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def default_spec():
    from coreselect.models import resolve_model

    return resolve_model()


@pytest.fixture(scope="session")
def tokenizer(default_spec):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(default_spec.path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    """A randomly initialised 4-layer Llama with the real tokenizer's vocabulary (fast)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def alpaca_file(tmp_path):
    def make(records, name="data.jsonl"):
        p = tmp_path / name
        p.write_text("".join(json.dumps(r) + "\n" for r in records))
        return p

    return make


def shared(name: str) -> Path:
    p = SHARED_DATA / name
    if not p.is_file():
        pytest.skip(f"shared data {p} not present")
    return p


@pytest.fixture(scope="module")
def one_torch_thread():
    """The tiny model runs faster on one thread, much faster on a busy machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny random Llama saved as a model folder (with the real tokenizer)."""
    from _reliability import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", tokenizer)


# -- the record cache (coreselect.recordcache): never the user's; empty for each test ----------------
@pytest.fixture(scope="session", autouse=True)
def _session_record_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORESELECT_RECORD_CACHE", str(tmp_path_factory.mktemp("records-session")))
        yield


@pytest.fixture(scope="module", autouse=True)
def _module_record_cache(tmp_path_factory):
    """Module fixtures (a store built once per module) get their own cache, not another module's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORESELECT_RECORD_CACHE", str(tmp_path_factory.mktemp("records-module")))
        yield


@pytest.fixture(autouse=True)
def record_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test extracts into an empty record cache, so what it extracts never depends on the
    tests before it; a test that wants reuse runs twice within itself."""
    path = tmp_path_factory.mktemp("records")
    monkeypatch.setenv("CORESELECT_RECORD_CACHE", str(path))
    return path
