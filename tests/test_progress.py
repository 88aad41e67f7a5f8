"""Ctrl-C and progress on medium pools (issue 13): small default shards keep finished work, and
the bar advances per batch, not per shard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _reliability import TINY_ARGS
from coreselect.cli.main import main
from coreselect.store import FeatureStore

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


def test_default_shards_are_small_for_medium_pools():
    from coreselect.features.extract import SHARD_ROWS, default_shard_rows

    assert default_shard_rows(240) == 32 and default_shard_rows(5000) == 157
    assert default_shard_rows(6) == 32 and default_shard_rows(1_000_000) == SHARD_ROWS


def test_ctrl_c_in_select_keeps_finished_work_of_a_medium_pool(data, tmp_path, tiny_dir, monkeypatch, capsys):
    real, written = FeatureStore.write_shard, []

    def write_shard(self, plan, arrays):
        if len(written) == 2:
            raise KeyboardInterrupt
        real(self, plan, arrays)
        written.append(plan.shard)

    args = ["select", str(data), "--n", "10", "-o", str(tmp_path / "core.jsonl"), "--work-dir", str(tmp_path / "w"),
            "--model", str(tiny_dir), *TINY_ARGS]
    with monkeypatch.context() as mp:
        mp.setattr(FeatureStore, "write_shard", write_shard)
        assert main(args) == 130
    assert "finished shards are kept" in capsys.readouterr().err
    (store,) = (tmp_path / "w").iterdir()
    assert sorted(p.name for p in store.glob("shard-*")) == ["shard-00000.safetensors", "shard-00001.safetensors"]
    assert main(args) == 0  # resumes: the rest only


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
