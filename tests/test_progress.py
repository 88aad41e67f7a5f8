"""Ctrl-C and progress on medium pools (issue 13): a shard in progress keeps its finished batches,
and the bar advances per batch, not per shard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _reliability import TINY_ARGS
from coreselect.cli.main import main

N = 100  # a medium pool for the tiny model: one 512-row shard before


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("medium") / "data.jsonl"
    # lengths from a few to a few hundred tokens: batches of similar length, several per shard
    p.write_text("".join(json.dumps({"instruction": f"Task {i}: " + "word " * (i * 37 % 301), "output": "ok"})
                         + "\n" for i in range(N)))
    return p


def test_ctrl_c_in_select_keeps_the_finished_batches_of_a_medium_pool(data, tmp_path, tiny_dir, monkeypatch,
                                                                      capsys):
    """100 records are one 512-row shard: Ctrl-C in its third batch keeps the first two."""
    from coreselect.features.activations import ActivationExtractor
    from coreselect.store import FeatureStore

    real, calls = ActivationExtractor.extract_batch, []

    def extract_batch(self, rendered, *a, **kw):
        calls.append(len(rendered))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, rendered, *a, **kw)

    args = ["select", str(data), "--n", "10", "-o", str(tmp_path / "core.jsonl"), "--work-dir", str(tmp_path / "w"),
            "--model", str(tiny_dir), *TINY_ARGS]
    with monkeypatch.context() as mp:
        mp.setattr(ActivationExtractor, "extract_batch", extract_batch)
        assert main(args) == 130
    assert "finished work is kept" in capsys.readouterr().err
    (store,) = (tmp_path / "w").iterdir()
    (partial,) = store.glob(".shard-00000.partial.tmp")  # the two finished batches
    kept = sum(calls[:2])
    again: list[int] = []
    with monkeypatch.context() as mp:
        mp.setattr(ActivationExtractor, "extract_batch",
                   lambda self, rendered, *a, **kw: again.append(len(rendered)) or real(self, rendered, *a, **kw))
        assert main(args) == 0  # resumes: the rows not done only
    assert sum(again) == N - kept and not partial.exists()
    assert FeatureStore.open(store).manifest["complete"]


def test_a_resumed_shard_has_the_features_of_an_uninterrupted_one(data, tmp_path, tiny_dir, monkeypatch):
    import numpy as np
    from safetensors.numpy import load_file

    from coreselect.features.activations import ActivationExtractor

    def extract(out: Path) -> list[str]:
        return ["-q", "extract", str(data), "-o", str(out), "--model", str(tiny_dir), *TINY_ARGS]

    assert main(extract(tmp_path / "clean")) == 0
    monkeypatch.setenv("CORESELECT_RECORD_CACHE", str(tmp_path / "records"))  # not the clean run's: extract
    real, calls = ActivationExtractor.extract_batch, []

    def extract_batch(self, rendered, *a, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, rendered, *a, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(ActivationExtractor, "extract_batch", extract_batch)
        assert main(extract(tmp_path / "resumed")) == 130
    assert main(extract(tmp_path / "resumed")) == 0
    a = load_file(str(tmp_path / "clean" / "shard-00000.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "shard-00000.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # other batches, other padding: equal up to bf16 rounding
        np.testing.assert_allclose(b[k].astype(np.float32), a[k].astype(np.float32), rtol=0.05, atol=0.02)
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["manifest.json", "shard-00000.safetensors"]


def test_the_bar_advances_per_batch(data, tmp_path, tiny_dir, monkeypatch):
    import tqdm.auto

    updates: list[int] = []

    class Bar(tqdm.auto.tqdm):
        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    out = tmp_path / "feats"
    assert main(["-q", "extract", str(data), "-o", str(out), "--model", str(tiny_dir), "--layers", "-1"]) == 0
    shards = len(list(out.glob("shard-*.safetensors")))
    assert sum(updates) == N and len([u for u in updates if u]) > shards, (updates, shards)
